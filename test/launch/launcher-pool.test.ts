/**
 * The launcher's pool of launch cores made ahead of time (LauncherOptions.pool) by its
 * forker: a pooled core serves exactly one start, what the container sees is what a cold
 * start gives it (stdio, fds, names), no pooled core outlives the launcher or its process,
 * and the forker neither takes down running containers when closed nor takes strangers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Launcher, type LaunchFds } from '../../src/launch/launcher.js';
import { Forker } from '../../src/launch/forker.js';
import type { LaunchPlan } from '../../src/launch/plan.js';
import { until } from '../helpers/until.js';
import { buildCore, collect, containerPids, makeRoot, REPO, run, shPlan, skipReason } from './core-fixture.js';

const skip = skipReason();

/** A process that is gone (or a zombie about to be reaped) no longer counts. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

function pooledLauncher(t: { after(fn: () => unknown): void }, pool: number): Launcher {
  buildCore();
  const launcher = new Launcher({ pool });
  t.after(() => launcher.close());
  return launcher;
}

async function filled(launcher: Launcher, n: number): Promise<number[]> {
  await until(`${n} pooled cores`, () => launcher.pooled.length === n);
  return launcher.pooled;
}

/** What a container observes about its stdio, fds, identity and names. */
const OBSERVE = [
  'ls /proc/$$/fd',
  'for f in 0 1 2; do stat -L -c "$f %F %t:%T" /proc/$$/fd/$f; done',
  'echo "console=${NORTHSTAR_CONSOLE:-none}"',
  'id; hostname; cat /proc/1/status | grep -E "^(Cap|NoNewPrivs|Seccomp)"',
].join('; ');

async function observe(launcher: Launcher, root: string, fds: LaunchFds, over: Partial<LaunchPlan> = {}): Promise<{ out: string; launcherPid: number }> {
  const plan = shPlan(root, OBSERVE, { hostname: 'observed', ...over });
  const proc = await launcher.start(plan, fds);
  const [out, status] = await Promise.all([collect(proc.stdout), proc.exited]);
  assert.deepEqual(status, { code: 0 }, out);
  return { out, launcherPid: proc.launcherPid };
}

test('a pooled core serves one start, the container sees what a cold start gives it, the pool refills', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const cold = pooledLauncher(t, 0);
  const pooled = pooledLauncher(t, 1);
  for (const fds of [{ stdout: 'pipe' }, { stdout: 'pipe', stderr: 'pipe' }, { stdout: 'pipe', console: 'pipe' }] as LaunchFds[]) {
    const over = fds.console ? { console: true } : {};
    const [spare] = await filled(pooled, 1);
    const a = await observe(cold, root, fds, over);
    const b = await observe(pooled, root, fds, over);
    assert.equal(b.launcherPid, spare, 'the start took the pooled core');
    assert.equal(b.out, a.out, `what the container observes with ${JSON.stringify(fds)}`);
    if (!fds.stderr) assert.match(b.out, /^2 character special file 1:3$/m, 'discarded stderr is /dev/null');
    await until('the pool refilled with a new core', () => pooled.pooled.length === 1 && pooled.pooled[0] !== spare);
    assert.ok(!alive(spare!), "a pooled core is used once");
  }
});

test('discarded output goes to /dev/null, piped output arrives, exit status and names are the container\'s', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const launcher = pooledLauncher(t, 1);
  const [spare] = await filled(launcher, 1);
  // Writes to discarded stdout must succeed (no EPIPE, no SIGPIPE): the exit code says so.
  const plan = shPlan(root, 'echo to-null; r=$?; echo to-stderr >&2; exit $((r + 7))');
  const proc = await launcher.start(plan, { stderr: 'pipe' });
  assert.equal(proc.launcherPid, spare);
  assert.equal(proc.stdout, null);
  const [err, status] = await Promise.all([collect(proc.stderr), proc.exited]);
  assert.equal(err, 'to-stderr\n');
  assert.deepEqual(status, { code: 7 });

  // While it runs, ps names the container, not the pool.
  const [next] = await filled(launcher, 1);
  const sleeper = shPlan(root, 'exec sleep 600');
  const running = await launcher.start(sleeper, {});
  t.after(() => running.destroy());
  assert.equal(running.launcherPid, next);
  assert.ok(containerPids(sleeper.container).includes(running.launcherPid), 'cmdline of the launcher names the container');
  const comm = readFileSync(`/proc/${running.launcherPid}/comm`, 'utf8').trim();
  assert.equal(comm, `nsl-${sleeper.container}`.slice(0, 15));
  running.destroy();
  assert.deepEqual(await running.exited, { signal: 9 });
});

test('a start the pool cannot serve (an fd given) spawns its own core; a dead pooled core is skipped', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const launcher = pooledLauncher(t, 1);
  const [spare] = await filled(launcher, 1);
  // stdin given as an fd: a cold spawn, the pooled core stays.
  const r = await run(launcher, shPlan(root, 'echo cold'), { stdin: 0 });
  assert.equal(r.stdout, 'cold\n');
  assert.notEqual(r.proc.launcherPid, spare);
  assert.deepEqual(launcher.pooled, [spare]);
  // A pooled core that died is not handed a plan.
  process.kill(spare!, 'SIGKILL');
  await until('the killed pooled core to be gone', () => !alive(spare!));
  const r2 = await run(launcher, shPlan(root, 'echo after'));
  assert.equal(r2.stdout, 'after\n');
  assert.deepEqual(r2.status, { code: 0 });
});

test('close() ends the pooled cores; so does the death of the process that spawned them', { skip: skip ?? false }, async (t) => {
  const launcher = pooledLauncher(t, 2);
  const pids = await filled(launcher, 2);
  launcher.close();
  await until('the pooled cores to end after close()', () => pids.every((p) => !alive(p)));
  assert.deepEqual(launcher.pooled, []);

  // A process with a pool is SIGKILLed: its cores must not stay behind.
  const script = `import { Launcher } from ${JSON.stringify(join(REPO, 'dist/src/launch/launcher.js'))};
const l = new Launcher({ pool: 2 });
const t = setInterval(() => { if (l.pooled.length === 2) { console.log(JSON.stringify(l.pooled)); clearInterval(t); setInterval(() => {}, 1000); } }, 10);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await until('the child process to report its pool', () => out.includes('\n'));
  const orphans = JSON.parse(out) as number[];
  assert.equal(orphans.length, 2);
  assert.ok(orphans.every(alive));
  child.kill('SIGKILL');
  await until('the pooled cores of the killed process to end', () => orphans.every((p) => !alive(p)));
  assert.ok(existsSync('/proc/self'));
});

test('the forker: a start that finds the pool empty gets a forked core; close() leaves running containers alone; a killed forker ends its cores and is replaced', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const launcher = pooledLauncher(t, 1);
  const [spare] = await filled(launcher, 1);
  const forker = launcher.forkerPid;
  assert.ok(forker !== null, 'the pool runs a forker');
  assert.equal(ppidOf(spare!), forker, "a pooled core is the forker's child");
  // Two starts at once: the first takes the spare, the second gets a core forked for it.
  const sleeper = shPlan(root, 'sleep 600', { container: 'forked-sleeper' });
  const [a, b] = await Promise.all([launcher.start(sleeper, {}), launcher.start({ ...sleeper, container: 'forked-sleeper2' }, {})]);
  t.after(() => {
    a.destroy();
    b.destroy();
  });
  assert.equal(a.launcherPid, spare);
  assert.equal(ppidOf(b.launcherPid), forker, 'the second start got a core forked for it');
  // Killing the forker ends the cores it forked (their parent-death signal); their exits are
  // reported, and a later start gets a new forker.
  process.kill(forker!, 'SIGKILL');
  assert.deepEqual(await a.exited, { signal: 9 });
  assert.deepEqual(await b.exited, { signal: 9 });
  await until('the cores of the killed forker to end', () => !alive(a.launcherPid) && !alive(b.launcherPid));
  const r = await run(launcher, shPlan(root, 'echo again'));
  assert.equal(r.stdout, 'again\n');
  await until('a new forker', () => launcher.forkerPid !== null && launcher.forkerPid !== forker);
  // close() forks no more, but a container started from a forked core keeps running until
  // it ends, and its exit is still reported.
  await filled(launcher, 1);
  const c = await launcher.start({ ...sleeper, container: 'forked-sleeper3' }, {});
  const forker2 = ppidOf(c.launcherPid);
  launcher.close();
  assert.ok(alive(c.launcherPid) && alive(forker2), 'the running container and its forker stay');
  c.kill('SIGTERM');
  assert.deepEqual(await c.exited, { signal: 15 });
  await until('the forker to leave after its last core', () => !alive(forker2));
});

test('the forker takes connections with its token only', { skip: skip ?? false }, async (t) => {
  buildCore();
  const forker = new Forker(join(REPO, 'native', 'build', 'northstar-forker'), join(REPO, 'native', 'build', 'northstar-launch'));
  t.after(() => forker.close());
  // While request 1 waits for its core, a stranger (only root can reach the socket) sends
  // request 1's header for fd 3 (the reports) with a wrong token: it is dropped, and the
  // request is served by the forked core's own connections.
  const request = forker.core();
  const stranger = connect(forker.socketPath);
  const closed = new Promise<void>((resolve) => stranger.on('close', () => resolve()));
  stranger.on('error', () => {});
  const head = Buffer.alloc(21, 0xaa);
  head.writeUInt32LE(1, 16);
  head[20] = 3;
  stranger.write(head);
  await closed;
  const core = await request;
  assert.ok(core.pid > 0 && alive(core.pid));
  assert.equal(core.stdio.length, 6);
  core.ref(); // as for a ChildProcess: wait for its exit
  assert.ok(core.kill('SIGKILL'));
  await new Promise<void>((resolve) => core.once('exit', () => resolve()));
  assert.equal(core.signalCode, 'SIGKILL');
});

test('a new forker removes the socket directories of killed runtimes, and only those', { skip: skip ?? false }, async (t) => {
  buildCore();
  // A pid that is gone: a child that has exited and been reaped.
  const gone = spawnSync('true').pid!;
  const mk = (name: string, mode: number): string => {
    const d = join(tmpdir(), name);
    mkdirSync(d, { mode });
    chmodSync(d, mode);
    writeFileSync(join(d, 's'), '');
    t.after(() => rmSync(d, { recursive: true, force: true }));
    return d;
  };
  const stale = mk(`northstar-forker-${gone}-stale`, 0o700);
  const live = mk(`northstar-forker-${process.pid}-live`, 0o700);
  const open = mk(`northstar-forker-${gone}-open`, 0o755);
  const forker = new Forker(join(REPO, 'native', 'build', 'northstar-forker'), join(REPO, 'native', 'build', 'northstar-launch'));
  t.after(() => forker.close());
  assert.ok(!existsSync(stale), 'the directory of a runtime that is gone is removed');
  assert.ok(existsSync(live), 'the directory of a live runtime stays');
  assert.ok(existsSync(join(open, 's')), 'a directory others may enter is not ours: it stays');
  assert.ok(existsSync(forker.socketPath));
  forker.close();
  await until('the closed forker to remove its directory', () => !existsSync(forker.socketPath));
});
