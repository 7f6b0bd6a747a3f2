/**
 * The runtime for real: upstream's behaviour catalogue areas B, C, D (in part), H, I
 * and the N list, against a runtime started per test.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Client, Notification } from '../../src/client/index.js';
import { RuntimeError } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { startRuntime, testNpks, packTestVariant, testContainerManifest, type TestRuntime } from './harness.js';
import { nextNotification, isExit, isStarted } from './harness.js';

const TC = 'test-container:0.0.1';
const TR = 'test-resource:0.0.1';

const next = nextNotification;

async function setup(t: Parameters<typeof startRuntime>[0], extra: Parameters<typeof startRuntime>[1] = {}): Promise<{ rt: TestRuntime; client: Client }> {
  const npks = await testNpks();
  const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!], ...extra });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  return { rt, client };
}

function exitOf(n: Notification): unknown {
  return typeof n === 'object' && 'exit' in n ? n.exit[1] : undefined;
}

describe('runtime lifecycle', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('start, Sleeping, SIGTERM: exit Signalled(15), ten times in a row', async (t) => {
    const { client } = await setup(t);
    for (let i = 0; i < 10; i++) {
      await client.start(TC, { args: ['sleep'] });
      await next(client, isStarted(TC));
      await client.kill(TC, 15);
      const n = await next(client, isExit(TC));
      assert.deepEqual(exitOf(n), { signalled: { signal: 15 } });
    }
  });

  test('exit codes and a crash are reported exactly; restart right after exit works', async (t) => {
    const { client } = await setup(t);
    for (const code of [0, 1, 10, 127, 128, 255]) {
      await client.start(TC, { args: ['exit', String(code)] });
      assert.deepEqual(exitOf(await next(client, isExit(TC))), { exit: { code } });
    }
    for (let i = 0; i < 3; i++) {
      await client.start(TC, { args: ['crash'] });
      assert.deepEqual(exitOf(await next(client, isExit(TC))), { exit: { code: 101 } });
    }
  });

  test('error variants: unknown, already started, not started, missing resource, reserved env, uninstall busy', async (t) => {
    const { rt, client } = await setup(t);
    await assert.rejects(client.start('unknown:0.0.12'), (e: unknown) => e instanceof RuntimeError && 'invalid_container' in e.error);
    await assert.rejects(client.kill(TC, 15), (e: unknown) => e instanceof RuntimeError && 'stop_container_not_started' in e.error);
    await assert.rejects(client.kill(TC, 0), (e: unknown) => e instanceof RuntimeError && 'unexpected' in e.error && / 0 is not a signal number/.test(e.message));
    await assert.rejects(
      client.start(TC, { env: { NORTHSTAR_NAME: 'x' } }),
      (e: unknown) => e instanceof RuntimeError && 'invalid_arguments' in e.error,
    );
    await client.start(TC, { args: ['sleep'] });
    await next(client, isStarted(TC));
    await assert.rejects(client.start(TC), (e: unknown) => e instanceof RuntimeError && JSON.stringify(e.error) === `{"start_container_started":{"container":"${TC}"}}`);
    await assert.rejects(client.uninstall(TC, { wipe: true }), (e: unknown) => e instanceof RuntimeError && JSON.stringify(e.error) === `{"umount_busy":{"container":"${TC}"}}`);
    // The resource in use: umount names the user.
    const [r] = await client.umount([TR]);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), { error: { container: TR, error: { umount_busy: { container: TC } } } });
    await client.kill(TC, 15);
    await next(client, isExit(TC));
    const [ok] = await client.umount([TR]);
    assert.deepEqual(JSON.parse(JSON.stringify(ok)), { ok: { container: TR } });
    // Start with the resource unmounted: it is mounted on demand.
    rt.logs.length = 0;
    await client.start(TC, { args: ['cat', '/resource/hello'] });
    await rt.waitLog(/hello from test-resource/);
    await client.kill(TC, 15);
    assert.deepEqual(exitOf(await next(client, isExit(TC))), { signalled: { signal: 15 } });
    // Without the resource the start fails naming it.
    await client.uninstall(TR);
    await assert.rejects(
      client.start(TC),
      (e: unknown) =>
        e instanceof RuntimeError &&
        JSON.stringify(e.error) === `{"start_container_missing_resource":{"container":"${TC}","resource":"test-resource","version":">=0.0.1"}}`,
    );
  });

  test('identity: uid, gid, ppid 1, sid 1, no capabilities, manifest env and NORTHSTAR_*', async (t) => {
    const { rt, client } = await setup(t);
    await client.start(TC, { args: ['inspect'] });
    // The output is the subject: each line is waited for.
    for (const re of [/getuid: 1000/, /getgid: 1000/, /getppid: 1/, /getsid: 1/, /caps bounding: \{\}/, /caps effective: \{\}/, /caps permitted: \{\}/, /proc \/proc proc ro,/]) {
      await rt.waitLog(re);
    }
  });

  test('install into mem and fs, duplicates, invalid repository, uninstall with wipe', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    assert.deepEqual(await client.list(), []);
    assert.deepEqual(await client.repositories(), ['default', 'memory']);
    await client.install(npks['test-resource']!, 'memory');
    assert.deepEqual(JSON.parse(JSON.stringify(await next(client, (n) => typeof n === 'object' && 'install' in n))), { install: TR });
    await assert.rejects(client.install(npks['test-resource']!, 'default'), (e: unknown) => e instanceof RuntimeError && 'install_duplicate' in e.error);
    await assert.rejects(client.install(npks['test-resource']!, 'memory'), (e: unknown) => e instanceof RuntimeError && 'unexpected' in e.error);
    await assert.rejects(client.install(npks['test-container']!, 'whooha'), (e: unknown) => e instanceof RuntimeError && JSON.stringify(e.error) === '{"invalid_repository":{"repository":"whooha"}}');
    // The connection is still in step after the drained upload.
    await client.install(npks['test-container']!, 'default');
    assert.ok(readdirSync(rt.repoDir).includes(`${TC}.npk`));
    await client.start(TC, { args: ['write', 'persisted', '/data/file'] });
    // The app's output is the subject: it prints Sleeping once it has written the file.
    await rt.waitLog(/Sleeping/);
    await client.kill(TC, 15);
    await next(client, isExit(TC));
    assert.equal(readFileSync(join(rt.dataDir, 'test-container', 'file'), 'utf8'), 'persisted');
    await client.uninstall(TC, { wipe: true });
    assert.deepEqual(JSON.parse(JSON.stringify(await next(client, (n) => typeof n === 'object' && 'uninstall' in n))), { uninstall: TC });
    assert.ok(!existsSync(join(rt.dataDir, 'test-container')));
    assert.ok(!readdirSync(rt.repoDir).includes(`${TC}.npk`));
    await assert.rejects(client.uninstall('fckptn:0.0.1'), (e: unknown) => e instanceof RuntimeError && 'invalid_container' in e.error);
  });

  test('mount API: unknown, known and unknown, already mounted', async (t) => {
    const { client } = await setup(t);
    const r = await client.mount([TR, 'foo:0.0.1']);
    assert.deepEqual(JSON.parse(JSON.stringify(r)), [
      { ok: { container: TR } },
      { error: { container: 'foo:0.0.1', error: { invalid_container: { container: 'foo:0.0.1' } } } },
    ]);
    const again = await client.mount([TR]);
    assert.deepEqual(JSON.parse(JSON.stringify(again)), [{ error: { container: TR, error: { invalid_container: { container: TR } } } }]);
    const u = await client.umount([TR, TR]);
    assert.deepEqual(JSON.parse(JSON.stringify(u)), [{ ok: { container: TR } }, { error: { container: TR, error: { umount_busy: { container: TR } } } }]);
  });

  test('uid and gid from the manifest for several uids; another version of the same name is refused', async (t) => {
    const { rt, client } = await setup(t);
    for (const uid of [10, 3000]) {
      const variant = await packTestVariant(`tc-uid-${uid}`, testContainerManifest().replace('version: 0.0.1', `version: 0.0.${uid}`).replace('uid: 1000', `uid: ${uid}`).replace('gid: 1000', `gid: ${uid}`));
      await client.install(variant, 'memory');
      const c = `test-container:0.0.${uid}`;
      await client.start(c, { args: ['sleep'] });
      await next(client, isStarted(c));
      await assert.rejects(client.start(TC), (e: unknown) => e instanceof RuntimeError && JSON.stringify(e.error) === `{"start_container_started":{"container":"${c}"}}`);
      await client.kill(c, 9);
      assert.deepEqual(exitOf(await next(client, isExit(c))), { signalled: { signal: 9 } });
      rt.logs.length = 0;
      await client.start(c, { args: ['inspect'] });
      await rt.waitLog(new RegExp(`getuid: ${uid}`));
      await rt.waitLog(new RegExp(`getgid: ${uid}`));
      await client.kill(c, 15);
      await next(client, isExit(c));
      await client.uninstall(c);
    }
  });

  test('shutdown request: shutdown notification, containers stopped, exit code 0', async (t) => {
    const { rt, client } = await setup(t);
    await client.start(TC, { args: ['sleep'] });
    await next(client, isStarted(TC));
    const pid = (await client.inspect(TC)).process!.pid;
    await client.shutdown();
    await next(client, (n) => n === 'shutdown');
    assert.equal(await rt.exited(), 0);
    assert.ok(!existsSync(`/proc/${pid}`), `the container process ${pid} is gone`);
    // No notification can say it (the console is closed by then): the shutdown ran to its end.
    await rt.logged(/Shutdown complete/);
  });
});

describe('container console and notifications', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a container talks to the runtime over NORTHSTAR_CONSOLE with its manifest permissions', async (t) => {
    const { rt, client } = await setup(t);
    const manifest = testContainerManifest()
      .replace('name: test-container', 'name: console-user')
      .replace('init: /test-container', 'init: /test-container\nconsole:\n  permissions: [ident, list, inspect]');
    await client.install(await packTestVariant('console-user', manifest), 'memory');
    await client.start('console-user:0.0.1', { args: ['console', '{"request":"ident"}', '{"request":"list"}', '{"request":"repositories"}', '{"request":{"inspect":{"container":"console-user:0.0.1"}}}'] });
    await rt.waitLog(/console: \{\\"connect_ack\\":null\}/);
    await rt.waitLog(/console: \{\\"response\\":\{\\"ident\\":\\"console-user:0\.0\.1\\"\}\}/);
    await rt.waitLog(/console: \{\\"response\\":\{\\"list\\":\[/);
    await rt.waitLog(/console: \{\\"response\\":\{\\"permission_denied\\":\\"repositories\\"\}\}/);
    const inspect = await rt.waitLog(/console: \{\\"response\\":\{\\"inspect\\":\{\\"ok\\"/);
    assert.match(inspect, /\\"pid\\":\d+/);
    assert.deepEqual(exitOf(await next(client, isExit('console-user:0.0.1'))), { exit: { code: 0 } });
  });

  test('started and exit notifications carry the container; inspect shows the process while it runs', async (t) => {
    const { client } = await setup(t);
    await client.start(TC, { args: ['sleep'] });
    const started = await next(client, (n) => typeof n === 'object' && 'started' in n);
    assert.deepEqual(JSON.parse(JSON.stringify(started)), { started: TC });
    const data = await client.inspect(TC);
    assert.equal(data.mounted, true);
    assert.equal(data.repository, 'default');
    assert.ok(data.process && data.process.pid > 0);
    assert.ok(data.process.statistics && typeof data.process.statistics === 'object');
    await client.kill(TC, 9);
    assert.deepEqual(exitOf(await next(client, isExit(TC))), { signalled: { signal: 9 } });
    const after = await client.inspect(TC);
    assert.equal(after.process, null);
  });
});

describe('manifest sockets', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('datagram, stream and seq-packet sockets reach the container; a mode-000 socket refuses; files are owned and removed', async (t) => {
    const { rt, client } = await setup(t);
    for (const name of ['datagram', 'stream', 'seq-packet', 'no_permission']) {
      await client.start(TC, { args: ['socket', name] });
      assert.deepEqual(exitOf(await next(client, isExit(TC))), { exit: { code: 0 } }, `socket ${name}`);
      await rt.waitLog(new RegExp(`Connecting to /unix-sockets/test-container:0\\.0\\.1:${name}`));
    }
    await client.start(TC, { args: ['sleep'] });
    await next(client, isStarted(TC));
    const { statSync } = await import('node:fs');
    const st = statSync(join(rt.socketDir, `${TC}:stream`));
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o666);
    assert.equal(st.uid, 1000);
    assert.equal(statSync(join(rt.socketDir, `${TC}:no_permission`)).mode & 0o777, 0);
    await client.kill(TC, 15);
    await next(client, isExit(TC));
    assert.deepEqual(readdirSync(rt.socketDir), []);
  });

  test('the app sees exactly stdin, stdout, stderr and the four manifest sockets', async (t) => {
    const { rt, client } = await setup(t);
    await client.start(TC, { args: ['inspect'] });
    await rt.waitLog(/total: 7/);
    for (const fd of [0, 1, 2]) await rt.waitLog(new RegExp(`/proc/self/fd/${fd}: `));
    await rt.waitLog(/\/proc\/self\/fd\/0: \/dev\/null/);
    await client.kill(TC, 15);
    await next(client, isExit(TC));
  });
});

describe('isolation through the runtime (upstream areas D, E, F, K)', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('rlimits, fifo scheduling, read-only proc, resource and bind mount flags', async (t) => {
    const { rt, client } = await setup(t);
    await client.start(TC, { args: ['inspect'] });
    await rt.waitLog(/Max processes {13}10000 {16}20000 {16}processes/);
    await rt.waitLog(/sched_getscheduler: 1/);
    await rt.waitLog(/sched_priority: 11/);
    await rt.waitLog(/proc \/proc proc ro,/);
    await rt.waitLog(/\/resource \w+ ro,(\w+,)*nosuid,(\w+,)*nodev,(\w+,)*noexec/);
    await rt.waitLog(/\/lib \w+ ro,(\w+,)*nosuid,(\w+,)*nodev/);
    await rt.waitLog(/\/ squashfs ro,/);
    const data = await client.inspect(TC);
    assert.deepEqual(JSON.parse(JSON.stringify(data.manifest.sched)), { policy: { fifo: { priority: 11 } } });
    await client.kill(TC, 15);
    await next(client, isExit(TC));
  });

  test('seccomp: an allowed value and a masked value pass, a value outside both is killed with signal 31', async (t) => {
    const { rt, client } = await setup(t);
    for (const flags of ['1', '4']) {
      rt.logs.length = 0;
      await client.start(TC, { args: ['call-delete-module', flags] });
      await rt.waitLog(/delete_module syscall was successful/);
      await client.kill(TC, 15);
      await next(client, isExit(TC));
    }
    await client.start(TC, { args: ['call-delete-module', '7'] });
    assert.deepEqual(exitOf(await next(client, isExit(TC))), { signalled: { signal: 31 } });
  });
});
