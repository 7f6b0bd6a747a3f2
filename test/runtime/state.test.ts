/**
 * The state machine's logic with recording fakes for repositories, mounts, cgroups and
 * the launcher (the real ones are exercised by lifecycle/daemon tests as root).
 */
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Container } from '../../src/common/container.js';
import type { ContainerProcess, ExitStatus } from '../../src/launch/launcher.js';
import type { LaunchPlan } from '../../src/launch/plan.js';
import { parseConfig } from '../../src/runtime/config.js';
import { silentLogger } from '../../src/runtime/logger.js';
import type { CgroupPort } from '../../src/runtime/ports.js';
import { FakeMounter, FakeRepo, RESOURCE, noConsole } from './fakes.js';
import { State, OpError } from '../../src/runtime/state.js';

function manifest(name: string, version: string, extra = ''): string {
  return `name: ${name}\nversion: ${version}\ninit: /bin/app\nuid: 1000\ngid: 1000\n${extra}`;
}

const RUN = mkdtempSync(join(tmpdir(), 'ns-state-'));
process.on('exit', () => rmSync(RUN, { recursive: true, force: true }));


function fakeCgroups(log: string[]): CgroupPort {
  return {
    version: 1,
    top: '/northstar',
    async create(name: string) {
      log.push(`cgroup ${name}`);
      return {
        name,
        path: `/northstar/${name}`,
        dirs: [],
        procs: [],
        async pids() {
          return [];
        },
        async statistics() {
          return { memory: { memory: {}, kmem: {}, kmem_tcp: {} }, cpu: {}, blkio: {} };
        },
        async destroy() {
          log.push(`cgroup destroyed ${name}`);
        },
      };
    },
    async shutdown() {},
  } as unknown as CgroupPort;
}

/** A launcher whose containers exit when told to. */
class FakeLauncher {
  readonly plans: LaunchPlan[] = [];
  failCreate: Error | undefined;
  readonly procs: { exit: (s: ExitStatus) => void; proc: ContainerProcess }[] = [];
  async create(plan: LaunchPlan): Promise<ContainerProcess> {
    this.plans.push(plan);
    if (this.failCreate) throw this.failCreate;
    let exit!: (s: ExitStatus) => void;
    const exited = new Promise<ExitStatus | null>((r) => (exit = r));
    const proc = {
      container: plan.container,
      pid: 4242,
      stdout: null,
      stderr: null,
      console: null,
      exited,
      exec: async () => {},
      started: async () => {},
      kill: (sig: number) => {
        exit({ signal: sig });
        return true;
      },
      destroy: () => exit({ signal: 9 }),
    } as unknown as ContainerProcess;
    this.procs.push({ exit, proc });
    return proc;
  }
}

function state(repos: FakeRepo[]) {
  const config = parseConfig('run_dir = "/run"\ndata_dir = "/data"\nsocket_dir = "/sock"\ncgroup = "northstar"\n');
  const mounter = new FakeMounter(RUN);
  const cglog: string[] = [];
  const launcher = new FakeLauncher();
  const s = new State({
    config,
    repositories: new Map(repos.map((r) => [r.id, r])),
    mounter,
    cgroups: fakeCgroups(cglog),
    launcher,
    log: silentLogger(),
    serveConsole: noConsole,
  });
  return { s, mounter, cglog, launcher };
}

const C = (t: string) => Container.parse(t);

test('a container in two repositories: the first repository (by id) wins', async () => {
  const { s } = state([new FakeRepo('b', [manifest('app', '1.0.0')]), new FakeRepo('a', [manifest('app', '1.0.0')])]);
  await s.load();
  assert.deepEqual(s.list().map(String), ['app:1.0.0']);
  assert.equal((await s.inspect(C('app:1.0.0'))).repository, 'a');
});

test('resources resolve to the highest matching version (spec README item 3)', async () => {
  const repo = new FakeRepo('r', [
    manifest('app', '1.0.0', "mounts:\n  /message:\n    type: resource\n    name: message\n    version: '>=0.0.1, <0.1.0'\n    dir: /\n"),
    RESOURCE('message', '0.0.1'),
    RESOURCE('message', '0.0.3'),
    RESOURCE('message', '0.1.0'),
  ]);
  const { s, launcher, mounter } = state([repo]);
  await s.load();
  await s.start(C('app:1.0.0'));
  assert.ok(mounter.mounted.has('message:0.0.3'));
  assert.ok(!mounter.mounted.has('message:0.0.1') && !mounter.mounted.has('message:0.1.0'));
  // The bind source is the resource's root, its `dir` resolved inside it by the core.
  const bind = launcher.plans[0]!.mounts.find((m) => m.sourceRoot?.includes('message'));
  assert.deepEqual([bind?.sourceRoot, bind?.source], [join(RUN, 'message:0.0.3'), '.']);
  // The resource is busy while its user runs; the error names the user.
  const [r] = await s.umount([C('message:0.0.3')]);
  assert.deepEqual(JSON.parse(JSON.stringify(r)), { error: { container: 'message:0.0.3', error: { umount_busy: { container: 'app:1.0.0' } } } });
  await assert.rejects(s.uninstall(C('message:0.0.3'), false), (e: unknown) => e instanceof OpError && 'umount_busy' in e.error);
});

test('a failed launch rolls back the mounts and the cgroup that start made', async () => {
  const repo = new FakeRepo('r', [manifest('app', '1.0.0', "mounts:\n  /m:\n    type: resource\n    name: res\n    version: '1'\n    dir: /\n"), RESOURCE('res', '1.0.0')]);
  const { s, mounter, cglog, launcher } = state([repo]);
  await s.load();
  launcher.failCreate = new Error('boom');
  await assert.rejects(s.start(C('app:1.0.0')), (e: unknown) => e instanceof OpError && 'start_container_failed' in e.error);
  assert.deepEqual([...mounter.mounted], []);
  assert.deepEqual(cglog, ['cgroup app', 'cgroup destroyed app']);
  assert.equal(s.isRunning(C('app:1.0.0')), false);
  // A mount that fails mid-way also leaves nothing mounted.
  launcher.failCreate = undefined;
  mounter.failFor.add('res:1.0.0');
  await assert.rejects(s.start(C('app:1.0.0')), (e: unknown) => e instanceof OpError && 'unexpected' in e.error);
  assert.deepEqual([...mounter.mounted], []);
});

test('two starts of one container at once: one runs, the other is told it is started', async () => {
  const { s, launcher } = state([new FakeRepo('r', [manifest('app', '1.0.0'), manifest('app', '2.0.0')])]);
  await s.load();
  const results = await Promise.allSettled([s.start(C('app:1.0.0')), s.start(C('app:1.0.0')), s.start(C('app:2.0.0'))]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  for (const r of results.filter((x) => x.status === 'rejected')) {
    assert.ok((r as PromiseRejectedResult).reason instanceof OpError);
    assert.deepEqual(JSON.parse(JSON.stringify((r as PromiseRejectedResult).reason.error)), { start_container_started: { container: 'app:1.0.0' } });
  }
  assert.equal(launcher.plans.length, 1);
});

test('exit: the cgroup goes before the exit notification, and a restart right after works', async () => {
  const { s, launcher, cglog } = state([new FakeRepo('r', [manifest('app', '1.0.0')])]);
  await s.load();
  const seen: string[] = [];
  s.subscribe((n) => seen.push(`${JSON.stringify(n)} after ${cglog.length} cgroup events`));
  await s.start(C('app:1.0.0'));
  launcher.procs[0]!.exit({ code: 3 });
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(seen, ['{"started":"app:1.0.0"} after 1 cgroup events', '{"exit":["app:1.0.0",{"exit":{"code":3}}]} after 2 cgroup events']);
  await s.start(C('app:1.0.0'));
  assert.ok(s.isRunning(C('app:1.0.0')));
});

test('kill validates the signal first, then the state', async () => {
  const { s } = state([new FakeRepo('r', [manifest('app', '1.0.0')])]);
  await s.load();
  await assert.rejects(s.kill(C('app:1.0.0'), 0), (e: unknown) => e instanceof OpError && 'unexpected' in e.error && e.error.unexpected.error.startsWith('kill app:1.0.0: 0 is not a signal number'));
  await assert.rejects(s.kill(C('nope:1.0.0'), 15), (e: unknown) => e instanceof OpError && 'invalid_container' in e.error);
  await assert.rejects(s.kill(C('app:1.0.0'), 15), (e: unknown) => e instanceof OpError && 'stop_container_not_started' in e.error);
});
