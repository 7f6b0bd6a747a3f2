/**
 * The await rule of the state machine (docs/design/state-locking.md), with recording fakes
 * of the ports whose calls can be held open: each test parks one operation inside an await
 * of a port, changes the world from outside (an exit, an uninstall, a umount, a shutdown),
 * then lets it go on, and checks that the parked operation neither crashed nor acted on
 * what it read before the await. The real runtime is exercised by state-race.test.ts.
 */
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { Notification } from '../../src/api/model.js';
import { Container } from '../../src/common/container.js';
import type { ContainerProcess, ExitStatus } from '../../src/launch/launcher.js';
import type { LaunchPlan } from '../../src/launch/plan.js';
import { parseConfig } from '../../src/runtime/config.js';
import { silentLogger } from '../../src/runtime/logger.js';
import type { CgroupPort } from '../../src/runtime/ports.js';
import { FakeMounter, FakeRepo, Gate, RESOURCE, noConsole } from './fakes.js';
import { State, OpError } from '../../src/runtime/state.js';


const APP = (name: string, version: string, resource?: string) =>
  `name: ${name}\nversion: ${version}\ninit: /bin/app\nuid: 1000\ngid: 1000\n` +
  (resource ? `mounts:\n  /res:\n    type: resource\n    name: ${resource}\n    version: '>=0.0.1'\n    dir: /\n` : '');

const RUN = mkdtempSync(join(tmpdir(), 'ns-interleave-'));
process.on('exit', () => rmSync(RUN, { recursive: true, force: true }));


class FakeCgroups {
  statisticsGate: Gate | undefined;
  /** Removal of a cgroup takes a while (rmdir of every hierarchy, a kill of stragglers). */
  slowDestroy = false;
  constructor(private readonly log: string[]) {}
  port(): CgroupPort {
    const log = this.log;
    const statisticsGate = () => this.statisticsGate;
    const slow = () => this.slowDestroy;
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
            await statisticsGate()?.pass();
            return { memory: { memory: {}, kmem: {}, kmem_tcp: {} }, cpu: {}, blkio: {} };
          },
          async destroy() {
            if (slow()) await new Promise((r) => setTimeout(r, 5));
            log.push(`cgroup destroyed ${name}`);
          },
        };
      },
      async shutdown() {
        log.push('cgroups shutdown');
      },
    } as unknown as CgroupPort;
  }
}

class FakeLauncher {
  readonly procs: { exit: (s: ExitStatus) => void; proc: ContainerProcess }[] = [];
  createGate: Gate | undefined;
  constructor(private readonly log: string[]) {}
  async create(plan: LaunchPlan): Promise<ContainerProcess> {
    this.log.push(`create ${plan.container}`);
    await this.createGate?.pass();
    let exit!: (s: ExitStatus) => void;
    const exited = new Promise<ExitStatus | null>((r) => (exit = r));
    const proc = {
      container: plan.container,
      pid: 4242 + this.procs.length,
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

async function setup(manifests: string[]) {
  const log: string[] = [];
  const repo = new FakeRepo('r', manifests, log);
  const mounter = new FakeMounter(RUN, log);
  const cgroups = new FakeCgroups(log);
  const launcher = new FakeLauncher(log);
  const config = parseConfig('run_dir = "/run"\ndata_dir = "/data"\nsocket_dir = "/sock"\ncgroup = "northstar"\n');
  const s = new State({ config, repositories: new Map([[repo.id, repo]]), mounter, cgroups: cgroups.port(), launcher, log: silentLogger(), serveConsole: noConsole });
  await s.load();
  return { s, log, repo, mounter, cgroups, launcher };
}

const C = (t: string) => Container.parse(t);
const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
function notified(s: State, pred: (n: Notification) => boolean): Promise<Notification> {
  return new Promise((resolve) => {
    const off = s.subscribe((n) => {
      if (pred(n)) {
        off();
        resolve(n);
      }
    });
  });
}
const isExit = (n: Notification) => typeof n === 'object' && 'exit' in n;

test('inspect: the container exits while its statistics are read (issue 18)', async () => {
  const { s, cgroups, launcher } = await setup([APP('app', '1.0.0')]);
  await s.start(C('app:1.0.0'));
  cgroups.statisticsGate = new Gate();
  const inspecting = s.inspect(C('app:1.0.0'));
  await cgroups.statisticsGate.reached;
  // Exit and its whole clean-up happen while inspect waits for the statistics.
  const exited = notified(s, isExit);
  launcher.procs[0]!.exit({ code: 0 });
  await exited;
  assert.equal(s.isRunning(C('app:1.0.0')), false);
  cgroups.statisticsGate.open();
  // The answer describes the state the request saw: running, with that process.
  const data = await inspecting;
  assert.equal(data.process?.pid, 4242);
  assert.equal(data.mounted, true);
  // Asked again: not running.
  assert.equal((await s.inspect(C('app:1.0.0'))).process, null);
});

test('start waiting behind an uninstall re-reads the entry: invalid container, nothing mounted or launched', async () => {
  const { s, repo, mounter, launcher } = await setup([APP('app', '1.0.0')]);
  repo.removeGate = new Gate();
  const uninstalling = s.uninstall(C('app:1.0.0'), false);
  await repo.removeGate.reached;
  const starting = s.start(C('app:1.0.0'));
  repo.removeGate.open();
  await uninstalling;
  await assert.rejects(starting, (e: unknown) => e instanceof OpError && JSON.stringify(e.error) === '{"invalid_container":{"container":"app:1.0.0"}}');
  assert.deepEqual(launcher.procs.length, 0);
  assert.deepEqual([...mounter.mounted], []);
  assert.deepEqual(s.list(), []);
});

test('umount of a resource while its user is starting waits for the start and is then refused as busy', async () => {
  const { s, mounter, launcher } = await setup([APP('app', '1.0.0', 'res'), RESOURCE('res', '0.0.1')]);
  launcher.createGate = new Gate();
  const starting = s.start(C('app:1.0.0'));
  await launcher.createGate.reached; // the start has mounted res and is creating the container
  const unmounting = s.umount([C('res:0.0.1')]);
  launcher.createGate.open();
  await starting;
  assert.deepEqual(plain(await unmounting), [{ error: { container: 'res:0.0.1', error: { umount_busy: { container: 'app:1.0.0' } } } }]);
  assert.ok(mounter.mounted.has('res:0.0.1'));
});

test('uninstall of a resource while its user is starting waits and is then refused as busy', async () => {
  const { s, mounter, launcher } = await setup([APP('app', '1.0.0', 'res'), RESOURCE('res', '0.0.1')]);
  launcher.createGate = new Gate();
  const starting = s.start(C('app:1.0.0'));
  await launcher.createGate.reached;
  const uninstalling = s.uninstall(C('res:0.0.1'), false);
  launcher.createGate.open();
  await starting;
  await assert.rejects(uninstalling, (e: unknown) => e instanceof OpError && JSON.stringify(e.error) === '{"umount_busy":{"container":"app:1.0.0"}}');
  assert.ok(mounter.mounted.has('res:0.0.1'));
  assert.deepEqual(s.list().map(String), ['app:1.0.0', 'res:0.0.1']);
});

test('two users of one resource start at once: the resource is mounted once and both run', async () => {
  const { s, log, mounter } = await setup([APP('one', '1.0.0', 'res'), APP('two', '1.0.0', 'res'), RESOURCE('res', '0.0.1')]);
  mounter.mountGate = new Gate();
  const starts = [s.start(C('one:1.0.0')), s.start(C('two:1.0.0'))];
  await mounter.mountGate.reached;
  mounter.mountGate.open();
  const results = await Promise.allSettled(starts);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled'],
    JSON.stringify(results.map((r) => (r.status === 'rejected' ? plain((r.reason as OpError).error ?? String(r.reason)) : 'ok'))),
  );
  assert.equal(log.filter((l) => l === 'mount res:0.0.1').length, 1);
  assert.ok(s.isRunning(C('one:1.0.0')) && s.isRunning(C('two:1.0.0')));
});

test('shutdown while a start is in flight: the start finishes, is stopped, and nothing stays mounted or running', async () => {
  const { s, log, mounter, launcher } = await setup([APP('app', '1.0.0', 'res'), RESOURCE('res', '0.0.1')]);
  launcher.createGate = new Gate();
  const starting = s.start(C('app:1.0.0'));
  await launcher.createGate.reached;
  const stopping = s.shutdown(1000);
  // A start that comes after the shutdown began is refused.
  await assert.rejects(s.start(C('app:1.0.0')), (e: unknown) => e instanceof OpError && 'unexpected' in e.error);
  launcher.createGate.open();
  await starting;
  await stopping;
  assert.equal(s.isRunning(C('app:1.0.0')), false);
  assert.deepEqual([...mounter.mounted], []);
  assert.ok(log.indexOf('cgroup destroyed app') >= 0 && log.indexOf('cgroup destroyed app') < log.indexOf('cgroups shutdown'), log.join('\n'));
});

test('shutdown waits for the exit handlers before it unmounts and removes the runtime cgroup', async () => {
  const { s, log, cgroups } = await setup([APP('app', '1.0.0')]);
  await s.start(C('app:1.0.0'));
  cgroups.slowDestroy = true;
  await s.shutdown(1000);
  const destroyed = log.indexOf('cgroup destroyed app');
  assert.ok(destroyed >= 0 && destroyed < log.indexOf('umount app:1.0.0') && destroyed < log.indexOf('cgroups shutdown'), log.join('\n'));
  // Twice is once.
  await s.shutdown(1000);
  assert.equal(log.filter((l) => l === 'cgroups shutdown').length, 1);
});
