/**
 * Restart policies (manifest `restart`, our extension; docs/runtime.md): a container that
 * ends by itself is started again with the same request after a doubling backoff, up to
 * `max_retries` in a row; a console kill, an exit 0 under `on-failure` and a kill during the
 * backoff never restart it. Tests wait on notifications; the runtime's log lines are read
 * only where they are the subject (the decision and its delay), in the order the runtime
 * wrote them.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client, Notification } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { isExit, isStarted, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest, type TestRuntime } from './harness.js';

const TC = 'test-container:0.0.1';

function variant(name: string, restart: string): Promise<string> {
  return packTestVariant(name, testContainerManifest(`restart:\n${restart}`).replace('name: test-container', `name: ${name}`));
}

const exitCode = (n: Notification): unknown => (n as { exit: [unknown, unknown] }).exit[1];

/** The runtime's log lines about restarts of `c` written before `marker` (a later line, already written). */
async function restartLines(rt: TestRuntime, c: string, marker: RegExp): Promise<string[]> {
  await rt.logged(marker);
  const end = rt.logs.findIndex((l) => marker.test(l));
  return rt.logs.slice(0, end).filter((l) => l.includes(c) && /restart/.test(l));
}

/** A later log line to read up to: another container's start, logged after everything before it. */
async function marker(client: Client): Promise<RegExp> {
  await client.start(TC, { args: ['sleep'] });
  await client.kill(TC, 9);
  await nextNotification(client, isExit(TC));
  return new RegExp(`Started ${TC.replace(/\./g, '\\.')} \\(\\d+\\)`);
}

describe('restart policies', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('on-failure: the same request again, backoff doubling, max_retries in a row, then it stays stopped', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.install(await variant('flaky', '  policy: on-failure\n  max_retries: 2\n  backoff: 50ms\n'), 'default');
    const c = 'flaky:0.0.1';
    await client.start(c, { args: ['exit', '3'] });
    for (let i = 0; i < 3; i++) {
      if (i > 0) await nextNotification(client, isStarted(c));
      const n = await nextNotification(client, isExit(c));
      assert.deepEqual(JSON.parse(JSON.stringify(exitCode(n))), { exit: { code: 3 } }, 'the restart repeats the arguments');
    }
    // Logged in the same step as the last exit notification.
    await rt.logged(/flaky:0\.0\.1 exited with code 3 after 2 restarts in a row \(restart\.max_retries\): it stays stopped/);
    const lines = await restartLines(rt, c, await marker(client));
    assert.equal(lines.filter((l) => /restart 1 of 2 in 50 ms \(restart\.policy on-failure\)/.test(l)).length, 1, lines.join('\n'));
    assert.equal(lines.filter((l) => /restart 2 of 2 in 100 ms/.test(l)).length, 1, lines.join('\n'));
    assert.equal(lines.filter((l) => /restart \d+ of/.test(l)).length, 2, 'no third restart');
    // inspect (ours): the last exit and the restart count.
    const data = await client.inspect(c);
    assert.equal(data.process, null);
    assert.equal(data.restarts, 2);
    assert.deepEqual(data.last_exit?.status, { exit: { code: 3 } });
    assert.ok(data.last_exit.duration > 0n && data.last_exit.time <= BigInt(Date.now()) && data.last_exit.time > BigInt(Date.now() - 600_000));
  });

  test('on-failure does not restart an exit 0; always does; a console kill never restarts', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.install(await variant('clean', '  policy: on-failure\n'), 'default');
    await client.install(await variant('keeper', '  policy: always\n  max_retries: 1\n  backoff: 10ms\n'), 'default');
    await client.install(await variant('killed', '  policy: always\n  backoff: 10ms\n'), 'default');
    await client.start('clean:0.0.1', { args: ['exit', '0'] });
    await nextNotification(client, isExit('clean:0.0.1'));
    await client.start('keeper:0.0.1', { args: ['exit', '0'] });
    await nextNotification(client, isExit('keeper:0.0.1'));
    await nextNotification(client, isStarted('keeper:0.0.1'));
    await nextNotification(client, isExit('keeper:0.0.1'));
    await client.start('killed:0.0.1', { args: ['sleep'] });
    await client.kill('killed:0.0.1', 15);
    await nextNotification(client, isExit('killed:0.0.1'));
    const m = await marker(client);
    assert.deepEqual(await restartLines(rt, 'clean:0.0.1', m), [], 'exit 0 under on-failure');
    assert.equal((await restartLines(rt, 'keeper:0.0.1', m)).filter((l) => /restart 1 of 1 in 10 ms \(restart\.policy always\)/.test(l)).length, 1);
    assert.deepEqual(await restartLines(rt, 'killed:0.0.1', m), [], 'a console kill');
    for (const c of ['clean:0.0.1', 'keeper:0.0.1', 'killed:0.0.1']) assert.equal((await client.inspect(c)).process, null, c);
  });

  test('a kill while a restart waits cancels it; a start by a client replaces it', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.install(await variant('slow', '  policy: on-failure\n  backoff: 30s\n'), 'default');
    const c = 'slow:0.0.1';
    await client.start(c, { args: ['exit', '1'] });
    await nextNotification(client, isExit(c));
    // Logged in the same step as the exit notification; the cancel before the answer to the kill.
    await rt.logged(/slow:0\.0\.1 exited with code 1: restart 1 in 30000 ms/);
    await client.kill(c, 15);
    await rt.logged(/restart of slow:0\.0\.1 cancelled by a kill/);
    assert.equal((await client.inspect(c)).process, null);
    // Again, and this time a client starts it during the backoff: it runs at once.
    await client.start(c, { args: ['exit', '1'] });
    await nextNotification(client, isExit(c));
    await client.start(c, { args: ['sleep'] });
    assert.ok((await client.inspect(c)).process !== null);
    await client.kill(c, 9);
    await nextNotification(client, isExit(c));
  });

  test('a logs follow goes on across restarts (policy and console) and ends when the container stays stopped', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.install(await variant('followed', '  policy: on-failure\n  max_retries: 1\n  backoff: 10ms\n'), 'default');
    const c = 'followed:0.0.1';
    await client.start(c, { args: ['sleep'] });
    await nextNotification(client, isStarted(c));
    const reader = await rt.client();
    t.after(() => reader.close());
    const follow = await reader.logs(c, { tail: 0, follow: true });
    const lines: string[] = [];
    const done = (async () => {
      for await (const l of follow) lines.push(l.line);
    })();
    const runs = (): number => lines.filter((l) => l === 'Executing "Sleep"').length;
    let expected = 0;
    const killInit = async (): Promise<void> => {
      // The run's first line is in the follow before it is killed (a kill right after
      // `started` may come before the app has printed anything).
      if (expected > 0) await until(`run ${expected}'s line in the follow`, () => runs() >= expected);
      expected += 1;
      // From the host: an end by itself (signal 9), which the policy restarts.
      process.kill(Number((await client.inspect(c)).process!.pid), 'SIGKILL');
      await nextNotification(client, isExit(c));
    };
    await killInit();
    await nextNotification(client, isStarted(c));
    // A console restart of the restarted run: the follow goes on with the next one too.
    await until("the restarted run's line in the follow", () => runs() >= 1);
    expected = 2;
    await client.restart(c, { timeoutMs: 5000 });
    await nextNotification(client, isExit(c));
    await nextNotification(client, isStarted(c));
    await killInit(); // the policy restarts it (its count began afresh with the console restart)
    await nextNotification(client, isStarted(c));
    await killInit(); // max_retries 1 reached: it stays stopped, the follow ends
    await done;
    assert.equal(follow.endReason, 'exit');
    // Each of the three later runs printed its lines into the same follow.
    assert.equal(lines.filter((l) => l === 'Executing "Sleep"').length, 3, lines.join('\n'));
  });
});
