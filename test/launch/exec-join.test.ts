/**
 * Ours: exec into a running container through the launch core's join mode (native/src/join.c,
 * src/launch/exec-process.ts). The command sees the container's root, pid namespace, ids and
 * capabilities, is refused by its seccomp filter, gets a terminal when asked, and dies with
 * the container.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Launcher, type ContainerProcess } from '../../src/launch/launcher.js';
import { ExecProcess, type ExecOptions } from '../../src/launch/exec-process.js';
import type { LaunchPlan } from '../../src/launch/plan.js';
import { buildCore, collect, makeRoot, shPlan, skipReason } from './core-fixture.js';

const skip = skipReason();
const BINARY = new Launcher().binary;

/** A container whose app waits until killed (its stdout closed so `sleep` keeps nothing open). */
async function running(t: { after(fn: () => unknown): void }, root: string, over: Partial<LaunchPlan> = {}): Promise<{ proc: ContainerProcess; plan: LaunchPlan }> {
  buildCore();
  const launcher = new Launcher();
  const plan = shPlan(root, 'echo $$ > /tmp/app-pid; exec sleep 1000', over);
  const proc = await launcher.start(plan, {});
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc.exited;
    launcher.close();
  });
  return { proc, plan };
}

function execIn(proc: ContainerProcess, plan: LaunchPlan, argv: string[], opts: Partial<ExecOptions> = {}): ExecProcess {
  return new ExecProcess(BINARY, { ...plan, mounts: [], path: argv[0]!, argv }, { launcherPid: proc.launcherPid, tty: false, stdin: false, ...opts });
}

async function output(e: ExecProcess): Promise<{ out: string; err: string; status: unknown }> {
  const [out, err, status] = await Promise.all([collect(e.stdout), collect(e.stderr), e.exited]);
  return { out, err, status };
}

test('exec sees the container root, pid namespace, ids and capabilities, with its exit code', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  writeFileSync(join(root, 'etc/only-in-root'), 'inside\n');
  const { proc, plan } = await running(t, root, { capabilities: [0 /* CAP_CHOWN */], uid: 1000, gid: 1001, groups: [1002] });
  const script = 'cat /etc/only-in-root; echo "pid=$$"; cat /tmp/app-pid; id -u; id -g; id -G; grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status; hostname; for n in pid mnt net uts ipc; do readlink /proc/self/ns/$n; done; exit 7';
  const e = execIn(proc, plan, ['sh', '-c', script]);
  const hostPid = await e.started;
  const { out, err, status } = await output(e);
  assert.equal(err, '');
  assert.deepEqual(status, { code: 7 });
  const lines = out.trim().split('\n');
  assert.equal(lines[0], 'inside', 'the root is the container\'s');
  // The container's pid namespace: small pids, and the app is visible at the pid it wrote.
  const pid = Number(lines[1]!.slice(4));
  assert.ok(pid > 1 && pid < 100, `pid inside the container: ${lines[1]}`);
  assert.notEqual(pid, hostPid);
  assert.match(lines[2]!, /^\d+$/);
  assert.deepEqual(lines.slice(3, 6), ['1000', '1001', '1001 1002']);
  assert.match(out, /^CapEff:\s+0000000000000001$/m, 'only the container\'s capability');
  assert.match(out, /^CapBnd:\s+0000000000000001$/m);
  assert.match(out, /^NoNewPrivs:\s+1$/m);
  assert.equal(lines[lines.length - 6], plan.hostname);
  // The same namespaces as the container's init (read from the host).
  const seen = lines.slice(-5);
  ['pid', 'mnt', 'net', 'uts', 'ipc'].forEach((ns, i) => assert.equal(seen[i], readlinkSync(`/proc/${proc.pid}/ns/${ns}`), `${ns} namespace`));
});

test('an exec\'d command dies with the container', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const { proc, plan } = await running(t, root);
  const e = execIn(proc, plan, ['sh', '-c', 'echo ready; exec sleep 1000']);
  await e.started;
  const first = await new Promise<string>((resolve) => e.stdout.once('data', (c: Buffer) => resolve(c.toString())));
  assert.equal(first, 'ready\n');
  proc.kill('SIGKILL');
  assert.deepEqual(await e.exited, { signal: 9 }, 'the kernel kills it with the pid namespace');
  await proc.exited;
});

test('a missing command and one the seccomp filter refuses fail with the cause', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const { proc, plan } = await running(t, root);
  const missing = execIn(proc, plan, ['no-such-tool', 'x']);
  await assert.rejects(missing.started, /exec c\d+x\d+:0\.0\.1: exec: no-such-tool: command not found in the container \(PATH \/bin\)/);
  assert.equal(await missing.exited, null);
  // Resolved through PATH as execvp does.
  const viaPath = execIn(proc, plan, ['echo', 'found']);
  assert.equal((await output(viaPath)).out, 'found\n');
});

test('the container\'s seccomp filter applies to exec', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  // A deny-list refusing mkdir with EPERM: the app runs, so does an exec, and both are refused.
  const seccomp: LaunchPlan['seccomp'] = { enabled: true, deny: true, rules: [{ syscall: 'mkdir', kind: 'any', errno: 1 }, { syscall: 'mkdirat', kind: 'any', errno: 1 }] };
  const { proc, plan } = await running(t, root, { seccomp });
  const e = execIn(proc, plan, ['sh', '-c', 'mkdir /tmp/x 2>&1; echo rc=$?']);
  const { out } = await output(e);
  assert.match(out, /Operation not permitted/);
  assert.match(out, /rc=1/);
});

test('with a tty the command has a terminal, input and resize', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const { proc, plan } = await running(t, root);
  const e = execIn(proc, plan, ['sh', '-c', 'stty size; read line; stty size; echo "got $line"; [ -t 0 ] && echo tty0; [ -t 1 ] && echo tty1'], { tty: true, size: { rows: 33, cols: 101 } });
  await e.started;
  assert.equal(e.stderr, null);
  let out = '';
  let seen: (() => void) | undefined;
  e.stdout.on('data', (c: Buffer) => {
    out += c.toString();
    if (out.includes('33 101')) seen?.();
  });
  const ended = new Promise((r) => e.stdout.once('end', r));
  // The initial size is there before the command runs; once it printed it, a resize, and
  // then the input (a RESIZE reaches the terminal before input written after it).
  await new Promise<void>((r) => (out.includes('33 101') ? r() : (seen = r)));
  e.resize(50, 132);
  e.stdin!.write('hello\n');
  assert.deepEqual(await e.exited, { code: 0 });
  await ended;
  assert.match(out, /33 101\r\n(.*\r\n)?50 132\r\n/, 'the initial size, then the resized one');
  assert.match(out, /got hello/);
  assert.match(out, /tty0/);
  assert.match(out, /tty1/);
});

test('closing the exec kills the command, and a signal reaches it', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const { proc, plan } = await running(t, root);
  const a = execIn(proc, plan, ['sleep', '1000']);
  await a.started;
  a.signal(15);
  assert.deepEqual(await a.exited, { signal: 15 });
  const b = execIn(proc, plan, ['sleep', '1000']);
  await b.started;
  b.kill();
  assert.deepEqual(await b.exited, { signal: 9 });
  // The container goes on: another exec still runs.
  assert.equal((await output(execIn(proc, plan, ['echo', 'still']))).out, 'still\n');
});
