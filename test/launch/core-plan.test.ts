/**
 * The plan format: the TypeScript encoder's validation, and the C parser's strictness
 * (each malformed plan is answered with a `plan` step error naming the problem).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { Duplex } from 'node:stream';
import { ValidationError } from '../../src/common/errors.js';
import { DEFAULT_LAUNCH_BINARY } from '../../src/launch/launcher.js';
import { encodePlan, validatePlan, type LaunchPlan } from '../../src/launch/plan.js';
import { buildCore, skipReason } from './core-fixture.js';

const skip = skipReason();

before(() => {
  if (!skip) buildCore();
});

const base: LaunchPlan = {
  container: 'hello:0.0.1',
  hostname: 'hello',
  root: '/run/northstar/hello:0.0.1',
  mounts: [{ source: 'proc', target: 'proc', fstype: 'proc', flags: 15, data: null }],
  network: { mode: 'new' },
  uid: 1000,
  gid: 1000,
  groups: [],
  rlimits: [],
  capabilities: [],
  seccomp: { enabled: false, rules: [] },
  path: '/bin/hello',
  argv: ['/bin/hello'],
  envp: ['A=b'],
  cgroupProcs: [],
  console: false,
  sockets: [],
};

function issues(plan: unknown): string[] {
  try {
    validatePlan(plan as LaunchPlan);
    return [];
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    return e.issues.map((i) => `${i.path}: ${i.rule}`);
  }
}

test('the encoder accepts a complete plan and writes the documented header', () => {
  const buf = encodePlan({
    ...base,
    sched: { policy: 'round_robin', priority: 5, nice: 0 },
    rlimits: [{ resource: 'nofile', soft: 1, hard: 'infinity' }],
    seccomp: { enabled: true, rules: [{ syscall: 'personality', kind: 'values', index: 0, values: [0, 0xffffffffn] }] },
    selinuxExec: 'u:r:x:s0',
    console: true,
    sockets: ['a'],
  });
  assert.equal(buf.toString('latin1', 0, 4), 'NSPL');
  assert.equal(buf.readUInt16LE(4), 2);
  assert.equal(buf[buf.length - 1], 0, 'discard: nothing unless the launcher asks');
  const pooled = encodePlan({ ...base, console: true, sockets: ['a'] }, { discardStdout: true, discardStderr: true });
  assert.equal(pooled[pooled.length - 1], 3, 'discard: stdout and stderr bits');
  assert.equal(buf.readUInt16LE(6), 0);
  assert.equal(buf.readUInt32LE(8), 'hello:0.0.1'.length);
});

test('the encoder rejects bad plans naming every field', () => {
  assert.deepEqual(issues({ ...base, root: 'rel', argv: [] }), ['root: must be an absolute path', 'argv: must not be empty']);
  assert.deepEqual(issues({ ...base, hostname: 'x'.repeat(65) }), ['hostname: must be at most 64 bytes']);
  assert.deepEqual(issues({ ...base, envp: ['=x', 'NOEQ'] }), [
    'envp[0]: must have the form K=V with a non-empty K',
    'envp[1]: must have the form K=V with a non-empty K',
  ]);
  assert.deepEqual(issues({ ...base, mounts: [{ source: null, target: '../x', fstype: 'tmpfs', flags: 0, data: null }] }), [
    'mounts[0].target: must not contain a .. component',
  ]);
  assert.deepEqual(issues({ ...base, network: { mode: 'join', path: 'netns' } }), ['network.path: must be an absolute path']);
  assert.deepEqual(issues({ ...base, uid: -1, groups: [1.5] }), ['uid: must be an integer in 0..4294967295', 'groups[0]: must be an integer in 0..4294967295']);
  assert.deepEqual(issues({ ...base, rlimits: [{ resource: 'nofile', soft: 'infinity', hard: 5 }, { resource: 'nofile', soft: 1, hard: 1 }] }), [
    'rlimits[0]: soft limit must not exceed the hard limit',
    'rlimits[1].resource: duplicate resource nofile',
  ]);
  assert.deepEqual(issues({ ...base, sched: { policy: 'fifo', priority: 0, nice: 3 } }), ['sched.priority: must be in 1..99', 'sched.nice: must be 0 for this policy']);
  assert.deepEqual(issues({ ...base, capabilities: [64, 1, 1] }), ['capabilities[0]: must be a capability number in 0..63', 'capabilities[2]: duplicate capability 1']);
  assert.deepEqual(
    issues({ ...base, seccomp: { enabled: true, rules: [{ syscall: 'Read', kind: 'any' }, { syscall: 'x', kind: 'values', index: 6, values: [] }, { syscall: 'y', kind: 'mask', index: 0, mask: -1 }] } }),
    ['seccomp.rules[0].syscall: must consist of a-z, 0-9 and _', 'seccomp.rules[1].index: must be in 0..5', 'seccomp.rules[1].values: must not be empty', 'seccomp.rules[2].mask: must be an unsigned 64-bit integer'],
  );
  assert.deepEqual(issues({ ...base, container: 'a\0b', sockets: ['a=b', 'c', 'c'] }), ['container: must not contain NUL', 'sockets[0]: must not contain =', 'sockets[2]: duplicate socket c']);
  assert.throws(() => encodePlan({ ...base, root: '' }), /root: must not be empty/);
});

interface Record {
  type: number;
  step?: string;
  errno?: number;
  path?: string;
  message?: string;
}

/** Spawn the core with only its control sockets, send raw bytes as the plan frame, collect records. */
async function sendRaw(payload: Buffer, frameLength = payload.length): Promise<{ records: Record[]; code: number | null }> {
  const child = spawn(DEFAULT_LAUNCH_BINARY, ['fuzz'], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], env: {} });
  const control = child.stdio[3] as Duplex;
  const commands = child.stdio[4] as Duplex;
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32LE(frameLength);
  commands.on('error', () => undefined);
  commands.end(Buffer.concat([hdr, payload]));
  const chunks: Buffer[] = [];
  control.on('data', (c: Buffer) => chunks.push(c));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  await new Promise((r) => (control.readableEnded ? r(null) : control.once('close', r)));
  let buf = Buffer.concat(chunks);
  const records: Record[] = [];
  while (buf.length >= 4) {
    const len = buf.readUInt32LE(0);
    const rec = buf.subarray(4, 4 + len);
    buf = buf.subarray(4 + len);
    const r: Record = { type: rec[0]! };
    if (r.type === 4) {
      let at = 1;
      const str = (): string => {
        const n = rec.readUInt32LE(at);
        const s = rec.toString('utf8', at + 4, at + 4 + n);
        at += 4 + n;
        return s;
      };
      r.step = str();
      r.errno = rec.readInt32LE(at);
      at += 4;
      r.path = str();
      r.message = str();
    }
    records.push(r);
  }
  return { records, code };
}

async function planError(payload: Buffer, frameLength?: number): Promise<string> {
  const { records, code } = await sendRaw(payload, frameLength);
  assert.equal(code, 1);
  assert.equal(records.length, 1, JSON.stringify(records));
  const r = records[0]!;
  assert.equal(r.type, 4);
  assert.equal(r.step, 'plan');
  return r.message!;
}

test('the C parser rejects malformed plans with a reason', { skip: skip ?? false }, async () => {
  const good = encodePlan(base);
  const patch = (at: number, bytes: number[]): Buffer => {
    const b = Buffer.from(good);
    bytes.forEach((v, i) => (b[at + i] = v));
    return b;
  };
  assert.match(await planError(patch(0, [0x58])), /invalid plan: header: bad magic/);
  assert.match(await planError(patch(4, [1])), /header: unsupported version/);
  assert.match(await planError(patch(good.length - 1, [0x4])), /discard: unknown bits 0x4/);
  assert.match(await planError(patch(6, [1])), /header: reserved bits set/);
  assert.match(await planError(Buffer.concat([good, Buffer.from([0])])), /plan: 1 trailing bytes/);
  assert.match(await planError(good.subarray(0, good.length - 3)), /truncated/);
  // container "hello:0.0.1" starts at offset 12: put a NUL in it
  assert.match(await planError(patch(14, [0])), /container: contains a NUL byte/);
  // a huge string length
  assert.match(await planError(patch(8, [0xff, 0xff, 0xff, 0x7f])), /container: length \d+ exceeds 255/);
  // mount count (after container, hostname, root) with more entries than bytes
  const mountCountAt = 8 + 4 + 11 + 4 + 5 + 4 + base.root.length;
  assert.match(await planError(patch(mountCountAt, [0xff, 0xff, 0, 0])), /mounts: 65535 entries exceed the limit of 1024/);
  assert.match(await planError(patch(mountCountAt, [0x00, 0x04, 0, 0])), /mounts: 1024 entries but only \d+ bytes left/);
  // options byte of the only mount: reserved bit
  const mountEnd = mountCountAt + 4 + (1 + 4 + 4) + (4 + 4) + (1 + 4 + 4) + 8 + 1;
  assert.match(await planError(patch(mountEnd, [0x40])), /mount\[0\]\.options: reserved bits set/);
  assert.match(await planError(patch(mountEnd, [0x0c])), /mount\[0\]\.options: more than one of create file, create dir, symlink, device/);
  assert.match(await planError(patch(mountEnd, [0x30])), /mount\[0\]\.options: more than one of create file, create dir, symlink, device/);
  assert.match(await planError(patch(mountEnd, [0x20])), /mount\[0\]: a device needs an absolute host source and no fstype, flags, data or source root/);
  assert.match(await planError(patch(mountEnd, [0x10])), /mount\[0\]: a symlink needs a source \(its text\) and no fstype, flags, data or other options/);
  assert.match(await planError(patch(mountEnd + 1, [3])), /network: unknown mode 3/);
  // uid -1
  assert.match(await planError(patch(mountEnd + 2, [0xff, 0xff, 0xff, 0xff])), /uid\/gid: -1 is not a valid id/);
});

test('a plan frame over the limit is refused before it is read', { skip: skip ?? false }, async () => {
  const msg = await planError(Buffer.alloc(0), 17 * 1024 * 1024);
  assert.match(msg, /reading the plan failed/);
});

test('without a control socket the core refuses to run', { skip: skip ?? false }, async () => {
  const child = spawn(DEFAULT_LAUNCH_BINARY, [], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise((r) => child.on('close', r));
  assert.equal(code, 2);
  assert.match(err, /fd 3 \(control socket\) is not open/);
});

test('a core that cannot be spawned is a typed error, not a hang', { skip: skip ?? false }, async () => {
  const { Launcher, LaunchError } = await import('../../src/launch/launcher.js');
  await assert.rejects(new Launcher({ binary: '/nonexistent/northstar-launch' }).start(base), /launch core \/nonexistent\/northstar-launch does not exist/);
  // exists but is not executable
  const err = await new Launcher({ binary: '/etc/hostname' }).start(base).then(() => assert.fail('started'), (e: unknown) => e);
  assert.ok(err instanceof LaunchError, String(err));
  // libuv reports a failed exec of the child as its exit with 127
  assert.equal(err.step, 'launch');
  assert.match(err.message, /^start hello:0\.0\.1: launch: the launch core exited \(code 127\) before the container started$/);
});

test('the C parser: a seccomp deny-list (mode 2) carries an errno per rule in 1..4095; mode 3 is refused', { skip: skip ?? false }, async () => {
  const rule = (errno: number) => ({ syscall: 'keyctl', kind: 'any' as const, errno });
  const deny = (errno: number) => encodePlan({ ...base, seccomp: { enabled: true, deny: true, rules: [rule(errno)] } });
  const [one, two] = [deny(1), deny(2)];
  const at = [...one.keys()].find((i) => one[i] !== two[i])!;
  const patch = (b: Buffer, i: number, v: number[]) => {
    const c = Buffer.from(b);
    v.forEach((x, j) => (c[i + j] = x));
    return c;
  };
  assert.match(await planError(patch(one, at, [0])), /seccomp\.rules\[0\]\.errno: 0 out of range 1\.\.4095/);
  assert.match(await planError(patch(one, at, [0x00, 0x10])), /seccomp\.rules\[0\]\.errno: 4096 out of range 1\.\.4095/);
  const [allow, denyEmpty] = [encodePlan({ ...base, seccomp: { enabled: true, rules: [] } }), encodePlan({ ...base, seccomp: { enabled: true, deny: true, rules: [] } })];
  const mode = [...allow.keys()].find((i) => allow[i] !== denyEmpty[i])!;
  assert.deepEqual([allow[mode], denyEmpty[mode]], [1, 2]);
  assert.match(await planError(patch(allow, mode, [3])), /seccomp: mode must be 0, 1 or 2, got 3/);
  assert.deepEqual(issues({ ...base, seccomp: { enabled: true, deny: true, rules: [rule(0)] } }), ['seccomp.rules[0].errno: must be in 1..4095']);
  assert.deepEqual(issues({ ...base, seccomp: { enabled: true, rules: [{ syscall: 'clone', kind: 'bits', index: 6, bits: 1 }] } }), ['seccomp.rules[0].index: must be in 0..5']);
});
