/**
 * Trust at install, against a real runtime (issue 10, Packages):
 * - a signed package whose fs.img has one flipped byte (in the squashfs data or in the
 *   verity hash tree) is refused at install by both repository kinds, with an error that
 *   names fs.img and verity, and leaves nothing behind: no file in the repository
 *   directory (temp files live there too), nothing in the mem repository's tmpfs
 *   directory, no extra memfd held by the runtime;
 * - a package whose fs.img starts at an odd byte in the zip (as other zip writers produce
 *   it; upstream accepts it) installs, mounts at that offset and runs, in both kinds;
 * - the verity mode is named, with its reason, in one info line at start;
 * - kernel dm-verity (`verity = "kernel"`) runs a container where the kernel has
 *   device-mapper, and says why it skips elsewhere.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, Notification } from '../../src/client/index.js';
import { RuntimeError } from '../../src/client/index.js';
import { Npk } from '../../src/npk/reader.js';
import { readPublicKey } from '../../src/npk/keys.js';
import { hasDeviceMapper } from '../../src/runtime/mount/mounter.js';
import { hasCommand, isRoot, tempDir } from '../helpers/tmp.js';
import { unalignNpk } from '../helpers/unaligned.js';
import { startRuntime, testNpks, nextNotification, isExit, PUB, type RuntimeOptions, type TestRuntime } from './harness.js';

const TC = 'test-container:0.0.1';
const TR = 'test-resource:0.0.1';
const KINDS = [
  { repo: 'default', kind: 'fs' },
  { repo: 'memory', kind: 'mem' },
] as const;

async function setup(t: Parameters<typeof startRuntime>[0], opts: RuntimeOptions = {}): Promise<{ rt: TestRuntime; client: Client }> {
  const rt = await startRuntime(t, { npks: [], ...opts });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  return { rt, client };
}

/** Flip one byte of `npk` at `at` bytes into fs.img. */
function flipInImage(npk: string, out: string, fsOffset: number, at: number): string {
  const buf = Buffer.from(readFileSync(npk));
  buf[fsOffset + at] = buf[fsOffset + at]! ^ 0x5a;
  writeFileSync(out, buf);
  return out;
}

/** The mem repository's private tmpfs directory of a runtime (named after its pid). */
function memDir(rt: TestRuntime): string {
  const prefix = `northstar-mem-${rt.innerPid()}-memory-`;
  const base = join(rt.dir, 'run', 'mem');
  const hits = readdirSync(base).filter((n) => n.startsWith(prefix));
  assert.equal(hits.length, 1, `one ${prefix}* directory in ${base}: ${hits.join(', ')}`);
  return join(base, hits[0]!);
}

/** memfds the runtime process holds open. */
function memfds(rt: TestRuntime): string[] {
  const dir = `/proc/${rt.innerPid()}/fd`;
  const out: string[] = [];
  for (const fd of readdirSync(dir)) {
    try {
      const link = readlinkSync(join(dir, fd));
      if (link.startsWith('/memfd:')) out.push(link);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** The source device and the loop offset of the mount at `<run_dir>/<container>` in the runtime's namespace. */
function mountOf(rt: TestRuntime, container: string): { source: string; loopOffset: number | undefined } {
  const target = join(rt.dir, 'run', container);
  for (const line of readFileSync(`/proc/${rt.innerPid()}/mountinfo`, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] !== target) continue;
    const source = f[f.indexOf('-') + 2]!;
    const loop = /^\/dev\/(loop\d+)$/.exec(source);
    const loopOffset = loop ? Number(readFileSync(`/sys/block/${loop[1]}/loop/offset`, 'utf8')) : undefined;
    return { source, loopOffset };
  }
  throw new Error(`${target} is not mounted in the runtime's namespace`);
}

function exitOf(n: Notification): unknown {
  return typeof n === 'object' && 'exit' in n ? n.exit[1] : undefined;
}

describe('install-time verification and unaligned packages', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  for (const { repo, kind } of KINDS) {
    test(`${kind}: a flipped byte in fs.img data or in its hash tree is refused at install, leaving nothing behind`, async (t) => {
      const dir = tempDir(t);
      const npks = await testNpks();
      const good = npks['test-container']!;
      const probe = await Npk.open(good, { key: await readPublicKey(PUB) });
      const { offset } = probe.fsImg;
      const dataSize = probe.verity!.dataSize;
      assert.ok(dataSize >= 4 * 4096, 'the image has several data blocks');
      const cases = [
        { what: 'data', file: flipInImage(good, join(dir, 'data.npk'), offset, Math.floor(dataSize / 4096 / 2) * 4096 + 123), re: /fs\.img: verity: data block \d+ \(byte \d+\) does not match the hash tree/ },
        // First byte after the superblock: the top (here: the only) level of the tree.
        { what: 'hash tree', file: flipInImage(good, join(dir, 'tree.npk'), offset, dataSize + 4096), re: /fs\.img: verity: (root hash [0-9a-f]+ of the hash tree's top block does not match|hash tree block)/ },
      ];
      const { rt, client } = await setup(t);
      const memBefore = kind === 'mem' ? memfds(rt).length : 0;
      for (const c of cases) {
        await assert.rejects(client.install(c.file, repo), (e: unknown) => {
          assert.ok(e instanceof RuntimeError, String(e));
          assert.ok('unexpected' in e.error, JSON.stringify(e.error));
          assert.match(e.message, c.re, `${c.what}: ${e.message}`);
          assert.match(e.message, new RegExp(`repository ${repo}: package ${TC} refused`));
          return true;
        });
        assert.deepEqual(readdirSync(rt.repoDir), [], `${c.what}: nothing (no package, no temp file) in the fs repository directory`);
        if (kind === 'mem') {
          assert.deepEqual(readdirSync(memDir(rt)), [], `${c.what}: nothing in the mem repository's tmpfs directory`);
          assert.equal(memfds(rt).length, memBefore, `${c.what}: no memfd kept`);
        }
        assert.deepEqual(await client.list(), [], `${c.what}: not installed`);
      }
      // The runtime is fine and the good package installs, mounts and runs.
      await client.install(npks['test-resource']!, repo);
      await client.install(good, repo);
      if (kind === 'mem') assert.equal(memfds(rt).length, memBefore + 2, 'one sealed memfd per installed package');
      await client.start(TC, { args: ['exit', '7'] });
      assert.deepEqual(exitOf(await nextNotification(client, isExit(TC), 20_000)), { exit: { code: 7 } });
    });

    test(`${kind}: a package with fs.img at an odd byte offset installs, mounts in place and runs`, async (t) => {
      const dir = tempDir(t);
      const npks = await testNpks();
      const tc = join(dir, 'tc-odd.npk');
      const tr = join(dir, 'tr-odd.npk');
      const tcOffset = await unalignNpk(npks['test-container']!, tc);
      assert.equal(tcOffset % 4096, 291);
      assert.equal((await unalignNpk(npks['test-resource']!, tr, 1001)) % 4096, 1001);
      const { rt, client } = await setup(t);
      await client.install(tr, repo);
      await client.install(tc, repo);
      if (kind === 'fs') {
        // The repository stores what was uploaded, byte for byte.
        assert.ok(readFileSync(join(rt.repoDir, `${TC}.npk`)).equals(readFileSync(tc)));
      }
      await client.start(TC, { args: ['exit', '7'] });
      assert.deepEqual(exitOf(await nextNotification(client, isExit(TC), 20_000)), { exit: { code: 7 } });
      const m = mountOf(rt, TC);
      assert.equal(m.loopOffset, tcOffset, `loop device ${m.source} at the odd offset of fs.img`);
      // Verified again at mount: logged before the start, read once the exit is notified.
      await rt.logged(new RegExp(`${TC.replace(/\./g, '\\.')}: verified the verity hash tree of fs\\.img in user space`));
      // The resource is mounted at its odd offset too.
      assert.equal(mountOf(rt, TR).loopOffset! % 4096, 1001);
    });
  }

  test('the start log names the verity mode and why, in one info line', async (t) => {
    const { rt } = await setup(t);
    const lines = rt.logs.filter((l) => /"verity: /.test(l));
    assert.equal(lines.length, 1, lines.join('\n'));
    const rec = JSON.parse(lines[0]!) as { level?: string | number; msg?: string };
    assert.ok(rec.level === 30 || String(rec.level).toLowerCase() === 'info', `info level: ${lines[0]}`);
    if (hasDeviceMapper()) assert.match(rec.msg!, /^verity: kernel dm-verity \(verity = "auto" and the kernel has device-mapper\)/);
    else assert.match(rec.msg!, /^verity: user space \(verity = "auto" and the kernel has no device-mapper \(no device-mapper line in \/proc\/misc\)\): the whole hash tree of a signed image is checked at install and again before each mount/);
  });

  const noDm = !hasDeviceMapper()
    ? `no device-mapper in this kernel (no device-mapper line in /proc/misc${existsSync('/dev/mapper/control') ? '' : ', no /dev/mapper/control'}): verity = "kernel" cannot run here`
    : !hasCommand('veritysetup')
      ? 'veritysetup (cryptsetup-bin) not installed'
      : false;
  test('verity = "kernel": signed packages (aligned and not) mount through dm-verity and run; a tampered one is refused at install', { skip: noDm }, async (t) => {
    const dir = tempDir(t);
    const npks = await testNpks();
    const { rt, client } = await setup(t, { globalConfig: 'verity = "kernel"' });
    assert.ok(rt.logs.some((l) => l.includes('verity: kernel dm-verity (verity = \\"kernel\\")')), 'start log names the kernel mode');
    const probe = await Npk.open(npks['test-container']!, { key: await readPublicKey(PUB) });
    const bad = flipInImage(npks['test-container']!, join(dir, 'bad.npk'), probe.fsImg.offset, 4096 + 1);
    await assert.rejects(client.install(bad, 'default'), /fs\.img: verity: data block 1 /);
    const tr = join(dir, 'tr-odd.npk');
    await unalignNpk(npks['test-resource']!, tr);
    await client.install(tr, 'memory');
    await client.install(npks['test-container']!, 'default');
    await client.start(TC, { args: ['exit', '7'] });
    assert.deepEqual(exitOf(await nextNotification(client, isExit(TC), 20_000)), { exit: { code: 7 } });
    for (const c of [TC, TR]) {
      const m = mountOf(rt, c);
      assert.match(m.source, /^\/dev\/(dm-\d+|mapper\/northstar-[0-9a-f]+)$/, `${c} is mounted from a dm-verity device, not ${m.source}`);
    }
  });
});
