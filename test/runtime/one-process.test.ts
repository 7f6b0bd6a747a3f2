/**
 * The runtime is one process (issue 17): `northstar -c <config>` as the Quickstart and the
 * systemd unit start it (bin/northstar) reaches its private mount namespace by exec, so the
 * pid its starter holds is the Node runtime itself: no second Node process waits for it,
 * SIGTERM to that pid shuts it down in order and its exit status is the command's.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { PUB, TestRuntime, isStarted, nextNotification, testNpks } from './harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LAUNCHER = join(ROOT, 'bin', 'northstar');
const ENTRY = join(ROOT, 'dist', 'src', 'cli', 'northstar.js');
const TC = 'test-container:0.0.1';
const NODE = realpathSync(process.execPath);

function ppid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function exe(pid: number): string {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    // A zombie has no exe link; it is gone for our purposes.
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every descendant of `pid`. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const p = ppid(Number(e));
      children.set(p, [...(children.get(p) ?? []), Number(e)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Whether the root mount of `pid` is a shared peer (its mounts would reach the host). */
function rootShared(pid: number): boolean {
  for (const line of readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4] === '/') return f.slice(6, f.indexOf('-', 6)).some((t) => t.startsWith('shared:'));
  }
  return false;
}

/** A runtime directory with the test container (and its resource) and a config; removed after the test. */
interface Scene {
  dir: string;
  config: string;
  cgroup: string;
  consoleUrl: string;
  /** Pids killed (SIGKILL) after the test, before the directory and the cgroups go. */
  kill: number[];
}

async function scene(t: TestContext): Promise<Scene> {
  const dir = mkdtempSync(join(tmpdir(), 'ns-oneproc-'));
  const kill: number[] = [];
  for (const d of ['run', 'data', 'sockets', 'repo']) mkdirSync(join(dir, d));
  const npks = await testNpks();
  for (const n of ['test-container', 'test-resource']) copyFileSync(npks[n]!, join(dir, 'repo', `${n}.npk`));
  const cgroup = `northstar-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  // A runtime killed by a test leaves its (empty) cgroups; remove them (as the harness does).
  t.after(async () => {
    for (const pid of kill) {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    await until('the runtimes of the test are gone', () => kill.every((p) => !alive(p)));
    rmSync(dir, { recursive: true, force: true });
    // Its container processes die by their parent-death signal, a moment later.
    await until(`the cgroups ${cgroup} are removed`, () => {
      execFileSync('sh', ['-c', `for d in /sys/fs/cgroup/*/${cgroup} /sys/fs/cgroup/${cgroup}; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + ; done 2>/dev/null; true`]);
      return readdirSync('/sys/fs/cgroup').every((c) => !existsSync(join('/sys/fs/cgroup', c, cgroup)));
    });
  });
  const config = join(dir, 'northstar.toml');
  writeFileSync(
    config,
    `run_dir = "${dir}/run"\ndata_dir = "${dir}/data"\nsocket_dir = "${dir}/sockets"\ncgroup = "${cgroup}"\nshutdown_grace_period = "2s"\n` +
      `[console.global]\nbind = "unix://${dir}/console.sock"\npermissions = "full"\n` +
      `[repositories.default]\ntype = { fs = { dir = "${dir}/repo" } }\nkey = "${PUB}"\n`,
  );
  return { dir, config, cgroup, consoleUrl: `unix://${dir}/console.sock`, kill };
}

/** `cmd args…` as a child of this process, with the harness's log and exit handling; up when the runtime says so. */
async function launch(s: Scene, cmd: string, args: string[]): Promise<TestRuntime> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  s.kill.push(child.pid!);
  const rt = new TestRuntime(s.dir, child, s.consoleUrl, s.cgroup);
  const up = rt.waitLog(/Runtime up and running/, 60_000);
  const died = rt.exited().then((code) => {
    throw new Error(`runtime exited with ${code} before it was up:\n${rt.logs.join('\n')}`);
  });
  await Promise.race([up, died]);
  return rt;
}

const runtimeArgs = (config: string) => ['-c', config, '--log-format', 'json', '--log-level', 'debug'];

/** The checks of "one Node process in a private mount namespace, child of its starter". */
function assertOneProcess(pid: number): void {
  assert.equal(exe(pid), NODE, `the pid the starter holds (${pid}) is the Node runtime itself, not a wrapper (${exe(pid)})`);
  assert.equal(ppid(pid), process.pid, 'its parent is the caller');
  assert.notEqual(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'), 'it runs in a mount namespace of its own');
  assert.equal(rootShared(pid), false, 'its root mount does not propagate to the host');
  const nodes = descendants(pid).filter((p) => exe(p) === NODE);
  assert.deepEqual(nodes, [], 'no second Node process below it');
}

describe('the runtime is one process', { skip: isRoot ? false : 'needs root (a real runtime)' }, () => {
  test('bin/northstar -c <config>, as the Quickstart starts it, is one Node process in a private mount namespace; SIGTERM to that pid stops its containers and exits 0', async (t) => {
    const s = await scene(t);
    const rt = await launch(s, LAUNCHER, runtimeArgs(s.config));
    const pid = rt.child.pid!;
    assertOneProcess(pid);
    // The V8 flags the launcher gives are the runtime's list (src/cli/northstar.ts V8_FLAGS),
    // and --no-expose-wasm where this node has it (Node 24 refuses it).
    const listed = /export const V8_FLAGS = \[([^\]]*)\]/.exec(readFileSync(ENTRY, 'utf8'))![1]!.split(',').map((f) => f.trim().replace(/^'|'$/g, ''));
    if (spawnSync(process.execPath, ['--no-expose-wasm', '--version']).status === 0) listed.push('--no-expose-wasm');
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(argv.slice(1, 1 + listed.length), listed, 'bin/northstar passes the V8 flags of src/cli/northstar.ts');

    const client = await Client.connect(s.consoleUrl, { subscribe: true, timeout: 30_000 });
    t.after(() => client.close());
    const started = nextNotification(client, isStarted(TC));
    await client.start(TC, { args: ['sleep'] });
    await started;
    const container = descendants(pid).filter((p) => !readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('(pooled)'));
    assert.ok(container.length >= 2, `the container's launch core, init and app run below the runtime (${container.join(', ')})`);

    const cgroups = readdirSync('/sys/fs/cgroup')
      .map((c) => join('/sys/fs/cgroup', c, s.cgroup))
      .filter((d) => existsSync(d));
    assert.ok(cgroups.length > 0, `the runtime's cgroup ${s.cgroup} exists`);
    process.kill(pid, 'SIGTERM');
    // In order: the runtime exits 0 once it has stopped the container (SIGTERM to it; the
    // console closes first, so no exit notification), removed its cgroups and unmounted.
    assert.equal(await rt.exited(), 0, 'the runtime exits 0 after SIGTERM');
    assert.equal(rt.child.signalCode, null);
    for (const p of container) assert.ok(!alive(p), `container process ${p} left behind`);
    for (const d of cgroups) assert.ok(!existsSync(d), `cgroup ${d} left behind`);
    await rt.logged(/received SIGTERM/);
    await rt.logged(/Process test-container:0\.0\.1 exited after .* with status Signalled\(15\)/);
    await rt.logged(/Shutdown complete/);
  });

  test("the command's exit status is the runtime's: a bad configuration exits 1 naming the file, SIGKILL is seen as SIGKILL", async (t) => {
    const s = await scene(t);
    const missing = join(s.dir, 'missing.toml');
    const bad = spawn(LAUNCHER, runtimeArgs(missing), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    bad.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => bad.once('exit', (c) => r(c)));
    assert.equal(code, 1);
    assert.match(err, new RegExp(`northstar: error: config ${missing}: ENOENT`));

    const rt = await launch(s, LAUNCHER, runtimeArgs(s.config));
    rt.child.kill('SIGKILL');
    await rt.exited();
    // A wrapper would exit with 137 after its child's death; the runtime itself dies of the signal.
    assert.equal(rt.child.signalCode, 'SIGKILL');
  });

  test('--die-with-parent: the runtime gets SIGKILL when the process that started it dies', { skip: existsSync('/usr/bin/setpriv') || existsSync('/bin/setpriv') ? false : 'needs setpriv (util-linux)' }, async (t) => {
    const s = await scene(t);
    // A parent that starts the runtime and waits, like a supervisor; SIGKILL it.
    const parent: ChildProcess = spawn('sh', ['-c', `"${LAUNCHER}" --die-with-parent ${runtimeArgs(s.config).join(' ')} 2>/dev/null & echo $!; wait`], { stdio: ['ignore', 'pipe', 'ignore'] });
    s.kill.push(parent.pid!);
    const pid = await new Promise<number>((resolve) => parent.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    s.kill.push(pid);
    // Up: its console answers.
    await until('the runtime answers on its console', async () => {
      try {
        const c = await Client.connect(s.consoleUrl, { timeout: 5_000 });
        await c.list();
        await c.close();
        return true;
      } catch {
        return false;
      }
    });
    assert.equal(exe(pid), NODE);
    assert.equal(ppid(pid), parent.pid, 'the runtime is the child of the shell that started it');
    parent.kill('SIGKILL');
    await until('the runtime is gone with its parent', () => !alive(pid));
  });

  test('node dist/src/cli/northstar.js on a Node with process.execve is one process as well', { skip: typeof (process as { execve?: unknown }).execve === 'function' ? false : `node ${process.version} has no process.execve: started as node northstar.js, the runtime runs below a waiting Node process (use bin/northstar)` }, async (t) => {
    const s = await scene(t);
    const rt = await launch(s, process.execPath, [ENTRY, ...runtimeArgs(s.config)]);
    assertOneProcess(rt.child.pid!);
    process.kill(rt.child.pid!, 'SIGTERM');
    assert.equal(await rt.exited(), 0);
  });
});
