/**
 * The runtime's launch pool (`[launch] pool`, docs/configuration.md): cores spawned ahead of
 * time serve starts, and none is left after a shutdown; `pool = 0` spawns every core at its
 * start. A pooled core has its init cloned ahead, in new PID, IPC, UTS and network
 * namespaces (a sandbox): a container started from one sees exactly what it sees from a
 * core spawned at its start, each sandbox serves one container, and `network: host` never
 * takes one. (That no pooled core survives a SIGKILLed runtime is checked by faults-kill.test.ts,
 * which counts every process in the runtime's mount namespace after the kill.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { Client } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { isExit, isStarted, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest } from './harness.js';

const TC = 'test-container:0.0.1';
/** The test container without manifest sockets (their files are made before the core runs, so those starts spawn their own core). */
const PC = 'pooled:0.0.1';
const pooledNpk = (): Promise<string> => {
  const text = testContainerManifest()
    .replace('name: test-container', 'name: pooled')
    .replace('  /unix-sockets:\n    type: sockets\n', '');
  return packTestVariant('pooled', text.slice(0, text.indexOf('\nsockets:\n') + 1));
};

function stat(pid: number): { comm: string; ppid: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const close = s.lastIndexOf(')');
    return { comm: s.slice(s.indexOf('(') + 1, close), ppid: Number(s.slice(close + 2).split(' ')[1]) };
  } catch {
    return null;
  }
}

/** The runtime's forker (native/src/forker.c), the parent of the pool's cores. */
function forkerOf(runtime: number): number | null {
  const p = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .find((q) => {
      const s = stat(q);
      return s !== null && s.ppid === runtime && s.comm === 'nsl-forker';
    });
  return p ?? null;
}

/** Pooled cores waiting below the runtime's forker (named "nsl-(pooled)" until a plan names them). */
function pooledBelow(runtime: number): number[] {
  const forker = forkerOf(runtime);
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      const s = stat(p);
      return s !== null && forker !== null && s.ppid === forker && s.comm === 'nsl-(pooled)';
    });
}

/** The launcher of a container: the ancestor of its init whose parent is the runtime or its forker. */
function launcherOf(initPid: number, runtime: number): number | null {
  const forker = forkerOf(runtime);
  let p = initPid;
  for (let i = 0; i < 4; i++) {
    const s = stat(p);
    if (!s) return null;
    if (s.ppid === runtime || s.ppid === forker) return p;
    p = s.ppid;
  }
  return null;
}

/** A variant of the pooled container with `extra` manifest lines. */
const variantNpk = (name: string, extra: string): Promise<string> => {
  const text = testContainerManifest()
    .replace('name: test-container', `name: ${name}`)
    .replace('  /unix-sockets:\n    type: sockets\n', '');
  return packTestVariant(name, `${text.slice(0, text.indexOf('\nsockets:\n') + 1)}${extra}`);
};

/** What the container prints for `args` (between its Executing and Sleeping lines); then it is killed. */
async function output(client: Client, c: string, args: string[], ready: () => Promise<void>): Promise<string[]> {
  await ready();
  // The lines of earlier runs stay in the buffer: this run's output follows a new Executing line.
  const runs = (lines: string[]): number => lines.filter((l) => l.startsWith('Executing ')).length;
  const before = runs((await client.logs(c)).lines.map((l) => l.line));
  await client.start(c, { args });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const lines = (await client.logs(c)).lines.map((l) => l.line);
    const from = lines.findLastIndex((l) => l.startsWith('Executing '));
    const to = lines.indexOf('Sleeping...', from);
    if (runs(lines) > before && from >= 0 && to > from) {
      await client.kill(c, 9);
      await nextNotification(client, isExit(c));
      return lines.slice(from + 1, to);
    }
    if (Date.now() > deadline) throw new Error(`no output of ${args.join(' ')} from ${c}: ${lines.slice(-5).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** mountinfo without what differs between any two starts (ids, device numbers, loop devices, peer groups). */
function mounts(lines: string[]): string[] {
  return lines.map((l) =>
    l
      .replace(/^\d+ \d+ \d+:\d+ /, '')
      .replace(/\/dev\/loop\d+/g, '/dev/loopN')
      .replace(/(shared|master|propagate_from):\d+/g, '$1:N')
      .replace(/^\/tmp\/[^/ ]+\//, '/TMP/'),
  );
}

/** What a container sees of itself: mounts, network interfaces, hostname, ids, caps, fds, environment. */
async function observe(client: Client, c: string, ready: () => Promise<void>): Promise<Record<string, string[]>> {
  const outputOf = (cl: Client, name: string, args: string[]): Promise<string[]> => output(cl, name, args, ready);
  return {
    mounts: mounts(await outputOf(client, c, ['cat', '/proc/self/mountinfo'])),
    interfaces: (await outputOf(client, c, ['cat', '/proc/net/dev'])).slice(2).map((l) => l.trim().split(':')[0]!),
    hostname: await outputOf(client, c, ['cat', '/proc/sys/kernel/hostname']),
    status: (await outputOf(client, c, ['cat', '/proc/self/status'])).filter((l) => /^(Uid|Gid|Groups|Cap\w+|NoNewPrivs|Seccomp|Seccomp_filters|NSpid|NSpgid|NSsid):/.test(l)),
    inspect: (await outputOf(client, c, ['inspect'])).map((l) => l.replace(/\[\d+\]/g, '[N]').replace(/\/dev\/loop\d+/g, '/dev/loopN')),
    environ: await outputOf(client, c, ['cat', '/proc/self/environ']),
  };
}

/** The namespaces of a process, as the host sees them. */
function namespaces(pid: number): Record<string, string> {
  return Object.fromEntries(['pid', 'mnt', 'ipc', 'uts', 'net'].map((n) => [n, readlinkSync(`/proc/${pid}/ns/${n}`)]));
}

describe('launch pool', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a container from a pooled sandbox sees what it sees from a core spawned at its start', async (t) => {
    const seen: Record<string, Record<string, string[]>> = {};
    for (const pool of [2, 0]) {
      const { rt, client } = await startWithTestContainers(t, { extraConfig: `[launch]\npool = ${pool}\n` });
      await client.install(await pooledNpk(), 'default');
      const runtime = rt.innerPid();
      if (pool > 0) await until('2 pooled launch cores', () => pooledBelow(runtime).length === 2);
      const pooled = pooledBelow(runtime);
      await client.start(PC, { args: ['sleep'] });
      await nextNotification(client, isStarted(PC));
      const launcher = launcherOf((await client.inspect(PC)).process!.pid, runtime)!;
      assert.equal(pooled.includes(launcher), pool > 0, pool > 0 ? 'started from a pooled sandbox' : 'started from a spawned core');
      await client.kill(PC, 9);
      await nextNotification(client, isExit(PC));
      // Each start from a full pool (pool 2), or from a spawned core (pool 0).
      seen[String(pool)] = await observe(client, PC, async () => {
        if (pool > 0) await until('2 pooled launch cores', () => pooledBelow(runtime).length === 2);
      });
      await client.shutdown();
      assert.equal(await rt.exited(), 0);
    }
    const [pooled, spawned] = [seen['2']!, seen['0']!];
    assert.ok(pooled['mounts']!.length > 3 && pooled['interfaces']!.includes('lo'));
    for (const k of Object.keys(spawned)) assert.deepEqual(pooled[k], spawned[k], `${k} differs between a pooled sandbox and a spawned core`);
  });

  test('each sandbox serves one container, with namespaces of its own; network: host never takes one', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    const names = ['pa', 'pb', 'pc'];
    for (const n of names) await client.install(await variantNpk(n, ''), 'default');
    await client.install(await variantNpk('hostnet', 'network: host\n'), 'default');
    const runtime = rt.innerPid();
    const host = namespaces(runtime);
    // Three containers from the pool, all running at once (a namespace's inode may be
    // reused once it is gone, so they are compared while they all exist).
    const apps: Record<string, string>[] = [];
    for (const n of names) {
      await until('2 pooled launch cores', () => pooledBelow(runtime).length === 2);
      const pooled = pooledBelow(runtime);
      await client.start(`${n}:0.0.1`, { args: ['sleep'] });
      await nextNotification(client, isStarted(`${n}:0.0.1`));
      const app = (await client.inspect(`${n}:0.0.1`)).process!.pid;
      assert.ok(pooled.includes(launcherOf(app, runtime)!), `${n} from the pool`);
      apps.push(namespaces(app));
    }
    for (const [i, ns] of apps.entries()) {
      for (const k of Object.keys(ns)) {
        assert.notEqual(ns[k], host[k], `the ${k} namespace of start ${i} is not the runtime's`);
        for (const other of apps.slice(i + 1)) assert.notEqual(ns[k], other[k], `the ${k} namespace is never used twice`);
      }
    }
    for (const n of names) {
      await client.kill(`${n}:0.0.1`, 9);
      await nextNotification(client, isExit(`${n}:0.0.1`));
    }
    await until('2 pooled launch cores', () => pooledBelow(runtime).length === 2);
    const before = pooledBelow(runtime);
    await client.start('hostnet:0.0.1', { args: ['sleep'] });
    await nextNotification(client, isStarted('hostnet:0.0.1'));
    const app = (await client.inspect('hostnet:0.0.1')).process!.pid;
    assert.ok(!before.includes(launcherOf(app, runtime)!), 'network: host spawns its own core');
    assert.deepEqual(pooledBelow(runtime), before, 'the pool is untouched');
    assert.equal(namespaces(app)['net'], host['net'], "the host's network namespace");
    await client.kill('hostnet:0.0.1', 9);
    await nextNotification(client, isExit('hostnet:0.0.1'));
  });

  test('a start takes a pooled core, the pool refills, a start with sockets spawns its own, a shutdown leaves none', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.install(await pooledNpk(), 'default');
    const runtime = rt.innerPid();
    await until('2 pooled launch cores (the default)', () => pooledBelow(runtime).length === 2);
    const pooled = pooledBelow(runtime);
    await client.start(PC, { args: ['sleep'] });
    const data = await client.inspect(PC);
    const launcher = launcherOf(data.process!.pid, runtime);
    assert.ok(launcher !== null && pooled.includes(launcher), `launcher ${launcher} is one of the pooled cores ${pooled.join(', ')}`);
    assert.equal(stat(launcher)!.comm, `nsl-${PC}`.slice(0, 15));
    assert.equal(readFileSync(`/proc/${launcher}/cmdline`, 'latin1'), `northstar-launch ${PC}\0`);
    await until('the pool to refill', () => pooledBelow(runtime).length === 2);
    assert.ok(!pooledBelow(runtime).includes(launcher), 'a pooled core serves one container');
    // The test container has sockets: its core is spawned for it.
    const before = pooledBelow(runtime);
    await client.start(TC, { args: ['sleep'] });
    const own = launcherOf((await client.inspect(TC)).process!.pid, runtime);
    assert.ok(own !== null && !before.includes(own), 'a start with sockets spawns its own core');
    assert.deepEqual(pooledBelow(runtime), before);
    for (const c of [PC, TC]) {
      await client.kill(c, 15);
      await nextNotification(client, isExit(c));
    }
    const left = pooledBelow(runtime);
    await client.shutdown();
    assert.equal(await rt.exited(), 0);
    await until('no pooled core after the shutdown', () => left.every((p) => stat(p) === null));
  });

  test('pool = 0: no pooled core; starts spawn their own', async (t) => {
    const { rt, client } = await startWithTestContainers(t, { extraConfig: '[launch]\npool = 0\n' });
    await client.install(await pooledNpk(), 'default');
    const runtime = rt.innerPid();
    await client.start(PC, { args: ['sleep'] });
    const launcher = launcherOf((await client.inspect(PC)).process!.pid, runtime);
    assert.ok(launcher !== null);
    assert.equal(stat(launcher)!.comm, `nsl-${PC}`.slice(0, 15));
    assert.deepEqual(pooledBelow(runtime), []);
    await client.kill(PC, 15);
    await nextNotification(client, isExit(PC));
    assert.deepEqual(pooledBelow(runtime), []);
  });
});
