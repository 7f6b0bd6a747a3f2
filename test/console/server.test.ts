import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from '../../src/common/container.js';
import type { Request } from '../../src/api/model.js';
import { CONSOLE_PERMISSIONS, type ConsolePermission } from '../../src/manifest/console.js';
import { ConsoleServer, parseConsoleUrl } from '../../src/console/server.js';
import { FakeHandle, HELLO, Raw, startServer } from './fake.js';
import { tempDir } from '../helpers/tmp.js';

const CONNECT = '{"connect":{"version":"0.9.3","subscribe_notifications":false}}';
const all = (except: ConsolePermission[]): ConsolePermission[] => CONSOLE_PERMISSIONS.filter((p) => !except.includes(p));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// --- addresses -------------------------------------------------------------------------

test('console urls: tcp default port 4200, unix path only, other schemes refused', () => {
  assert.deepEqual(parseConsoleUrl('tcp://localhost'), { scheme: 'tcp', host: 'localhost', port: 4200 });
  assert.deepEqual(parseConsoleUrl('tcp://127.0.0.1:4201'), { scheme: 'tcp', host: '127.0.0.1', port: 4201 });
  assert.deepEqual(parseConsoleUrl('tcp://[::1]:5'), { scheme: 'tcp', host: '::1', port: 5 });
  assert.deepEqual(parseConsoleUrl('unix:///run/northstar/console?x=1'), { scheme: 'unix', path: '/run/northstar/console' });
  assert.throws(() => parseConsoleUrl('http://localhost'), /scheme must be tcp or unix/);
  assert.throws(() => parseConsoleUrl('nonsense'), /invalid console url/);
});

test('unix listener replaces a stale file and serves', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'console');
  writeFileSync(path, 'stale');
  const server = new ConsoleServer({ handle: new FakeHandle() });
  t.after(() => server.close(100));
  const url = await server.listen(`unix://${path}`, 'full');
  assert.equal(url, `unix://${path}`);
  const raw = await Raw.open(t, url);
  await raw.connect();
  assert.equal(await raw.ask('{"request":"list"}'), '{"response":{"list":["hello-world:0.0.1"]}}');
  await server.close(100);
  assert.equal(existsSync(path), false, 'the socket file is removed at close');
});

// --- handshake -------------------------------------------------------------------------

test('handshake: versions >= 0.9 are accepted, older get a nack with the server version', async (t) => {
  const h = await startServer(t);
  for (const v of ['0.9.3', '0.9.0', '0.9.4', '0.10.0', '1.0.0', '0.9.3-pre']) {
    const raw = await Raw.open(t, h.url);
    assert.equal(await raw.ask(`{"connect":{"version":"${v}","subscribe_notifications":false}}`), '{"connect_ack":null}', v);
    assert.equal(await raw.ask('{"request":"list"}'), '{"response":{"list":["hello-world:0.0.1"]}}');
  }
  for (const v of ['0.8.3', '0.0.1', '0.8.99']) {
    const raw = await Raw.open(t, h.url);
    assert.equal(await raw.ask(`{"connect":{"version":"${v}","subscribe_notifications":false}}`), '{"connect_nack":{"invalid_protocol_version":{"version":"0.9.3"}}}', v);
    assert.equal(await raw.eof(), true);
  }
});

test('handshake: garbage, a non-connect first message or EOF close without a nack', async (t) => {
  const h = await startServer(t);
  for (const first of ['garbage', '{"request":"list"}', '{"connect":{"version":"0.9.3"}}', '']) {
    const raw = await Raw.open(t, h.url);
    raw.send(first + '\n');
    assert.equal(await raw.line(), null, `no answer to ${JSON.stringify(first)}`);
  }
  const raw = await Raw.open(t, h.url);
  raw.socket.end();
  assert.equal(await raw.line(), null);
  assert.equal(h.handle.requests.length, 0);
});

test('handshake: no connect within the deadline closes the connection silently', async (t) => {
  const h = await startServer(t, { config: { connectTimeout: 200 } });
  const raw = await Raw.open(t, h.url);
  assert.equal(await raw.line(), null);
  await until(() => h.server.connections === 0, 'the session to go');
});

test('handshake: notifications need the notifications permission', async (t) => {
  const h = await startServer(t, { permissions: all(['notifications']) });
  const denied = await Raw.open(t, h.url);
  assert.equal(await denied.ask('{"connect":{"version":"0.9.3","subscribe_notifications":true}}'), '{"connect_nack":"permission_denied"}');
  assert.equal(await denied.eof(), true);
  const ok = await Raw.open(t, h.url);
  assert.equal(await ok.ask(CONNECT), '{"connect_ack":null}');
});

test('handshake: events during the handshake are delivered right after the ack', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  await until(() => h.handle.subscribers === 1, 'the subscription at accept');
  h.handle.emit({ started: HELLO });
  raw.send('{"connect":{"version":"0.9.3","subscribe_notifications":true}}\n');
  assert.equal(await raw.line(), '{"connect_ack":null}');
  assert.equal(await raw.line(), '{"notification":{"started":"hello-world:0.0.1"}}');
});

test('after the handshake a connect, response or notification from the client closes the connection', async (t) => {
  const h = await startServer(t);
  for (const bad of [CONNECT, '{"connect_ack":null}', '{"response":"shutdown"}', '{"notification":"shutdown"}']) {
    const raw = await Raw.open(t, h.url);
    await raw.connect();
    raw.send(bad + '\n');
    assert.equal(await raw.eof(), true, bad);
  }
});

// --- requests and permissions ----------------------------------------------------------

test('requests are answered in FIFO order, pipelined, with exact JSON', async (t) => {
  const h = await startServer(t);
  h.handle.reply = async (req) => {
    // Later requests finish faster: order must still be FIFO.
    const k = req as Extract<Request, { kill: unknown }>;
    await new Promise((r) => setTimeout(r, 20 - k.kill.signal));
    return { kill: { ok: { container: k.kill.container } } };
  };
  const raw = await Raw.open(t, h.url);
  const lines = [CONNECT];
  for (let i = 1; i <= 20; i++) lines.push(`{"request":{"kill":{"container":"c${i}:0.0.1","signal":${i}}}}`);
  raw.send(lines.join('\n') + '\n');
  assert.equal(await raw.line(), '{"connect_ack":null}');
  for (let i = 1; i <= 20; i++) assert.equal(await raw.line(), `{"response":{"kill":{"ok":{"container":"c${i}:0.0.1"}}}}`);
});

test('ident is answered by the console: extern:0.0.0 on the global console', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  assert.equal(await raw.ask('{"request":"ident"}'), '{"response":{"ident":"extern:0.0.0"}}');
  assert.equal(h.handle.requests.length, 0);
});

test('every request is denied without its permission, echoed verbatim, and the connection stays open', async (t) => {
  const cases: [ConsolePermission, string][] = [
    ['ident', '"ident"'],
    ['list', '"list"'],
    ['repositories', '"repositories"'],
    ['shutdown', '"shutdown"'],
    ['inspect', '{"inspect":{"container":"hello-world:0.0.1"}}'],
    ['kill', '{"kill":{"container":"x:0.0.1","signal":15}}'],
    ['mount', '{"mount":{"containers":["a:0.0.1"]}}'],
    ['umount', '{"umount":{"containers":["a:0.0.1"]}}'],
    ['uninstall', '{"uninstall":{"container":"a:0.0.1","wipe":true}}'],
    ['start', '{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{}}}'],
    ['start_command', '{"start":{"container":"a:0.0.1","init":"/bin/sh","arguments":[],"environment":{}}}'],
    ['start_command', '{"start":{"container":"a:0.0.1","init":null,"arguments":["-v"],"environment":{}}}'],
    ['start_command', '{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{"A":"1"}}}'],
    ['token_create', '{"token_create":{"target":"t","shared":"aGVsbG8h"}}'],
    ['token_verification', `{"token_verify":{"token":"${Buffer.alloc(40).toString('base64')}","user":"u","shared":""}}`],
  ];
  for (const [perm, req] of cases) {
    const h = await startServer(t, { permissions: all([perm]) });
    const raw = await Raw.open(t, h.url);
    await raw.connect();
    assert.equal(await raw.ask(`{"request":${req}}`), `{"response":{"permission_denied":${req}}}`, perm);
    assert.equal(h.handle.requests.length, 0, `${perm}: the runtime saw nothing`);
    // Still open: a permitted request works.
    const next = perm === 'repositories' ? '"list"' : '"repositories"';
    assert.match((await raw.ask(`{"request":${next}}`)) ?? '', /^\{"response":\{"(list|repositories)"/);
  }
});

test('start needs start for a plain start and start_command otherwise; neither implies the other', async (t) => {
  const plain = '{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{}}}}';
  const command = '{"request":{"start":{"container":"a:0.0.1","init":"<INIT>","arguments":["x"],"environment":{"K":"V"}}}}';
  const ok = '{"response":{"start":{"ok":{"container":"a:0.0.1"}}}}';
  const onlyStart = await startServer(t, { permissions: ['start'] });
  let raw = await Raw.open(t, onlyStart.url);
  await raw.connect();
  assert.equal(await raw.ask(plain), ok);
  assert.match((await raw.ask(command)) ?? '', /permission_denied/);
  const onlyCommand = await startServer(t, { permissions: ['start_command'] });
  raw = await Raw.open(t, onlyCommand.url);
  await raw.connect();
  assert.match((await raw.ask(plain)) ?? '', /permission_denied/);
  assert.equal(await raw.ask(command), ok);
  assert.deepEqual(onlyCommand.handle.requests[0]?.req, {
    start: { container: Container.parse('a:0.0.1'), init: '<INIT>', arguments: ['x'], environment: { K: 'V' } },
  });
});

test('an empty permission list denies everything', async (t) => {
  const h = await startServer(t, { permissions: [] });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  assert.equal(await raw.ask('{"request":"ident"}'), '{"response":{"permission_denied":"ident"}}');
});

test('a failing runtime handle closes only that connection', async (t) => {
  const h = await startServer(t);
  h.handle.reply = (req) => {
    if (req === 'repositories') throw new Error('boom');
    return { list: [] };
  };
  const a = await Raw.open(t, h.url);
  const b = await Raw.open(t, h.url);
  await a.connect();
  await b.connect();
  a.send('{"request":"repositories"}\n');
  assert.equal(await a.eof(), true);
  assert.equal(await b.ask('{"request":"list"}'), '{"response":{"list":[]}}');
});

// --- throttling and bad input ----------------------------------------------------------

test('throttling delays reading but rejects nothing (Connect counted)', async (t) => {
  const h = await startServer(t, { options: { maxRequestsPerSec: 5 } });
  const raw = await Raw.open(t, h.url);
  const start = performance.now();
  raw.send([CONNECT, ...Array.from({ length: 10 }, () => '{"request":"list"}')].join('\n') + '\n');
  assert.equal(await raw.line(), '{"connect_ack":null}');
  for (let i = 0; i < 10; i++) assert.equal(await raw.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  // 11 messages at 5 per sliding second: the 6th waits for the 1st to leave the window,
  // the 11th for the 6th. A lower bound only.
  const elapsed = performance.now() - start;
  assert.ok(elapsed >= 1900, `11 messages at 5/s took only ${elapsed.toFixed(0)} ms`);
  assert.equal(h.handle.requests.length, 10);
});

test('line cap: a line of max_request_size bytes is fine, one more byte closes that connection only', async (t) => {
  const h = await startServer(t, { options: { maxRequestSize: 1000 } });
  const other = await Raw.open(t, h.url);
  await other.connect();
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  const exact = '{"request":"list"}'.padEnd(1000, ' ');
  assert.equal(await raw.ask(exact), '{"response":{"list":["hello-world:0.0.1"]}}');
  raw.send(exact + ' \n');
  assert.equal(await raw.eof(), true);
  assert.equal(await other.ask('{"request":"list"}'), '{"response":{"list":["hello-world:0.0.1"]}}');
});

test('upstream too_long_line: a 2 MB mount request exceeds the default 1 MiB limit', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  const containers = Array.from({ length: 100_000 }, () => '"hello-world:0.0.1"').join(',');
  raw.send(`{"request":{"mount":{"containers":[${containers}]}}}\n`);
  assert.equal(await raw.eof(), true);
  assert.equal(h.handle.requests.length, 0);
});

test('invalid JSON, invalid UTF-8, unknown variants, an empty line, a bad token each close that connection silently', async (t) => {
  const h = await startServer(t);
  const other = await Raw.open(t, h.url);
  await other.connect();
  const bad: (string | Buffer)[] = [
    '{"request":\n',
    Buffer.concat([Buffer.from('{"request":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]),
    '{"request":"explode"}\n',
    '{"request":{"kill":{"container":"a:0.0.1","signal":15},"list":null}}\n',
    '\n',
    '\r\n',
    '{"request":{"token_verify":{"token":"AAAA","user":"u","shared":""}}}\n',
    '{"request":{"start":{"container":"a:0.0.1","init":"\\u0000","arguments":[],"environment":{}}}}\n',
  ];
  for (const b of bad) {
    const raw = await Raw.open(t, h.url);
    await raw.connect();
    raw.send(b);
    assert.equal(await raw.line(), null, `closed without an answer: ${JSON.stringify(b.toString())}`);
  }
  assert.equal(h.handle.requests.length, 0);
  assert.equal(await other.ask('{"request":"list"}'), '{"response":{"list":["hello-world:0.0.1"]}}');
});

test('a trailing \\r is stripped and a last line without \\n is answered at EOF', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  raw.send(CONNECT + '\r\n{"request":"list"}');
  raw.socket.end();
  assert.equal(await raw.line(), '{"connect_ack":null}');
  assert.equal(await raw.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  assert.equal(await raw.line(), null);
});

// --- install ---------------------------------------------------------------------------

function payload(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

test('install: exactly size bytes reach the runtime, buffered bytes first; the next line is a request again', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  const data = payload(3 * 1024 * 1024 + 17);
  // The request line, the first payload bytes and (later) the next request share writes.
  raw.send(Buffer.concat([Buffer.from('{"request":{"install":{"repository":"memory","size":' + data.length + '}}}\n'), data.subarray(0, 1000)]));
  raw.send(data.subarray(1000, 2_000_000));
  raw.send(Buffer.concat([data.subarray(2_000_000), Buffer.from('{"request":"list"}\n')]));
  assert.equal(await raw.line(), '{"response":{"install":{"ok":{"container":"hello-world:0.0.1"}}}}');
  assert.equal(await raw.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  const call = h.handle.installs[0]!;
  assert.equal(call.repository, 'memory');
  assert.equal(call.size, data.length);
  assert.ok(call.bytes.equals(data), 'the runtime got exactly the payload');
});

test('install: bytes the runtime does not read are drained before the response', async (t) => {
  const h = await startServer(t);
  h.handle.installReadLimit = 10;
  h.handle.installReply = () => ({ install: { error: { error: { invalid_repository: { repository: 'nope' } } } } });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  const junk = Buffer.from('{"request":"shutdown"}\n'.repeat(1000));
  raw.send(Buffer.concat([Buffer.from(`{"request":{"install":{"repository":"nope","size":${junk.length}}}}\n`), junk, Buffer.from('{"request":"list"}\n')]));
  assert.equal(await raw.line(), '{"response":{"install":{"error":{"error":{"invalid_repository":{"repository":"nope"}}}}}}');
  assert.equal(await raw.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  assert.deepEqual(h.handle.requests.map((r) => r.req), ['list']);
});

test('install: a size over max_npk_install_size closes the connection without a response', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  // upstream npk_size_limit_violation
  raw.send('{"request":{"install":{"repository":"mem","size":999999999}}}\n');
  assert.equal(await raw.line(), null);
  assert.equal(h.handle.installs.length, 0);
});

test('install: a stalled upload closes the connection after the stream timeout', async (t) => {
  const h = await startServer(t, { options: { npkStreamTimeout: 200 } });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  raw.send(Buffer.concat([Buffer.from('{"request":{"install":{"repository":"memory","size":100}}}\n'), payload(10)]));
  assert.equal(await raw.line(), null, 'closed with no response');
  await until(() => h.handle.installs[0]?.failed !== undefined, 'the payload iterator to fail');
  assert.equal(h.handle.installs[0]!.bytes.length, 10);
  await until(() => h.server.connections === 0, 'the session to go');
});

test('install: an upload cut short by EOF reaches the runtime short, and the answer is still sent', async (t) => {
  const h = await startServer(t);
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  raw.send(Buffer.concat([Buffer.from('{"request":{"install":{"repository":"memory","size":1000}}}\n'), payload(400)]));
  raw.socket.end();
  assert.equal(await raw.line(), '{"response":{"install":{"error":{"error":{"unexpected":{"error":"failed to read npk"}}}}}}');
  assert.equal(h.handle.installs[0]!.bytes.length, 400);
});

test('install denied: the payload is drained, never parsed as JSON (spec README 13)', async (t) => {
  const h = await startServer(t, { permissions: all(['install']) });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  const junk = Buffer.from('{"request":"shutdown"}\n'.repeat(2000));
  raw.send(Buffer.concat([Buffer.from(`{"request":{"install":{"repository":"memory","size":${junk.length}}}}\n`), junk, Buffer.from('{"request":"list"}\n')]));
  assert.equal(await raw.line(), `{"response":{"permission_denied":{"install":{"repository":"memory","size":${junk.length}}}}}`);
  assert.equal(await raw.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  assert.deepEqual(h.handle.requests.map((r) => r.req), ['list'], 'no shutdown from the payload');
  assert.equal(h.handle.installs.length, 0);
});

test('install denied over the size cap: response, then the connection is closed', async (t) => {
  const h = await startServer(t, { permissions: all(['install']) });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  raw.send('{"request":{"install":{"repository":"memory","size":999999999}}}\n{"request":"shutdown"}\n');
  assert.equal(await raw.line(), '{"response":{"permission_denied":{"install":{"repository":"memory","size":999999999}}}}');
  assert.equal(await raw.eof(), true);
  assert.equal(h.handle.requests.length, 0);
});

// --- notifications ---------------------------------------------------------------------

test('notifications go only to subscribed connections, in the exact wire form', async (t) => {
  const h = await startServer(t);
  const sub = await Raw.open(t, h.url);
  await sub.connect(true);
  const plain = await Raw.open(t, h.url);
  await plain.connect(false);
  await until(() => h.handle.subscribers === 1, 'only one subscriber');
  const c = Container.parse('hello-world:0.0.1');
  h.handle.emit({ started: c });
  h.handle.emit({ exit: [c, { signalled: { signal: 15 } }] });
  h.handle.emit({ c_group: [c, { memory: { low: null, high: null, max: null, oom: 1n, oom_kill: null } }] });
  h.handle.emit('shutdown');
  assert.equal(await sub.line(), '{"notification":{"started":"hello-world:0.0.1"}}');
  assert.equal(await sub.line(), '{"notification":{"exit":["hello-world:0.0.1",{"signalled":{"signal":15}}]}}');
  assert.equal(await sub.line(), '{"notification":{"c_group":["hello-world:0.0.1",{"memory":{"low":null,"high":null,"max":null,"oom":1,"oom_kill":null}}]}}');
  assert.equal(await sub.line(), '{"notification":"shutdown"}');
  // The unsubscribed connection's next line is its response, nothing before it.
  assert.equal(await plain.ask('{"request":"list"}'), '{"response":{"list":["hello-world:0.0.1"]}}');
});

test('a notification raised while a request is handled comes after its response', async (t) => {
  const h = await startServer(t);
  h.handle.reply = async (req) => {
    const s = req as Extract<Request, { start: unknown }>;
    h.handle.emit({ started: s.start.container });
    await new Promise((r) => setTimeout(r, 10));
    return { start: { ok: { container: s.start.container } } };
  };
  const raw = await Raw.open(t, h.url);
  await raw.connect(true);
  raw.send('{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{}}}}\n');
  assert.equal(await raw.line(), '{"response":{"start":{"ok":{"container":"a:0.0.1"}}}}');
  assert.equal(await raw.line(), '{"notification":{"started":"a:0.0.1"}}');
});

test('a subscriber that does not read is disconnected once it lags, and nothing else is affected', async (t) => {
  const h = await startServer(t, { config: { notificationBufferSize: 16 } });
  const lazy = await Raw.open(t, h.url);
  await lazy.connect(true);
  lazy.socket.pause(); // never reads again
  const other = await Raw.open(t, h.url);
  await other.connect(false);
  await until(() => h.server.connections === 2 && h.handle.subscribers >= 1, 'both sessions');
  const big = Container.parse(`${'x'.repeat(1000)}:0.0.1`);
  let emitted = 0;
  while (h.handle.subscribers > 0 && emitted < 200_000) {
    for (let i = 0; i < 100; i++) h.handle.emit({ started: big });
    emitted += 100;
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(h.handle.subscribers, 0, 'the lagging subscriber was dropped');
  // Far fewer than were emitted: the server's buffer for it stayed bounded.
  assert.ok(emitted < 200_000, `still subscribed after ${emitted} notifications`);
  await until(() => h.server.connections === 1, 'the lagging session to close');
  assert.equal(await other.ask('{"request":"list"}'), '{"response":{"list":["hello-world:0.0.1"]}}');
});

test('a client that sends requests but never reads stops being read (bounded memory)', async (t) => {
  const h = await startServer(t);
  const many = Array.from({ length: 2000 }, (_, i) => Container.parse(`container-number-${i}:1.0.0`));
  h.handle.reply = () => ({ list: many });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  raw.socket.pause();
  const line = '{"request":"list"}\n';
  raw.send(line.repeat(5000));
  // Wait until the server stops taking requests.
  let last = -1;
  while (h.handle.requests.length !== last) {
    last = h.handle.requests.length;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(last < 5000, `the server answered all ${last} requests into a client that does not read`);
  raw.socket.destroy();
  await until(() => h.server.connections === 0, 'the session to go');
});

test('a client that never reads is closed after the stream timeout; others are unaffected', async (t) => {
  const h = await startServer(t, { options: { npkStreamTimeout: 300 } });
  const many = Array.from({ length: 2000 }, (_, i) => Container.parse(`container-number-${i}:1.0.0`));
  h.handle.reply = () => ({ list: many });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  raw.socket.pause();
  raw.send('{"request":"list"}\n'.repeat(5000));
  const other = await Raw.open(t, h.url);
  await other.connect(false);
  await until(() => h.server.connections === 1, 'the non-reading session to be closed');
  assert.ok(h.handle.requests.length < 5000);
  assert.match((await other.ask('{"request":"list"}')) ?? '', /^\{"response":\{"list":\[/);
});

// --- lifecycle -------------------------------------------------------------------------

test('close() flushes pending notifications, ends every connection and stops listening', async (t) => {
  const handle = new FakeHandle();
  const server = new ConsoleServer({ handle });
  const url = await server.listen('tcp://127.0.0.1:0', 'full');
  const raw = await Raw.open(t, url);
  await raw.connect(true);
  handle.emit('shutdown');
  await server.close(1000);
  assert.equal(await raw.line(), '{"notification":"shutdown"}');
  assert.equal(await raw.line(), null);
  await assert.rejects(Raw.open(t, url), /ECONNREFUSED/);
  assert.equal(server.connections, 0);
});

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

test('the fd count stays flat over 500 connect/disconnect cycles', async (t) => {
  if (!existsSync('/proc/self/fd')) {
    t.skip('no /proc/self/fd');
    return;
  }
  const h = await startServer(t);
  const cycle = async (): Promise<void> => {
    const raw = await Raw.open(t, h.url);
    await raw.connect();
    await raw.ask('{"request":"list"}');
    raw.socket.end();
    await raw.line();
    await raw.closed;
  };
  for (let i = 0; i < 20; i++) await cycle();
  await until(() => h.server.connections === 0, 'warm-up sessions to close');
  const before = fdCount();
  for (let i = 0; i < 500; i++) await cycle();
  await until(() => h.server.connections === 0, 'all sessions to close');
  assert.equal(fdCount(), before);
});

test('container consoles: peer identity for ident and tokens, no connect deadline', async (t) => {
  const handle = new FakeHandle();
  const server = new ConsoleServer({ handle, connectTimeout: 50 });
  t.after(() => server.close(100));
  const dir = tempDir(t);
  // Accepted unix sockets stand in for the runtime's socketpair ends.
  const peers = [Container.parse('token-client:0.0.1'), Container.parse('token-server:0.0.1')];
  let next = 0;
  const listener = net.createServer((s) => {
    server.serveContainer(s, peers[next++]!, 'full');
  });
  await new Promise<void>((r) => listener.listen(join(dir, 'pair'), r));
  t.after(() => listener.close());
  const client = await Raw.open(t, `unix://${join(dir, 'pair')}`);
  await new Promise((r) => setTimeout(r, 150)); // longer than the global deadline
  await client.connect();
  const srv = await Raw.open(t, `unix://${join(dir, 'pair')}`);
  await srv.connect();
  assert.equal(await client.ask('{"request":"ident"}'), '{"response":{"ident":"token-client:0.0.1"}}');
  const tokenLine = await client.ask('{"request":{"token_create":{"target":"token-server","shared":"aGVsbG8h"}}}');
  const token = /"token":"([^"]+)"/.exec(tokenLine ?? '')?.[1];
  assert.ok(token && token.length === 56, tokenLine ?? '');
  assert.ok(token.startsWith('AAAAAAAAAA'));
  const verify = (user: string, shared = 'aGVsbG8h'): string => `{"request":{"token_verify":{"token":"${token}","user":"${user}","shared":"${shared}"}}}`;
  assert.equal(await srv.ask(verify('token-client')), '{"response":{"token_verification":"Ok"}}');
  assert.equal(await srv.ask(verify('someone-else')), '{"response":{"token_verification":"Invalid"}}');
  assert.equal(await srv.ask(verify('token-client', '')), '{"response":{"token_verification":"Invalid"}}');
  // The token was made for token-server: the client verifying it itself (target token-client) fails.
  assert.equal(await client.ask(verify('token-client')), '{"response":{"token_verification":"Invalid"}}');
  // The global console verifies as "extern".
  const url = await server.listen('tcp://127.0.0.1:0', 'full');
  const ext = await Raw.open(t, url);
  await ext.connect();
  assert.equal(await ext.ask(verify('token-client')), '{"response":{"token_verification":"Invalid"}}');
  const extToken = /"token":"([^"]+)"/.exec((await ext.ask('{"request":{"token_create":{"target":"token-server","shared":""}}}')) ?? '')?.[1];
  assert.equal(
    await srv.ask(`{"request":{"token_verify":{"token":"${extToken}","user":"extern","shared":""}}}`),
    '{"response":{"token_verification":"Ok"}}',
  );
  // Runtime requests carry the container peer.
  await client.ask('{"request":"list"}');
  assert.deepEqual(handle.requests.at(-1)?.peer, { kind: 'container', container: peers[0] });
});

test('token_validity comes from the verifying connection', async (t) => {
  let now = 1_000_000;
  const { TokenAuthority } = await import('../../src/console/tokens.js');
  const h = await startServer(t, { options: { tokenValidity: 5_000 }, config: { tokens: new TokenAuthority(() => now) } });
  const raw = await Raw.open(t, h.url);
  await raw.connect();
  const line = await raw.ask('{"request":{"token_create":{"target":"extern","shared":""}}}');
  const token = /"token":"([^"]+)"/.exec(line ?? '')?.[1];
  const verify = `{"request":{"token_verify":{"token":"${token}","user":"extern","shared":""}}}`;
  now += 5_000;
  assert.equal(await raw.ask(verify), '{"response":{"token_verification":"Ok"}}');
  now += 1_000;
  assert.equal(await raw.ask(verify), '{"response":{"token_verification":"Expired"}}');
  const future = Buffer.alloc(40);
  future.writeBigUInt64BE(1000n, 0);
  assert.equal(
    await raw.ask(`{"request":{"token_verify":{"token":"${future.toString('base64')}","user":"extern","shared":""}}}`),
    '{"response":{"token_verification":"Future"}}',
  );
});
