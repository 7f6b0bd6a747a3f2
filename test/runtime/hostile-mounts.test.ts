/**
 * Hostile containers against a real runtime (issue 9): what a signed image may carry that
 * the runtime must not honour.
 * - a symlink at a resource mount's `dir` pointing at a host path (a variant of Cure53
 *   ESR-01-006): the bind source is resolved inside the resource root, never on the host;
 * - device nodes and setuid files in root and resource images: every image and tmpfs
 *   mount is nodev,nosuid, the writable root overlay too;
 * - the `dev` mount gives a working minimal /dev (host nodes bound into a small tmpfs),
 *   usable by the container uid, while the image's own nodes stay refused.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Notification } from '../../src/client/index.js';
import { RuntimeError } from '../../src/client/index.js';
import { parseManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { readSigningKey } from '../../src/npk/keys.js';
import { isRoot } from '../helpers/tmp.js';
import { Launcher, LaunchError } from '../../src/launch/launcher.js';
import { MS, type LaunchPlan } from '../../src/launch/plan.js';
import { PROC_MOUNT, buildCore, makeRoot, run as runPlan, shPlan, skipReason } from '../launch/core-fixture.js';
import { KEY, TEST_CONTAINER_BIN, isExit, nextNotification, startRuntime, type TestRuntime } from './harness.js';

const HC = 'hostile:0.0.1';

function tempDir(t: TestContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Packs a signed NPK from a root directory that `fill` populates (as root: mknod works). */
async function pack(dir: string, name: string, manifest: string, fill: (root: string) => void): Promise<string> {
  const root = join(dir, `root-${name}`);
  mkdirSync(root);
  fill(root);
  const out = join(dir, `${name}.npk`);
  await packNpk({ manifest: parseManifest(manifest), root, key: await readSigningKey(KEY), out });
  return out;
}

/** The test container binary as init, plus a char device 1:3 (null) and a setuid copy. */
function hostileRoot(root: string): void {
  copyFileSync(TEST_CONTAINER_BIN, join(root, 'test-container'));
  chmodSync(join(root, 'test-container'), 0o755);
  copyFileSync(TEST_CONTAINER_BIN, join(root, 'suid'));
  chmodSync(join(root, 'suid'), 0o4755);
  execFileSync('mknod', ['-m', '0666', join(root, 'devnode'), 'c', '1', '3']);
}

function manifest(extra: string, mounts: string): string {
  return `name: hostile
version: 0.0.1
init: /test-container
uid: 1000
gid: 1000
io:
  stdout: pipe
  stderr: pipe
${extra}mounts:
  /dev:
    type: dev
  /proc:
    type: proc
${mounts}`;
}

const RESOURCE = `name: hostile-resource
version: 0.0.1
uid: 1000
gid: 1000
`;

function resourceMount(at: string, dir: string, options = ''): string {
  return `  ${at}:
    type: resource
    name: hostile-resource
    version: '>=0.0.1'
    dir: ${dir}
${options ? `    options: ${options}\n` : ''}`;
}

async function setup(t: TestContext, npks: string[]): Promise<{ rt: TestRuntime; client: Client }> {
  const rt = await startRuntime(t, { npks });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  return { rt, client };
}

function exitOf(n: Notification): unknown {
  return typeof n === 'object' && 'exit' in n ? n.exit[1] : undefined;
}

/** Runs one test-container command to its exit 0 and returns the log lines it printed. */
async function run(rt: TestRuntime, client: Client, args: string[], expect: RegExp[], container = HC): Promise<void> {
  rt.logs.length = 0;
  await client.start(container, { args });
  assert.deepEqual(exitOf(await nextNotification(client, isExit(container), 20_000)), { exit: { code: 0 } });
  for (const re of expect) await rt.waitLog(re);
}

describe('hostile containers: the launch core', { skip: skipReason() ?? false, timeout: 600_000 }, () => {
  const launcher = new Launcher();
  const BIND = MS.BIND;
  const RO_REMOUNT = MS.BIND | MS.REMOUNT | MS.RDONLY | MS.NODEV | MS.NOSUID;

  test('a bind source in a source root is resolved inside it: a symlink to a host path is refused, one inside is followed', async (t) => {
    buildCore();
    const root = makeRoot(t, ['res']);
    const host = mkdtempSync(join(tmpdir(), 'ns-hostile-host-'));
    t.after(() => rmSync(host, { recursive: true, force: true }));
    writeFileSync(join(host, 'marker'), 'host secret\n');
    const res = mkdtempSync(join(tmpdir(), 'ns-hostile-res-'));
    t.after(() => rmSync(res, { recursive: true, force: true }));
    mkdirSync(join(res, 'inner'));
    writeFileSync(join(res, 'inner', 'marker'), 'inside\n');
    symlinkSync(host, join(res, 'escape'));
    symlinkSync('../../../../inner', join(res, 'dotdot'));
    const bind = (source: string): LaunchPlan['mounts'] => [
      PROC_MOUNT,
      { source, sourceRoot: res, target: 'res', fstype: null, flags: BIND, data: null },
      { source, sourceRoot: res, target: 'res', fstype: null, flags: RO_REMOUNT, data: null },
    ];
    const err = await runPlan(launcher, shPlan(root, 'cat /res/marker', { mounts: bind('escape') })).then(
      (r) => assert.fail(`started and printed ${JSON.stringify(r.stdout)}`),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LaunchError, String(err));
    assert.equal(err.step, 'mount');
    assert.equal(err.errnoName, 'ENOENT');
    assert.ok(err.message.includes(`bind source /escape does not exist in ${res}`), err.message);
    for (const source of ['dotdot', 'inner', 'inner/../inner']) {
      const r = await runPlan(launcher, shPlan(root, 'cat /res/marker; grep " /res " /proc/self/mounts', { mounts: bind(source) }));
      assert.deepEqual(r.status, { code: 0 }, r.stderr);
      assert.match(r.stdout, /^inside\n.* \/res \w+ ro,nosuid,nodev/, source);
    }
  });
});

describe('hostile containers: mounts', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a symlink at a resource dir never makes a host path the bind source; links inside the resource still resolve', async (t) => {
    const dir = tempDir(t, 'ns-hostile-');
    // A host directory with a marker the container must never see.
    const host = join(dir, 'host-secret');
    mkdirSync(host);
    writeFileSync(join(host, 'marker'), 'host secret\n');
    const res = await pack(dir, 'hostile-resource', RESOURCE, (root) => {
      symlinkSync(host, join(root, 'escape')); // absolute: a host path
      mkdirSync(join(root, 'inner'));
      writeFileSync(join(root, 'inner', 'marker'), 'inside the resource\n');
      symlinkSync('/inner', join(root, 'inside')); // absolute, but meant within the resource
    });
    const escape = await pack(dir, 'hostile', manifest('', resourceMount('/resource', '/escape')), hostileRoot);
    const inside = await pack(dir, 'hostile-inside', manifest('', resourceMount('/resource', '/inside')).replace('name: hostile\n', 'name: hostile-inside\n'), hostileRoot);
    const { rt, client } = await setup(t, [escape, inside, res]);
    // Refused: the dir does not exist inside the resource (unfixed: the host dir is bound).
    await assert.rejects(
      (async () => {
        await client.start(HC, { args: ['get', '/resource/marker'] });
        await nextNotification(client, isExit(HC), 20_000);
        throw new Error(`the start succeeded; logs:\n${rt.logs.filter((l) => /marker|secret/.test(l)).join('\n')}`);
      })(),
      (e: unknown) =>
        e instanceof RuntimeError &&
        JSON.stringify(e.error) === `{"start_container_missing_resource":{"container":"${HC}","resource":"hostile-resource","version":">=0.0.1"}}`,
    );
    assert.ok(!rt.logs.some((l) => l.includes('host secret')), 'the host marker never reached the container');
    // A link that stays inside the resource is followed in the resource root.
    await run(rt, client, ['get', '/resource/marker'], [/get \/resource\/marker: inside the resource/], 'hostile-inside:0.0.1');
  });

  test('device nodes in root and resource images cannot be opened; image mounts are nodev,nosuid', async (t) => {
    const dir = tempDir(t, 'ns-hostile-');
    const res = await pack(dir, 'hostile-resource', RESOURCE, hostileRoot);
    // No options on the resource mount: nodev,nosuid must hold anyway (unfixed: both lost).
    // Twice: without options, and with noexec only.
    const npk = await pack(dir, 'hostile', manifest('', resourceMount('/resource', '/') + resourceMount('/noexec', '/', 'noexec')), hostileRoot);
    const { rt, client } = await setup(t, [npk, res]);
    await run(rt, client, ['open-rw', '/devnode', '/resource/devnode', '/noexec/devnode'], [
      /open-rw \/devnode: EACCES/,
      /open-rw \/resource\/devnode: EACCES/,
      /open-rw \/noexec\/devnode: EACCES/,
    ]);
    await run(rt, client, ['statvfs', '/', '/resource', '/noexec'], [
      /statvfs \/: ro nosuid nodev\b/,
      /statvfs \/resource: ro nosuid nodev\b/,
      /statvfs \/noexec: ro nosuid nodev noexec/,
    ]);
    // The setuid file is there, setuid bit and all: only the mount flag keeps it inert.
    await run(rt, client, ['stat', '/suid', '/resource/suid'], [/stat \/suid: mode=4755/, /stat \/resource\/suid: mode=4755/]);
  });

  test('the dev mount gives working host null, zero, full, random, urandom to the container uid; the image /dev nodes are gone', async (t) => {
    const dir = tempDir(t, 'ns-hostile-');
    const res = await pack(dir, 'hostile-resource', RESOURCE, () => undefined);
    const npk = await pack(dir, 'hostile', manifest('', resourceMount('/resource', '/')), hostileRoot);
    const { rt, client } = await setup(t, [npk, res]);
    // Unfixed: /dev/null is the image's node on the nodev squashfs → EACCES.
    await run(rt, client, ['open-rw', '/dev/null', '/dev/zero', '/dev/full', '/dev/urandom', '/dev/random'], [
      /open-rw \/dev\/null: ok write=1 read=0/,
      /open-rw \/dev\/zero: ok write=1 read=8/,
      /open-rw \/dev\/full: ok write=ENOSPC read=8/,
      /open-rw \/dev\/urandom: ok write=1 read=8/,
      /open-rw \/dev\/random: ok write=1 read=8/,
    ]);
    // /dev is a read-only tmpfs (not nodev: its own nodes must work) holding new nodes with
    // the host's numbers and modes, not the host's inodes (nothing done to them reaches the host).
    await run(rt, client, ['statvfs', '/dev', '/dev/null'], [/statvfs \/dev: ro nosuid noexec/, /statvfs \/dev\/null: ro nosuid noexec/]);
    await run(rt, client, ['stat', '/dev/null', '/dev/zero'], [/stat \/dev\/null: mode=0666 uid=0 gid=0/, /stat \/dev\/zero: mode=0666 uid=0 gid=0/]);
    await run(rt, client, ['exists', '/dev/fd', '/dev/stdin', '/dev/stdout', '/dev/stderr', '/dev/tty', '/dev/mem'], [
      /exists \/dev\/fd: yes/,
      /exists \/dev\/stdin: yes/,
      /exists \/dev\/stderr: yes/,
      /exists \/dev\/tty: yes/,
      /exists \/dev\/mem: no/,
    ]);
    // /dev is read-only and root's: the container cannot add entries; the bound nodes cannot be changed.
    await run(rt, client, ['try-write', '/dev/new'], [/try-write \/dev\/new: EROFS/]);
  });

  test('a writable root (overlay on a tmpfs) is nodev,nosuid: its device node cannot be opened', async (t) => {
    const dir = tempDir(t, 'ns-hostile-');
    const npk = await pack(dir, 'hostile', manifest('root:\n  writable: true\n  size: 4 MiB\n', ''), hostileRoot);
    const { rt, client } = await setup(t, [npk]);
    // Unfixed: the overlay is mounted without nodev, the image's node works through it.
    await run(rt, client, ['open-rw', '/devnode', '/dev/null'], [/open-rw \/devnode: EACCES/, /open-rw \/dev\/null: ok write=1 read=0/]);
    await run(rt, client, ['statvfs', '/'], [/statvfs \/: nosuid nodev/]);
  });
});
