import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { MemoryNotification } from '../../src/api/model.js';
import { NorthstarError } from '../../src/common/errors.js';
import { parseManifest } from '../../src/manifest/index.js';
import {
  CgroupManager, cgroupWrites, createCgroups, detectCgroupLayout, resolveCgroupPath, CGROUP2_SUPER_MAGIC,
} from '../../src/runtime/cgroups/index.js';
import { tempDir, isRoot } from '../helpers/tmp.js';
import { recordingLog } from './npk-fixture.js';
import { mountCgroup2 } from '../helpers/cgroup.js';

function manifestWith(cgroups: string) {
  return parseManifest(`name: hello\nversion: 0.0.1\ninit: /bin/hello\nuid: 1000\ngid: 1000\ncgroups:\n${cgroups}`);
}

const FULL = manifestWith(`  memory:
    memory_hard_limit: 100000000
    memory_soft_limit: 50000000
    kernel_memory_limit: 1000
    kernel_tcp_memory_limit: 2000
    memory_swap_limit: -1
    swappiness: 10
    oom_monitor: true
    attrs:
      memory.high: "90000000"
  cpu:
    shares: 512
    period: 100000
    quota: 50000
    cpus: "0"
  blkio:
    weight: 300
    leaf_weight: 200
    weight_device:
      - { major: 8, minor: 0, weight: 100, leaf_weight: 50 }
    throttle_read_bps_device:
      - { major: 8, minor: 0, rate: 1048576 }
    throttle_write_iops_device:
      - { major: 8, minor: 16, rate: 100 }
    throttle_read_iops_device: []
    throttle_write_bps_device: []
`);

test('settings map to the v1 files of the spec table', () => {
  const plan = cgroupWrites(FULL.cgroups, 1);
  assert.deepEqual(plan.writes.map((w) => `${w.controller} ${w.file}=${w.value} ${w.onError}`), [
    'memory memory.limit_in_bytes=100000000 ignore',
    'memory memory.soft_limit_in_bytes=50000000 ignore',
    'memory memory.kmem.limit_in_bytes=1000 ignore',
    'memory memory.kmem.tcp.limit_in_bytes=2000 ignore',
    'memory memory.memsw.limit_in_bytes=-1 ignore',
    'memory memory.swappiness=10 ignore',
    'memory memory.high=90000000 ignore',
    'cpu cpu.shares=512 verify',
    'cpu cpu.cfs_period_us=100000 verify',
    'cpu cpu.cfs_quota_us=50000 verify',
    'blkio blkio.weight=300 ignore',
    'blkio blkio.leaf_weight=200 ignore',
    'blkio blkio.weight_device=8:0 100 ignore',
    'blkio blkio.leaf_weight_device=8:0 50 ignore',
    'blkio blkio.throttle.read_bps_device=8:0 1048576 ignore',
    'blkio blkio.throttle.write_iops_device=8:16 100 ignore',
  ]);
  assert.deepEqual(plan.skipped, ['cpu.cpus']);
});

test('settings map to the v2 files of the spec table', () => {
  const plan = cgroupWrites(FULL.cgroups, 2);
  assert.deepEqual(plan.writes.map((w) => `${w.controller} ${w.file}=${w.value}${w.merge ? ` (${w.merge})` : ''}`), [
    'memory memory.max=100000000',
    'memory memory.low=50000000',
    'memory memory.swap.max=max',
    'memory memory.high=90000000',
    'cpu cpu.weight=512',
    'cpu cpu.max=100000 (cpu.max.period)',
    'cpu cpu.max=50000 (cpu.max.quota)',
    'io io.bfq.weight=300',
    'io io.bfq.weight=8:0 100',
    'io io.max=8:0 rbps=1048576',
    'io io.max=8:16 wiops=100',
  ]);
  assert.deepEqual(plan.skipped, [
    'memory.kernel_memory_limit', 'memory.kernel_tcp_memory_limit', 'memory.swappiness', 'cpu.cpus', 'blkio.leaf_weight', 'blkio.weight_device.leaf_weight',
  ]);
  const neg = cgroupWrites(manifestWith('  memory:\n    memory_hard_limit: -1\n  cpu:\n    quota: -1\n').cgroups, 2);
  assert.deepEqual(neg.writes.map((w) => `${w.file}=${w.value}`), ['memory.max=max', 'cpu.max=max']);
  assert.deepEqual(cgroupWrites(undefined, 1), { writes: [], skipped: [] });
  // The manifest parser refuses such a name; a manifest built past it is still safe here.
  const cg = manifestWith('  memory:\n    attrs:\n      ok.file: "2"\n').cgroups!;
  const unsafe = cgroupWrites({ ...cg, memory: { ...cg.memory!, attrs: { '../escape': '1', ...cg.memory!.attrs } } }, 1);
  assert.deepEqual(unsafe.writes.map((w) => w.file), ['ok.file'], 'attrs names with a slash are never written');
});

test('detection: v1 from mountinfo (cpu,cpuacct co-mounted, sub-tree mounts), v2 from the fs magic', async () => {
  const mountinfo = [
    '31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw',
    '32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
    '35 31 0:32 /outer /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
    '36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids',
    '41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
  ].join('\n');
  const self = '4:memory:/outer/svc\n2:cpu,cpuacct:/svc\n8:pids:/\n0::/\n';
  const v1 = await detectCgroupLayout({ mountinfo, selfCgroup: self, fsMagic: 0x01021994 });
  assert.deepEqual(v1, {
    version: 1,
    mounts: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
    own: { cpu: '/svc', cpuacct: '/svc', memory: '/svc', pids: '/' },
  });
  const v2 = await detectCgroupLayout({ root: '/sys/fs/cgroup', selfCgroup: '0::/system.slice/northstar.service\n', fsMagic: CGROUP2_SUPER_MAGIC });
  assert.deepEqual(v2, { version: 2, root: '/sys/fs/cgroup', own: '/system.slice/northstar.service' });
  await assert.rejects(detectCgroupLayout({ mountinfo: '', selfCgroup: '', fsMagic: 1 }), (e: unknown) => e instanceof NorthstarError && e.code === 'ECGROUP');
  // This machine.
  const here = await detectCgroupLayout();
  assert.ok(here.version === 1 || here.version === 2);
});

test('cgroup paths: relative below the own cgroup, absolute from the root, no escape', () => {
  assert.equal(resolveCgroupPath('/svc', 'northstar', 'cgroup'), '/svc/northstar');
  assert.equal(resolveCgroupPath('/svc', 'a/b/', 'cgroup'), '/svc/a/b');
  assert.equal(resolveCgroupPath('/svc', '/northstar', 'cgroup'), '/northstar');
  assert.equal(resolveCgroupPath('/', 'northstar', 'cgroup'), '/northstar');
  assert.throws(() => resolveCgroupPath('/svc', '../../etc', 'cgroups.parent'), /cgroups\.parent: "\.\.\/\.\.\/etc" must not contain/);
  assert.throws(() => resolveCgroupPath('/svc', '/a/./b', 'cgroup'), /must not contain/);
});

// ---------------------------------------------------------------------------------------
// cgroup v1 for real (this machine has memory and cpu on v1)

const v1Layout = await detectCgroupLayout().catch(() => undefined);
const V1 = isRoot && v1Layout?.version === 1 && v1Layout.mounts.memory && v1Layout.mounts.cpu ? false : 'needs root and cgroup v1 memory and cpu hierarchies';

function spawnSleeper(t: { after(fn: () => void): void }): ChildProcess {
  const p = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => p.kill('SIGKILL'));
  return p;
}

test('v1: top level and container cgroups, limits written, a process joins, statistics, leftover tasks killed, removal', { skip: V1 }, async (t) => {
  const name = `ns-test-${randomBytes(4).toString('hex')}`;
  const log = recordingLog();
  const cg = await createCgroups({ cgroup: name }, log);
  t.after(() => cg.shutdown());
  assert.equal(cg.version, 1);
  const L = cg.layout as Extract<typeof cg.layout, { version: 1 }>;
  const memTop = join(L.mounts.memory!, L.own.memory!, name);
  const cpuTop = join(L.mounts.cpu!, L.own.cpu!, name);
  assert.ok(existsSync(memTop) && existsSync(cpuTop));

  const m = manifestWith('  memory:\n    memory_hard_limit: 67108864\n    swappiness: 0\n  cpu:\n    shares: 512\n    period: 100000\n    quota: 50000\n'
    + '  blkio:\n    weight_device: []\n    throttle_read_bps_device:\n      - { major: 7, minor: 0, rate: 1048576 }\n    throttle_write_iops_device:\n      - { major: 7, minor: 0, rate: 100 }\n    throttle_read_iops_device: []\n    throttle_write_bps_device: []\n');
  const c = await cg.create('hello', m);
  const memDir = join(memTop, 'hello');
  const cpuDir = join(cpuTop, 'hello');
  assert.ok(c.procs.includes(join(memDir, 'cgroup.procs')), c.procs.join(' '));
  assert.ok(c.procs.includes(join(cpuDir, 'cgroup.procs')));
  assert.equal(new Set(c.procs).size, c.procs.length, 'each hierarchy once');
  assert.equal(readFileSync(join(memDir, 'memory.limit_in_bytes'), 'utf8').trim(), '67108864');
  assert.equal(readFileSync(join(cpuDir, 'cpu.shares'), 'utf8').trim(), '512');
  assert.equal(readFileSync(join(cpuDir, 'cpu.cfs_quota_us'), 'utf8').trim(), '50000');
  assert.equal(readFileSync(join(cpuDir, 'cpu.cfs_period_us'), 'utf8').trim(), '100000');
  if (L.mounts.blkio) {
    const blkDir = join(L.mounts.blkio, L.own.blkio!, name, 'hello');
    assert.equal(readFileSync(join(blkDir, 'blkio.throttle.read_bps_device'), 'utf8').trim(), '7:0 1048576');
    assert.equal(readFileSync(join(blkDir, 'blkio.throttle.write_iops_device'), 'utf8').trim(), '7:0 100');
  }

  const sleeper = spawnSleeper(t);
  await once(sleeper, 'spawn');
  for (const f of c.procs) writeFileSync(f, String(sleeper.pid));
  assert.deepEqual(await c.pids(), [sleeper.pid]);
  const stats = await c.statistics();
  assert.equal(stats.memory.memory['limit_in_bytes'], 67108864);
  assert.equal(typeof stats.memory.memory['usage_in_bytes'], 'number');
  assert.equal(typeof (stats.memory.memory['stat'] as Record<string, unknown>)['rss'], 'number');
  assert.equal(stats.cpu['shares'], 512);
  assert.equal(typeof stats.cpu['usage'], 'number');
  assert.ok('memory' in stats && 'cpu' in stats && 'blkio' in stats);
  assert.equal(typeof JSON.stringify(stats, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)), 'string');

  await assert.rejects(cg.create('hello', m), /exists already/);
  const exited = once(sleeper, 'exit');
  await c.destroy();
  const [, signal] = (await exited) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL', 'the leftover task was killed');
  assert.ok(!existsSync(memDir) && !existsSync(cpuDir));
  assert.ok(log.lines.some((l) => l.level === 'warn' && /killing 1 leftover task/.test(l.msg)));
  await c.destroy(); // idempotent

  // A manifest parent: relative = below the runtime's own cgroup.
  const p = await cg.create('child', manifestWith(`  parent: ${name}/sub\n`));
  assert.ok(existsSync(join(memTop, 'sub', 'child')));
  await p.destroy();
  await cg.shutdown();
  assert.ok(!existsSync(memTop) && !existsSync(cpuTop), 'top level removed at shutdown');
});

test('v1: a cpu value the kernel refuses fails the create and leaves no cgroup', { skip: V1 }, async (t) => {
  const name = `ns-test-${randomBytes(4).toString('hex')}`;
  const cg = await createCgroups({ cgroup: name }, recordingLog());
  t.after(() => cg.shutdown());
  const L = cg.layout as Extract<typeof cg.layout, { version: 1 }>;
  await assert.rejects(cg.create('bad', manifestWith('  cpu:\n    quota: 500\n')), (e: unknown) => {
    assert.ok(e instanceof NorthstarError);
    assert.equal(e.code, 'ECGROUP');
    assert.match(e.message, /bad: cgroup .*cpu\.cfs_quota_us = "500": /);
    return true;
  });
  assert.deepEqual(readdirSync(join(L.mounts.memory!, L.own.memory!, name), { withFileTypes: true }).filter((f) => f.isDirectory()).map((f) => f.name), []);
  assert.ok(!existsSync(join(L.mounts.cpu!, L.own.cpu!, name, 'bad')));
  // A memory value the kernel refuses is only logged (like upstream).
  const log = recordingLog();
  const cg2 = await CgroupManager.open({ name: `${name}-2`, log });
  t.after(() => cg2.shutdown());
  const ok = await cg2.create('mem', manifestWith('  memory:\n    memory_soft_limit: -5\n    swappiness: 1000\n'));
  assert.ok(log.lines.some((l) => l.level === 'warn' && /memory\.swappiness/.test(l.msg)), JSON.stringify(log.lines));
  await ok.destroy();
});

test('v1: the OOM monitor reports an OOM kill of a real allocation in a memory-limited cgroup', { skip: V1 }, async (t) => {
  const name = `ns-test-${randomBytes(4).toString('hex')}`;
  const cg = await createCgroups({ cgroup: name }, recordingLog(), { oomPollInterval: 20 });
  t.after(() => cg.shutdown());
  const events: MemoryNotification[] = [];
  let resolve!: () => void;
  const got = new Promise<void>((r) => (resolve = r));
  const c = await cg.create('eater', manifestWith('  memory:\n    memory_hard_limit: 33554432\n    oom_monitor: true\n'), (e) => {
    events.push(e);
    resolve();
  });
  const mem = c.procs.find((p) => p.includes('/memory/'))!;
  // The shell joins the cgroup, then tail buffers one endless line until the OOM killer comes.
  const eater = spawn('sh', ['-c', `echo $$ > ${mem}; head -c 400000000 /dev/zero | tail -n 1 > /dev/null`], { stdio: 'ignore' });
  t.after(() => eater.kill('SIGKILL'));
  await once(eater, 'exit');
  await got;
  assert.equal(events[0]!.oom, 1n);
  assert.ok(events[0]!.oom_kill !== null && events[0]!.oom_kill >= 1n);
  assert.deepEqual([events[0]!.low, events[0]!.high, events[0]!.max], [null, null, null]);
  const stats = await c.statistics();
  assert.ok(Number(stats.memory.memory['oom_kill']) >= 1);
  await c.destroy();
});

// ---------------------------------------------------------------------------------------
// cgroup v2: a faithful directory layout, and for real where a cgroup2 hierarchy mounts

function fakeV2(dir: string): string {
  const root = join(dir, 'cgroup');
  mkdirSync(join(root, 'svc'), { recursive: true });
  writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids\n');
  writeFileSync(join(root, 'cgroup.subtree_control'), '');
  writeFileSync(join(root, 'svc', 'cgroup.controllers'), 'cpu io memory pids\n');
  writeFileSync(join(root, 'svc', 'cgroup.subtree_control'), '');
  return root;
}

/**
 * What the kernel does on rmdir of a cgroup: its interface files go with it. In the
 * directory layout they are plain files, so the test removes them before the manager's
 * rmdir (the manager itself only ever rmdirs, as on a real hierarchy).
 */
function dropInterfaceFiles(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isFile()) rmSync(join(dir, e.name));
}

test('v2 (directory layout): controllers enabled on the way down, v2 files written, cpu.max merged, memory.events watched', async (t) => {
  const tmp = tempDir(t);
  const root = fakeV2(tmp);
  const log = recordingLog();
  const cg = await CgroupManager.open({ name: 'northstar', log, layout: { version: 2, root, own: '/svc' } });
  assert.equal(cg.top, '/svc/northstar');
  assert.equal(readFileSync(join(root, 'svc', 'cgroup.subtree_control'), 'utf8'), '+pids', 'the last of +cpu +io +memory +pids (each a separate write)');
  assert.ok(existsSync(join(root, 'svc', 'northstar')));
  const dir = join(root, 'svc', 'northstar', 'hello');
  mkdirSync(dir);
  writeFileSync(join(dir, 'cpu.max'), 'max 100000\n');
  writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n');
  const events: MemoryNotification[] = [];
  let resolve!: () => void;
  const got = new Promise<void>((r) => (resolve = r));
  const c = await cg.create('hello', manifestWith('  memory:\n    memory_hard_limit: -1\n    memory_soft_limit: 1000\n    oom_monitor: true\n  cpu:\n    shares: 100\n    quota: 20000\n    period: 50000\n'), (e) => {
    events.push(e);
    resolve();
  });
  assert.deepEqual(c.procs, [join(dir, 'cgroup.procs')]);
  assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), 'max');
  assert.equal(readFileSync(join(dir, 'memory.low'), 'utf8'), '1000');
  assert.equal(readFileSync(join(dir, 'cpu.weight'), 'utf8'), '100');
  assert.equal(readFileSync(join(dir, 'cpu.max'), 'utf8'), '20000 50000', 'period then quota, read-modify-write');
  writeFileSync(join(dir, 'memory.events'), 'low 0\nhigh 2\nmax 5\noom 1\noom_kill 1\noom_group_kill 0\n');
  await got;
  assert.deepEqual(events.at(-1), { low: 0n, high: 2n, max: 5n, oom: 1n, oom_kill: 1n });
  writeFileSync(join(dir, 'memory.current'), '12345\n');
  writeFileSync(join(dir, 'memory.stat'), 'anon 100\nkernel 20\nsock 3\n');
  writeFileSync(join(dir, 'cpu.stat'), 'usage_usec 77\n');
  const stats = await c.statistics();
  assert.equal(stats.memory.memory['current'], 12345);
  assert.equal(stats.memory.memory['max'], 'max');
  assert.deepEqual(stats.memory.kmem, { usage: 20 });
  assert.deepEqual(stats.memory.kmem_tcp, { usage: 3 });
  assert.deepEqual(stats.cpu['stat'], { usage_usec: 77 });
  dropInterfaceFiles(dir);
  await c.destroy();
  assert.ok(!existsSync(dir));
  dropInterfaceFiles(join(root, 'svc', 'northstar'));
  await cg.shutdown();
  assert.ok(!existsSync(join(root, 'svc', 'northstar')));
  assert.ok(existsSync(join(root, 'svc')), 'the runtime\'s own cgroup is never removed');
});

/** A manager on a cgroup2 hierarchy mounted for this test (null: skipped), shut down after it. */
async function v2Manager(t: TestContext) {
  const m2 = mountCgroup2(t);
  if (!m2) return null;
  const name = `ns-test-${randomBytes(4).toString('hex')}`;
  const cg = await CgroupManager.open({ name, log: recordingLog(), layout: { version: 2, root: m2.mnt, own: m2.own } });
  m2.undo.push(() => cg.shutdown());
  return { ...m2, name, cg };
}

test('v2 for real: a cgroup2 hierarchy mounted in a temp dir; create, join, cgroup.kill of leftovers, removal', { skip: isRoot ? false : 'needs root to mount cgroup2' }, async (t) => {
  const v2 = await v2Manager(t);
  if (!v2) return;
  const { mnt, own, undo, name, cg } = v2;
  const c = await cg.create('hello', manifestWith('  memory:\n    memory_hard_limit: 67108864\n'));
  const dir = join(mnt, own, name, 'hello');
  assert.deepEqual(c.procs, [join(dir, 'cgroup.procs')]);
  assert.ok(existsSync(join(dir, 'cgroup.procs')), 'a real cgroup directory');
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  undo.push(() => sleeper.kill('SIGKILL'));
  await once(sleeper, 'spawn');
  writeFileSync(c.procs[0]!, String(sleeper.pid));
  assert.deepEqual(await c.pids(), [sleeper.pid]);
  assert.match(readFileSync(`/proc/${sleeper.pid}/cgroup`, 'utf8'), new RegExp(`^0::${own === '/' ? '' : own}/${name}/hello$`, 'm'));
  const exited = once(sleeper, 'exit');
  await c.destroy();
  assert.equal(((await exited) as [number | null, string | null])[1], 'SIGKILL');
  assert.ok(!existsSync(dir));
  await cg.shutdown();
  assert.ok(!existsSync(join(mnt, own, name)));
});

test('prepared cgroups (cgroup2 mounted in a temp dir): taken by a create with the same settings, made anew for other ones; release before a removal that a create waits for; discard and shutdown remove them', { skip: isRoot ? false : 'needs root to mount cgroup2' }, async (t) => {
  const v2 = await v2Manager(t);
  if (!v2) return;
  const { mnt, own, undo, name, cg } = v2;
  const dir = join(mnt, own, name, 'hello');
  const ino = (): number | undefined => (existsSync(dir) ? Number(execFileSync('stat', ['-c', '%i', dir], { encoding: 'utf8' })) : undefined);
  const one = manifestWith('  memory:\n    memory_hard_limit: 67108864\n');
  const two = manifestWith('  memory:\n    memory_hard_limit: 33554432\n');

  cg.prepare('hello', one);
  // A create queued behind the preparation takes its directory.
  const c1 = await cg.create('hello', one);
  assert.equal(cg.hasPrepared('hello'), false);
  const first = ino();
  assert.ok(first !== undefined);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  undo.push(() => sleeper.kill('SIGKILL'));
  await once(sleeper, 'spawn');
  writeFileSync(c1.procs[0]!, String(sleeper.pid));
  const exited = once(sleeper, 'exit');
  // release: resolves once no task is left; the directory goes afterwards.
  await c1.release!();
  assert.equal(((await exited) as [number | null, string | null])[1], 'SIGKILL');
  assert.deepEqual(await c1.pids(), []);
  // The next create of the name waits for that removal: a new directory.
  cg.prepare('hello', one);
  const c2 = await cg.create('hello', one);
  const second = ino();
  assert.ok(second !== undefined && second !== first, 'a new cgroup after the release');
  await c2.destroy();
  assert.ok(!existsSync(dir));

  // Prepared for other settings: not used, made anew.
  cg.prepare('hello', one);
  await cg.serial('hello', async () => undefined);
  assert.equal(cg.hasPrepared('hello'), true);
  const prepared = ino();
  const c3 = await cg.create('hello', two);
  const third = ino();
  assert.ok(prepared !== undefined && third !== undefined && third !== prepared, 'the cgroup prepared for other settings was replaced');
  cg.prepare('hello', two); // the name is live: nothing is prepared
  await cg.serial('hello', async () => undefined);
  assert.equal(cg.hasPrepared('hello'), false);
  await c3.destroy();
  assert.ok(!existsSync(dir));

  // discard removes a prepared cgroup; shutdown removes one too.
  cg.prepare('hello', one);
  await cg.discard('hello');
  assert.ok(!existsSync(dir), 'discarded');
  cg.prepare('hello', one);
  await cg.shutdown();
  assert.ok(!existsSync(join(mnt, own, name)), 'shutdown removed the prepared cgroup and the top level');
});
