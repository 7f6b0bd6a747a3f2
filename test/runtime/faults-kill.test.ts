/**
 * Trust under faults (issue 10, SIGKILL): the runtime is killed at exact steps of install,
 * start, kill and shutdown (fail points, src/common/failpoint.ts), and the launch core or a
 * container's init is killed while a container starts or runs. After each fault a runtime
 * restarted on the same dirs with the same config must serve again, list exactly the packages
 * that were completely installed, and leave no mount, loop device, cgroup, socket file, temp
 * file or process behind.
 *
 * Nothing waits on time: each step waits for the runtime's exit, a notification, a log line
 * of the container, or host state (with generous bounds for a loaded machine).
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { isExit, isStarted, nextNotification, packTestVariant, startRuntime, testContainerManifest, testNpks, type RuntimeOptions, type TestRuntime } from './harness.js';
import { until } from '../helpers/until.js';
import { cgroupIno, runCgroupGone } from '../helpers/cgroup.js';

const TC = 'test-container:0.0.1';
const TR = 'test-resource:0.0.1';
const EXTRA = 'extra:0.0.1';
/** 128 + SIGKILL: how the runtime's outer process reports a runtime killed by a fail point. */
const KILLED = 137;

/** Each fault runs against its own dirs and cgroup name, shared by the killed and the restarted runtime. */
interface Scene {
  dir: string;
  cgroup: string;
  npks: string[];
}

async function scene(t: TestContext): Promise<Scene> {
  const npks = await testNpks();
  const dir = mkdtempSync(join(tmpdir(), 'ns-kill-'));
  const cgroup = `northstar-kill-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return { dir, cgroup, npks: [npks['test-container']!, npks['test-resource']!] };
}

function run(t: TestContext, s: Scene, failpoints: string[], extra: RuntimeOptions = {}): Promise<TestRuntime> {
  return startRuntime(t, {
    dir: s.dir,
    cgroup: s.cgroup,
    npks: s.npks,
    ...(failpoints.length > 0 ? { env: { NORTHSTAR_FAILPOINTS: failpoints.join(',') } } : {}),
    ...extra,
  });
}

/** The runtime's cgroup directories in every hierarchy (it runs in our own cgroups). */
function cgroupDirs(cgroup: string): string[] {
  const out: string[] = [];
  const mounts = readdirSync('/sys/fs/cgroup');
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '') out.push(join('/sys/fs/cgroup', m[2]!, cgroup));
    else {
      const ctrls = m[1]!.replace(/^name=/, '');
      for (const d of mounts) if (d === ctrls || d === m[1]) out.push(join('/sys/fs/cgroup', d, m[2]!, cgroup));
    }
  }
  return [...new Set(out)];
}

/** Processes left by a runtime: in its cgroups, or in its (private) mount namespace. */
function leftoverProcesses(cgroup: string, mntNs: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cg = readFileSync(`/proc/${name}/cgroup`, 'utf8');
      const ns = readlinkSync(`/proc/${name}/ns/mnt`);
      // A zombie still has its cgroup line but no namespaces: readlink fails, it is gone.
      if (cg.includes(`/${cgroup}/`) || cg.includes(`/${cgroup}\n`) || ns === mntNs) {
        out.push(`${name} ${readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
      }
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Loop devices whose backing file lies under the scene's dir (the fs repository). */
function loopsOf(dir: string): string[] {
  const out: string[] = [];
  for (const d of readdirSync('/sys/block')) {
    if (!d.startsWith('loop')) continue;
    try {
      const f = readFileSync(`/sys/block/${d}/loop/backing_file`, 'utf8').trim();
      if (f.startsWith(`${dir}/`)) out.push(`${d} ${f}`);
    } catch {
      // not attached
    }
  }
  return out;
}

/** Inode numbers of the sealed memfds a runtime holds (its mem repository's packages). */
function memfdInodes(pid: number): Set<number> {
  const out = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('/memfd:northstar-memory')) out.add(statSync(`/proc/${pid}/fd/${fd}`).ino);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Loop devices backed by one of these memfds. */
function loopsOnMemfds(inodes: Set<number>): string[] {
  const { loopdevices } = JSON.parse(execFileSync('losetup', ['-l', '-J', '-O', 'NAME,BACK-INO,BACK-FILE'], { encoding: 'utf8' }) || '{"loopdevices":[]}') as {
    loopdevices: { name: string; 'back-ino': number | string; 'back-file': string }[];
  };
  return loopdevices.filter((l) => l['back-file'].startsWith('/memfd:northstar-memory') && inodes.has(Number(l['back-ino']))).map((l) => l.name);
}

/** Host mounts under the scene's dir (the runtime mounts only in its private namespace). */
function hostMountsOf(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[4]?.startsWith(`${dir}/`));
}

/** The killed runtime is gone with all it made that the kernel takes down: processes, mounts, loop devices. */
async function checkDead(s: Scene, mntNs: string): Promise<void> {
  await until('no process of the killed runtime left', () => leftoverProcesses(s.cgroup, mntNs).length === 0);
  await until('no loop device of the killed runtime left', () => loopsOf(s.dir).length === 0);
  assert.deepEqual(hostMountsOf(s.dir), []);
}

/** What the runtime leaves in its dirs when no container runs: no socket or temp file. */
function checkNoFiles(s: Scene, rt: TestRuntime): void {
  assert.deepEqual(readdirSync(rt.socketDir), [], 'socket files of containers left in socket_dir');
  assert.deepEqual(readdirSync(rt.repoDir).filter((n) => n.startsWith('.tmp-')), [], 'temp files of an install left in the repository');
  const memBase = join(rt.dir, 'run', 'mem');
  const stale = existsSync(memBase) ? readdirSync(memBase).filter((n) => !n.startsWith(`northstar-mem-${rt.innerPid()}-`)) : [];
  assert.deepEqual(stale, [], 'directories of a dead mem repository left');
}

/**
 * The restarted runtime: up, no container cgroup of the old run, no socket or temp file,
 * lists exactly `expected`, starts and stops the test container; then a clean shutdown
 * leaves no cgroup, process, mount or loop device.
 */
async function checkRestart(t: TestContext, s: Scene, expected: string[]): Promise<void> {
  const rt = await run(t, s, []);
  const mntNs = readlinkSync(`/proc/${rt.innerPid()}/ns/mnt`);
  for (const d of cgroupDirs(s.cgroup)) assert.ok(!existsSync(join(d, 'test-container')), `${d}/test-container left by the killed run`);
  checkNoFiles(s, rt);
  const client = await rt.client({ subscribe: true });
  try {
    assert.deepEqual((await client.list()).map(String).sort(), [...expected].sort());
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    await client.kill(TC, 15);
    await nextNotification(client, isExit(TC));
  } finally {
    await client.close();
  }
  assert.equal(await rt.stop(), 0, 'the restarted runtime shuts down cleanly');
  await checkDead(s, mntNs);
  for (const d of cgroupDirs(s.cgroup)) assert.ok(!existsSync(d), `${d} left after a clean shutdown`);
  assert.deepEqual(readdirSync(rt.socketDir), []);
  // Mount points, the cgroup record and the mem repository's dir of the crashed run are gone too.
  const runDir = join(s.dir, 'run');
  assert.deepEqual(readdirSync(runDir).filter((n) => n !== 'mem'), [], 'files left in run_dir after a clean shutdown');
  if (existsSync(join(runDir, 'mem'))) assert.deepEqual(readdirSync(join(runDir, 'mem')), [], 'files left in run_dir/mem after a clean shutdown');
}

/** Start a runtime with fail points armed; returns it and its mount namespace. */
async function armed(t: TestContext, s: Scene, failpoints: string[], extra: RuntimeOptions = {}): Promise<{ rt: TestRuntime; client: Client; mntNs: string }> {
  const rt = await run(t, s, failpoints, extra);
  const mntNs = readlinkSync(`/proc/${rt.innerPid()}/ns/mnt`);
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close().catch(() => undefined));
  return { rt, client, mntNs };
}

/** The operation that hits the fail point fails (the runtime is gone), and the runtime died of SIGKILL. */
async function killedBy(rt: TestRuntime, op: Promise<unknown>): Promise<void> {
  await op.then(
    () => undefined,
    () => undefined,
  );
  assert.equal(await rt.exited(), KILLED, `the runtime died of the fail point:\n${rt.logs.slice(-10).join('\n')}`);
}

let extraNpk: Promise<string> | undefined;
const extra = () => (extraNpk ??= packTestVariant('extra', 'name: extra\nversion: 0.0.1\ninit: /test-container\nuid: 1000\ngid: 1000\n'));

test('failpoint(): SIGKILL of the own process only for a name listed in NORTHSTAR_FAILPOINTS', () => {
  const mod = new URL('../../src/common/failpoint.js', import.meta.url).href;
  const call = (env: string | undefined, name: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `const { failpoint } = await import(${JSON.stringify(mod)}); failpoint(${JSON.stringify(name)}); console.log('alive');`], {
      encoding: 'utf8',
      env: { ...process.env, NORTHSTAR_FAILPOINTS: env },
    });
  const killed = call(' start.after-cgroup, kill.request', 'kill.request');
  assert.deepEqual([killed.signal, killed.stdout], ['SIGKILL', '']);
  for (const [env, name] of [[undefined, 'kill.request'], ['', 'kill.request'], ['kill.request', 'kill'], ['start.after-cgroup', 'kill.request']] as const) {
    const r = call(env, name);
    assert.deepEqual([r.signal, r.status, r.stdout], [null, 0, 'alive\n'], `${String(env)} / ${name}`);
  }
});

describe('SIGKILL faults: a restarted runtime recovers', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  for (const [repo, point, installed] of [
    ['default', 'install.mid-upload', false],
    ['default', 'install.after-write', false],
    ['default', 'install.after-rename', true],
    ['memory', 'install.mid-upload', false],
    ['memory', 'install.after-write', false],
    ['memory', 'install.after-seal', false],
  ] as const) {
    test(`install into ${repo}: SIGKILL at ${point}`, async (t) => {
      const s = await scene(t);
      const { rt, client, mntNs } = await armed(t, s, [point]);
      await killedBy(rt, client.install(await extra(), repo));
      await checkDead(s, mntNs);
      // A package renamed into the fs repository is complete: it is listed; the mem repository starts empty.
      await checkRestart(t, s, installed ? [TC, TR, EXTRA] : [TC, TR]);
    });
  }

  for (const point of ['start.after-mount', 'start.after-cgroup', 'start.after-create', 'start.after-exec']) {
    test(`start: SIGKILL at ${point}`, async (t) => {
      const s = await scene(t);
      const { rt, client, mntNs } = await armed(t, s, [point]);
      await killedBy(rt, client.start(TC, { args: ['sleep'] }));
      await checkDead(s, mntNs);
      await checkRestart(t, s, [TC, TR]);
    });
  }

  test('kill: SIGKILL at kill.request, with the container running', async (t) => {
    const s = await scene(t);
    const { rt, client, mntNs } = await armed(t, s, ['kill.request']);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    await killedBy(rt, client.kill(TC, 15));
    await checkDead(s, mntNs);
    await checkRestart(t, s, [TC, TR]);
  });

  test('SIGKILL of the outer northstar process (the one waiting for the runtime), with the container running', async (t) => {
    const s = await scene(t);
    const { rt, client, mntNs } = await armed(t, s, []);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    rt.child.kill('SIGKILL');
    await rt.exited();
    // The runtime dies by its parent-death signal (setpriv --pdeathsig), its containers by theirs.
    await checkDead(s, mntNs);
    await checkRestart(t, s, [TC, TR]);
  });

  for (const point of ['shutdown.begin', 'shutdown.after-stop']) {
    test(`shutdown: SIGKILL at ${point}, with the container running`, async (t) => {
      const s = await scene(t);
      const { rt, client, mntNs } = await armed(t, s, [point]);
      await client.start(TC, { args: ['sleep'] });
      await nextNotification(client, isStarted(TC));
      await killedBy(rt, rt.stop());
      await checkDead(s, mntNs);
      await checkRestart(t, s, [TC, TR]);
    });
  }

  // The launch core (init's parent) or init is SIGKILLed by a debug command, which runs while
  // init is parked before the exec of the app. The exec races with the kill: the start either
  // fails or the container starts and exits at once; either way the runtime goes on serving,
  // reports what happened and cleans up.
  for (const victim of ['init', 'core'] as const) {
    test(`start: SIGKILL of the ${victim} while starting`, async (t) => {
      const s = await scene(t);
      const script = join(s.dir, 'kill-victim.sh');
      writeFileSync(script, victim === 'init' ? '#!/bin/sh\nkill -9 "$1"\n' : '#!/bin/sh\nkill -9 "$(cut -d" " -f4 /proc/$1/stat)"\n');
      chmodSync(script, 0o755);
      const { rt, client, mntNs } = await armed(t, s, [], { extraConfig: `[debug]\ncommands = ["${script} <PID>"]\n` });
      const exited = nextNotification(client, isExit(TC));
      const started = await client.start(TC, { args: ['sleep'] }).then(
        () => true,
        () => false,
      );
      t.diagnostic(started ? 'the start succeeded, the container exited' : 'the start failed');
      if (started) await exited;
      else void exited.catch(() => undefined);
      for (const d of cgroupDirs(s.cgroup)) await until(`${d}/test-container removed`, () => runCgroupGone(join(d, 'test-container')));
      await until('socket files removed', () => readdirSync(rt.socketDir).length === 0);
      assert.deepEqual(await client.list().then((l) => l.map(String).sort()), [TC, TR]);
      assert.equal((await client.inspect(TC)).process, null, 'the container is not reported as running');
      await client.close();
      assert.equal(await rt.stop(), 0);
      await checkDead(s, mntNs);
      await checkRestart(t, s, [TC, TR]);
    });
  }

  test('kill: SIGKILL at kill.request, with a container of the mem repository with a writable root running', async (t) => {
    const s = await scene(t);
    const { rt, client, mntNs } = await armed(t, s, ['kill.request']);
    const manifest = testContainerManifest('root:\n  writable: true\n  size: 4 MiB\n').replace(/^name: test-container$/m, 'name: mem-tc');
    const npk = await packTestVariant('mem-tc', manifest);
    await client.install(npk, 'memory');
    await client.start('mem-tc:0.0.1', { args: ['sleep'] });
    await nextNotification(client, isStarted('mem-tc:0.0.1'));
    const inodes = memfdInodes(rt.innerPid());
    assert.ok(loopsOnMemfds(inodes).length > 0, 'the mem package is mounted from a loop device on its memfd');
    await killedBy(rt, client.kill('mem-tc:0.0.1', 15));
    await checkDead(s, mntNs);
    await until('no loop device on the mem repository\'s memfds left', () => loopsOnMemfds(inodes).length === 0);
    assert.ok(existsSync(join(s.dir, 'run', 'writable-roots')), 'the killed run left its writable roots dir (removed by the restart)');
    await checkRestart(t, s, [TC, TR]);
  });

  test('SIGKILL of a running container\'s init: exit reported, cgroup and sockets removed', async (t) => {
    const s = await scene(t);
    const { rt, client } = await armed(t, s, []);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    const procs = cgroupDirs(s.cgroup)
      .map((d) => join(d, 'test-container', 'cgroup.procs'))
      .filter((f) => existsSync(f))
      .flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map(Number));
    // init is the container process whose parent is not in the container (the launch core).
    const init = [...new Set(procs)].find((p) => !procs.includes(Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])));
    assert.ok(init, `init found among ${procs.join(',')}`);
    const inos = cgroupDirs(s.cgroup).map((d) => cgroupIno(join(d, 'test-container')));
    const exit = nextNotification(client, isExit(TC));
    process.kill(init, 'SIGKILL');
    const n = await exit;
    assert.deepEqual(typeof n === 'object' && 'exit' in n ? JSON.parse(JSON.stringify(n.exit[1])) : undefined, { signalled: { signal: 9 } });
    for (const [i, d] of cgroupDirs(s.cgroup).entries()) await until(`${d}/test-container removed`, () => runCgroupGone(join(d, 'test-container'), inos[i]));
    assert.deepEqual(readdirSync(rt.socketDir), []);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    await client.kill(TC, 15);
    await nextNotification(client, isExit(TC));
  });
});
