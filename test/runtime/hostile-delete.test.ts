/**
 * Issue 9 "Hostile containers", recursive deletes as root: nothing the runtime deletes
 * recursively may be steered onto other files, neither by a local user (a planted tree in
 * a world-writable directory) nor by a container (symlinks in its persist dir), and a wipe
 * never removes the data of a running version of the same name.
 *
 * The races below are what an attacker does against a path-based recursive delete: swap a
 * directory that is being emptied for a symlink to a victim directory, so that the
 * remaining unlinks resolve through it. The swap is triggered by the first deletion in the
 * directory (inotify, through fs.watch), not by timing.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError } from '../../src/client/index.js';
import { isRoot, tempDir } from '../helpers/tmp.js';
import { isExit, nextNotification, packTestVariant, startRuntime, testContainerManifest, testNpks } from './harness.js';

const TC = 'test-container:0.0.1';
const TC2 = 'test-container:0.0.2';
const FILES = 3000;
const names = Array.from({ length: FILES }, (_, i) => `f${String(i).padStart(4, '0')}`);

/** A victim directory outside everything the runtime owns, with FILES files. */
function victimDir(t: TestContext): string {
  const v = join(tempDir(t, 'ns-victim-'), 'victim');
  mkdirSync(v);
  for (const n of names) writeFileSync(join(v, n), 'precious');
  return v;
}

function victimIntact(v: string): void {
  const left = readdirSync(v);
  assert.equal(left.length, FILES, `${FILES - left.length} files of the victim directory ${v} were deleted`);
}

/**
 * `dir/sub` with FILES files; on the first deletion in it, `dir/sub` is renamed away and
 * replaced by a symlink to `victim` (what the owner of `dir` can do at any time).
 */
function armSwap(t: TestContext, dir: string, victim: string, uid = 0): { fired: () => boolean } {
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  for (const n of names) writeFileSync(join(sub, n), 'bait');
  if (uid !== 0) {
    chownSync(sub, uid, uid);
    for (const n of names) chownSync(join(sub, n), uid, uid);
  }
  let fired = false;
  const w: FSWatcher = watch(sub, () => {
    if (fired) return;
    fired = true;
    try {
      renameSync(sub, join(dir, 'gone'));
      symlinkSync(victim, sub);
    } catch {
      // The tree is already gone: the remover was faster than us, nothing to steer.
    }
  });
  w.on('error', () => undefined);
  t.after(() => w.close());
  return { fired: () => fired };
}

describe('hostile recursive deletes', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a local user cannot make the start-up cleanup of the mem repository delete files', async (t) => {
    const victim = victimDir(t);
    // The old location, /dev/shm (world-writable): a "stale" mem directory planted by a
    // local user, with a symlink to the victim and a directory swapped for one mid-delete.
    const planted = join('/dev/shm', `northstar-mem-99999999-x-${randomBytes(4).toString('hex')}`);
    mkdirSync(planted, { mode: 0o700 });
    t.after(() => rmSync(planted, { recursive: true, force: true }));
    symlinkSync(victim, join(planted, 'link'));
    armSwap(t, planted, victim);

    // The new location, <run_dir>/mem: what is not a root-owned 0700 directory is skipped,
    // what is one is removed without following the symlink in it.
    const dir = mkdtempSync(join(tmpdir(), 'ns-rt-'));
    const mem = join(dir, 'run', 'mem');
    mkdirSync(mem, { recursive: true, mode: 0o700 });
    const symlinked = join(mem, 'northstar-mem-99999997-sym-a');
    symlinkSync(victim, symlinked);
    const foreign = join(mem, 'northstar-mem-99999996-foreign-b');
    mkdirSync(foreign, { mode: 0o700 });
    symlinkSync(victim, join(foreign, 'link'));
    chownSync(foreign, 65534, 65534);
    const ours = join(mem, 'northstar-mem-99999995-memory-c');
    mkdirSync(ours, { mode: 0o700 });
    symlinkSync(victim, join(ours, 'link'));
    writeFileSync(join(ours, 'half.npk'), 'half an upload');

    const rt = await startRuntime(t, { dir });
    t.after(async () => {
      await rt.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    victimIntact(victim);
    assert.ok(lstatSync(symlinked).isSymbolicLink(), 'a symlink is not taken for a stale directory');
    assert.ok(existsSync(join(foreign, 'link')), 'a directory not owned by root is left alone');
    assert.ok(!existsSync(ours), 'a stale directory of ours is removed');
    // The runtime's own private directory is in <run_dir>/mem, root's alone.
    const own = readdirSync(mem).filter((n) => /^northstar-mem-\d+-memory-/.test(n) && !n.startsWith('northstar-mem-9999999'));
    assert.equal(own.length, 1, `one private directory in ${mem}: ${readdirSync(mem).join(', ')}`);
    const st = statSync(join(mem, own[0]!));
    assert.equal(st.uid, 0);
    assert.equal(st.mode & 0o7777, 0o700);
  });

  test('uninstall --wipe of one version while another version of the name runs is refused', async (t) => {
    const npks = await testNpks();
    const v2 = await packTestVariant('tc-0.0.2', testContainerManifest().replace('version: 0.0.1', 'version: 0.0.2'));
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!, v2] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    await client.start(TC, { args: ['write', 'running', '/data/file'] });
    // The app's output is the subject: it prints Sleeping once it has written the file.
    await rt.waitLog(/Sleeping/);
    const file = join(rt.dataDir, 'test-container', 'file');
    await assert.rejects(
      client.uninstall(TC2, { wipe: true }),
      (e: unknown) => e instanceof RuntimeError && JSON.stringify(e.error) === `{"umount_busy":{"container":"${TC}"}}`,
    );
    assert.ok(existsSync(file), `${file} of the running ${TC} is still there`);
    assert.ok((await client.list()).some((c) => c.toString() === TC2), `${TC2} is still installed`);
    // Without wipe the other version goes; once nothing runs, a wipe is fine again.
    await client.kill(TC, 15);
    await nextNotification(client, isExit(TC));
    await client.uninstall(TC2, { wipe: true });
    assert.ok(!existsSync(join(rt.dataDir, 'test-container')), 'wiped once nothing of the name runs');
  });

  test('uninstall --wipe does not follow symlinks a container planted in its persist dir, nor a swap during the delete', async (t) => {
    const victim = victimDir(t);
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    // The container plants a symlink to a host directory in /data.
    await client.start(TC, { args: ['symlink', victim, '/data/escape'] });
    await rt.waitLog(/symlink \/data\/escape: ok/);
    await nextNotification(client, isExit(TC));
    const persist = join(rt.dataDir, 'test-container');
    assert.ok(lstatSync(join(persist, 'escape')).isSymbolicLink());
    // A process of the container's uid (1000) swaps a directory of the persist dir for a
    // symlink to the victim while the wipe empties it.
    const swap = armSwap(t, persist, victim, 1000);
    await client.uninstall(TC, { wipe: true });
    assert.ok(swap.fired(), 'the wipe deleted in the swapped directory');
    victimIntact(victim);
    assert.ok(!existsSync(persist), `${persist} is gone`);
  });

  test('writable-root leftovers of a crashed runtime are removed at start without following symlinks', async (t) => {
    const victim = victimDir(t);
    const dir = mkdtempSync(join(tmpdir(), 'ns-rt-'));
    const left = join(dir, 'run', 'writable-roots', 'test-container-abc123');
    mkdirSync(join(left, 'tmp', 'upper'), { recursive: true, mode: 0o700 });
    mkdirSync(join(left, 'root'), { mode: 0o700 });
    symlinkSync(victim, join(left, 'tmp', 'upper', 'link'));
    // Still mounted (as seen by the runtime, whose mount namespace copies ours): the
    // cleanup unmounts it first, else the helper would refuse to cross into it.
    const still = join(left, 'root');
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', still]);
    t.after(() => execFileSync('sh', ['-c', `umount ${JSON.stringify(still)} 2>/dev/null; true`]));
    writeFileSync(join(still, 'file'), 'in the tmpfs');
    const rt = await startRuntime(t, { dir });
    t.after(async () => {
      await rt.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    assert.ok(!existsSync(left), `${left} is removed: ${rt.logs.filter((l) => l.includes('writable')).join('\n')}`);
    assert.ok(rt.logs.some((l) => l.includes(`unmounting ${still}`)), 'the leftover mount was unmounted first');
    victimIntact(victim);
  });
});
