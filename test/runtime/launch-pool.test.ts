/**
 * The runtime's launch pool (`[launch] pool`, docs/configuration.md): cores spawned ahead of
 * time serve starts, and none is left after a shutdown; `pool = 0` spawns every core at its
 * start. (That no pooled core survives a SIGKILLed runtime is checked by faults-kill.test.ts,
 * which counts every process in the runtime's mount namespace after the kill.)
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { isRoot } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { isExit, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest } from './harness.js';

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

/** Pooled cores waiting below the runtime (named "nsl-(pooled)" until a plan names them). */
function pooledBelow(runtime: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number)
    .filter((p) => {
      const s = stat(p);
      return s !== null && s.ppid === runtime && s.comm === 'nsl-(pooled)';
    });
}

/** The launcher of a container: the ancestor of its init whose parent is the runtime. */
function launcherOf(initPid: number, runtime: number): number | null {
  let p = initPid;
  for (let i = 0; i < 4; i++) {
    const s = stat(p);
    if (!s) return null;
    if (s.ppid === runtime) return p;
    p = s.ppid;
  }
  return null;
}

describe('launch pool', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
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
