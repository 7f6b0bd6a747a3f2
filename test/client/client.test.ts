import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import { Container } from '../../src/common/container.js';
import { parseManifest } from '../../src/manifest/index.js';
import type { Notification, Request } from '../../src/api/model.js';
import {
  Client,
  ConnectionClosedError,
  PermissionDeniedError,
  ProtocolVersionError,
  RuntimeError,
  TimeoutError,
  signalNumber,
} from '../../src/client/index.js';
import { CONSOLE_PERMISSIONS } from '../../src/manifest/console.js';
import { FakeHandle, HELLO, startServer } from '../console/fake.js';
import { tempDir } from '../helpers/tmp.js';

const A = Container.parse('a:0.0.1');
const B = Container.parse('b:1.0.0');

async function connect(t: import('node:test').TestContext, url: string, opts: Parameters<typeof Client.connect>[1] = {}): Promise<Client> {
  const c = await Client.connect(url, opts);
  t.after(() => c.close(100));
  return c;
}

test('every typed method over tcp: what the runtime receives and what the caller gets', async (t) => {
  const h = await startServer(t);
  const manifest = parseManifest('name: a\nversion: 0.0.1\ninit: /a\nuid: 1000\ngid: 1000\n');
  h.handle.reply = (req) => {
    if (req === 'list') return { list: [A, B] };
    if (req === 'repositories') return { repositories: ['default', 'memory'] };
    if (typeof req === 'object' && 'mount' in req) {
      return { mount: [{ ok: { container: A } }, { error: { container: B, error: { invalid_container: { container: B } } } }] };
    }
    if (typeof req === 'object' && 'umount' in req) return { umount: [{ ok: { container: A } }] };
    if (typeof req === 'object' && 'start' in req) return { start: { ok: { container: req.start.container } } };
    if (typeof req === 'object' && 'kill' in req) return { kill: { ok: { container: req.kill.container } } };
    if (typeof req === 'object' && 'uninstall' in req) return { uninstall: { ok: { container: req.uninstall.container } } };
    if (typeof req === 'object' && 'inspect' in req) {
      return {
        inspect: {
          ok: {
            container: A,
            data: { manifest, repository: 'memory', mounted: true, process: { pid: 42, uptime: 10n ** 17n, statistics: { memory: { usage: 1 } } } },
          },
        },
      };
    }
    throw new Error('unexpected');
  };
  const c = await connect(t, h.url);
  assert.deepEqual(await c.ident(), Container.parse('extern:0.0.0'));
  assert.deepEqual(await c.list(), [A, B]);
  assert.deepEqual(await c.repositories(), ['default', 'memory']);
  assert.deepEqual(await c.start('a:0.0.1'), A);
  assert.deepEqual(await c.start(A, { init: '<INIT>', args: ['-v'], env: { DEBUG: '1' } }), A);
  assert.deepEqual(await c.kill(A), A);
  assert.deepEqual(await c.kill(A, 'SIGKILL'), A);
  assert.deepEqual(await c.kill(A, 'hup'), A);
  const mounted = await c.mount([A, 'b:1.0.0']);
  assert.deepEqual(mounted, [{ ok: { container: A } }, { error: { container: B, error: { invalid_container: { container: B } } } }]);
  assert.deepEqual(await c.umount([A]), [{ ok: { container: A } }]);
  assert.deepEqual(await c.uninstall(A, { wipe: true }), A);
  const data = await c.inspect(A);
  assert.equal(data.manifest.name, 'a');
  assert.equal(data.process?.uptime, 10n ** 17n);
  assert.deepEqual(data.process?.statistics, { memory: { usage: 1 } });
  const seen: Request[] = h.handle.requests.map((r) => r.req);
  assert.deepEqual(seen, [
    'list',
    'repositories',
    { start: { container: A, init: null, arguments: [], environment: {} } },
    { start: { container: A, init: '<INIT>', arguments: ['-v'], environment: { DEBUG: '1' } } },
    { kill: { container: A, signal: 15 } },
    { kill: { container: A, signal: 9 } },
    { kill: { container: A, signal: 1 } },
    { mount: { containers: [A, B] } },
    { umount: { containers: [A] } },
    { uninstall: { container: A, wipe: true } },
    { inspect: { container: A } },
  ]);
});

test('runtime errors become RuntimeError with the wire variant', async (t) => {
  const h = await startServer(t, { unix: true });
  h.handle.reply = (req) => {
    const s = req as Extract<Request, { start: unknown }>;
    return { start: { error: { container: s.start.container, error: { start_container_started: { container: s.start.container } } } } };
  };
  const c = await connect(t, h.url);
  await assert.rejects(c.start(HELLO), (e: unknown) => {
    assert.ok(e instanceof RuntimeError);
    assert.equal(e.kind, 'start_container_started');
    assert.deepEqual(e.error, { start_container_started: { container: HELLO } });
    assert.equal(e.message, 'container hello-world:0.0.1 is already started');
    return true;
  });
  h.handle.reply = () => ({ inspect: { error: { container: A, error: { invalid_container: { container: A } } } } });
  await assert.rejects(c.inspect(A), (e: unknown) => e instanceof RuntimeError && e.kind === 'invalid_container');
});

test('bad arguments are refused client-side with a clear error', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url);
  await assert.rejects(c.start('no-version'), /missing container version/);
  await assert.rejects(c.kill(A, 'SIGNOPE'), /unknown signal "SIGNOPE"/);
  await assert.rejects(c.createToken('bad name'), /target/);
  await assert.rejects(c.verifyToken(Buffer.alloc(3), 'u'), /expected 40 bytes/);
  assert.equal(signalNumber('TERM'), 15);
  assert.equal(signalNumber('9'), 9);
  assert.equal(h.handle.requests.length, 0);
  // The connection is still usable.
  assert.deepEqual(await c.list(), [HELLO]);
});

test('permission denied: per request and for the subscription', async (t) => {
  const h = await startServer(t, { permissions: ['list'] });
  const c = await connect(t, h.url);
  await assert.rejects(c.repositories(), (e: unknown) => e instanceof PermissionDeniedError && e.request === 'repositories');
  await assert.rejects(c.shutdown(), PermissionDeniedError);
  assert.deepEqual(await c.list(), [HELLO]);
  await assert.rejects(Client.connect(h.url, { subscribe: true }), PermissionDeniedError);
});

test('protocol version too old: ProtocolVersionError carrying the runtime version', async (t) => {
  const h = await startServer(t);
  await assert.rejects(Client.connect(h.url, { version: '0.8.3' as never }), (e: unknown) => {
    assert.ok(e instanceof ProtocolVersionError);
    assert.equal(e.version, '0.9.3');
    return true;
  });
});

test('timeouts: a silent server fails the handshake; a request timeout closes the connection', async (t) => {
  const silent = net.createServer(() => {});
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => silent.close());
  const port = (silent.address() as net.AddressInfo).port;
  await assert.rejects(Client.connect(`tcp://127.0.0.1:${port}`, { timeout: 200 }), TimeoutError);

  const h = await startServer(t);
  h.handle.reply = () => new Promise(() => {}); // never answers
  const c = await connect(t, h.url, { requestTimeout: 200 });
  await assert.rejects(c.list(), TimeoutError);
  await assert.rejects(c.list(), TimeoutError);
});

test('connection refused and bad urls are clear errors', async () => {
  await assert.rejects(Client.connect('tcp://127.0.0.1:1', { timeout: 2000 }), /connect to tcp:\/\/127\.0\.0\.1:1: ECONNREFUSED/);
  await assert.rejects(Client.connect('http://x'), /scheme must be tcp or unix/);
  const saved = process.env.NORTHSTAR_CONSOLE;
  delete process.env.NORTHSTAR_CONSOLE;
  try {
    await assert.rejects(Client.connect('env'), /NORTHSTAR_CONSOLE is not set/);
  } finally {
    if (saved !== undefined) process.env.NORTHSTAR_CONSOLE = saved;
  }
});

test('tokens through the client: create and verify on the global console', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url);
  const token = await c.createToken('extern', 'hello!');
  assert.equal(token.length, 40);
  assert.equal(await c.verifyToken(token, 'extern', 'hello!'), 'Ok');
  assert.equal(await c.verifyToken(token.toString('base64'), 'extern', Buffer.from('hello!')), 'Ok');
  assert.equal(await c.verifyToken(token, 'extern', 'other'), 'Invalid');
});

test('install from a path, a Buffer and a stream, with progress, exact bytes', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url);
  const dir = tempDir(t);
  const data = Buffer.alloc(2_500_000);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const file = join(dir, 'hello.npk');
  writeFileSync(file, data);
  const progress: number[] = [];
  assert.deepEqual(await c.install(file, 'memory', { onProgress: (sent, total) => (assert.equal(total, data.length), progress.push(sent)) }), HELLO);
  assert.equal(progress.at(-1), data.length);
  assert.ok(progress.every((p, i) => i === 0 || p > progress[i - 1]!));
  assert.deepEqual(await c.install(data, 'default'), HELLO);
  const chunks = [data.subarray(0, 1000), data.subarray(1000, 1_000_000), data.subarray(1_000_000)];
  assert.deepEqual(await c.install(Readable.from(chunks), 'default', { size: data.length }), HELLO);
  assert.equal(h.handle.installs.length, 3);
  for (const call of h.handle.installs) assert.ok(call.bytes.equals(data));
  assert.deepEqual(h.handle.installs.map((i) => i.repository), ['memory', 'default', 'default']);
  // The connection is in sync afterwards.
  assert.deepEqual(await c.list(), [HELLO]);
  await assert.rejects(c.install(Readable.from([data]), 'default'), /needs a size/);
});

test('install: a source shorter or longer than its size fails and closes the connection', async (t) => {
  const h = await startServer(t);
  const short = await connect(t, h.url);
  await assert.rejects(short.install(Readable.from([Buffer.alloc(10)]), 'memory', { size: 20 }), /ended after 10 of 20 bytes/);
  await assert.rejects(short.list(), ConnectionClosedError);
  const long = await connect(t, h.url);
  await assert.rejects(long.install(Readable.from([Buffer.alloc(30)]), 'memory', { size: 20 }), /longer than 20 bytes/);
});

test('install errors from the runtime are RuntimeErrors', async (t) => {
  const h = await startServer(t);
  h.handle.installReply = () => ({ install: { error: { error: { invalid_repository: { repository: 'nope' } } } } });
  const c = await connect(t, h.url);
  await assert.rejects(c.install(Buffer.alloc(100), 'nope'), (e: unknown) => e instanceof RuntimeError && e.message === 'invalid repository nope');
  assert.deepEqual(await c.list(), [HELLO]);
});

test('notifications between a request and its response are queued, none lost, in order', async (t) => {
  const h = await startServer(t);
  const c1 = Container.parse('one:0.0.1');
  const c2 = Container.parse('two:0.0.1');
  const c = await connect(t, h.url, { subscribe: true });
  assert.equal(c.subscribed, true);
  // Emitted while idle: the server writes them before the response to the next request.
  h.handle.emit({ install: c1 });
  h.handle.emit({ started: c1 });
  h.handle.reply = () => {
    // Emitted while handling: delivered after the response.
    h.handle.emit({ exit: [c2, { exit: { code: 0 } }] });
    h.handle.emit('shutdown');
    return { list: [c1] };
  };
  assert.deepEqual(await c.list(), [c1]);
  const got: Notification[] = [];
  for await (const n of c.notifications()) {
    got.push(n);
    if (got.length === 4) break;
  }
  assert.deepEqual(got, [{ install: c1 }, { started: c1 }, { exit: [c2, { exit: { code: 0 } }] }, 'shutdown']);
  // The iterator ends at EOF.
  const later = c.nextNotification();
  await h.server.close(100);
  assert.equal(await later, null);
});

test('an unsubscribed client gets no notifications and its iterator ends at once', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url);
  h.handle.emit({ started: HELLO });
  assert.deepEqual(await c.list(), [HELLO]);
  assert.equal(await c.nextNotification(), null);
});

test('shutdown: the response or EOF instead of it both count as success', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url);
  await c.shutdown();
  assert.deepEqual(h.handle.requests.map((r) => r.req), ['shutdown']);
  // Now a runtime that stops its console instead of answering.
  h.handle.reply = () => {
    void h.server.close(100);
    return new Promise(() => {});
  };
  const d = await connect(t, h.url);
  await d.shutdown();
  await assert.rejects(d.list(), ConnectionClosedError);
});

test('clean close: pending work fails with ConnectionClosedError, the server sees the session go', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url);
  assert.deepEqual(await c.list(), [HELLO]);
  await c.close();
  await assert.rejects(c.list(), ConnectionClosedError);
  const end = Date.now() + 5000;
  while (h.server.connections > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  assert.equal(h.server.connections, 0);
});

test('a client over any duplex stream (here an in-memory pair served by the console)', async (t) => {
  const handle = new FakeHandle();
  const { ConsoleServer } = await import('../../src/console/server.js');
  const server = new ConsoleServer({ handle });
  t.after(() => server.close(100));
  // Two PassThroughs crossed into a duplex pair.
  const { Duplex } = await import('node:stream');
  const up = new PassThrough();
  const down = new PassThrough();
  const clientEnd = Duplex.from({ readable: down, writable: up });
  const serverEnd = Duplex.from({ readable: up, writable: down });
  const console_ = server.serveContainer(serverEnd, A, CONSOLE_PERMISSIONS);
  const c = await Client.connect(clientEnd);
  assert.deepEqual(await c.ident(), A);
  await c.close(100);
  console_.close();
  await console_.closed;
});

test('responses far larger than the read buffer arrive whole (100,000 containers)', async (t) => {
  const h = await startServer(t);
  const many = Array.from({ length: 100_000 }, (_, i) => Container.parse(`container-${i}:1.0.${i}`));
  h.handle.reply = () => ({ list: many });
  const c = await connect(t, h.url);
  const got = await c.list();
  assert.equal(got.length, 100_000);
  assert.deepEqual(got[99_999], many[99_999]);
});

test('return() on a notification iterator ends a waiting next() and leaves the queue to others', async (t) => {
  const h = await startServer(t);
  const c = await connect(t, h.url, { subscribe: true });
  const it = c.notifications();
  const waiting = it.next();
  await it.return!();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  h.handle.emit({ started: HELLO });
  assert.deepEqual(await c.nextNotification(), { started: HELLO });
});

test('transcript: every byte written and read, in order (nstar -j)', async (t) => {
  const h = await startServer(t);
  const seen: string[] = [];
  const c = await connect(t, h.url, { transcript: (b, dir) => seen.push(`${dir}:${b.toString()}`) });
  await c.list();
  await c.install(Buffer.from('NPKBYTES'), 'memory');
  const text = seen.join('');
  assert.equal(
    text,
    [
      'write:{"connect":{"version":"0.9.3","subscribe_notifications":false}}\n',
      'read:{"connect_ack":null}\n',
      'write:{"request":"list"}\n',
      'read:{"response":{"list":["hello-world:0.0.1"]}}\n',
      'write:{"request":{"install":{"repository":"memory","size":8}}}\n',
      'write:NPKBYTES',
      'read:{"response":{"install":{"ok":{"container":"hello-world:0.0.1"}}}}\n',
    ].join(''),
  );
});

test('a denied install: PermissionDeniedError, the payload is drained and the connection stays usable', async (t) => {
  const h = await startServer(t, { permissions: CONSOLE_PERMISSIONS.filter((p) => p !== 'install') });
  const c = await connect(t, h.url);
  const payload = Buffer.from('{"request":"shutdown"}\n'.repeat(50_000));
  await assert.rejects(c.install(payload, 'memory'), (e: unknown) => {
    assert.ok(e instanceof PermissionDeniedError);
    assert.deepEqual(e.request, { install: { repository: 'memory', size: payload.length } });
    return true;
  });
  assert.deepEqual(await c.list(), [HELLO]);
  assert.deepEqual(h.handle.requests.map((r) => r.req), ['list']);
});

test("docs/client.md's error table has every error class and code the client raises", () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const doc = readFileSync(join(root, 'docs', 'client.md'), 'utf8');
  const rows = new Set([...doc.matchAll(/^\| `(\w+)` \| `(E[A-Z]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`));
  const errors = readFileSync(join(root, 'src', 'client', 'errors.ts'), 'utf8');
  const classes = [...errors.matchAll(/export class (\w+) extends NorthstarError \{[\s\S]*?super\('(E[A-Z]+)'/g)].map((m) => `${m[1]} ${m[2]}`);
  assert.ok(classes.length >= 7, classes.join(', '));
  const client = readFileSync(join(root, 'src', 'client', 'client.ts'), 'utf8');
  const plain = [...new Set([...client.matchAll(/new NorthstarError\('(E[A-Z]+)'/g)].map((m) => `NorthstarError ${m[1]}`))];
  assert.ok(plain.includes('NorthstarError ECONNECT'));
  for (const row of [...classes, ...plain]) assert.ok(rows.has(row), `docs/client.md, Errors: a row for ${row}`);
});
