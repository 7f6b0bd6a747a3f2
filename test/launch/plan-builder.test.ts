import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StartError,
  buildPlan,
  compareComponents,
  hostnameOf,
  mountComponents,
  parseGroupFile,
  resolveInRoot,
  type PlanSettings,
} from '../../src/launch/plan-builder.js';
import { MS, encodePlan, validatePlan, type MountCall } from '../../src/launch/plan.js';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from '../../src/common/errors.js';
import { validateManifest, type Manifest } from '../../src/manifest/index.js';

/** The test container's manifest (examples/test-container/manifest.yaml) in its JSON form. */
const TEST_CONTAINER: Readonly<Record<string, unknown>> = {
  name: 'test-container',
  version: '0.0.1',
  init: '/test-container',
  uid: 1000,
  gid: 1000,
  sched: { policy: { fifo: { priority: 11 } } },
  mounts: {
    '/dev': { type: 'dev' },
    '/proc': { type: 'proc' },
    '/data': { type: 'persist' },
    '/lib': { type: 'bind', host: '/lib', options: 'nosuid,nodev' },
    '/lib64': { type: 'bind', host: '/lib64', options: 'nosuid,nodev' },
    '/system': { type: 'bind', host: '/system', options: 'nosuid,nodev' },
    '/tmpfs': { type: 'tmpfs', size: 20480000 },
    '/resource': { type: 'resource', name: 'test-resource', version: '>=0.0.1', dir: '/', options: 'nosuid,nodev,noexec' },
    '/unix-sockets': { type: 'sockets' },
  },
  rlimits: { nproc: { soft: 10000, hard: 20000 } },
  seccomp: {
    profile: 'default',
    allow: { delete_module: { args: { index: 1, values: [1], mask: 0x06 } }, clone: 'any', clone3: 'any' },
  },
  selinux: { mount_context: 'unconfined_u:object_r:user_home_t:s0', exec: 'unconfined_u:object_r:test_container_t:s0' },
  sockets: {
    datagram: { type: 'datagram', mode: 0o666, uid: 1000, gid: 1000, passcred: true },
    stream: { type: 'stream', mode: 0o666, uid: 1000, gid: 1000, passcred: true },
    'seq-packet': { type: 'seq_packet', mode: 0o666, uid: 1000, gid: 1000, passcred: true },
    no_permission: { type: 'datagram', mode: 0o000, passcred: false },
  },
};

/** The test container's manifest with `over` (JSON form; null removes a section), through the manifest parser. */
function manifest(over: Readonly<Record<string, unknown>> = {}): Manifest {
  return validateManifest({ ...TEST_CONTAINER, ...over });
}

function testContainer(): Manifest {
  return manifest();
}

/** The manifest parser refuses the test container with `over`: the one home of that rule. */
function refused(over: Readonly<Record<string, unknown>>, re: RegExp): void {
  assert.throws(() => manifest(over), (e: unknown) => e instanceof ValidationError && re.test(e.message), String(re));
}

const HOST = new Set(['/lib', '/lib64', '/run/test-resource:0.0.1', '/srv/x', '/srv/y']);

function settings(extra: Partial<PlanSettings> = {}): PlanSettings & { logged: string[] } {
  const logged: string[] = [];
  return {
    root: '/run/test-container:0.0.1',
    dataDir: '/data',
    socketDir: '/sockets',
    runDir: '/run',
    resources: { 'test-resource': 'test-resource:0.0.1' },
    exists: (p) => HOST.has(p) || HOST.has(p.replace(/\/$/, '')),
    resolveGroup: (n) => ({ src: 40, inet: 3003, audio: 29 })[n],
    log: (m) => logged.push(m),
    arch: 'x64',
    ...extra,
    logged,
  };
}

const BIND = MS.BIND;
const REMOUNT = MS.REMOUNT;
const RO = MS.RDONLY;
const NOSUID = MS.NOSUID;
const NODEV = MS.NODEV;
const NOEXEC = MS.NOEXEC;

/** The calls of a dev mount at /dev (without the final read-only remount of its tmpfs). */
function devBlock(links: boolean): MountCall[] {
  const node = (name: string): MountCall[] => [
    { source: `/dev/${name}`, target: `dev/${name}`, fstype: null, flags: 0, data: null, skipIfMissing: true, create: 'device' },
  ];
  const link = (name: string, text: string): MountCall => ({ source: text, target: `dev/${name}`, fstype: null, flags: 0, data: null, create: 'symlink' });
  return [
    // Not nodev (its nodes must work), read-only once set up (DEV_RO): no node can be added.
    { source: 'tmpfs', target: 'dev', fstype: 'tmpfs', flags: NOSUID | NOEXEC, data: 'size=65536,mode=0755' },
    ...node('full'),
    ...node('null'),
    ...node('random'),
    ...node('tty'),
    ...node('urandom'),
    ...node('zero'),
    ...(links
      ? [link('fd', '/proc/self/fd'), link('stdin', '/proc/self/fd/0'), link('stdout', '/proc/self/fd/1'), link('stderr', '/proc/self/fd/2')]
      : []),
  ];
}
const DEV_RO: MountCall = { source: null, target: 'dev', fstype: null, flags: BIND | REMOUNT | RO | NOSUID | NOEXEC, data: null };

test('the test container gives the exact upstream mount list, parents first, with /system skipped and logged', () => {
  const s = settings();
  const plan = buildPlan(testContainer(), s);
  assert.deepEqual(plan.mounts, [
    { source: '/data/test-container', target: 'data', fstype: null, flags: BIND | NODEV | NOSUID | NOEXEC, data: null },
    { source: '/data/test-container', target: 'data', fstype: null, flags: BIND | REMOUNT | NODEV | NOSUID | NOEXEC, data: null },
    ...devBlock(true),
    { source: '/lib', target: 'lib', fstype: null, flags: BIND | NOSUID | NODEV, data: null, skipIfMissing: true },
    { source: '/lib', target: 'lib', fstype: null, flags: BIND | REMOUNT | RO | NOSUID | NODEV, data: null, skipIfMissing: true },
    { source: '/lib64', target: 'lib64', fstype: null, flags: BIND | NOSUID | NODEV, data: null, skipIfMissing: true },
    { source: '/lib64', target: 'lib64', fstype: null, flags: BIND | REMOUNT | RO | NOSUID | NODEV, data: null, skipIfMissing: true },
    { source: 'proc', target: 'proc', fstype: 'proc', flags: RO | NOSUID | NOEXEC | NODEV, data: null },
    { source: '.', sourceRoot: '/run/test-resource:0.0.1', target: 'resource', fstype: null, flags: BIND | RO | NOSUID | NODEV | NOEXEC, data: null },
    { source: '.', sourceRoot: '/run/test-resource:0.0.1', target: 'resource', fstype: null, flags: BIND | REMOUNT | RO | NOSUID | NODEV | NOEXEC, data: null },
    { source: 'tmpfs', target: 'tmpfs', fstype: 'tmpfs', flags: NODEV | NOSUID | NOEXEC, data: 'size=20480000,mode=1777' },
    { source: '/sockets', target: 'unix-sockets', fstype: null, flags: BIND, data: null },
    DEV_RO,
  ]);
  assert.deepEqual(s.logged, ['test-container:0.0.1: mount /system: host path /system does not exist, skipped']);
  assert.equal(plan.container, 'test-container:0.0.1');
  assert.equal(plan.hostname, 'test-container');
  assert.equal(plan.root, '/run/test-container:0.0.1');
  assert.deepEqual(plan.network, { mode: 'new' });
  assert.equal(plan.uid, 1000);
  assert.equal(plan.gid, 1000);
  assert.deepEqual(plan.groups, []);
  assert.deepEqual(plan.rlimits, [{ resource: 'nproc', soft: 10000, hard: 20000 }]);
  assert.deepEqual(plan.sched, { policy: 'fifo', priority: 11, nice: 0 });
  assert.deepEqual(plan.capabilities, []);
  assert.equal(plan.seccomp.enabled, true);
  assert.ok(plan.seccomp.rules.some((r) => r.syscall === 'clone3' && r.kind === 'any'));
  assert.equal(plan.selinuxExec, null, 'no SELinux on the host');
  assert.equal(plan.path, '/test-container');
  assert.deepEqual(plan.argv, ['/test-container']);
  assert.deepEqual(plan.envp, ['NORTHSTAR_CONTAINER=test-container:0.0.1', 'NORTHSTAR_NAME=test-container', 'NORTHSTAR_VERSION=0.0.1']);
  assert.deepEqual(plan.sockets, ['datagram', 'no_permission', 'seq-packet', 'stream']);
  assert.equal(plan.console, false);
  assert.deepEqual(plan.cgroupProcs, []);
  assert.ok(encodePlan(plan).length > 1000, 'the plan encodes');
});

test('SELinux exec context only when the host has SELinux', () => {
  assert.equal(buildPlan(testContainer(), settings({ selinux: true })).selinuxExec, 'unconfined_u:object_r:test_container_t:s0');
  assert.equal(buildPlan(manifest({ selinux: null }), settings({ selinux: true })).selinuxExec, null);
});

test('mounts are ordered parents first by path components, whatever the map order', () => {
  const mounts = {
    '/a/b/c': { type: 'tmpfs', size: 1 },
    '/a-b': { type: 'tmpfs', size: 2 },
    '/a/b': { type: 'tmpfs', size: 3 },
    '/z': { type: 'proc' },
    '/a': { type: 'tmpfs', size: 4 },
  };
  refused({ seccomp: null, sockets: {}, mounts: { ...mounts, '/a/b/../x': { type: 'dev' } } }, /mounts\.\/a\/b\/\.\.\/x: mount point must not contain a '\.\.' component/);
  const plan = buildPlan(manifest({ seccomp: null, sockets: {}, mounts }), settings());
  assert.deepEqual(
    plan.mounts.map((c) => c.target),
    ['a', 'a/b', 'a/b/c', 'a-b', 'z'],
  );
  assert.ok(compareComponents(['a'], ['a', 'b']) < 0);
  assert.ok(compareComponents(['a', 'b'], ['a-b']) < 0);
  assert.deepEqual(mountComponents('//lib/./x/'), ['lib', 'x']);
});

test('bind flags: ro remount by default, rw without options is one call, rw with options remounts without RDONLY', () => {
  const m = manifest({
    seccomp: null,
    sockets: {},
    mounts: {
      '/ro': { type: 'bind', host: '/srv/x' },
      '/rw': { type: 'bind', host: '/srv/x', options: 'rw' },
      '/rwopts': { type: 'bind', host: '/srv/y', options: 'rw,noexec,rec' },
      '/rec': { type: 'bind', host: '/srv/y', options: ' rec , nosuid ' },
    },
  });
  assert.deepEqual(buildPlan(m, settings()).mounts, [
    { source: '/srv/y', target: 'rec', fstype: null, flags: BIND | MS.REC | NOSUID, data: null, skipIfMissing: true },
    { source: '/srv/y', target: 'rec', fstype: null, flags: BIND | REMOUNT | RO | MS.REC | NOSUID, data: null, skipIfMissing: true },
    { source: '/srv/x', target: 'ro', fstype: null, flags: BIND, data: null, skipIfMissing: true },
    { source: '/srv/x', target: 'ro', fstype: null, flags: BIND | REMOUNT | RO, data: null, skipIfMissing: true },
    { source: '/srv/x', target: 'rw', fstype: null, flags: BIND, data: null, skipIfMissing: true },
    { source: '/srv/y', target: 'rwopts', fstype: null, flags: BIND | NOEXEC | MS.REC, data: null, skipIfMissing: true },
    { source: '/srv/y', target: 'rwopts', fstype: null, flags: BIND | REMOUNT | NOEXEC | MS.REC, data: null, skipIfMissing: true },
  ]);
});

test('bad mount entries are rejected with the mount path', () => {
  // What the manifest parser lets through (its mount point rules are for binds only).
  const plan: [Record<string, unknown>, RegExp][] = [
    [{ lib: { type: 'dev' } }, /mounts\.lib: mount points must be absolute/],
    [{ '/': { type: 'tmpfs', size: 1 } }, /mounts\.\/: cannot mount over the container root/],
    [{ '/lib': { type: 'dev' }, '/lib/': { type: 'proc' } }, /duplicate mount point/],
  ];
  for (const [mounts, re] of plan) {
    const m = manifest({ sockets: {}, mounts });
    assert.throws(() => buildPlan(m, settings()), (e: unknown) => e instanceof ValidationError && re.test(e.message), String(re));
  }
  // The rest is the manifest parser's: such a manifest never reaches the builder.
  const parser: [Record<string, unknown>, RegExp][] = [
    [{ '/x': { type: 'bind', host: 'srv' } }, /mounts\.\/x\.host: must be an absolute path/],
    [{ '/x': { type: 'bind', host: '/srv/x', options: 'nosuid,ro' } }, /mounts\.\/x\.options: invalid mount option "ro"/],
    [{ '/x': { type: 'tmpfs', size: -1 } }, /mounts\.\/x\.size: must be between 0 and 18446744073709551615/],
    [{ '/x': { type: 'overlay' } }, /mounts\.\/x\.type: unknown variant "overlay"/],
    [
      { '/r': { type: 'resource', name: 'test-resource', version: '*', dir: '/', options: 'rec' } },
      /mounts\.\/r\.options: resource mounts must not be recursive \(rec\)/,
    ],
    [{ '/r': { type: 'resource', name: 'test-resource', version: '*', dir: '/../etc' } }, /mounts\.\/r\.dir: must not contain a '\.\.' component/],
    [{ '/r': { type: 'resource', name: 'test-resource', version: '*', dir: 'x' } }, /mounts\.\/r\.dir: must be an absolute path/],
  ];
  for (const [mounts, re] of parser) refused({ sockets: {}, mounts }, re);
});

test('resource mounts: forced read-only, nodev and nosuid even with rw, missing resource or dir is a start error', () => {
  const m = (dir: string, options = 'rw,nodev'): Manifest =>
    manifest({ sockets: {}, mounts: { '/message': { type: 'resource', name: 'test-resource', version: '>=0.0.1', dir, options } } });
  const plan = buildPlan(m('/'), settings({ resources: { 'test-resource': '/run/test-resource:0.0.1' } }));
  assert.deepEqual(plan.mounts.map((c) => c.flags), [BIND | RO | NODEV | NOSUID, BIND | REMOUNT | RO | NODEV | NOSUID]);
  const none = buildPlan(m('/a/./b/', ''), settings({ exists: () => true }));
  assert.deepEqual(
    none.mounts.map((c) => [c.source, c.sourceRoot, c.flags]),
    [
      ['a/b', '/run/test-resource:0.0.1', BIND | RO | NODEV | NOSUID],
      ['a/b', '/run/test-resource:0.0.1', BIND | REMOUNT | RO | NODEV | NOSUID],
    ],
    'no options: still nodev,nosuid; the dir is relative to the resource root',
  );

  const missing = (e: unknown): boolean =>
    e instanceof StartError &&
    e.variant === 'start_container_missing_resource' &&
    e.details.resource === 'test-resource' &&
    e.details.version === '>=0.0.1';
  assert.throws(() => buildPlan(m('/'), settings({ resources: {} })), missing);
  assert.throws(() => buildPlan(m('/nothing-here'), settings()), (e: unknown) => missing(e) && /directory \/nothing-here of resource test-resource does not exist/.test((e as Error).message));
  // a relative resolution without a run dir cannot be placed
  assert.throws(() => buildPlan(m('/'), settings({ runDir: undefined })), missing);
});

test('the resource dir probe follows symlinks inside the resource root only', (t) => {
  const res = mkdtempSync(join(tmpdir(), 'ns-res-'));
  t.after(() => rmSync(res, { recursive: true, force: true }));
  mkdirSync(join(res, 'inner'));
  symlinkSync('/inner', join(res, 'abs'));
  symlinkSync('../../../inner', join(res, 'up'));
  symlinkSync('/etc', join(res, 'host'));
  symlinkSync('loop', join(res, 'loop'));
  assert.equal(resolveInRoot(res, ''), res);
  assert.equal(resolveInRoot(res, 'abs'), join(res, 'inner'));
  assert.equal(resolveInRoot(res, 'up/x'), join(res, 'inner', 'x'));
  assert.equal(resolveInRoot(res, 'host/passwd'), join(res, 'etc', 'passwd'), 'never the host /etc');
  assert.equal(resolveInRoot(res, '../../etc'), join(res, 'etc'));
  assert.equal(resolveInRoot(res, 'loop'), join(res, 'loop'), 'a loop ends the walk (the core reports ELOOP)');
  const m = manifest({ sockets: {}, mounts: { '/r': { type: 'resource', name: 'test-resource', version: '*', dir: '/host' } } });
  assert.throws(
    () => buildPlan(m, settings({ resources: { 'test-resource': res }, exists: existsSync })),
    (e: unknown) => e instanceof StartError && e.variant === 'start_container_missing_resource' && /directory \/host of resource test-resource does not exist/.test(e.message),
  );
});

test('dev mounts: a read-only tmpfs with the host nodes made in it, links with /proc, mount points below it created', () => {
  const m = manifest({
    seccomp: null,
    sockets: {},
    mounts: {
      '/dev': { type: 'dev' },
      '/dev/shm': { type: 'tmpfs', size: 4096 },
      '/dev/bus/usb': { type: 'bind', host: '/srv/x', options: 'rw' },
      '/dev/ttyUSB0': { type: 'bind', host: '/srv/y', options: 'rw' },
      '/dev/gone': { type: 'bind', host: '/srv/none' },
    },
  });
  const plan = buildPlan(m, settings({ isDirectory: (p) => p === '/srv/x' }));
  assert.deepEqual(plan.mounts, [
    ...devBlock(false),
    { source: null, target: 'dev/bus', fstype: null, flags: 0, data: null, create: 'dir' },
    { source: '/srv/x', target: 'dev/bus/usb', fstype: null, flags: BIND, data: null, skipIfMissing: true, create: 'dir' },
    { source: 'tmpfs', target: 'dev/shm', fstype: 'tmpfs', flags: NODEV | NOSUID | NOEXEC, data: 'size=4096,mode=1777', create: 'dir' },
    { source: '/srv/y', target: 'dev/ttyUSB0', fstype: null, flags: BIND, data: null, skipIfMissing: true, create: 'file' },
    DEV_RO,
  ]);
  assert.ok(encodePlan(plan).length > 0, 'the plan encodes');
});

test('network: new netns by default, host, or a named netns under the netns dir', () => {
  const base = (network?: unknown): Manifest => manifest({ sockets: {}, ...(network === undefined ? {} : { network }) });
  assert.deepEqual(buildPlan(base(), settings()).network, { mode: 'new' });
  assert.deepEqual(buildPlan(base('host'), settings()).network, { mode: 'host' });
  assert.deepEqual(buildPlan(base({ namespace: 'container' }), settings()).network, {
    mode: 'join',
    path: '/var/run/netns/container',
  });
  assert.deepEqual(buildPlan(base({ namespace: 'x' }), settings({ netnsDir: '/run/netns' })).network, {
    mode: 'join',
    path: '/run/netns/x',
  });
  for (const ns of ['..', 'a/b', '']) refused({ sockets: {}, network: { namespace: ns } }, /network\.namespace: must not/);
  refused({ sockets: {}, network: 'bridge' }, /network: unknown variant "bridge"/);
});

test('scheduling: other/batch with nice, fifo and round_robin 1..99, idle; deadline rejected clearly', () => {
  const sched = (policy: unknown) => buildPlan(manifest({ sockets: {}, sched: { policy } }), settings()).sched;
  const refusedSched = (policy: unknown, re: RegExp) => refused({ sockets: {}, sched: { policy } }, re);
  assert.deepEqual(sched({ other: { nice: -5 } }), { policy: 'other', priority: 0, nice: -5 });
  assert.deepEqual(sched({ batch: { nice: 19 } }), { policy: 'batch', priority: 0, nice: 19 });
  assert.deepEqual(sched({ fifo: { priority: 99 } }), { policy: 'fifo', priority: 99, nice: 0 });
  assert.deepEqual(sched({ round_robin: { priority: 1 } }), { policy: 'round_robin', priority: 1, nice: 0 });
  assert.deepEqual(sched({ round_robin: { priority: 50 } }), { policy: 'round_robin', priority: 50, nice: 0 });
  assert.deepEqual(sched('idle'), { policy: 'idle', priority: 0, nice: 0 });
  // The tagged form of a unit variant is the manifest parser's to refuse (it names the string form).
  refusedSched({ idle: null }, /sched\.policy: unit variant idle is written as the string "idle"/);
  assert.equal(buildPlan(manifest({ sockets: {}, sched: null }), settings()).sched, null);
  refusedSched({ round_robin: { priority: 0 } }, /sched\.policy\.round_robin\.priority: priority must be between 1 and 99/);
  refusedSched({ fifo: { priority: 100 } }, /sched\.policy\.fifo\.priority: priority must be between 1 and 99/);
  refusedSched({ other: { nice: 20 } }, /sched\.policy\.other\.nice: nice must be between -20 and 19/);
  refusedSched('deadline', /sched\.policy: deadline scheduling is not supported/);
  refusedSched({ fair: {} }, /sched\.policy: unknown variant "fair"/);
});

test('rlimits: missing values mean infinity, 64-bit values stay exact, bad ones are named', () => {
  const rl = (rlimits: unknown): Manifest => manifest({ sockets: {}, rlimits });
  const plan = buildPlan(rl({ nofile: { soft: 64, hard: 1024 }, core: {}, stack: { soft: 8388608 }, as: { soft: 2n ** 63n, hard: 2n ** 64n - 1n } }), settings());
  assert.deepEqual(plan.rlimits, [
    { resource: 'stack', soft: 8388608, hard: 'infinity' },
    { resource: 'core', soft: 'infinity', hard: 'infinity' },
    { resource: 'nofile', soft: 64, hard: 1024 },
    { resource: 'as', soft: 2n ** 63n, hard: 2n ** 64n - 1n },
  ]);
  refused({ sockets: {}, rlimits: { files: { soft: 1 } } }, /rlimits\.files: unknown key/);
  assert.throws(() => buildPlan(rl({ nproc: { soft: 10, hard: 5 } }), settings()), /rlimits\.nproc: the soft limit must not exceed the hard limit/);
  assert.throws(() => buildPlan(rl({ nproc: { hard: 5 } }), settings()), /rlimits\.nproc: the soft limit/);
  refused({ sockets: {}, rlimits: { nproc: { soft: -1 } } }, /rlimits\.nproc\.soft: must be between 0 and 18446744073709551615/);
});

test('capabilities become sorted numbers; unknown or duplicate names are rejected', () => {
  const plan = buildPlan(manifest({ sockets: {}, capabilities: ['CAP_SYS_ADMIN', 'CAP_CHOWN', 'CAP_CHECKPOINT_RESTORE'] }), settings());
  assert.deepEqual(plan.capabilities, [0, 21, 40]);
  assert.ok(plan.seccomp.rules.some((r) => r.syscall === 'mount'), 'the profile follows the capabilities');
  refused({ sockets: {}, capabilities: ['CAP_SYS_MKNOD'] }, /capabilities\[0\]: unknown variant "CAP_SYS_MKNOD"/);
  refused({ sockets: {}, capabilities: ['CAP_KILL', 'CAP_KILL'] }, /capabilities\[1\]: duplicate value CAP_KILL/);
});

test('supplementary groups resolve through the resolver; unknown ones are skipped and logged', () => {
  const s = settings();
  const plan = buildPlan(manifest({ sockets: {}, suppl_groups: ['src', 'nosuchgroup', 'inet'] }), s);
  assert.deepEqual(plan.groups, [40, 3003]);
  assert.ok(s.logged.some((l) => /supplementary group nosuchgroup does not exist on the host, skipped/.test(l)));
  const groups = parseGroupFile('root:x:0:\n# comment\nsrc:x:40:\nbroken\ninet:x:3003:a,b\nsrc:x:41:\n');
  assert.deepEqual([...groups], [['root', 0], ['src', 40], ['inet', 3003]]);
});

test('argv and env: request args and env replace the manifest ones, init override with <INIT>', () => {
  const m = manifest({ sockets: {}, args: ['inspect'], env: { A: '1', B: 'two words' } });
  let plan = buildPlan(m, settings());
  assert.deepEqual(plan.argv, ['/test-container', 'inspect']);
  assert.deepEqual(plan.envp.slice(0, 2), ['A=1', 'B=two words']);
  assert.equal(plan.envp.length, 5);

  plan = buildPlan(m, settings({ args: ['exit', '10'], env: { C: '3' } }));
  assert.deepEqual(plan.argv, ['/test-container', 'exit', '10']);
  assert.deepEqual(plan.envp, ['C=3', 'NORTHSTAR_CONTAINER=test-container:0.0.1', 'NORTHSTAR_NAME=test-container', 'NORTHSTAR_VERSION=0.0.1']);

  plan = buildPlan(m, settings({ args: [], env: {} }));
  assert.deepEqual(plan.argv, ['/test-container', 'inspect'], 'empty request args keep the manifest args');

  plan = buildPlan(m, settings({ init: '<INIT>.debug' }));
  assert.equal(plan.path, '/test-container.debug');
  assert.deepEqual(plan.argv, ['/test-container.debug', 'inspect']);

  assert.throws(
    () => buildPlan(m, settings({ env: { NORTHSTAR_NAME: 'x' } })),
    (e: unknown) => e instanceof StartError && e.variant === 'invalid_arguments' && /reserved key/.test(e.message),
  );
  // In the manifest, a reserved name is the manifest parser's to refuse.
  refused({ sockets: {}, env: { NORTHSTAR_NAME: 'x' } }, /env\.NORTHSTAR_NAME: reserved environment variable/);
  // A name the kernel cannot take as NAME=value, from the request or the manifest.
  assert.throws(() => buildPlan(m, settings({ env: { 'A=B': 'x' } })), /env\.A=B: names must be non-empty without = or nul/);
  assert.throws(() => buildPlan(manifest({ sockets: {}, env: { '': 'x' } }), settings()), /env\.: names must be non-empty/);
});

test('a resource container starts only with an init from the request', () => {
  const resource = validateManifest({ name: 'ferris', version: '0.0.1', uid: 1000, gid: 1000 });
  assert.throws(
    () => buildPlan(resource, settings()),
    (e: unknown) => e instanceof StartError && e.variant === 'start_container_resource' && /ferris:0\.0\.1 has no init/.test(e.message),
  );
  const plan = buildPlan(resource, settings({ init: '/bin/ferris', args: ['/message/hello'] }));
  assert.equal(plan.path, '/bin/ferris');
  assert.deepEqual(plan.argv, ['/bin/ferris', '/message/hello']);
  assert.equal(plan.seccomp.enabled, false);
  assert.deepEqual(plan.mounts, []);
});

test('sockets: handed-over names must match the manifest; console needs a console section', () => {
  const m = testContainer();
  assert.deepEqual(buildPlan(m, settings({ sockets: ['stream', 'datagram', 'seq-packet', 'no_permission'] })).sockets, [
    'stream',
    'datagram',
    'seq-packet',
    'no_permission',
  ]);
  assert.throws(() => buildPlan(m, settings({ sockets: ['stream'] })), /sockets\.datagram: declared in the manifest but no fd is handed over/);
  assert.throws(() => buildPlan(manifest({ sockets: {} }), settings({ sockets: ['x'] })), /sockets\.x: a socket fd is handed over/);
  assert.throws(() => buildPlan(m, settings({ console: true })), /console: a console fd is handed over but the manifest has no console section/);
  const plan = buildPlan(manifest({ console: { permissions: 'full' } }), settings({ console: true, cgroupProcs: ['/sys/fs/cgroup/memory/ns/x/cgroup.procs'] }));
  assert.equal(plan.console, true);
  assert.deepEqual(plan.cgroupProcs, ['/sys/fs/cgroup/memory/ns/x/cgroup.procs']);
});

test('ids and settings are checked', () => {
  refused({ sockets: {}, uid: 0 }, /uid: must be at least 1/);
  refused({ sockets: {}, gid: 70000 }, /gid: must be at most 65535/);
  const m = manifest({ sockets: {} });
  assert.throws(() => buildPlan(m, settings({ root: 'relative' })), /settings\.root: must be an absolute path/);
});

test('the hostname is the name cut to 64 bytes', () => {
  assert.equal(hostnameOf('a'.repeat(100)), 'a'.repeat(64));
  const plan = buildPlan(manifest({ sockets: {}, name: 'n'.repeat(100) }), settings());
  assert.equal(plan.hostname, 'n'.repeat(64));
  assert.equal(plan.container, `${'n'.repeat(100)}:0.0.1`);
});

test('the plan is checked once, by encodePlan at the boundary to the core, not by the builder', () => {
  // A valid manifest name (up to 1024 bytes) longer than a plan's container (255 bytes).
  const plan = buildPlan(manifest({ sockets: {}, name: 'n'.repeat(300) }), settings());
  const tooLong = (e: unknown): boolean => e instanceof ValidationError && /container: must be at most 255 bytes/.test(e.message);
  assert.throws(() => validatePlan(plan), tooLong);
  assert.throws(() => encodePlan(plan), tooLong);
});

test('the manifest model from parseManifest feeds the builder (examples/test-container/manifest.yaml)', async () => {
  const { parseManifest } = await import('../../src/manifest/index.js');
  const { readFileSync } = await import('node:fs');
  const yaml = readFileSync(new URL('../../../examples/test-container/manifest.yaml', import.meta.url), 'utf8');
  const manifest = parseManifest(yaml);
  const fromModel = buildPlan(manifest, settings());
  const fromJson = buildPlan(testContainer(), settings());
  assert.deepEqual(fromModel, fromJson);
});
