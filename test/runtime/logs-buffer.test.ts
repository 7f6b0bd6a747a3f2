/**
 * The log buffer (ours, issue 12) as pure logic: bounded by bytes, oldest lines first,
 * followers; and the `logs` wire forms (strict codec, field order) and the `[logs]` config key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LINE_OVERHEAD, LogBuffer, type LogFollower } from '../../src/runtime/logs.js';
import type { LogEndReason, LogLine } from '../../src/api/model.js';
import { encode, parseMessage } from '../../src/api/codec.js';
import { Container } from '../../src/common/container.js';
import { parseConfig } from '../../src/runtime/config.js';
import { isPermitted, permissionSet } from '../../src/console/permissions.js';
import { parseManifest } from '../../src/manifest/index.js';

const cost = (s: string): number => Buffer.byteLength(s) + LINE_OVERHEAD;

test('lines come back oldest first with stream and time; tail takes the last n', () => {
  const b = new LogBuffer(1 << 20);
  b.push('stdout', 'one', 1n);
  b.push('stderr', 'two', 2n);
  b.push('stdout', 'three', 3n);
  assert.deepEqual(b.tail(), [
    { time: 1n, stream: 'stdout', line: 'one' },
    { time: 2n, stream: 'stderr', line: 'two' },
    { time: 3n, stream: 'stdout', line: 'three' },
  ]);
  assert.deepEqual(b.tail(2).map((l) => l.line), ['two', 'three']);
  assert.deepEqual(b.tail(0), []);
  assert.deepEqual(b.tail(10).length, 3);
  assert.deepEqual(b.stats(), { lines: 3, bytes: cost('one') + cost('two') + cost('three'), capacity: 1 << 20, dropped: 0 });
});

test('the oldest lines drop first and the bytes never exceed the capacity', () => {
  const cap = 10 * cost('line 00');
  const b = new LogBuffer(cap);
  for (let i = 0; i < 25; i++) b.push('stdout', `line ${String(i).padStart(2, '0')}`);
  const st = b.stats();
  assert.equal(st.lines, 10);
  assert.equal(st.dropped, 15);
  assert.ok(st.bytes <= cap);
  assert.deepEqual(b.tail().map((l) => l.line), Array.from({ length: 10 }, (_, i) => `line ${15 + i}`));
});

test('empty lines count their overhead: a flood of them stays bounded', () => {
  const b = new LogBuffer(64 * 1024);
  for (let i = 0; i < 100_000; i++) b.push('stdout', '');
  const st = b.stats();
  assert.equal(st.lines, Math.floor((64 * 1024) / LINE_OVERHEAD));
  assert.equal(st.lines + st.dropped, 100_000);
  assert.ok(st.bytes <= st.capacity);
});

test('a line longer than a tiny buffer is cut to fit at a character boundary, never kept whole', () => {
  const b = new LogBuffer(LINE_OVERHEAD + 5);
  b.push('stdout', 'ééé');
  const [l] = b.tail();
  assert.equal(l?.line, 'éé');
  assert.ok(b.stats().bytes <= b.capacity);
});

test('followers get every later line and one end; endFollowers(reason, run) ends only that run', () => {
  const b = new LogBuffer(1 << 20);
  const seen: { lines: string[]; ends: LogEndReason[] }[] = [];
  const follower = (): LogFollower => {
    const s = { lines: [] as string[], ends: [] as LogEndReason[] };
    seen.push(s);
    return { line: (l: LogLine) => s.lines.push(l.line), end: (r) => s.ends.push(r) };
  };
  b.push('stdout', 'before');
  const runA = {};
  const runB = {};
  b.follow(follower(), runA);
  const stop = b.follow(follower(), runA);
  b.follow(follower(), runB);
  b.push('stdout', 'a');
  stop();
  b.push('stdout', 'b');
  b.endFollowers('exit', runA);
  b.push('stdout', 'c');
  b.endFollowers('uninstall');
  b.endFollowers('uninstall');
  assert.deepEqual(seen, [
    { lines: ['a', 'b'], ends: ['exit'] },
    { lines: ['a'], ends: [] },
    { lines: ['a', 'b', 'c'], ends: ['uninstall'] },
  ]);
  assert.equal(b.following, 0);
});

test('many drops keep the ring compact and in order', () => {
  const b = new LogBuffer(100 * cost('x'.repeat(6)));
  for (let i = 0; i < 50_000; i++) b.push('stdout', String(i).padStart(6, '0'));
  assert.equal(b.stats().lines, 100);
  assert.equal(b.tail(1)[0]?.line, '049999');
  assert.equal(b.tail()[0]?.line, '049900');
});

test('a bad capacity is refused', () => {
  assert.throws(() => new LogBuffer(0), /capacity 0 must be a positive integer/);
});

// --- wire ------------------------------------------------------------------------------

const C = Container.parse('hello:0.0.1');

test('the logs request, its answer and the follow messages: exact text, strict parse', () => {
  const cases: [string, Parameters<typeof encode>[0]][] = [
    ['{"request":{"logs":{"container":"hello:0.0.1","tail":10,"follow":true}}}', { request: { logs: { container: C, tail: 10, follow: true } } }],
    ['{"request":{"logs":{"container":"hello:0.0.1","tail":null,"follow":false}}}', { request: { logs: { container: C, tail: null, follow: false } } }],
    [
      '{"response":{"logs":{"ok":{"container":"hello:0.0.1","io":{"stdout":"pipe","stderr":"discard"},"lines":[{"time":1764866400123,"stream":"stdout","line":"hi \\"x\\""}],"buffer":{"lines":1,"bytes":70,"capacity":1048576,"dropped":0}}}}}',
      {
        response: {
          logs: {
            ok: {
              container: C,
              io: { stdout: 'pipe', stderr: 'discard' },
              lines: [{ time: 1764866400123n, stream: 'stdout', line: 'hi "x"' }],
              buffer: { lines: 1n, bytes: 70n, capacity: 1048576n, dropped: 0n },
            },
          },
        },
      },
    ],
    ['{"response":{"logs":{"error":{"container":"hello:0.0.1","error":{"invalid_container":{"container":"hello:0.0.1"}}}}}}', { response: { logs: { error: { container: C, error: { invalid_container: { container: C } } } } } }],
    ['{"log":{"container":"hello:0.0.1","lines":[{"time":5,"stream":"stderr","line":""}]}}', { log: { container: C, lines: [{ time: 5n, stream: 'stderr', line: '' }] } }],
    ['{"log_end":{"container":"hello:0.0.1","reason":"exit"}}', { log_end: { container: C, reason: 'exit' } }],
  ];
  for (const [text, msg] of cases) {
    assert.equal(encode(msg), text);
    assert.equal(encode(parseMessage(text)), text);
  }
  assert.throws(() => parseMessage('{"request":{"logs":{"container":"hello:0.0.1","tail":-1,"follow":true}}}'), /request\.logs\.tail: -1 is out of range for u32/);
  assert.throws(() => parseMessage('{"request":{"logs":{"container":"hello:0.0.1","tail":null}}}'), /missing field `follow`/);
  assert.throws(() => parseMessage('{"log_end":{"container":"hello:0.0.1","reason":"bored"}}'), /unknown variant `bored`/);
  assert.throws(() => parseMessage('{"log":{"container":"hello:0.0.1","lines":[{"time":5,"stream":"stdin","line":""}]}}'), /unknown variant `stdin`/);
});

test('logs needs the logs permission: part of "full", not of the upstream 15', () => {
  const req = { logs: { container: C, tail: null, follow: false } };
  assert.ok(isPermitted(req, permissionSet('full')));
  const upstream15 = ['ident', 'inspect', 'install', 'kill', 'list', 'notifications', 'mount', 'repositories', 'shutdown', 'start', 'start_command', 'token_create', 'token_verification', 'umount', 'uninstall'];
  assert.ok(!isPermitted(req, permissionSet(upstream15)));
  assert.ok(isPermitted(req, permissionSet(['logs'])));
});

test('a manifest console may list logs', () => {
  const m = parseManifest('name: a\nversion: 0.0.1\ninit: /a\nuid: 1000\ngid: 1000\nconsole:\n  permissions: [list, logs]\n');
  assert.deepEqual(m.console?.permissions, ['list', 'logs']);
});

// --- config ----------------------------------------------------------------------------

const BASE = 'run_dir = "/r"\ndata_dir = "/d"\nsocket_dir = "/s"\ncgroup = "ns"\n';

test('[logs] buffer_size: a byte size, default 1 MiB, 0 keeps none, bounds named', () => {
  assert.equal(parseConfig(BASE).logs?.bufferSize, 1 << 20);
  assert.equal(parseConfig(`${BASE}[logs]\nbuffer_size = "64KiB"\n`).logs?.bufferSize, 65536);
  assert.equal(parseConfig(`${BASE}[logs]\nbuffer_size = "0"\n`).logs?.bufferSize, 0);
  assert.throws(() => parseConfig(`${BASE}[logs]\nbuffer_size = "1KiB"\n`), /logs\.buffer_size: "1KiB" is too small: at least 8256 bytes/);
  assert.throws(() => parseConfig(`${BASE}[logs]\nbuffer_size = "2GiB"\n`), /logs\.buffer_size: "2GiB" is too large/);
  assert.throws(() => parseConfig(`${BASE}[logs]\nbuffer_size = 100\n`), /logs\.buffer_size: expected a byte size string/);
  assert.throws(() => parseConfig(`${BASE}[logs]\nsize = "1MiB"\n`), /logs\.size: unknown key/);
});
