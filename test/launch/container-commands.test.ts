/**
 * The test container's command line and output strings, run directly on the host (no
 * container): the strings are what upstream's tests match (shared/spec/upstream-tests.md §2).
 */
import { before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TC_DIR = fileURLToPath(new URL('../../../examples/test-container/', import.meta.url));
const TC_BIN = join(TC_DIR, 'build/test-container');
let skip: string | null = null;

before(() => {
  const r = spawnSync('make', ['-s', '-C', TC_DIR], { encoding: 'utf8' });
  if (r.error) skip = `make is not available: ${r.error.message}`;
  else if (r.status !== 0) throw new Error(`building the test container failed:\n${r.stderr}`);
});

function ready(t: TestContext): boolean {
  if (skip) t.skip(skip);
  return skip === null;
}

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run a command that ends by itself. */
function runTc(args: string[], env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(TC_BIN, args, { encoding: 'utf8', env, timeout: 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** Run a command that parks with `Sleeping...`; SIGTERM it once it printed that. */
function runSleeping(args: string[]): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(TC_BIN, args, { env: {} });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('Sleeping...\n')) child.kill('SIGTERM');
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

test('sleep is the default: Executing "Sleep", Sleeping..., ends by SIGTERM', async (t) => {
  if (!ready(t)) return;
  for (const args of [[], ['sleep']]) {
    const r = await runSleeping(args);
    assert.equal(r.stdout, 'Executing "Sleep"\nSleeping...\n');
    assert.equal(r.signal, 'SIGTERM');
  }
});

test('exit <code> exits with it', (t) => {
  if (!ready(t)) return;
  for (const [arg, code] of [['0', 0], ['1', 1], ['10', 10], ['127', 127], ['128', 128], ['255', 255], ['-1', 255], ['256', 0]] as const) {
    const r = runTc(['exit', arg]);
    assert.equal(r.code, code, `exit ${arg}`);
    assert.equal(r.stdout, `Executing "Exit { code: ${arg} }"\n`);
  }
});

test('crash panics like upstream: witness me!, exit 101', (t) => {
  if (!ready(t)) return;
  const r = runTc(['crash']);
  assert.equal(r.code, 101);
  assert.equal(r.stdout, 'Executing "Crash"\n');
  assert.match(r.stderr, /^thread 'main' panicked at .*:\nwitness me!\n/);
});

test('cat prints the file and a newline, then sleeps; a missing file exits 1', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'tc-cmd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'hello');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, 'hello from test resource');
  const r = await runSleeping(['cat', file]);
  assert.equal(r.stdout, `Executing "Cat { path: ${JSON.stringify(file)} }"\nhello from test resource\nSleeping...\n`);
  const missing = runTc(['cat', join(dir, 'nope')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^Error: failed to open .*nope\n\nCaused by:\n {4}No such file or directory \(os error 2\)\n$/);
});

test('print goes to the chosen stream; the Debug form names the stream', async (t) => {
  if (!ready(t)) return;
  const out = await runSleeping(['print', 'hello stdout']);
  assert.equal(out.stdout, 'Executing "Print { message: "hello stdout", io: Stdout }"\nhello stdout\nSleeping...\n');
  const err = await runSleeping(['print', '--io', 'stderr', 'hello "stderr"']);
  assert.equal(err.stdout, 'Executing "Print { message: "hello \\"stderr\\"", io: Stderr }"\nSleeping...\n');
  assert.equal(err.stderr, 'hello "stderr"\n');
  const bad = runTc(['print', '--io', 'stdin', 'x']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /invalid io: stdin/);
});

test('touch and write create files, then sleep', async (t) => {
  if (!ready(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'tc-cmd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const touched = await runSleeping(['touch', join(dir, 't')]);
  assert.match(touched.stdout, /^Executing "Touch \{ path: ".*\/t" \}"\nSleeping...\n$/);
  assert.equal(readFileSync(join(dir, 't'), 'utf8'), '');
  const written = await runSleeping(['write', 'some text', join(dir, 'w')]);
  assert.match(written.stdout, /^Executing "Write \{ message: "some text", path: ".*\/w" \}"\nSleeping...\n$/);
  assert.equal(readFileSync(join(dir, 'w'), 'utf8'), 'some text');
  const failed = runTc(['write', 'x', join(dir, 'no/such/dir')]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /^Error: failed to write "x" to .*no\/such\/dir/);
});

test('call-delete-module prints the upstream line; a non-number panics with 101', async (t) => {
  if (!ready(t)) return;
  const r = await runSleeping(['call-delete-module', '1']);
  assert.match(r.stdout, /^Executing "CallDeleteModule \{ flags: "1" \}"\ndelete_module syscall was successful \(-1\)\nSleeping...\n$/);
  const bad = runTc(['call-delete-module', 'x']);
  assert.equal(bad.code, 101);
});

test('socket without its NORTHSTAR_SOCKET_<name> variable fails with exit 1', (t) => {
  if (!ready(t)) return;
  const r = runTc(['socket', 'stream']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^Executing "Socket \{ socket: "stream" \}"\n$/);
  assert.match(r.stderr, /environment variable not found/);
});

test('inspect prints the upstream lines in order', async (t) => {
  if (!ready(t)) return;
  const r = await runSleeping(['inspect']);
  const keys = r.stdout
    .split('\n')
    .map((l) => /^(?: {4})?([^:]+):/.exec(l)?.[1])
    .filter((k): k is string => k !== undefined && !k.startsWith('/proc/self/fd/') && !k.startsWith('  '));
  const firstOf = (k: string): number => keys.indexOf(k);
  const order = [
    'getpid', 'getppid', 'getuid', 'getgid', 'getsid', 'getpgid', 'getgroups', 'pwd', 'exe',
    'sched_getscheduler', 'sched_priority', 'getpriority',
    'caps ambient', 'caps bounding', 'caps effective', 'caps inheritable', 'caps permitted',
    '/proc/self/fd', 'total', '"/proc/self/mounts"', '"/proc/self/limits"',
  ];
  for (let i = 0; i < order.length; i++) {
    assert.ok(firstOf(order[i]!) >= 0, `${order[i]} is printed`);
    if (i > 0) assert.ok(firstOf(order[i - 1]!) < firstOf(order[i]!), `${order[i - 1]} before ${order[i]}`);
  }
  assert.match(r.stdout, /^ {2}Max processes {13}\S+ +\S+ +processes *$/m, 'limits keep the kernel spacing');
  assert.ok(r.stdout.endsWith('Sleeping...\n'));
});

test('report and the probe commands print parseable lines and exit 0', (t) => {
  if (!ready(t)) return;
  const rep = runTc(['report'], { NORTHSTAR_NAME: 'x' });
  assert.equal(rep.code, 0);
  for (const key of ['pid', 'ppid', 'sid', 'uid', 'gid', 'groups', 'hostname', 'sched_policy', 'no_new_privs', 'seccomp', 'cap_bounding', 'rlimit_nofile', 'netdev', 'fd', 'env']) {
    assert.match(rep.stdout, new RegExp(`^${key}:`, 'm'), key);
  }
  assert.match(rep.stdout, /^env: NORTHSTAR_NAME=x$/m);
  const sc = runTc(['syscall', 'getpid']);
  assert.match(sc.stdout, /^syscall getpid: ret=\d+ errno=0$/m);
  const ex = runTc(['exists', '/', '/definitely/not/here']);
  assert.match(ex.stdout, /^exists \/: yes\nexists \/definitely\/not\/here: no$/m);
  const unknown = runTc(['syscall', 'no_such_call']);
  assert.equal(unknown.code, 2);
  const raised = runTc(['raise', '15']);
  assert.equal(raised.signal, 'SIGTERM');
});

test('unknown commands and missing arguments are usage errors (exit 2)', (t) => {
  if (!ready(t)) return;
  for (const args of [['frobnicate'], ['cat'], ['exit'], ['exit', 'ten'], ['sleep', 'extra'], ['write', 'only-message']]) {
    const r = runTc(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, /^error: /, args.join(' '));
  }
});
