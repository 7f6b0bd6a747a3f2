import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { NorthstarError } from '../../src/common/errors.js';
import { Container } from '../../src/common/container.js';
import { Npk } from '../../src/npk/reader.js';
import { manifestContainer } from '../../src/manifest/index.js';
import { LoopMounter, hasDeviceMapper, mountAll, mountAt, veritysetupArgs, type MountRequest } from '../../src/runtime/mount/index.js';
import { hasCommand } from '../helpers/tmp.js';
import { MemRepository } from '../../src/runtime/repository/index.js';
import { isRoot } from '../helpers/tmp.js';
import { chunks, flipByte, makeNpk, recordingLog, upstreamPublicKey } from './npk-fixture.js';

const canMount = isRoot && existsSync('/dev/loop-control') && readFileSync('/proc/filesystems', 'utf8').includes('squashfs');
const SKIP = canMount ? false : 'needs root, /dev/loop-control and squashfs in the kernel';

/**
 * A temp dir whose cleanup first unmounts everything below it (deepest first), then
 * removes it. Node runs after-hooks in registration order and stops at the first that
 * throws, so a plain tempDir() registered before a test's own umount hook would try
 * to delete files inside a still-mounted image when an assertion fails.
 */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ns-mount-test-'));
  t.after(() => {
    const below = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => m !== undefined && m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of below) spawnSyncQuiet('umount', [m.replace(/\\040/g, ' ')]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Loop devices whose backing file is under `dir`. */
function loopsUnder(dir: string): string[] {
  return execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(dir));
}
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
}

function code(c: string, msg?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof NorthstarError, `expected a NorthstarError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  };
}

async function request(path: string, signed: boolean): Promise<MountRequest> {
  const npk = await Npk.open(path, { key: signed ? await upstreamPublicKey() : undefined });
  return { container: manifestContainer(npk.manifest), npk, path };
}

function mounter(runDir: string, log = recordingLog()) {
  return new LoopMounter({ runDir, verity: 'user', loopDeviceTimeout: 10_000, log });
}

test('mount a signed package with user-space verity: ro,nosuid,nodev, loop ro+autoclear, data part only; umount leaves nothing', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  const req = await request(await makeNpk(tmp, { payload: 200_000 }), true);
  const log = recordingLog();
  const m = mounter(run, log);
  execFileSync('mkdir', ['-p', run]);
  t.after(() => {
    spawnSyncQuiet('umount', [join(run, 'hello:0.0.1')]);
  });
  const img = await m.mount(req);
  assert.equal(img.target, join(run, 'hello:0.0.1'));
  assert.equal(img.verity, 'user');
  assert.match(img.device, /^\/dev\/loop\d+$/);
  assert.ok(log.lines.some((l) => l.level === 'info' && /verified the verity hash tree of fs\.img in user space/.test(l.msg)));
  assert.equal(readFileSync(join(img.target, 'marker'), 'utf8'), 'hello:0.0.1\n');
  assert.equal(statSync(join(img.target, 'payload')).size, 200_000);
  const mi = await mountAt(img.target);
  assert.equal(mi?.fsType, 'squashfs');
  for (const o of ['ro', 'nosuid', 'nodev']) assert.ok(mi!.options.split(',').includes(o), `${o} in ${mi!.options}`);
  const [line] = execFileSync('losetup', ['-l', '-n', '-O', 'AUTOCLEAR,RO,OFFSET,SIZELIMIT', img.device], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(line!.trim().split(/\s+/).map(Number), [1, 1, req.npk.fsImg.offset, req.npk.verity!.dataSize]);
  assert.throws(() => writeFileSync(join(img.target, 'x'), 'x'), /EROFS/);

  await m.umount(req.container);
  assert.ok(!existsSync(img.target), 'mount point removed');
  assert.deepEqual(mountsUnder(tmp), []);
  assert.deepEqual(loopsUnder(tmp), [], 'loop device autocleared');
  await assert.rejects(m.umount(req.container), code('ENOTMOUNTED', /umount hello:0\.0\.1: .* is not mounted/));
});

test('a package of a repository without a key is mounted raw (whole fs.img, no verification)', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const req = await request(await makeNpk(tmp, { sign: 'none' }), false);
  const log = recordingLog();
  const m = mounter(run, log);
  const img = await m.mount(req);
  t.after(() => spawnSyncQuiet('umount', [img.target]));
  assert.equal(img.verity, 'none');
  const [line] = execFileSync('losetup', ['-l', '-n', '-O', 'SIZELIMIT', img.device], { encoding: 'utf8' }).trim().split('\n');
  assert.equal(Number(line), req.npk.fsImg.size);
  assert.ok(!log.lines.some((l) => /verified/.test(l.msg)));
  await m.umount(req.container);
  assert.deepEqual(loopsUnder(tmp), []);
});

test('a corrupted image is refused by user-space verity before mounting; nothing is left behind', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const good = await makeNpk(tmp);
  const probe = await Npk.open(good, { key: await upstreamPublicKey() });
  const bad = flipByte(good, join(tmp, 'bad.npk'), probe.fsImg.offset + 5000);
  const req = await request(bad, true);
  await assert.rejects(mounter(run).mount(req), code('EVERITY', /data block 1/));
  assert.deepEqual(readdirSync(run), [], 'no mount point left');
  assert.deepEqual(mountsUnder(tmp), []);
  assert.deepEqual(loopsUnder(tmp), []);
});

test('a file that is not squashfs fails in mount(8) and leaves nothing', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const req = await request(await makeNpk(tmp, { sign: 'none' }), false);
  // Same package, but pretend fs.img starts one block later: mount sees garbage.
  const shifted = { ...req, npk: Object.assign(Object.create(Object.getPrototypeOf(req.npk) as object) as Npk, req.npk, { fsImg: { offset: req.npk.fsImg.offset + 4096, size: req.npk.fsImg.size - 4096 } }) };
  await assert.rejects(mounter(run).mount(shifted), code('EMOUNT', /^mount hello:0\.0\.1: /));
  assert.deepEqual(readdirSync(run), []);
  assert.deepEqual(loopsUnder(tmp), []);
});

test('already mounted and busy are reported; a busy mount stays intact', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const req = await request(await makeNpk(tmp), true);
  const m = mounter(run);
  const img = await m.mount(req);
  t.after(() => spawnSyncQuiet('umount', ['-l', img.target]));
  await assert.rejects(m.mount(req), code('EMOUNTBUSY', /is already a mount point/));
  // Two mounts of one package at the same time: the second is refused, never stacked.
  await m.umount(req.container);
  const both = await Promise.allSettled([m.mount(req), m.mount(req)]);
  assert.deepEqual(both.map((b) => b.status).sort(), ['fulfilled', 'rejected']);
  assert.match(String((both.find((b) => b.status === 'rejected') as PromiseRejectedResult).reason), /under way/);
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(img.target)).length, 1);
  const sleeper = spawn('sleep', ['60'], { cwd: img.target, stdio: 'ignore' });
  t.after(() => sleeper.kill('SIGKILL'));
  await once(sleeper, 'spawn');
  await assert.rejects(m.umount(req.container), code('EMOUNTBUSY', /umount hello:0\.0\.1: .* is busy/));
  assert.ok(await mountAt(img.target), 'still mounted');
  sleeper.kill('SIGKILL');
  await once(sleeper, 'exit');
  await m.umount(req.container);
  assert.deepEqual(loopsUnder(tmp), []);
});

test('several packages mount in parallel; results in request order', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const names = ['p0', 'p1', 'p2', 'p3', 'p4', 'p5'];
  const reqs = await Promise.all(names.map(async (name) => request(await makeNpk(tmp, { name }), true)));
  const m = mounter(run);
  t.after(() => {
    for (const n of names) spawnSyncQuiet('umount', [join(run, `${n}:0.0.1`)]);
  });
  const results = await mountAll(m, reqs);
  assert.deepEqual(results.map((r) => r.status), names.map(() => 'fulfilled'));
  results.forEach((r, i) => {
    assert.ok(r.status === 'fulfilled');
    assert.equal(r.value.container.name, names[i]);
    assert.equal(readFileSync(join(r.value.target, 'marker'), 'utf8'), `${names[i]}:0.0.1\n`);
  });
  assert.equal(new Set(results.map((r) => (r as PromiseFulfilledResult<{ device: string }>).value.device)).size, names.length, 'one loop device each');
  await Promise.all(reqs.map((r) => m.umount(r.container)));
  assert.deepEqual(readdirSync(run), []);
  assert.deepEqual(loopsUnder(tmp), []);
});

test('more parallel mounts than free loop devices: devices are created on demand', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const free = readdirSync('/sys/block').filter((d) => d.startsWith('loop') && !existsSync(`/sys/block/${d}/loop/backing_file`)).length;
  const base = await request(await makeNpk(tmp, { sign: 'none' }), false);
  const n = free + 3;
  // Copies of one package under n container names: n files, n mounts, n loop devices
  // (mount(8) shares one loop device between mounts of the same file and range).
  const reqs = Array.from({ length: n }, (_, i) => {
    const path = join(tmp, `copy-${i}.npk`);
    copyFileSync(base.path, path);
    return { ...base, path, container: Container.parse(`c${i}:0.0.1`) };
  });
  const m = mounter(run);
  t.after(() => {
    for (const r of reqs) spawnSyncQuiet('umount', [join(run, r.container.toString())]);
  });
  const results = await mountAll(m, reqs);
  assert.deepEqual(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), []);
  assert.equal(loopsUnder(tmp).length, n, `${n} loop devices (${free} were free before)`);
  for (const r of reqs) await m.umount(r.container);
  assert.deepEqual(loopsUnder(tmp), []);
  assert.deepEqual(readdirSync(run), []);
});

test('50 mount/umount cycles leave no mount and no loop device', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const signed = await request(await makeNpk(tmp), true);
  const raw = await request(await makeNpk(tmp, { name: 'raw', sign: 'none' }), false);
  const m = mounter(run);
  t.after(() => {
    spawnSyncQuiet('umount', [join(run, 'hello:0.0.1')]);
    spawnSyncQuiet('umount', [join(run, 'raw:0.0.1')]);
  });
  const loopsBefore = execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(tmp)).length;
  const mountsBefore = mountsUnder(tmp).length;
  for (let i = 0; i < 50; i++) {
    const req = i % 2 === 0 ? signed : raw;
    const img = await m.mount(req);
    assert.ok(existsSync(join(img.target, 'marker')));
    await m.umount(req.container);
  }
  assert.equal(loopsUnder(tmp).length, loopsBefore);
  assert.equal(mountsUnder(tmp).length, mountsBefore);
  assert.deepEqual(readdirSync(run), []);
});

test('a mem repository package mounts through its /proc/<pid>/fd path', { skip: SKIP }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const bytes = readFileSync(await makeNpk(tmp));
  const repo = await MemRepository.open({ id: 'mem', key: await upstreamPublicKey(), log: recordingLog(), dir: join(tmp, 'mem') });
  t.after(() => repo.close());
  const entry = await repo.install(chunks(bytes), bytes.length);
  const m = mounter(run);
  const img = await m.mount(entry);
  t.after(() => spawnSyncQuiet('umount', [img.target]));
  assert.equal(readFileSync(join(img.target, 'marker'), 'utf8'), 'hello:0.0.1\n');
  await m.umount(entry.container);
  assert.deepEqual(loopsUnder(repo.storageDir), []);
});

test('verity = "kernel" is refused without device-mapper; "auto" falls back to user space', (t) => {
  const log = recordingLog();
  assert.throws(() => new LoopMounter({ runDir: '/tmp', verity: 'kernel', loopDeviceTimeout: 1000, log, deviceMapper: false }), code('ENODM'));
  assert.equal(new LoopMounter({ runDir: '/tmp', verity: 'auto', loopDeviceTimeout: 1000, log, deviceMapper: false }).verityMode, 'user');
  assert.equal(new LoopMounter({ runDir: '/tmp', verity: 'auto', loopDeviceTimeout: 1000, log, deviceMapper: true }).verityMode, 'kernel');
  const tmp = tempDir(t);
  writeFileSync(join(tmp, 'misc-dm'), '237 loop-control\n236 device-mapper\n');
  writeFileSync(join(tmp, 'misc-none'), '237 loop-control\n229 fuse\n');
  assert.equal(hasDeviceMapper(join(tmp, 'misc-dm')), true);
  assert.equal(hasDeviceMapper(join(tmp, 'misc-none')), false);
});

test('kernel verity path: a failing veritysetup open rolls back the loop device and the mount point', { skip: SKIP || (hasDeviceMapper() ? 'device-mapper present: veritysetup open would succeed' : hasCommand('veritysetup') ? false : 'veritysetup not installed') }, async (t) => {
  const tmp = tempDir(t);
  // libdevmapper creates /dev/mapper/control when it is missing; leave the host as it was.
  const hadDir = existsSync('/dev/mapper');
  const hadNode = existsSync('/dev/mapper/control');
  t.after(() => {
    if (!hadNode) spawnSyncQuiet('rm', ['-f', '/dev/mapper/control']);
    if (!hadDir) spawnSyncQuiet('rmdir', ['/dev/mapper']);
  });
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const req = await request(await makeNpk(tmp), true);
  // Claim device-mapper exists so the kernel path runs; without it veritysetup open fails.
  const m = new LoopMounter({ runDir: run, verity: 'kernel', loopDeviceTimeout: 1000, log: recordingLog(), deviceMapper: true });
  await assert.rejects(m.mount(req), code('EVERITY', /^mount hello:0\.0\.1: /));
  assert.deepEqual(loopsUnder(tmp), [], 'loop device detached');
  assert.deepEqual(readdirSync(run), [], 'mount point removed');
  assert.deepEqual(mountsUnder(tmp), []);
});

test('dm-verity through veritysetup when the kernel has device-mapper', { skip: hasDeviceMapper() && canMount ? false : 'no device-mapper in this kernel (/proc/misc has no device-mapper)' }, async (t) => {
  const tmp = tempDir(t);
  const run = join(tmp, 'run');
  execFileSync('mkdir', ['-p', run]);
  const req = await request(await makeNpk(tmp), true);
  const m = new LoopMounter({ runDir: run, verity: 'kernel', loopDeviceTimeout: 10_000, log: recordingLog() });
  const img = await m.mount(req);
  t.after(() => spawnSyncQuiet('umount', [img.target]));
  assert.equal(img.verity, 'kernel');
  assert.equal(readFileSync(join(img.target, 'marker'), 'utf8'), 'hello:0.0.1\n');
  await m.umount(req.container);
  assert.deepEqual(loopsUnder(tmp), []);
});

test('the dm-verity parameters the kernel path uses verify with cryptsetup (veritysetup verify on the loop device); a corrupted image fails', { skip: SKIP || (hasCommand('veritysetup') ? false : 'veritysetup (cryptsetup-bin) not installed') }, async (t) => {
  const tmp = tempDir(t);
  const good = await makeNpk(tmp, { payload: 100_000 });
  const probe = await Npk.open(good, { key: await upstreamPublicKey() });
  const bad = flipByte(good, join(tmp, 'bad.npk'), probe.fsImg.offset + 9000);
  for (const [file, ok] of [[good, true], [bad, false]] as const) {
    const req = await request(file, true);
    const loop = execFileSync('losetup', ['--find', '--show', '--read-only', '--offset', String(req.npk.fsImg.offset), '--sizelimit', String(req.npk.fsImg.size), file], { encoding: 'utf8' }).trim();
    t.after(() => spawnSyncQuiet('losetup', ['-d', loop]));
    const args = veritysetupArgs('verify', loop, req.npk.verity!);
    assert.deepEqual(args, ['verify', loop, loop, req.npk.verity!.rootHash.toString('hex'), `--hash-offset=${req.npk.verity!.dataSize}`]);
    let status = 0;
    try {
      execFileSync('veritysetup', args, { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
    }
    assert.equal(status === 0, ok, `veritysetup verify of ${file}: status ${status}`);
    execFileSync('losetup', ['-d', loop]);
  }
  assert.deepEqual(veritysetupArgs('open', '/dev/loop9', { dataSize: 8192, rootHash: Buffer.alloc(32, 0xab) }, 'northstar-x'), [
    'open', '/dev/loop9', 'northstar-x', '/dev/loop9', 'ab'.repeat(32), '--hash-offset=8192',
  ]);
});

test('squashfs options: ro,nosuid,nodev, plus context= only with host SELinux and a manifest mount_context', async (t) => {
  const tmp = tempDir(t);
  const withCtx = await request(await makeNpk(tmp, { name: 'ctx', sign: 'none', extra: 'selinux:\n  mount_context: system_u:object_r:container_file_t:s0\n' }), false);
  const plain = await request(await makeNpk(tmp, { name: 'plain', sign: 'none' }), false);
  const on = new LoopMounter({ runDir: tmp, verity: 'user', loopDeviceTimeout: 1000, log: recordingLog(), selinux: true });
  const off = new LoopMounter({ runDir: tmp, verity: 'user', loopDeviceTimeout: 1000, log: recordingLog(), selinux: false });
  assert.equal(on.fsOptions(withCtx), 'ro,nosuid,nodev,context=system_u:object_r:container_file_t:s0');
  assert.equal(on.fsOptions(plain), 'ro,nosuid,nodev');
  assert.equal(off.fsOptions(withCtx), 'ro,nosuid,nodev');
  assert.equal(on.target(plain.container), join(tmp, 'plain:0.0.1'));
});

const NS_CHILD = fileURLToPath(new URL('../../src/runtime/mount/namespace.js', import.meta.url));

test('ensurePrivateMountNamespace: a runtime re-executed through it mounts a tmpfs the host never sees, and its exit code comes back', { skip: isRoot ? false : 'needs root for unshare --mount' }, async (t) => {
  const tmp = tempDir(t);
  const dir = join(tmp, 'mnt');
  execFileSync('mkdir', ['-p', dir]);
  const script = join(tmp, 'child.mjs');
  writeFileSync(script, `
import { ensurePrivateMountNamespace, MOUNT_NS_MARKER } from ${JSON.stringify(NS_CHILD)};
import { execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
const code = await ensurePrivateMountNamespace();
if (code !== undefined) process.exit(code);
execFileSync('mount', ['-t', 'tmpfs', 'nstest', ${JSON.stringify(dir)}]);
console.log('mounted ' + process.env[MOUNT_NS_MARKER] + ' ' + process.pid);
for await (const line of createInterface({ input: process.stdin })) if (line === 'exit') break;
process.exit(7);
`);
  const child = spawn(process.execPath, [script], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, NORTHSTAR_PRIVATE_MOUNT_NS: '' } });
  t.after(() => child.kill('SIGKILL'));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  const m = /^mounted (\d+) (\d+)$/.exec(String(first.value));
  assert.ok(m, `child said ${String(first.value)}`);
  assert.equal(m[1], m[2], 'the marker is re-keyed to the runtime pid');
  assert.notEqual(Number(m[2]), child.pid, 'the runtime is a re-executed process');
  assert.equal(readFileSync(`/proc/${m[2]}/mountinfo`, 'utf8').includes(dir), true, 'the runtime sees its tmpfs');
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), false, 'the host does not');
  assert.notEqual(execFileSync('readlink', [`/proc/${m[2]}/ns/mnt`], { encoding: 'utf8' }), execFileSync('readlink', ['/proc/self/ns/mnt'], { encoding: 'utf8' }));
  child.stdin!.end('exit\n');
  const [exitCode] = (await once(child, 'exit')) as [number];
  assert.equal(exitCode, 7);
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), false);
});

test('ensurePrivateMountNamespace: a SIGKILLed runtime leaves no mount behind', { skip: isRoot ? false : 'needs root for unshare --mount' }, async (t) => {
  const tmp = tempDir(t);
  const dir = join(tmp, 'mnt');
  execFileSync('mkdir', ['-p', dir]);
  const script = join(tmp, 'child.mjs');
  writeFileSync(script, `
import { ensurePrivateMountNamespace } from ${JSON.stringify(NS_CHILD)};
import { execFileSync } from 'node:child_process';
const code = await ensurePrivateMountNamespace();
if (code !== undefined) process.exit(code);
execFileSync('mount', ['-t', 'tmpfs', 'nstest', ${JSON.stringify(dir)}]);
console.log('mounted ' + process.pid);
setInterval(() => {}, 1000);
`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  const pid = Number(/^mounted (\d+)$/.exec(String(first.value))?.[1]);
  assert.ok(pid > 0);
  process.kill(pid, 'SIGKILL');
  const [, signal] = (await once(child, 'exit')) as [number | null, string | null];
  assert.equal(signal, null, 'the wrapper exits normally with 128+9');
  assert.equal(child.exitCode, 137);
  assert.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(dir), false);
});

test('ensurePrivateMountNamespace: a SIGKILLed wrapper takes the runtime with it (pdeathsig)', { skip: isRoot && existsSync('/usr/bin/setpriv') ? false : 'needs root and setpriv' }, async (t) => {
  const tmp = tempDir(t);
  const script = join(tmp, 'child.mjs');
  writeFileSync(script, `
import { ensurePrivateMountNamespace } from ${JSON.stringify(NS_CHILD)};
const code = await ensurePrivateMountNamespace();
if (code !== undefined) process.exit(code);
console.log('up ' + process.pid);
setInterval(() => {}, 1000);
`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  const pid = Number(/^up (\d+)$/.exec(String(first.value))?.[1]);
  assert.ok(pid > 0 && pid !== child.pid);
  t.after(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone, as expected
    }
  });
  child.kill('SIGKILL');
  await once(child, 'exit');
  // The runtime (a child of the dead wrapper) gets SIGKILL from the kernel; wait for it.
  const alive = () => {
    try {
      return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };
  while (alive()) await new Promise((r) => setTimeout(r, 10));
});

function spawnSyncQuiet(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
  } catch {
    // cleanup of something that is already gone
  }
}

test('mountinfo parsing: octal escapes, optional fields, super options', async () => {
  const { parseMountInfo } = await import('../../src/runtime/mount/index.js');
  const [a, b] = parseMountInfo([
    '36 35 98:0 /mnt1 /mnt/my\\040dir rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue',
    '43 27 7:0 / /run/hello:0.0.1 ro,nosuid,nodev,relatime - squashfs /dev/loop0 ro,errors=continue',
    'garbage line',
  ].join('\n'));
  assert.deepEqual(a, {
    id: 36, parent: 35, majorMinor: '98:0', root: '/mnt1', mountPoint: '/mnt/my dir', options: 'rw,noatime',
    fsType: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue',
  });
  assert.equal(b!.mountPoint, '/run/hello:0.0.1');
  assert.equal(b!.fsType, 'squashfs');
  assert.equal(b!.source, '/dev/loop0');
});
