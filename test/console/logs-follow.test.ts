/**
 * The `logs` follow on the wire (ours): a real console server and session, a handle whose
 * logs come from a real LogBuffer (pure logic) fed by the test. One response per request;
 * `log` messages only on the connection that follows; `log_end` before the answer of the
 * request that ends it; after a notification that came first; `lagged` for a peer that
 * does not read, with its queued lines dropped.
 */
import { test, type TestContext } from 'node:test';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import type { Request, RequestOf, Response } from '../../src/api/model.js';
import type { LogSink, Peer } from '../../src/console/handle.js';
import { LogBuffer } from '../../src/runtime/logs.js';
import { ConsoleServer } from '../../src/console/server.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeHandle, HELLO, Raw, startServer } from './fake.js';

/** A handle serving `logs` of HELLO from `buffer` (running: follows stay open). */
class LogsHandle extends FakeHandle {
  readonly buffer = new LogBuffer(1 << 20);
  running = true;
  logs(req: RequestOf<'logs'>['logs'], _peer: Peer, follower: LogSink | undefined): { response: Response; stop: () => void } {
    const st = this.buffer.stats();
    const response: Response = {
      logs: {
        ok: {
          container: req.container,
          io: { stdout: 'pipe', stderr: 'pipe' },
          lines: this.buffer.tail(req.tail ?? undefined),
          buffer: { lines: BigInt(st.lines), bytes: BigInt(st.bytes), capacity: BigInt(st.capacity), dropped: BigInt(st.dropped) },
        },
      },
    };
    let stop = (): void => undefined;
    if (follower) {
      if (this.running) stop = this.buffer.follow(follower, 'run');
      else follower.end('not_running');
    }
    return { response, stop };
  }
}

async function setup(t: TestContext, unix = false): Promise<{ handle: LogsHandle; url: string }> {
  const handle = new LogsHandle();
  const server = new ConsoleServer({ handle });
  const url = await server.listen(unix ? `unix://${join(tempDir(t, 'ns-console-'), 'console.sock')}` : 'tcp://127.0.0.1:0', 'full', {});
  t.after(() => server.close(100));
  return { handle, url };
}

const ask = (tail: number | null, follow: boolean): string => `{"request":{"logs":{"container":"hello-world:0.0.1","tail":${tail},"follow":${follow}}}}\n`;

test('follow: the answer, then log messages on this connection only, log_end stopped before the next answer', async (t) => {
  const { handle, url } = await setup(t);
  handle.buffer.push('stdout', 'old', 1n);
  const a = await Raw.open(t, url);
  await a.connect(true);
  const b = await Raw.open(t, url);
  await b.connect(true);
  a.send(ask(5, true));
  assert.equal(await a.line(), '{"response":{"logs":{"ok":{"container":"hello-world:0.0.1","io":{"stdout":"pipe","stderr":"pipe"},"lines":[{"time":1,"stream":"stdout","line":"old"}],"buffer":{"lines":1,"bytes":67,"capacity":1048576,"dropped":0}}}}}');
  handle.buffer.push('stderr', 'new', 2n);
  assert.equal(await a.line(), '{"log":{"container":"hello-world:0.0.1","lines":[{"time":2,"stream":"stderr","line":"new"}]}}');
  // b did not ask: it gets nothing but its own answers (and notifications).
  b.send('{"request":"list"}\n');
  assert.equal(await b.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  // Another request is answered while following; a notification comes as usual.
  handle.emit({ started: HELLO });
  assert.equal(await a.line(), '{"notification":{"started":"hello-world:0.0.1"}}');
  a.send('{"request":"list"}\n');
  assert.equal(await a.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
  // tail 0 without follow: the follow ends first.
  a.send(ask(0, false));
  assert.equal(await a.line(), '{"log_end":{"container":"hello-world:0.0.1","reason":"stopped"}}');
  assert.match((await a.line()) ?? '', /^\{"response":\{"logs":\{"ok":\{"container":"hello-world:0\.0\.1","io":\{[^}]*\},"lines":\[\],/);
  assert.equal(handle.buffer.following, 0, 'the runtime side is unfollowed');
  handle.buffer.push('stdout', 'after', 3n);
  a.send('{"request":"list"}\n');
  assert.equal(await a.line(), '{"response":{"list":["hello-world:0.0.1"]}}', 'no log after the end');
});

test('follow: the end (exit) comes after a notification that came first; a stopped container ends at once', async (t) => {
  const { handle, url } = await setup(t);
  const a = await Raw.open(t, url);
  await a.connect(true);
  a.send(ask(null, true));
  assert.match((await a.line()) ?? '', /^\{"response":\{"logs":\{"ok"/);
  handle.buffer.push('stdout', 'last', 9n);
  handle.emit({ exit: [HELLO, { exit: { code: 0 } }] });
  handle.buffer.endFollowers('exit', 'run');
  assert.equal(await a.line(), '{"log":{"container":"hello-world:0.0.1","lines":[{"time":9,"stream":"stdout","line":"last"}]}}');
  assert.equal(await a.line(), '{"notification":{"exit":["hello-world:0.0.1",{"exit":{"code":0}}]}}');
  assert.equal(await a.line(), '{"log_end":{"container":"hello-world:0.0.1","reason":"exit"}}');
  handle.running = false;
  a.send(ask(0, true));
  assert.match((await a.line()) ?? '', /^\{"response":\{"logs":\{"ok"/);
  assert.equal(await a.line(), '{"log_end":{"container":"hello-world:0.0.1","reason":"not_running"}}');
});

test('follow: a peer that does not read is ended with lagged; its queued lines are dropped, not buffered', async (t) => {
  const { handle, url } = await setup(t, true);
  const a = await Raw.open(t, url);
  await a.connect(false);
  a.send(ask(0, true));
  assert.match((await a.line()) ?? '', /^\{"response":\{"logs":\{"ok"/);
  // 8 MiB of lines while the peer reads nothing: beyond the socket buffers and the 4 MiB bound.
  a.socket.pause();
  const line = 'y'.repeat(8192);
  for (let i = 0; i < 1024; i++) handle.buffer.push('stdout', line, BigInt(i));
  assert.equal(handle.buffer.following, 0, 'the follow was ended by the session');
  a.socket.resume();
  let lines = 0;
  let end: string | null = null;
  for (;;) {
    const l = await a.line();
    assert.ok(l !== null, 'the connection stays open');
    if (l.startsWith('{"log_end"')) {
      end = l;
      break;
    }
    lines += (JSON.parse(l) as { log: { lines: unknown[] } }).log.lines.length;
  }
  assert.equal(end, '{"log_end":{"container":"hello-world:0.0.1","reason":"lagged"}}');
  assert.ok(lines < 1024, `${lines} lines were written, the rest dropped`);
  a.send('{"request":"list"}\n');
  assert.equal(await a.line(), '{"response":{"list":["hello-world:0.0.1"]}}');
});

test('a handle without logs answers with an error; the request is never handed to request()', async (t) => {
  const h = await startServer(t);
  const a = await Raw.open(t, h.url);
  await a.connect();
  a.send(ask(1, false));
  assert.equal(await a.line(), '{"response":{"logs":{"error":{"container":"hello-world:0.0.1","error":{"unexpected":{"error":"logs are not served by this runtime"}}}}}}');
  assert.deepEqual(h.handle.requests.map((r: { req: Request }) => r.req), []);
});
