/**
 * The C plan parser on plans written by the TypeScript encoder: this test encodes the
 * fixtures below with `encodePlan` into a fresh directory (so they always match the
 * encoder), then builds and runs the C unit test (native/test/test_plan.c, via
 * `make check-plan`), which parses each one, compares every field with the values below,
 * and checks that malformed variants are refused with the expected reason. A failing C
 * check fails this test. Needs a C compiler and libseccomp headers, not root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePlan, MS, type LaunchPlan } from '../../src/launch/plan.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));

const minimal: LaunchPlan = {
  container: 'min:0.0.1',
  hostname: 'min',
  root: '/run/min',
  mounts: [],
  network: { mode: 'new' },
  uid: 0,
  gid: 0,
  groups: [],
  rlimits: [],
  capabilities: [],
  seccomp: { enabled: false, rules: [] },
  path: '/bin/true',
  argv: ['true'],
  envp: [],
  cgroupProcs: [],
  console: false,
  sockets: [],
};

/** Every field set; strings are distinct so the C test can find each one in the bytes. */
const full: LaunchPlan = {
  container: 'full:1.2.3',
  hostname: 'full-host',
  root: '/run/northstar/full:1.2.3',
  mounts: [
    { source: 'proc', target: 'proc', fstype: 'proc', flags: MS.NOSUID | MS.NODEV | MS.NOEXEC, data: null },
    { source: '/lib', target: 'lib', fstype: null, flags: MS.BIND | MS.REC, data: null, skipIfMissing: true },
    { source: null, target: 'tmp', fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: 'size=1m,mode=1777' },
    { source: 'data/x', target: 'res', fstype: null, flags: MS.BIND, data: null, sourceRoot: '/run/resources/res:1.0.0', create: 'dir' },
    { source: null, target: 'etc/resolv.conf', fstype: null, flags: 0, data: null, create: 'file' },
    { source: '/proc/self/fd', target: 'dev/fd', fstype: null, flags: 0, data: null, create: 'symlink' },
    { source: '/dev/null', target: 'dev/null', fstype: null, flags: 0, data: null, create: 'device' },
    { source: '/dev/nsfixture-missing', target: 'dev/nsfixture', fstype: null, flags: 0, data: null, create: 'device', skipIfMissing: true },
    { source: null, target: '/run/host/abs', fstype: null, flags: MS.REMOUNT | MS.BIND | MS.RDONLY, data: null },
  ],
  network: { mode: 'join', path: '/var/run/netns/fixture' },
  uid: 1000,
  gid: 1001,
  groups: [1001, 2000, 4294967294],
  rlimits: [
    { resource: 'nofile', soft: 1024, hard: 4096 },
    { resource: 'core', soft: 0, hard: 'infinity' },
    { resource: 'stack', soft: 1n << 60n, hard: (1n << 60n) + 1n },
    { resource: 'cpu', soft: 'infinity', hard: 'infinity' },
  ],
  sched: { policy: 'round_robin', priority: 42, nice: 0 },
  capabilities: [0, 21, 63],
  seccomp: {
    enabled: true,
    rules: [
      { syscall: 'read', kind: 'any' },
      { syscall: 'personality', kind: 'values', index: 0, values: [0, 8, 0xffffffffn, (1n << 64n) - 1n] },
      { syscall: 'clone', kind: 'mask', index: 0, mask: 0x7e020000n },
      { syscall: 'socket', kind: 'bits', index: 1, bits: 0x80000 },
    ],
  },
  selinuxExec: 'u:r:app_t:s0',
  path: '/bin/app',
  argv: ['app', '', 'ünïcödé ✓', 'a b'],
  envp: ['PATH=/bin', 'EMPTY=', 'K=V=W'],
  cgroupProcs: ['/sys/fs/cgroup/cpu/north/full/cgroup.procs', '/sys/fs/cgroup/memory/north/full/cgroup.procs'],
  console: true,
  sockets: ['log', 'ctl'],
};

/** The deny-list seccomp mode (each rule carries an errno), host network, a nice value. */
const deny: LaunchPlan = {
  ...minimal,
  container: 'deny:0.1.0',
  network: { mode: 'host' },
  sched: { policy: 'other', priority: 0, nice: -7 },
  seccomp: {
    enabled: true,
    deny: true,
    rules: [
      { syscall: 'mkdir', kind: 'any', errno: 1 },
      { syscall: 'kill', kind: 'values', index: 1, values: [9], errno: 13 },
      { syscall: 'ioctl', kind: 'mask', index: 1, mask: 0xff },
      { syscall: 'socket', kind: 'bits', index: 0, bits: 0x10, errno: 4095 },
    ],
  },
};

test('the C plan parser reads what the TypeScript encoder writes, and refuses malformed plans with a reason', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'nsl-plan-fixtures-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, plan] of Object.entries({ minimal, full, deny })) writeFileSync(join(dir, `${name}.bin`), encodePlan(plan));

  const r = spawnSync('make', ['-s', '-C', join(REPO, 'native'), 'check-plan', `FIXTURES=${dir}`], { encoding: 'utf8', timeout: 600_000 });
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.error, undefined, `running make failed: ${String(r.error)}`);
  assert.equal(r.status, 0, `make check-plan failed (status ${r.status}):\n${output}`);
  const summary = /test-plan: (\d+) checks, (\d+) failed/.exec(output);
  assert.ok(summary, `no summary line from the C test:\n${output}`);
  assert.equal(summary[2], '0', output);
  t.diagnostic(summary[0]);
  if (output.includes('running without sanitizers')) t.diagnostic('the C test ran without ASan/UBSan: the compiler cannot build with them here');
  // The count guards against a C test that silently stopped checking.
  assert.ok(Number(summary[1]) > 200, `only ${summary[1]} checks ran:\n${output}`);
});
