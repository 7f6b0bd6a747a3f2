/**
 * Warm starts (issue 15): a mounted container's cgroup is made ahead of its start
 * (`cgroups.prepare`, default true), and an exit is reported once no task of the container
 * is left, before its cgroup directories are removed. Against a real runtime:
 *
 * - mount prepares the cgroup (configured: pids.max); the start takes that very directory;
 * - the exit notification means every process of the container is gone; the run's cgroup is
 *   then removed and a fresh, empty one made, with no statistics carried over;
 * - a start right after an exit (the same name) waits for that removal and works, many times;
 * - other cgroup settings (another version of the name) are never served a prepared cgroup
 *   made for different ones;
 * - umount and shutdown remove a prepared cgroup; `cgroups.prepare = false` makes none.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { detectCgroupLayout } from '../../src/runtime/cgroups/index.js';
import { ValidationError } from '../../src/common/errors.js';
import { parseConfig } from '../../src/runtime/config.js';
import { isRoot } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { alive, cgroupIno, procs, runCgroupGone } from '../helpers/cgroup.js';
import { isExit, isStarted, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest, type TestRuntime } from './harness.js';

const layout = await detectCgroupLayout().catch(() => undefined);
const SKIP = !isRoot ? 'needs root' : layout === undefined ? 'no cgroup hierarchy' : false;

/** The test container without its realtime policy (realtime containers are never prepared). */
function warmManifest(name: string, version = '0.0.1', cgroups = ''): string {
  return testContainerManifest()
    .replace('name: test-container', `name: ${name}`)
    .replace('version: 0.0.1', `version: ${version}`)
    .replace(/sched:\n {2}policy: !fifo\n {4}priority: 11\n/, cgroups);
}

/** The container cgroup directories of `name` below the runtime's top-level cgroup (every hierarchy used). */
function containerDirs(rt: TestRuntime, name: string): string[] {
  const own = new Map<string, string>();
  for (const line of readFileSync(`/proc/${rt.innerPid()}/cgroup`, 'utf8').split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) for (const c of m[1]!.split(',')) own.set(c, m[2]!);
  }
  if (layout!.version === 2) return [join(layout!.root, own.get('') ?? '/', rt.cgroup, name)];
  const dirs = new Set<string>();
  for (const c of ['memory', 'pids', 'cpu'] as const) {
    const mount = layout!.mounts[c];
    if (mount) dirs.add(join(mount, own.get(c) ?? '/', rt.cgroup, name));
  }
  return [...dirs];
}


/** The pids file of the cgroup dirs: v1 `pids` hierarchy or the v2 directory. */
function pidsDir(dirs: string[]): string | undefined {
  return dirs.find((d) => existsSync(join(d, 'pids.max')));
}

test('config: cgroups.prepare is a boolean, true by default', () => {
  const base = 'run_dir = "/r"\ndata_dir = "/d"\nsocket_dir = "/s"\ncgroup = "northstar"\n';
  assert.equal(parseConfig(base).cgroups.prepare, true);
  assert.equal(parseConfig(`${base}[cgroups]\nprepare = false\n`).cgroups.prepare, false);
  assert.throws(
    () => parseConfig(`${base}[cgroups]\nprepare = "yes"\n`),
    (e: unknown) => e instanceof ValidationError && e.issues.some((i) => i.path === 'cgroups.prepare' && i.rule === 'expected true or false, found a string'),
  );
});

describe('warm starts: cgroups made ahead of the start, removed after the exit', { skip: SKIP, timeout: 600_000 }, () => {
  test('mount prepares the cgroup, the start takes it, the exit means no process is left, a fresh one follows', async (t) => {
    const { rt, client } = await startWithTestContainers(t, { extraConfig: '[cgroups]\npids_max = 64\n' });
    await client.install(await packTestVariant('warm', warmManifest('warm')), 'default');
    const C = 'warm:0.0.1';
    const dirs = containerDirs(rt, 'warm');
    assert.ok(dirs.length > 0);
    assert.ok(dirs.every((d) => !existsSync(d)), 'no cgroup before the mount');

    await client.mount([C]);
    // Prepared: made in every hierarchy and configured (pids.max is written last).
    const configured = (): boolean => {
      const pids = pidsDir(dirs);
      return pids === undefined || readFileSync(join(pids, 'pids.max'), 'utf8').trim() === '64';
    };
    await until('the cgroup prepared and configured in every hierarchy', () => dirs.every((d) => existsSync(join(d, 'cgroup.procs'))) && configured());
    for (const d of dirs) assert.deepEqual(procs(d), [], `${d} has no task before the start`);
    const prepared = dirs.map(cgroupIno);

    // The app forks three children that stay: four processes of the app besides init.
    await client.start(C, { args: ['fork', '3'] });
    await nextNotification(client, isStarted(C));
    await rt.waitLog(/fork: 3 of 3 errno 0/, 30_000);
    assert.deepEqual(dirs.map(cgroupIno), prepared, 'the start took the prepared directories');
    const app = (await client.inspect(C)).process!.pid;
    const running = [...new Set(dirs.flatMap(procs))];
    assert.ok(running.includes(app) && running.length >= 5, `launcher, init, app and its children in the cgroup: ${running.join(' ')}`);

    const exit = nextNotification(client, isExit(C));
    await client.kill(C, 15);
    await exit;
    // At the exit notification: every process of the container is gone.
    for (const p of running) assert.ok(!alive(p), `process ${p} of the container left at the exit notification`);
    // The run's directories go; fresh ones are made for the next start (no task, no usage carried over).
    for (const [i, d] of dirs.entries()) await until(`${d} replaced`, () => cgroupIno(d) !== undefined && cgroupIno(d) !== prepared[i]);
    for (const d of dirs) assert.deepEqual(procs(d), [], `${d} is empty`);
    const mem = dirs.find((d) => existsSync(join(d, 'memory.max_usage_in_bytes')));
    if (mem) assert.equal(readFileSync(join(mem, 'memory.max_usage_in_bytes'), 'utf8').trim(), '0', 'no memory usage carried over from the run');
    const cpu = dirs.find((d) => existsSync(join(d, 'cpuacct.usage')));
    if (cpu) assert.equal(readFileSync(join(cpu, 'cpuacct.usage'), 'utf8').trim(), '0', 'no cpu usage carried over from the run');

    // Back to back: each start waits for the last run's removal in its chain and succeeds.
    for (let i = 0; i < 10; i++) {
      const exited = nextNotification(client, isExit(C));
      await client.start(C, { args: ['exit', String(i)] });
      const n = await exited;
      assert.deepEqual(JSON.parse(JSON.stringify(typeof n === 'object' && 'exit' in n ? n.exit[1] : null)), { exit: { code: i } });
    }
    await until('a fresh cgroup after the last exit', () => dirs.every((d) => existsSync(join(d, 'cgroup.procs')) && procs(d).length === 0));

    // umount removes the prepared cgroup.
    await client.umount([C]);
    await until('the prepared cgroup removed at umount', () => dirs.every((d) => !existsSync(d)));
    // A shutdown removes a prepared one too (and the top level).
    await client.mount([C]);
    await until('prepared again at mount', () => dirs.every((d) => existsSync(d)));
    await client.close();
    assert.equal(await rt.stop(), 0);
    for (const d of dirs) assert.ok(!existsSync(d), `${d} left after the shutdown`);
  });

  test('a prepared cgroup made for other settings is not used: the start gets its own settings', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.install(await packTestVariant('warm-one', warmManifest('warm', '0.0.1')), 'default');
    await client.install(await packTestVariant('warm-two', warmManifest('warm', '0.0.2', 'cgroups:\n  memory:\n    memory_hard_limit: 67108864\n')), 'default');
    const dirs = containerDirs(rt, 'warm');
    await client.mount(['warm:0.0.1']);
    await until('prepared for 0.0.1', () => dirs.every((d) => existsSync(join(d, 'cgroup.procs'))));
    const prepared = dirs.map(cgroupIno);
    const mem = dirs.find((d) => existsSync(join(d, 'memory.limit_in_bytes')) || existsSync(join(d, 'memory.max')));
    await client.start('warm:0.0.2', { args: ['sleep'] });
    await nextNotification(client, isStarted('warm:0.0.2'));
    assert.notDeepEqual(dirs.map(cgroupIno), prepared, 'the cgroup prepared for 0.0.1 was not used');
    if (mem) {
      const file = existsSync(join(mem, 'memory.limit_in_bytes')) ? 'memory.limit_in_bytes' : 'memory.max';
      assert.equal(readFileSync(join(mem, file), 'utf8').trim(), '67108864', "0.0.2's memory limit");
    }
    await client.kill('warm:0.0.2', 9);
    await nextNotification(client, isExit('warm:0.0.2'));
  });

  test('cgroups.prepare = false: no cgroup before the start, and none after the exit', async (t) => {
    const { rt, client } = await startWithTestContainers(t, { extraConfig: '[cgroups]\nprepare = false\n' });
    await client.install(await packTestVariant('warm', warmManifest('warm')), 'default');
    const C = 'warm:0.0.1';
    const dirs = containerDirs(rt, 'warm');
    await client.mount([C]);
    await client.start(C, { args: ['sleep'] });
    await nextNotification(client, isStarted(C));
    const inos = dirs.map(cgroupIno);
    assert.ok(inos.every((i) => i !== undefined), 'the start made its cgroup');
    await client.kill(C, 9);
    await nextNotification(client, isExit(C));
    for (const [i, d] of dirs.entries()) await until(`${d} removed after the exit`, () => runCgroupGone(d, inos[i]));
    // Still mounted, and nothing is made ahead: after more requests the directories stay absent.
    await client.list();
    await client.inspect(C);
    for (const d of dirs) assert.ok(!existsSync(d), `${d} made although cgroups.prepare = false`);
    assert.ok(!rt.logs.some((l) => /cgroup of warm prepared/.test(l)));
  });
});
