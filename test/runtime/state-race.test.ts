/**
 * Issue 18 against a real runtime: containers keep starting and exiting (at once, after a
 * short random amount of work, or killed) while other clients loop over list, inspect,
 * the `nstar ps` sequence (list, then inspect of each), mount, umount and kill. A request
 * about one container must never fail because another changed state: no response may be
 * `unexpected`. When everything has settled, the state is consistent and nothing leaked.
 * Bounded by iteration counts; asserts on outcomes, never on timing.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { Client, Notification } from '../../src/client/index.js';
import { RuntimeError } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { packTestVariant, startRuntime, testContainerManifest, testNpks } from './harness.js';

const NAMES = ['race-a', 'race-b', 'race-c'];
const APPS = NAMES.map((n) => `${n}:0.0.1`);
const TR = 'test-resource:0.0.1';
const ALL = [...APPS, TR];
/** Start/exit cycles per container. */
const CYCLES = 12;

/** The test container under another name, without the realtime policy (a busy fill must not starve the host). */
function variant(name: string): string {
  return testContainerManifest()
    .replace('name: test-container', `name: ${name}`)
    .replace(/sched:\n {2}policy: !fifo\n {4}priority: 11\n/, '');
}

const rand = (n: number) => Math.floor(Math.random() * n);
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
/** A random pause to vary the interleaving (never waited on for an outcome). */
const jitter = (ms: number) => new Promise((r) => setTimeout(r, rand(ms)));

/** started/exit notifications per container, and waiting for a count to be reached. */
class Tracker {
  readonly starts = new Map<string, number>();
  readonly exits = new Map<string, number>();
  private waiters: (() => void)[] = [];
  see(n: Notification): void {
    if (typeof n !== 'object') return;
    if ('started' in n) this.bump(this.starts, n.started.toString());
    if ('exit' in n) this.bump(this.exits, n.exit[0].toString());
  }
  private bump(m: Map<string, number>, k: string): void {
    m.set(k, (m.get(k) ?? 0) + 1);
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }
  exitCount(c: string): number {
    return this.exits.get(c) ?? 0;
  }
  running(c: string): boolean {
    return (this.starts.get(c) ?? 0) > this.exitCount(c);
  }
  async until(pred: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`not reached within ${timeoutMs} ms: ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 1000);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

describe('state races (issue 18)', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('containers start and exit while clients list, inspect, ps, mount, umount and kill: never unexpected, consistent at the end', async (t) => {
    const npks = await testNpks();
    const variants = await Promise.all(NAMES.map((n) => packTestVariant(n, variant(n))));
    const rt = await startRuntime(t, { npks: [npks['test-resource']!, ...variants] });
    const clients: Client[] = [];
    const client = async (subscribe = false) => {
      const c = await rt.client({ subscribe });
      clients.push(c);
      return c;
    };
    t.after(async () => {
      for (const c of clients) await c.close().catch(() => undefined);
    });

    const tracker = new Tracker();
    const events = await client(true);
    void (async () => {
      try {
        for await (const n of events) tracker.see(n);
      } catch {
        // closed at the end
      }
    })();

    // Every failed response, by operation and error variant.
    const errors = new Map<string, number>();
    const unexpected: string[] = [];
    const note = (op: string, e: unknown): void => {
      if (e instanceof RuntimeError) {
        const key = `${op}: ${e.kind}`;
        errors.set(key, (errors.get(key) ?? 0) + 1);
        if (e.kind === 'unexpected') unexpected.push(`${op}: ${e.message}`);
      } else {
        unexpected.push(`${op}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      }
    };
    const noteResults = (op: string, results: readonly ({ ok: unknown } | { error: { container: unknown; error: object } })[]): void => {
      for (const r of results) if ('error' in r) note(`${op} ${String(r.error.container)}`, new RuntimeError(r.error.error as never));
    };
    let done = false;
    const counts = { starts: 0, inspects: 0, ps: 0, mounts: 0, kills: 0 };

    const starter = async (c: string) => {
      const cl = await client();
      for (let i = 0; i < CYCLES; i++) {
        const mode = pick(['exit', 'work', 'killed'] as const);
        const args = mode === 'exit' ? ['exit', String(rand(3))] : mode === 'work' ? ['fill', '/dev/null', String(rand(400_000_000))] : ['sleep'];
        const before = tracker.exitCount(c);
        try {
          await cl.start(c, { args });
          counts.starts++;
        } catch (e) {
          note(`start ${c}`, e);
          continue;
        }
        if (mode === 'killed') {
          await jitter(30);
          await cl.kill(c, pick([9, 15])).catch((e: unknown) => note(`kill ${c}`, e));
        }
        await tracker.until(() => tracker.exitCount(c) > before, `exit of ${c} (${mode})`);
      }
    };

    const ps = async () => {
      const cl = await client();
      while (!done) {
        try {
          for (const c of await cl.list()) {
            try {
              await cl.inspect(c);
            } catch (e) {
              note(`ps inspect ${c.toString()}`, e);
            }
          }
          counts.ps++;
        } catch (e) {
          note('list', e);
        }
      }
    };

    const inspector = async () => {
      const cl = await client();
      while (!done) {
        const c = pick(ALL);
        try {
          await cl.inspect(c);
          counts.inspects++;
        } catch (e) {
          note(`inspect ${c}`, e);
        }
      }
    };

    const mounter = async () => {
      const cl = await client();
      while (!done) {
        try {
          noteResults('umount', await cl.umount([pick(ALL), pick(ALL)]));
          noteResults('mount', await cl.mount([pick(ALL)]));
          counts.mounts++;
        } catch (e) {
          note('mount/umount', e);
        }
        await jitter(10);
      }
    };

    const killer = async () => {
      const cl = await client();
      while (!done) {
        const c = pick(APPS);
        try {
          await cl.kill(c, pick([9, 15]));
          counts.kills++;
        } catch (e) {
          note(`kill ${c}`, e);
        }
        await jitter(20);
      }
    };

    const others = [ps(), ps(), inspector(), mounter(), killer()];
    try {
      await Promise.all(APPS.map(starter));
    } finally {
      done = true;
      await Promise.all(others);
    }
    t.diagnostic(`work: ${JSON.stringify(counts)}; refused: ${JSON.stringify(Object.fromEntries(errors))}`);
    assert.deepEqual(unexpected, [], 'no response is unexpected');
    assert.ok(counts.starts > 0 && counts.ps > 0, 'the loops did work');
    // Only the refusals the state allows; inspect of an installed container never fails.
    for (const key of errors.keys()) {
      assert.match(key, /^(start \S+: (start_container_started|start_container_failed)|kill \S+: stop_container_not_started|umount \S+: umount_busy|mount \S+: invalid_container)$/, key);
    }

    // Settled: every start has its exit; nothing runs.
    const cl = await client();
    await tracker.until(() => APPS.every((c) => !tracker.running(c)), 'every container exited');
    assert.deepEqual((await cl.list()).map(String).sort(), [...ALL].sort());
    for (const c of ALL) assert.equal((await cl.inspect(c)).process, null, `${c} is not running`);
    // Nothing is busy any more: umount succeeds for the mounted ones, and is refused only
    // for the unmounted ones (naming themselves, not a user).
    const mountedBefore = new Map<string, boolean>();
    for (const c of ALL) mountedBefore.set(c, (await cl.inspect(c)).mounted);
    const results = await cl.umount(ALL);
    for (const [i, r] of results.entries()) {
      const c = ALL[i]!;
      if (mountedBefore.get(c)) assert.ok('ok' in r, `${c}: ${JSON.stringify(r)}`);
      else assert.deepEqual(JSON.parse(JSON.stringify(r)), { error: { container: c, error: { umount_busy: { container: c } } } });
    }
    for (const c of ALL) assert.equal((await cl.inspect(c)).mounted, false, `${c} is unmounted`);

    // Nothing leaked: no mounts, loop devices, container cgroups or socket files.
    const pid = rt.innerPid();
    assert.deepEqual(readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter((l) => l.includes(rt.dir)), []);
    assert.deepEqual(execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(rt.dir)), []);
    for (const ctrl of ['memory', 'cpu']) {
      const top = execFileSync('find', [`/sys/fs/cgroup/${ctrl}`, '-type', 'd', '-name', rt.cgroup], { encoding: 'utf8' }).split('\n').filter(Boolean);
      assert.equal(top.length, 1, `the runtime's cgroup in ${ctrl}`);
      const dirs = execFileSync('find', [`/sys/fs/cgroup/${ctrl}`, '-mindepth', '1', '-type', 'd', '-path', `*/${rt.cgroup}/*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
      assert.deepEqual(dirs, [], `container cgroups left in ${ctrl}`);
    }
    assert.deepEqual(readdirSync(rt.socketDir), []);
  });
});
