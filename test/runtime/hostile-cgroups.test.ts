/**
 * Hostile containers and cgroups (issue 9), against real runtimes:
 * - a container that forks until it fails is stopped at the pids limit (`[cgroups] pids_max`),
 *   and the runtime stays responsive;
 * - the runtime protects itself from the OOM killer (`oom_score_adj`) and its containers
 *   neither inherit that nor can lower their score;
 * - a cgroup the runtime did not make is never adopted, killed or removed;
 * - after a SIGKILL of the runtime, the next start removes the old run's cgroups and
 *   processes and leaves foreign cgroups alone.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CgroupManager, detectCgroupLayout } from '../../src/runtime/cgroups/index.js';
import { ValidationError } from '../../src/common/errors.js';
import { parseConfig } from '../../src/runtime/config.js';
import { parseManifest } from '../../src/manifest/index.js';
import { isRoot } from '../helpers/tmp.js';
import { isExit, isStarted, nextNotification, startRuntime, testNpks, type TestRuntime } from './harness.js';
import { recordingLog } from './npk-fixture.js';
import { until } from '../helpers/until.js';
import { alive, cgroupIno, mountCgroup2, procs, runCgroupGone } from '../helpers/cgroup.js';

const TC = 'test-container:0.0.1';
const layout = await detectCgroupLayout().catch(() => undefined);
const V1 = layout?.version === 1 && layout.mounts.pids !== undefined && layout.mounts.memory !== undefined;
/** Lowering an oom_score_adj needs CAP_SYS_RESOURCE (some sandboxes, like our CI's, lack it). */
const SYS_RESOURCE = ((BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`) >> 24n) & 1n) === 1n;
const SKIP = !isRoot ? 'needs root' : !V1 ? 'needs the cgroup v1 pids and memory hierarchies (this machine has them)' : false;

/** The runtime's top-level cgroup directory per v1 controller (from the runtime's own cgroups). */
function topDirs(rt: TestRuntime): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${rt.innerPid()}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]+):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of m[1]!.split(',')) {
      if (['memory', 'cpu', 'cpuacct', 'blkio', 'pids'].includes(c)) out[c] = join('/sys/fs/cgroup', c, m[2]!, rt.cgroup);
    }
  }
  return out;
}


async function sleeper(t: { after(fn: () => unknown): void }): Promise<ChildProcess> {
  const p = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => p.kill('SIGKILL'));
  await once(p, 'spawn');
  return p;
}

test('config: cgroups.pids_max and oom_score_adj, their defaults and their errors', () => {
  const base = 'run_dir = "/r"\ndata_dir = "/d"\nsocket_dir = "/s"\ncgroup = "northstar"\n';
  const d = parseConfig(base);
  assert.deepEqual([d.cgroups, d.oomScoreAdj], [{ pidsMax: 1024, prepare: true }, -900]);
  const c = parseConfig(`oom_score_adj = 0\n${base}[cgroups]\npids_max = "max"\n`);
  assert.deepEqual([c.cgroups, c.oomScoreAdj], [{ pidsMax: 'max', prepare: true }, 0]);
  assert.equal(parseConfig(`${base}[cgroups]\npids_max = 4194304\n`).cgroups.pidsMax, 4194304);
  const issues = (toml: string) => {
    try {
      parseConfig(toml);
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      return e.issues.map((i) => `${i.path}: ${i.rule}`);
    }
    return assert.fail('accepted');
  };
  assert.deepEqual(issues(`oom_score_adj = -1001\n${base}[cgroups]\npids_max = 0\n`), [
    'cgroups.pids_max: 0 is too small: a container needs at least its launcher, init and app; use "max" for no limit',
    'oom_score_adj: -1001 is out of range -1000..=1000',
  ]);
  assert.deepEqual(issues(`oom_score_adj = "low"\n${base}[cgroups]\npids_max = "lots"\nmemory = 1\n`), [
    'cgroups.memory: unknown key, expected one of `pids_max`, `prepare`',
    'cgroups.pids_max: expected an integer 1..=4194304 or "max", found "lots"',
    'oom_score_adj: expected an integer -1000..=1000, found a string',
  ]);
  assert.deepEqual(issues(`${base}[cgroups]\npids_max = 4194305\n`), ['cgroups.pids_max: 4194305 is above the kernel\'s limit 4194304; use "max" for no limit']);
});

describe('hostile containers: pids, OOM score, foreign and leftover cgroups', { skip: SKIP, timeout: 600_000 }, () => {
  test('a container that forks until it fails stops at pids_max, and the runtime stays responsive', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!], extraConfig: '[cgroups]\npids_max = 32\n' });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    await client.start(TC, { args: ['fork', '200'] });
    const line = await rt.waitLog(/fork: \d+ of 200 errno/, 30_000);
    const [, forked, errno] = /fork: (\d+) of 200 errno (\w+)/.exec(line)!;
    const pidsDir = join(topDirs(rt)['pids']!, 'test-container');
    const runIno = cgroupIno(pidsDir);
    const inCgroup = procs(pidsDir);
    assert.ok(Number(forked) < 200, `the fork bomb was stopped (forked ${forked}, errno ${errno})`);
    assert.equal(errno, 'EAGAIN');
    assert.ok(inCgroup.length <= 32, `${inCgroup.length} processes in the container's cgroup`);
    assert.equal(readFileSync(join(pidsDir, 'pids.max'), 'utf8').trim(), '32');
    assert.ok(Number(readFileSync(join(pidsDir, 'pids.current'), 'utf8')) <= 32);
    // The runtime answers and cleans up the whole tree.
    assert.equal((await client.list()).length, 2);
    assert.ok((await client.inspect(TC)).process);
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
    await until('the container cgroup to go', () => runCgroupGone(pidsDir, runIno));
    assert.ok(inCgroup.every((p) => !alive(p)), 'no process of the container is left');
  });

  test('the runtime has its oom_score_adj (default -900); its containers get 0 and cannot lower it', async (t) => {
    const npks = await testNpks();
    // Without CAP_SYS_RESOURCE no process may lower its score, so there the mechanism is
    // checked with a raised value (the containers must still be reset to 0).
    const value = SYS_RESOURCE ? -900 : 500;
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!], topConfig: SYS_RESOURCE ? '' : `oom_score_adj = ${value}` });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    assert.equal(readFileSync(`/proc/${rt.innerPid()}/oom_score_adj`, 'utf8').trim(), String(value));
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    const app = (await client.inspect(TC)).process!.pid;
    const all = procs(join(topDirs(rt)['memory']!, 'test-container'));
    assert.ok(all.includes(app) && all.length >= 2, `launcher, init and app in the cgroup: ${all.join(' ')}`);
    for (const pid of all) assert.equal(readFileSync(`/proc/${pid}/oom_score_adj`, 'utf8').trim(), '0', `oom_score_adj of container process ${pid}`);
    await client.kill(TC, 15);
    await nextNotification(client, isExit(TC));
    await client.start(TC, { args: ['put', '/proc/self/oom_score_adj', '-900'] });
    // Refused: EACCES by the kernel's floor, or EROFS where the container's /proc/self is read-only.
    const put = await rt.waitLog(/put \/proc\/self\/oom_score_adj: /);
    assert.match(JSON.parse(put).msg as string, /: (EACCES|EROFS|EPERM)$/, 'a container cannot lower its own score');
  });

  test('without CAP_SYS_RESOURCE the runtime starts unprotected and says so', { skip: SYS_RESOURCE && 'this process has CAP_SYS_RESOURCE' }, async (t) => {
    const rt = await startRuntime(t);
    // The warning for the deployer, written before the runtime was up.
    await rt.logged(/oom_score_adj: cannot write -900 to \/proc\/self\/oom_score_adj: EACCES .*not protected from the OOM killer/);
    assert.equal(readFileSync(`/proc/${rt.innerPid()}/oom_score_adj`, 'utf8').trim(), '0');
  });

  test('a foreign cgroup with the name a container would get is neither adopted nor killed', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    const top = topDirs(rt);
    // pids is the last hierarchy: the cgroups made in the others before it must be undone.
    const foreign = join(top['pids']!, 'test-container');
    mkdirSync(foreign);
    t.after(() => existsSync(foreign) && rmdirSync(foreign));
    const victim = await sleeper(t);
    writeFileSync(join(foreign, 'cgroup.procs'), String(victim.pid));
    await assert.rejects(client.start(TC, { args: ['sleep'] }), /cgroup .*test-container exists and was not made by this runtime/);
    assert.ok(alive(victim.pid!) && victim.exitCode === null && victim.signalCode === null, 'the foreign process lives');
    assert.deepEqual(procs(foreign), [victim.pid]);
    assert.ok(!existsSync(join(top['memory']!, 'test-container')), 'the memory cgroup made before the refusal is removed');
    // Once the foreign cgroup is gone the container starts and exits normally; the runtime
    // shuts down; the foreign process is never touched.
    writeFileSync(join(top['pids']!, '..', 'cgroup.procs'), String(victim.pid));
    rmdirSync(foreign);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    await client.kill(TC, 15);
    await nextNotification(client, isExit(TC));
    assert.equal(await rt.stop(), 0);
    assert.ok(alive(victim.pid!), 'the foreign process survived the start, the exit and the shutdown');
  });

  test('a foreign top-level cgroup is used but never removed; a foreign process in it is never killed', async (t) => {
    const L = layout as Extract<typeof layout, { version: 1 }>;
    const name = `ns-foreign-${randomBytes(4).toString('hex')}`;
    const memTop = join(L.mounts.memory!, L.own.memory!, name);
    const cpuTop = join(L.mounts.cpu!, L.own.cpu!, name);
    mkdirSync(memTop);
    mkdirSync(cpuTop);
    t.after(() => {
      for (const d of [memTop, cpuTop]) if (existsSync(d)) rmdirSync(d);
    });
    const runDir = mkdtempSync(join(tmpdir(), 'ns-owned-'));
    t.after(() => rmSync(runDir, { recursive: true, force: true }));
    const log = recordingLog();
    const cg = await CgroupManager.open({ name, log, runDir });
    t.after(() => cg.shutdown());
    const c = await cg.create('hello', parseManifest('name: hello\nversion: 0.0.1\ninit: /hello\nuid: 1000\ngid: 1000\n'));
    assert.ok(existsSync(join(memTop, 'hello')));
    await c.destroy();
    await cg.shutdown();
    assert.ok(existsSync(memTop) && existsSync(cpuTop), 'the top level we did not make is still there');
    assert.ok(!existsSync(join(L.mounts.pids!, L.own.pids!, name)), 'the top level we made is removed');
    assert.ok(!existsSync(join(runDir, 'cgroups.owned')), 'nothing left recorded');
  });

  test('after a SIGKILL of the runtime the next start removes the old cgroups and processes and leaves foreign ones', async (t) => {
    const npks = await testNpks();
    const dir = mkdtempSync(join(tmpdir(), 'ns-crash-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const first = await startRuntime(t, { dir, npks: [npks['test-container']!, npks['test-resource']!] });
    const c1 = await first.client();
    await c1.start(TC, { args: ['fork', '5'] });
    // The app's output is the subject: its 5 children exist once it says so (counted below).
    await first.waitLog(/fork: 5 of 5 errno 0/);
    const top = topDirs(first);
    const containerDirs = Object.values(top).map((d) => join(d, 'test-container'));
    const old = procs(join(top['pids']!, 'test-container'));
    assert.ok(old.length >= 8, `launcher, init, app and 5 children: ${old.join(' ')}`);
    // A foreign cgroup inside the old top level, with a process: it must survive.
    const foreign = join(top['pids']!, 'foreign');
    mkdirSync(foreign);
    const victim = await sleeper(t);
    writeFileSync(join(foreign, 'cgroup.procs'), String(victim.pid));
    t.after(() => {
      victim.kill('SIGKILL');
      return once(victim, 'exit').then(() => {
        if (existsSync(foreign)) rmdirSync(foreign);
        if (existsSync(top['pids']!)) rmdirSync(top['pids']!);
      });
    });
    c1.close();

    process.kill(first.innerPid(), 'SIGKILL');
    await first.exited();
    const second = await startRuntime(t, { dir });
    for (const d of containerDirs) assert.ok(!existsSync(d), `${d} of the old run is removed`);
    for (const [c, d] of Object.entries(top)) if (c !== 'pids') assert.ok(!existsSync(d), `${d} of the old run is removed`);
    assert.deepEqual(old.filter(alive), [], 'no process of the old run is left');
    assert.ok(existsSync(foreign) && alive(victim.pid!), 'the foreign cgroup and its process are left alone');
    assert.deepEqual(procs(foreign), [victim.pid]);
    assert.ok(second.logs.some((l) => /cannot remove .*pids.* left by an earlier run/.test(l)), 'the old top level holding the foreign cgroup stays');
  });
});

test('v2 for real: crash cleanup kills the tasks of our cgroup but not those of a foreign child cgroup in it', { skip: isRoot ? false : 'needs root to mount cgroup2' }, async (t) => {
  const m2 = mountCgroup2(t);
  if (!m2) return;
  const { mnt, own, undo } = m2;
  const runDir = mkdtempSync(join(tmpdir(), 'ns-owned-'));
  undo.push(() => rmSync(runDir, { recursive: true, force: true }));
  const name = `ns-test-${randomBytes(4).toString('hex')}`;
  const L = { version: 2 as const, root: mnt, own };
  // The "crashed" run: a container cgroup with a task of ours, never shut down.
  const first = await CgroupManager.open({ name, log: recordingLog(), layout: L, runDir });
  const c = await first.create('hello', parseManifest('name: hello\nversion: 0.0.1\ninit: /hello\nuid: 1000\ngid: 1000\n'));
  const dir = join(mnt, own, name, 'hello');
  const ours = spawn('sleep', ['600'], { stdio: 'ignore' });
  undo.push(() => ours.kill('SIGKILL'));
  await once(ours, 'spawn');
  writeFileSync(c.procs[0]!, String(ours.pid));
  // Someone else's cgroup inside it, with a task.
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  const victim = spawn('sleep', ['600'], { stdio: 'ignore' });
  undo.push(async () => {
    victim.kill('SIGKILL');
    await once(victim, 'exit').catch(() => undefined);
    for (const d of [foreign, dir, join(mnt, own, name)]) if (existsSync(d)) rmdirSync(d);
  });
  await once(victim, 'spawn');
  writeFileSync(join(foreign, 'cgroup.procs'), String(victim.pid));
  const oursExit = once(ours, 'exit');

  const log = recordingLog();
  const second = await CgroupManager.open({ name: `${name}-2`, log, layout: L, runDir });
  undo.push(() => second.shutdown());
  assert.equal(((await oursExit) as [number | null, string | null])[1], 'SIGKILL', 'the old run\'s task is killed');
  assert.ok(alive(victim.pid!) && victim.exitCode === null, 'the task of the foreign child cgroup lives');
  assert.deepEqual(procs(foreign), [victim.pid]);
  assert.ok(existsSync(dir), 'our cgroup holding a foreign one stays');
  assert.ok(log.lines.some((l) => l.level === 'warn' && /cannot remove .*hello left by an earlier run/.test(l.msg)), JSON.stringify(log.lines));
});
