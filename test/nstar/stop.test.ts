/**
 * `nstar stop` and `nstar restart` (ours): SIGTERM, then SIGKILL once the grace time has
 * passed; restart then starts the container with the request it last ran with. Against a
 * real runtime with the test container.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot } from '../helpers/tmp.js';
import { isExit, isStarted, nextNotification, startWithTestContainers } from '../runtime/harness.js';
import { nstar } from './run.js';

const TC = 'test-container:0.0.1';

describe('nstar stop', { skip: !isRoot && 'needs root (the runtime starts containers)', timeout: 600_000 }, () => {
  test('a container that ends on SIGTERM stops at once; one that ignores it is killed after -t; a stopped one is an error', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    const u = ['-u', rt.consoleUrl];
    await client.start(TC, { args: ['sleep'] });
    const soft = await nstar(...u, 'stop', 'test-container');
    assert.deepEqual([soft.code, soft.stdout, soft.stderr], [0, `stopped ${TC}: signal 15\n`, '']);
    await nextNotification(client, isExit(TC));

    await client.start(TC, { args: ['ignore-term', '2'] });
    const hard = await nstar(...u, 'stop', '-t', '1', '--format', 'json', TC);
    assert.equal(hard.code, 0, hard.stderr);
    assert.deepEqual(JSON.parse(hard.stdout), { stopped: TC, killed: true, exit: { signalled: { signal: 9 } } });
    await nextNotification(client, isExit(TC));

    // ps (ours): the last exit instead of a bare "mounted".
    const ps = (await nstar(...u, 'ps')).stdout.split('\n').find((l) => l.startsWith(' test-container '));
    assert.match(ps ?? '', /\| killed \(9\) \d+s ago +\|/);
    const json = JSON.parse((await nstar(...u, 'ps', '--format', 'json')).stdout) as { container: string; last_exit?: { status: unknown } }[];
    assert.deepEqual(json.find((e) => e.container === TC)?.last_exit?.status, { signalled: { signal: 9 } });

    const idle = await nstar(...u, 'stop', TC);
    assert.deepEqual([idle.code, idle.stderr], [1, `Error: container ${TC} is not started\n`]);
    const bad = await nstar(...u, 'stop', '-t', 'soon', TC);
    assert.equal(bad.code, 2, "a usage error");
    assert.match(bad.stderr, /option '-t, --time <seconds>' argument 'soon' is invalid\. must be a number/);
  });

  test('restart: a running container is stopped and started with the same request; a stopped one is started; one ignoring SIGTERM is killed after -t', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    const u = ['-u', rt.consoleUrl];
    // A stopped container: started with what it last ran with (exit 7 proves the arguments).
    await client.start(TC, { args: ['exit', '7'] });
    await nextNotification(client, isExit(TC));
    const again = await nstar(...u, 'restart', TC);
    assert.deepEqual([again.code, again.stdout, again.stderr], [0, `restarted ${TC}\n`, '']);
    const n = await nextNotification(client, isExit(TC));
    assert.deepEqual(JSON.parse(JSON.stringify(n)), { exit: [TC, { exit: { code: 7 } }] });

    // A running one that ignores SIGTERM: killed after 1 s, then running again, not restarted twice.
    await client.start(TC, { args: ['ignore-term', '1'] });
    await nextNotification(client, isStarted(TC));
    const hard = await nstar(...u, 'restart', '-t', '1', '--format', 'json', TC);
    assert.deepEqual([hard.code, JSON.parse(hard.stdout)], [0, { restarted: TC }], hard.stderr);
    const killed = await nextNotification(client, isExit(TC));
    assert.deepEqual(JSON.parse(JSON.stringify(killed)), { exit: [TC, { signalled: { signal: 9 } }] });
    await nextNotification(client, isStarted(TC));
    assert.ok((await client.inspect(TC)).process !== null, 'running again');
    await rt.logged(/restart of test-container:0\.0\.1: no exit within 1000 ms of SIGTERM: SIGKILL/);
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
  });
});
