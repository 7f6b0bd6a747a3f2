/**
 * The launch core with real containers (root): exit statuses, process tree, namespaces,
 * ids, capabilities, rlimits, fds, failures and cleanup. Roots are busybox in a temp dir.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, closeSync, readlinkSync, readFileSync, rmdirSync, symlinkSync, mkdirSync, writeFileSync, openSync as open2 } from 'node:fs';
import { join } from 'node:path';
import { Launcher, LaunchError } from '../../src/launch/launcher.js';
import { ValidationError } from '../../src/common/errors.js';
import { buildCore, collect, containerPids, fdCount, makeRoot, run, shPlan, skipReason, uniqueName, PROC_MOUNT } from './core-fixture.js';

const skip = skipReason();
const launcher = new Launcher();

before(() => {
  if (!skip) buildCore();
});

/** Parse "Key:\tvalue" lines of /proc/<pid>/status printed by the container. */
function statusField(out: string, key: string): string {
  const line = out.split('\n').find((l) => l.startsWith(`${key}:`));
  assert.ok(line, `${key} missing in ${out}`);
  return line.slice(key.length + 1).trim();
}

test('exit codes are reported exactly', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  for (const code of [0, 1, 10, 127, 128, 255]) {
    const r = await run(launcher, shPlan(root, `exit ${code}`));
    assert.deepEqual(r.status, { code }, `exit ${code}`);
  }
});

test('signals are reported exactly: SIGKILL, SIGTERM and a seccomp kill (31)', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  assert.deepEqual((await run(launcher, shPlan(root, 'kill -9 $$'))).status, { signal: 9 });
  assert.deepEqual((await run(launcher, shPlan(root, 'kill -15 $$'))).status, { signal: 15 });
  // Only execve is allowed: the first syscall after the exec is killed.
  const plan = shPlan(root, 'exit 0', { seccomp: { enabled: true, rules: [] } });
  assert.deepEqual((await run(launcher, plan)).status, { signal: 31 });
});

test('the app is PID 1 child: pid 2, ppid 1, session 1, its own process group', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'cat /proc/$$/stat'));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  // pid (comm) state ppid pgrp session
  const fields = r.stdout.slice(r.stdout.lastIndexOf(')') + 2).split(' ');
  const pid = Number(r.stdout.split(' ')[0]);
  assert.equal(pid, 2);
  assert.equal(fields[1], '1', 'ppid');
  assert.equal(fields[2], '2', 'process group is the app');
  assert.equal(fields[3], '1', 'session of init');
  assert.equal(r.proc.appPid, 2);
});

test('namespaces differ from the host (pid, mnt, ipc, uts, net); host network shares net', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const kinds = ['pid', 'mnt', 'ipc', 'uts', 'net'];
  const script = kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; ');
  const own = await run(launcher, shPlan(root, script));
  assert.deepEqual(own.status, { code: 0 }, own.stderr);
  const inside = own.stdout.trim().split('\n');
  kinds.forEach((k, i) => assert.notEqual(inside[i], readlinkSync(`/proc/self/ns/${k}`), `${k} namespace`));
  const host = await run(launcher, shPlan(root, script, { network: { mode: 'host' } }));
  const hostInside = host.stdout.trim().split('\n');
  assert.equal(hostInside[4], readlinkSync('/proc/self/ns/net'));
  assert.notEqual(hostInside[0], readlinkSync('/proc/self/ns/pid'));
});

test('a new network namespace has only lo, and it is down', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'cat /sys/class/net/lo/operstate; ls /sys/class/net', {
    mounts: [PROC_MOUNT, { source: 'sysfs', target: 'sys', fstype: 'sysfs', flags: 0xf, data: null }],
  }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  assert.deepEqual(r.stdout.trim().split(/\s+/), ['down', 'lo']);
});

test('hostname is set; no host process is visible', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'hostname; ls /proc | grep -E "^[0-9]+$" | wc -l', { hostname: 'box-1' }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  const [name, count] = r.stdout.trim().split('\n');
  assert.equal(name, 'box-1');
  // init (1), sh (2) and the pipeline's processes: never the host's dozens.
  assert.ok(Number(count) <= 5, `visible pids: ${count}`);
});

test('uid, gid and supplementary groups are exactly as planned', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  for (const [uid, gid, groups] of [
    [1000, 1000, []],
    [4711, 33, [5, 6, 100]],
    [0, 0, [0]],
  ] as const) {
    const r = await run(launcher, shPlan(root, 'cat /proc/self/status', { uid, gid, groups: [...groups] }));
    assert.deepEqual(r.status, { code: 0 }, r.stderr);
    assert.equal(statusField(r.stdout, 'Uid'), `${uid}\t${uid}\t${uid}\t${uid}`);
    assert.equal(statusField(r.stdout, 'Gid'), `${gid}\t${gid}\t${gid}\t${gid}`);
    assert.equal(statusField(r.stdout, 'Groups'), groups.join(' '));
  }
});

test('capabilities: empty means every set empty; a list sets E=P=I=B=A exactly', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const sets = ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb'];
  // `cat` is exec'd by sh: what it sees is what an exec'd program of the app gets.
  const none = await run(launcher, shPlan(root, 'cat /proc/self/status'));
  for (const s of sets) assert.equal(statusField(none.stdout, s), '0000000000000000', s);
  const rootNone = await run(launcher, shPlan(root, 'cat /proc/self/status', { uid: 0, gid: 0 }));
  for (const s of sets) assert.equal(statusField(rootNone.stdout, s), '0000000000000000', `uid 0 ${s}`);
  // CAP_CHOWN (0), CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_SYS_ADMIN (21)
  const some = await run(launcher, shPlan(root, 'cat /proc/self/status', { capabilities: [0, 5, 10, 21] }));
  const mask = ((1n << 0n) | (1n << 5n) | (1n << 10n) | (1n << 21n)).toString(16).padStart(16, '0');
  for (const s of sets) assert.equal(statusField(some.stdout, s), mask, s);
});

test('rlimits are set, infinity included', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'cat /proc/self/limits', {
    rlimits: [
      { resource: 'nofile', soft: 100, hard: 200 },
      { resource: 'core', soft: 0, hard: 'infinity' },
      { resource: 'stack', soft: 'infinity', hard: 'infinity' },
      { resource: 'nproc', soft: 1000, hard: 1000 },
    ],
  }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  const limit = (name: string): string[] => {
    const line = r.stdout.split('\n').find((l) => l.startsWith(name));
    assert.ok(line, name);
    return line.slice(name.length).trim().split(/\s+/).slice(0, 2);
  };
  assert.deepEqual(limit('Max open files'), ['100', '200']);
  assert.deepEqual(limit('Max core file size'), ['0', 'unlimited']);
  assert.deepEqual(limit('Max stack size'), ['unlimited', 'unlimited']);
  assert.deepEqual(limit('Max processes'), ['1000', '1000']);
});

test('scheduling policies and nice are applied', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  // /proc/self/stat field 19 = nice, 41 = policy; cat is exec'd and inherits both.
  const read = async (sched: NonNullable<Parameters<typeof shPlan>[2]>['sched']) => {
    const r = await run(launcher, shPlan(root, 'cat /proc/self/stat', { sched }));
    assert.deepEqual(r.status, { code: 0 }, r.stderr);
    const f = r.stdout.slice(r.stdout.lastIndexOf(')') + 2).split(' ');
    return { nice: Number(f[16]), prio: Number(f[37]), policy: Number(f[38]) };
  };
  assert.deepEqual(await read({ policy: 'batch', priority: 0, nice: 7 }), { nice: 7, prio: 0, policy: 3 });
  assert.deepEqual(await read({ policy: 'idle', priority: 0, nice: 0 }), { nice: 0, prio: 0, policy: 5 });
  assert.deepEqual(await read({ policy: 'fifo', priority: 10, nice: 0 }), { nice: 0, prio: 10, policy: 1 });
  assert.deepEqual(await read({ policy: 'round_robin', priority: 3, nice: 0 }), { nice: 0, prio: 3, policy: 2 });
  assert.deepEqual(await read({ policy: 'other', priority: 0, nice: -5 }), { nice: -5, prio: 0, policy: 0 });
});

test('a missing bind source is a mount step error naming the path, and no process is left', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const plan = shPlan(root, 'exit 0', {
    mounts: [{ source: '/nonexistent/northstar-test', target: 'mnt', fstype: null, flags: 0x1000, data: null }],
  });
  const err = await launcher.start(plan).then(
    () => assert.fail('start succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof LaunchError, String(err));
  assert.equal(err.code, 'ESTART');
  assert.equal(err.step, 'mount');
  assert.equal(err.path, '/nonexistent/northstar-test');
  assert.equal(err.errnoName, 'ENOENT');
  assert.match(err.message, /^start c\d+x\d+:0\.0\.1: mount: bind source \/nonexistent\/northstar-test does not exist \(ENOENT\)$/);
  assert.deepEqual(containerPids(plan.container), []);
});

test('skip-if-missing binds are skipped together with their read-only remount', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const src = '/nonexistent/northstar-skip';
  const r = await run(launcher, shPlan(root, 'exit 0', {
    mounts: [
      { source: src, target: 'mnt', fstype: null, flags: 0x1000, data: null, skipIfMissing: true },
      { source: src, target: 'mnt', fstype: null, flags: 0x1000 | 0x20 | 0x1, data: null, skipIfMissing: true },
    ],
  }));
  assert.deepEqual(r.status, { code: 0 });
});

test('bind mounts, read-only remounts and tmpfs land inside the root; /proc is read-only', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t, ['data', 'ro', 'scratch']);
  const host = makeRoot(t);
  writeFileSync(join(host, 'tmp/hello'), 'from the host\n');
  const MS_BIND = 0x1000, MS_REMOUNT = 0x20, MS_RDONLY = 0x1, MS_NOSUID = 0x2, MS_NODEV = 0x4, MS_NOEXEC = 0x8;
  const r = await run(launcher, shPlan(root, [
    'cat /data/hello',
    'touch /data/rw-ok && echo rw-ok',
    'touch /ro/x 2>/dev/null || echo ro-denied',
    'touch /proc/x 2>/dev/null || echo proc-ro',
    'grep " /scratch " /proc/self/mounts',
    'grep " /ro " /proc/self/mounts',
  ].join('; '), {
    uid: 0,
    gid: 0,
    capabilities: [0, 1, 3],
    mounts: [
      PROC_MOUNT,
      { source: join(host, 'tmp'), target: 'data', fstype: null, flags: MS_BIND, data: null },
      { source: join(host, 'tmp'), target: 'ro', fstype: null, flags: MS_BIND | MS_NOSUID | MS_NODEV, data: null },
      { source: join(host, 'tmp'), target: 'ro', fstype: null, flags: MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, data: null },
      { source: null, target: 'scratch', fstype: 'tmpfs', flags: MS_NODEV | MS_NOSUID | MS_NOEXEC, data: 'size=65536,mode=1777' },
    ],
  }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], 'from the host');
  assert.equal(lines[1], 'rw-ok');
  assert.equal(lines[2], 'ro-denied');
  assert.equal(lines[3], 'proc-ro');
  assert.match(lines[4]!, /^\S+ \/scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=64k/);
  assert.match(lines[5]!, /^\S+ \/ro \S+ ro,nosuid,nodev/);
  assert.equal(readFileSync(join(host, 'tmp/rw-ok'), 'utf8'), '');
});

/** A /dev like the `dev` mount's: a tmpfs, null and zero made from the host nodes, then read-only. */
function devMounts() {
  const MS_BIND = 0x1000, MS_REMOUNT = 0x20, MS_RDONLY = 0x1, MS_NOSUID = 0x2, MS_NOEXEC = 0x8;
  return [
    PROC_MOUNT,
    { source: 'tmpfs', target: 'dev', fstype: 'tmpfs', flags: MS_NOSUID | MS_NOEXEC, data: 'size=65536,mode=0755' },
    { source: '/dev/null', target: 'dev/null', fstype: null, flags: 0, data: null, skipIfMissing: true, create: 'device' as const },
    { source: '/dev/zero', target: 'dev/zero', fstype: null, flags: 0, data: null, skipIfMissing: true, create: 'device' as const },
    { source: '/dev/no-such-node', target: 'dev/none', fstype: null, flags: 0, data: null, skipIfMissing: true, create: 'device' as const },
    { source: null, target: 'dev', fstype: null, flags: MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, data: null },
  ];
}

const DEV_SCRIPT = [
  'echo x > /dev/null && echo null-ok',
  'head -c 3 /dev/zero | wc -c',
  'stat -c "%F %t:%T %a" /dev/null /dev/zero',
  'test -e /dev/none || echo none-skipped',
  'grep -c " /dev/null [^ ]* ro,nosuid,noexec" /proc/self/mounts || true',
].join('; ');

test('device entries are made with mknod from the host numbers: working nodes, not mounts', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, DEV_SCRIPT, { mounts: devMounts() }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['null-ok', '3', 'character special file 1:3 666', 'character special file 1:5 666', 'none-skipped', '0']);
});

const DEVICES_V1 = '/sys/fs/cgroup/devices';
test('where mknod is refused (a devices cgroup), device entries are the host nodes bound read-only', { skip: skip ?? (existsSync(`${DEVICES_V1}/devices.deny`) ? false : 'no cgroup v1 devices controller here') }, async (t) => {
  const root = makeRoot(t);
  const cg = join(DEVICES_V1, `ns-test-mknod-${process.pid}`);
  mkdirSync(cg);
  t.after(() => rmdirSync(cg));
  writeFileSync(join(cg, 'devices.deny'), 'c *:* m');
  const r = await run(launcher, shPlan(root, DEV_SCRIPT, { mounts: devMounts(), cgroupProcs: [join(cg, 'cgroup.procs')] }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['null-ok', '3', 'character special file 1:3 666', 'character special file 1:5 666', 'none-skipped', '1']);
});

test('a symlink in the root cannot redirect a mount target to the host', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const outside = makeRoot(t);
  // root/escape -> <outside>/tmp: resolved inside the root, where it does not exist.
  symlinkSync(join(outside, 'tmp'), join(root, 'escape'));
  const plan = shPlan(root, 'exit 0', {
    mounts: [{ source: null, target: 'escape', fstype: 'tmpfs', flags: 0, data: null }],
  });
  const err = await launcher.start(plan).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError);
  assert.equal(err.step, 'mount');
  assert.equal(err.path, 'escape');
  assert.equal(err.errnoName, 'ENOENT');
  // and with the target existing inside the root, the mount lands there, not outside
  mkdirSync(join(root, outside, 'tmp'), { recursive: true });
  const r = await run(launcher, shPlan(root, `grep -c " ${join(outside, 'tmp')} tmpfs" /proc/self/mounts`, {
    mounts: [PROC_MOUNT, { source: null, target: 'escape', fstype: 'tmpfs', flags: 0, data: null }],
  }));
  assert.equal(r.stdout.trim(), '1');
  assert.ok(!readFileSync('/proc/self/mounts', 'utf8').includes(join(outside, 'tmp')));
});

test('the old root is unreachable after pivot_root', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'ls -1 /; echo --; grep -c . /proc/self/mounts; ls /etc/os-release 2>&1 || true'));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  const [list, rest] = r.stdout.trim().split('\n--\n');
  assert.deepEqual(list!.split('\n'), ['bin', 'dev', 'etc', 'mnt', 'proc', 'sys', 'tmp']);
  const lines = rest!.split('\n');
  assert.equal(lines[0], '2', 'only the root and /proc are mounted');
  assert.match(lines[1]!, /No such file/);
});

test('a missing named network namespace fails the start', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const plan = shPlan(root, 'exit 0', { network: { mode: 'join', path: '/var/run/netns/northstar-missing' } });
  const err = await launcher.start(plan).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError);
  assert.equal(err.step, 'network');
  assert.equal(err.path, '/var/run/netns/northstar-missing');
  assert.equal(err.errnoName, 'ENOENT');
  assert.deepEqual(containerPids(plan.container), []);
});

test('a missing executable is an exec step error', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const plan = shPlan(root, '', { path: '/bin/nope', argv: ['nope'] });
  const err = await launcher.start(plan).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError);
  assert.equal(err.step, 'exec');
  assert.equal(err.path, '/bin/nope');
  assert.equal(err.errnoName, 'ENOENT');
  assert.deepEqual(containerPids(plan.container), []);
});

test('a script whose #! interpreter is missing, and a binary whose ELF loader is missing, name that file, not the executable', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  writeFileSync(join(root, 'bin/app.py'), '#!/usr/bin/python3 -u\nprint("hi")\n', { mode: 0o755 });
  const script = shPlan(root, '', { path: '/bin/app.py', argv: ['app.py'] });
  const err = await launcher.start(script).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError, String(err));
  assert.equal(err.step, 'exec');
  assert.equal(err.path, '/bin/app.py');
  assert.equal(err.errnoName, 'ENOENT');
  assert.equal(err.detail, '/bin/app.py: its #! interpreter /usr/bin/python3 does not exist in the container');
  // A dynamically linked host binary in a root without its C library.
  const dynamic = ['/bin/true', '/usr/bin/true'].find((b) => existsSync(b) && readFileSync(b).subarray(0, 4).toString('latin1') === '\x7fELF')!;
  const interp = /\/lib[^\0]*ld-[^\0]+\.so[.\d]*/.exec(readFileSync(dynamic).toString('latin1'))?.[0];
  assert.ok(interp, `${dynamic} is dynamically linked`);
  writeFileSync(join(root, 'bin/dyn'), readFileSync(dynamic), { mode: 0o755 });
  const elf = shPlan(root, '', { path: '/bin/dyn', argv: ['dyn'] });
  const err2 = await launcher.start(elf).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err2 instanceof LaunchError, String(err2));
  assert.equal(err2.step, 'exec');
  assert.equal(err2.detail, `/bin/dyn: its ELF interpreter (dynamic loader, PT_INTERP) ${interp} does not exist in the container`);
  // A script whose interpreter exists still runs.
  writeFileSync(join(root, 'bin/ok.sh'), '#!/bin/sh\necho fine\n', { mode: 0o755 });
  const r = await run(launcher, shPlan(root, '', { path: '/bin/ok.sh', argv: ['ok.sh'] }));
  assert.equal(r.stdout, 'fine\n');
  assert.deepEqual([...containerPids(script.container), ...containerPids(elf.container)], []);
});

test('fds: only 0, 1, 2, the console and the sockets, numbered from 3 and announced in the env', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const a = openSync('/dev/null', 'r');
  const b = openSync('/dev/zero', 'r');
  t.after(() => {
    closeSync(a);
    closeSync(b);
  });
  const plan = shPlan(root, 'ls /proc/$$/fd; tr "\\0" "\\n" < /proc/$$/environ | grep NORTHSTAR_ | sort; for f in 0 4 5; do readlink /proc/$$/fd/$f; done', {
    console: true,
    sockets: ['alpha', 'seq-packet'],
  });
  const r = await run(launcher, plan, { console: 'pipe', sockets: { alpha: a, 'seq-packet': b } });
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.deepEqual(lines.slice(0, 6), ['0', '1', '2', '3', '4', '5']);
  assert.deepEqual(lines.slice(6, 9), ['NORTHSTAR_CONSOLE=3', 'NORTHSTAR_SOCKET_alpha=4', 'NORTHSTAR_SOCKET_seq-packet=5']);
  assert.deepEqual(lines.slice(9), ['/dev/null', '/dev/null', '/dev/zero']);
});

test('host stdio never reaches the container: absent stdio is /dev/null', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'readlink /proc/$$/fd/0; readlink /proc/$$/fd/2'), { stderr: undefined });
  assert.deepEqual(r.stdout.trim().split('\n'), ['/dev/null', '/dev/null']);
});

test('the console pipe is a connected socket', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const c = await launcher.start(shPlan(root, 'echo hello-console >&3; read line <&3; echo "got $line"', { console: true }), {
    console: 'pipe',
    stdout: 'pipe',
  });
  assert.ok(c.console);
  const out = collect(c.stdout);
  const first = await new Promise<string>((resolve) => c.console!.once('data', (d: Buffer) => resolve(d.toString())));
  assert.equal(first, 'hello-console\n');
  c.console.write('pong\n');
  assert.deepEqual(await c.exited, { code: 0 });
  assert.equal(await out, 'got pong\n');
  c.console.destroy();
});

test('/proc/1/exe is a sealed memfd: not a host path, not writable, unreadable from inside', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const c = await launcher.start(shPlan(root, 'readlink /proc/1/exe 2>&1; echo x 2>&1 > /proc/1/exe || echo write-denied; sleep 100', { uid: 0, gid: 0 }), { stdout: 'pipe' });
  t.after(() => c.kill('SIGKILL'));
  const exe = readlinkSync(`/proc/${c.pid}/exe`);
  assert.match(exe, /^\/memfd:northstar-init \(deleted\)$/);
  assert.throws(() => open2(`/proc/${c.pid}/exe`, 'r+'), (e: NodeJS.ErrnoException) => e.code === 'EPERM' || e.code === 'ETXTBSY');
  // wait for the script to have run both probes, then end it
  let text = '';
  await new Promise<void>((resolve) => {
    c.stdout!.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes('write-denied')) resolve();
    });
  });
  c.kill('SIGTERM');
  assert.deepEqual(await c.exited, { signal: 15 });
  const lines = text.trim().split('\n');
  assert.match(lines[0]!, /Permission denied/);
  assert.ok(lines.slice(1).includes('write-denied'), text);
});

test('init reaps orphans: no zombie stays in the container', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  // The subshell exits at once; its `true` is re-parented to init and must be reaped by it.
  const script = [
    '(true &)',
    'i=0',
    'while [ $i -lt 200 ]; do',
    '  z=$(cat /proc/[0-9]*/stat 2>/dev/null | grep -c ") Z ")',
    '  [ "$z" = 0 ] && break',
    '  i=$((i+1)); sleep 0.05',
    'done',
    'echo zombies=$z',
  ].join('\n');
  const r = await run(launcher, shPlan(root, script));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  assert.equal(r.stdout.trim(), 'zombies=0');
});

test('kill reaches the app and its process group', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const c = await launcher.start(shPlan(root, 'sleep 100 & exec sleep 101'));
  assert.ok(c.pid > 0 && c.appPid === 2);
  assert.equal(c.kill('SIGTERM'), true);
  assert.deepEqual(await c.exited, { signal: 15 });
  assert.equal(c.kill('SIGTERM'), false);
  assert.deepEqual(containerPids(c.container), []);
});

test('init cannot be killed from inside the container', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const r = await run(launcher, shPlan(root, 'kill -9 1; kill -15 1; kill -2 1; sleep 0.1; echo alive', { uid: 0, gid: 0, capabilities: [5] }));
  assert.deepEqual(r.status, { code: 0 }, r.stderr);
  assert.equal(r.stdout.trim(), 'alive');
});

test('two-phase start: create parks init with a known pid, exec runs the app', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const c = await launcher.create(shPlan(root, 'exit 7'));
  assert.ok(c.pid > 0);
  assert.ok(c.createdAt instanceof Date);
  assert.equal(c.appPid, null);
  // init is parked: alive, named after the container, no child yet
  assert.match(readFileSync(`/proc/${c.pid}/comm`, 'utf8'), /^init-c\d+/);
  assert.equal(readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim(), '');
  await c.exec();
  assert.ok(c.startedAt instanceof Date);
  assert.deepEqual(await c.exited, { code: 7 });
  await assert.rejects(c.exec(), /not created/);
});

test('a created container ends on kill or destroy without running the app', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const a = await launcher.create(shPlan(root, 'exit 0'));
  a.kill('SIGKILL');
  assert.deepEqual(await a.exited, { signal: 9 });
  const b = await launcher.create(shPlan(root, 'exit 0'));
  b.destroy();
  assert.equal(await b.exited, null);
  assert.deepEqual(containerPids(a.container), []);
  assert.deepEqual(containerPids(b.container), []);
});

test('cgroup.procs files are joined before init exists; a bad one fails the start', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const file = join(root, 'tmp', 'fake-cgroup.procs');
  writeFileSync(file, '');
  const c = await launcher.create(shPlan(root, 'exit 0', { cgroupProcs: [file] }));
  // the launcher wrote its own pid; init, its clone, was born in the cgroup
  assert.equal(readFileSync(file, 'utf8'), String(c.launcherPid));
  await c.exec();
  assert.deepEqual(await c.exited, { code: 0 });
  const plan = shPlan(root, 'exit 0', { cgroupProcs: ['/sys/fs/cgroup/northstar-missing/cgroup.procs'] });
  const err = await launcher.start(plan).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError);
  assert.equal(err.step, 'cgroup');
  assert.equal(err.path, '/sys/fs/cgroup/northstar-missing/cgroup.procs');
  assert.deepEqual(containerPids(plan.container), []);
});

test('invalid plans are refused before anything runs', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  await assert.rejects(launcher.start(shPlan(root, 'exit 0', { root: 'relative' })), (e: unknown) => e instanceof ValidationError && /root: must be an absolute path/.test(e.message));
  await assert.rejects(launcher.start(shPlan(root, 'exit 0', { sockets: ['a'] }), { sockets: {} }), /socket fds \[\] do not match/);
  await assert.rejects(launcher.start(shPlan(root, 'exit 0', { console: true })), /no console fd was given/);
});

test('50 starts in a row leave no fds and no processes behind', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  // one warm-up, so lazily opened fds of Node itself are not counted
  await run(launcher, shPlan(root, 'exit 0'));
  const before = fdCount();
  const names: string[] = [];
  for (let i = 0; i < 50; i++) {
    const plan = shPlan(root, i % 2 ? 'exit 3' : 'echo hi', { container: uniqueName('loop') });
    names.push(plan.container);
    const r = await run(launcher, plan, i % 5 === 0 ? {} : { stdout: 'pipe' });
    assert.deepEqual(r.status, { code: i % 2 ? 3 : 0 });
  }
  // failed starts too
  for (let i = 0; i < 5; i++) {
    const plan = shPlan(root, 'exit 0', { container: uniqueName('fail'), path: '/bin/none' });
    names.push(plan.container);
    await assert.rejects(launcher.start(plan), LaunchError);
  }
  assert.equal(fdCount(), before);
  for (const n of names) assert.deepEqual(containerPids(n), [], n);
  const zombies = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim();
  assert.equal(zombies, '', 'no child process of the runtime remains');
});

test('the SELinux exec context is written before the mounts; without SELinux that step fails cleanly', { skip: skip ?? false }, async (t) => {
  if (existsSync('/sys/fs/selinux/enforce')) return t.skip('this host has SELinux: the context would be applied, not refused');
  const root = makeRoot(t);
  const plan = shPlan(root, 'exit 0', { selinuxExec: 'system_u:system_r:container_t:s0' });
  const err = await launcher.start(plan).then(() => assert.fail('start succeeded'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError, String(err));
  assert.equal(err.step, 'selinux');
  assert.equal(err.path, '/proc/thread-self/attr/exec');
  assert.match(err.message, /setting the exec context system_u:system_r:container_t:s0 failed/);
  assert.deepEqual(containerPids(plan.container), []);
});

test('init keeps only CAP_KILL once the app runs', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const c = await launcher.start(shPlan(root, 'sleep 100'));
  t.after(() => c.kill('SIGKILL'));
  const status = readFileSync(`/proc/${c.pid}/status`, 'utf8');
  const kill = (1n << 5n).toString(16).padStart(16, '0');
  for (const set of ['CapPrm', 'CapEff', 'CapBnd']) assert.equal(statusField(status, set), kill, set);
  for (const set of ['CapInh', 'CapAmb']) assert.equal(statusField(status, set), '0000000000000000', set);
  assert.equal(c.kill('SIGTERM'), true);
  assert.deepEqual(await c.exited, { signal: 15 });
});

test('concurrent starts are independent', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => run(launcher, shPlan(root, `echo $((${i} * 2)); exit ${i}`))));
  results.forEach((r, i) => {
    assert.deepEqual(r.status, { code: i });
    assert.equal(r.stdout, `${i * 2}\n`);
  });
  // a failing start among running ones does not disturb them
  const [bad, good] = await Promise.allSettled([
    launcher.start(shPlan(root, 'exit 0', { path: '/bin/none' })),
    run(launcher, shPlan(root, 'exit 42')),
  ]);
  assert.equal(bad.status, 'rejected');
  assert.ok(good.status === 'fulfilled' && 'code' in good.value.status! && good.value.status.code === 42);
});
