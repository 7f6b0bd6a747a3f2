/**
 * `nstar logs` (ours): the kept output of a container, -n, -t, --stream, --format json, -f
 * until the container exits, and a clear error for a container whose output is not kept.
 * Against a real runtime with the test container.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot } from '../helpers/tmp.js';
import { isExit, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest } from '../runtime/harness.js';
import { nstar, spawnNstar } from './run.js';

const TC = 'test-container:0.0.1';
const EXEC = 'Executing "Print { message: "hi there", io: Stdout }"';

describe('nstar logs', { skip: !isRoot && 'needs root (the runtime starts containers)', timeout: 600_000 }, () => {
  test('prints the kept lines; -n, -t, --stream, --format json; -f ends when the container exits', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    const u = ['-u', rt.consoleUrl];
    await client.start(TC, { args: ['print', 'hi there'] });
    // The runtime's reported buffer, until the print has run.
    for (let i = 0; !(await client.logs(TC)).lines.some((l) => l.line === 'Sleeping...'); i++) {
      assert.ok(i < 6000, 'the print ran (bound for a broken runtime only)');
      await new Promise((r) => setTimeout(r, 20));
    }
    const all = await nstar(...u, 'logs', 'test-container');
    assert.deepEqual([all.code, all.stdout, all.stderr], [0, `${EXEC}\nhi there\nSleeping...\n`, '']);
    const last = await nstar(...u, 'logs', '-n', '1', TC);
    assert.equal(last.stdout, 'Sleeping...\n');
    const stamped = await nstar(...u, 'logs', '--tail', '2', '-t', TC);
    assert.match(stamped.stdout, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z hi there\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z Sleeping\.\.\.\n$/);
    const none = await nstar(...u, 'logs', '--stream', 'stderr', TC);
    assert.deepEqual([none.code, none.stdout, none.stderr], [0, '', '']);
    const json = await nstar(...u, 'logs', '-n', '1', '--format', 'json', TC);
    const parsed = JSON.parse(json.stdout) as { time: number; stream: string; line: string };
    assert.deepEqual([parsed.stream, parsed.line], ['stdout', 'Sleeping...']);
    assert.ok(parsed.time <= Date.now() && parsed.time > Date.now() - 600_000);

    // -f: the kept lines, then it runs until the container's exit.
    const follow = spawnNstar([...u, 'logs', '-f', TC]);
    await rt.until(() => follow.stdout().includes('Sleeping...'), 'nstar logs -f printed the kept lines');
    await client.kill(TC, 15);
    const done = await follow.done;
    assert.deepEqual([done.code, done.stdout, done.stderr], [0, `${EXEC}\nhi there\nSleeping...\n`, '']);
    await nextNotification(client, isExit(TC));
    // -f of a stopped container prints what is kept and ends.
    const stopped = await nstar(...u, 'logs', '-f', '-n', '1', TC);
    assert.deepEqual([stopped.code, stopped.stdout], [0, 'Sleeping...\n']);
  });

  test('a container whose io is discard or inherit says so', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    const m = testContainerManifest().replace('name: test-container', 'name: quiet').replace('io:\n  stdout: pipe\n  stderr: pipe', 'io:\n  stdout: discard\n  stderr: inherit');
    await client.install(await packTestVariant('quiet', m), 'memory');
    const r = await nstar('-u', rt.consoleUrl, 'logs', 'quiet');
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '', "Error: quiet:0.0.1 keeps no output: its manifest's io.stdout is discard, io.stderr is inherit (it goes to the runtime's own stderr); only io: pipe output is kept for nstar logs\n"]);
    const one = await nstar('-u', rt.consoleUrl, 'logs', '--stream', 'stdout', 'test-container');
    assert.equal(one.code, 0, 'a pipe container with nothing printed yet: no lines, no error');
    const bad = await nstar('-u', rt.consoleUrl, 'logs', '--stream', 'stdin', 'test-container');
    assert.equal(bad.code, 2);
  });
});
