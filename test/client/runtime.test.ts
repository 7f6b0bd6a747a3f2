/**
 * The console and the client against the real runtime (a `northstar` process per test):
 * upstream's console catalogue (area L) on raw lines, the exact inspect JSON, tokens,
 * notifications and shutdown through the client.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Container } from '../../src/common/container.js';
import { RuntimeError, type Notification } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { startRuntime, testNpks } from '../runtime/harness.js';
import { Raw } from '../console/fake.js';

const TC = Container.parse('test-container:0.0.1');
const TR = Container.parse('test-resource:0.0.1');

async function runtime(t: Parameters<typeof startRuntime>[0]): ReturnType<typeof startRuntime> {
  const npks = await testNpks();
  return startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
}

describe('client and console against the runtime', { skip: !isRoot && 'needs root (the runtime mounts and starts containers)', timeout: 600_000 }, () => {
  test('area L: version match, low, higher; too long line; npk size limit', async (t) => {
    const rt = await runtime(t);
    // api_version_match
    const ok = await Raw.open(t, rt.consoleUrl);
    assert.equal(await ok.ask('{"connect":{"version":"0.9.3","subscribe_notifications":false}}'), '{"connect_ack":null}');
    const list = JSON.parse((await ok.ask('{"request":"list"}')) ?? 'null') as { response: { list: string[] } };
    assert.deepEqual(list.response.list.sort(), ['test-container:0.0.1', 'test-resource:0.0.1']);
    // api_version_low / api_version_minor_version_low
    const low = await Raw.open(t, rt.consoleUrl);
    assert.equal(await low.ask('{"connect":{"version":"0.8.3","subscribe_notifications":false}}'), '{"connect_nack":{"invalid_protocol_version":{"version":"0.9.3"}}}');
    assert.equal(await low.eof(), true);
    // api_version_higher
    const higher = await Raw.open(t, rt.consoleUrl);
    assert.equal(await higher.ask('{"connect":{"version":"0.9.4","subscribe_notifications":false}}'), '{"connect_ack":null}');
    // too_long_line
    const long = await Raw.open(t, rt.consoleUrl);
    await long.connect();
    long.send(`{"request":{"mount":{"containers":[${Array.from({ length: 100_000 }, () => '"hello-world:0.0.1"').join(',')}]}}}\n`);
    assert.equal(await long.eof(), true);
    // npk_size_limit_violation
    const big = await Raw.open(t, rt.consoleUrl);
    await big.connect();
    big.send('{"request":{"install":{"repository":"memory","size":999999999}}}\n');
    assert.equal(await big.line(), null);
    // The runtime is unaffected.
    const client = await rt.client();
    t.after(() => client.close());
    assert.deepEqual(await client.ident(), Container.parse('extern:0.0.0'));
    assert.deepEqual(await client.repositories(), ['default', 'memory']);
  });

  test('inspect: exact wire JSON (upstream manifest keys) and the typed view, stopped and running', async (t) => {
    const rt = await runtime(t);
    const raw = await Raw.open(t, rt.consoleUrl);
    await raw.connect();
    const line = (await raw.ask('{"request":{"inspect":{"container":"test-resource:0.0.1"}}}')) ?? '';
    assert.equal(
      line,
      '{"response":{"inspect":{"ok":{"container":"test-resource:0.0.1","data":{"manifest":{"name":"test-resource","version":"0.0.1","uid":1000,"gid":1000},"repository":"default","mounted":false,"process":null}}}}}',
    );
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    const stopped = await client.inspect(TC);
    assert.equal(stopped.process, null);
    assert.equal(stopped.manifest.init, '/test-container');
    await client.start(TC, { args: ['sleep'] });
    const running = await client.inspect(TC);
    assert.equal(running.mounted, true);
    assert.ok(running.process && running.process.pid > 1);
    assert.equal(typeof running.process.uptime, 'bigint');
    const text = (await raw.ask('{"request":{"inspect":{"container":"test-container:0.0.1"}}}')) ?? '';
    const keys = Object.keys((JSON.parse(text) as { response: { inspect: { ok: { data: { manifest: object } } } } }).response.inspect.ok.data.manifest);
    assert.deepEqual(keys, ['name', 'version', 'init', 'uid', 'gid', 'sched', 'mounts', 'seccomp', 'rlimits', 'sockets', 'io']);
    await client.kill(TC, 'SIGKILL');
    for await (const n of client) {
      if (typeof n === 'object' && 'exit' in n) {
        assert.deepEqual(n.exit, [TC, { signalled: { signal: 9 } }]);
        break;
      }
    }
    await assert.rejects(client.kill(TC), (e: unknown) => e instanceof RuntimeError && e.kind === 'stop_container_not_started');
  });

  test('tokens and mount results through the client', async (t) => {
    const rt = await runtime(t);
    const client = await rt.client();
    t.after(() => client.close());
    const token = await client.createToken('extern', 'shared');
    assert.equal(await client.verifyToken(token, 'extern', 'shared'), 'Ok');
    assert.equal(await client.verifyToken(token, 'someone', 'shared'), 'Invalid');
    const unknown = Container.parse('nope:0.0.1');
    assert.deepEqual(await client.mount([TR, unknown]), [
      { ok: { container: TR } },
      { error: { container: unknown, error: { invalid_container: { container: unknown } } } },
    ]);
    assert.deepEqual(await client.umount([TR]), [{ ok: { container: TR } }]);
  });

  test('shutdown through the client: success, the shutdown notification (README 5), the runtime exits 0', async (t) => {
    const rt = await runtime(t);
    const watcher = await rt.client({ subscribe: true });
    t.after(() => watcher.close());
    const client = await rt.client();
    await client.shutdown();
    const seen: Notification[] = [];
    for await (const n of watcher) seen.push(n);
    assert.ok(seen.includes('shutdown'), `notifications: ${JSON.stringify(seen)}`);
    assert.equal(await rt.exited(), 0);
  });
});
