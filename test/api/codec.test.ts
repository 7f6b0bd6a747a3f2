import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Container } from '../../src/common/container.js';
import { parseMessage, encode, ProtocolError, encodeManifest } from '../../src/api/codec.js';
import type { Message, Response } from '../../src/api/model.js';
import { parseManifest } from '../../src/manifest/index.js';

const C = (s: string): Container => Container.parse(s);

/** Every complete example of console.md, verbatim: parse, then encode to the same bytes. */
const SPEC_EXAMPLES = [
  '{"connect":{"version":"0.9.3","subscribe_notifications":false}}',
  '{"connect_ack":null}',
  '{"connect_nack":{"invalid_protocol_version":{"version":"0.9.3"}}}',
  '{"connect_nack":"permission_denied"}',
  '{"request":"ident"}',
  '{"response":{"ident":"console:0.0.1"}}',
  '{"request":"list"}',
  '{"response":{"list":["hello-world:0.0.1","cpueater:0.0.1"]}}',
  '{"request":"repositories"}',
  '{"response":{"repositories":["default","memory"]}}',
  '{"request":{"start":{"container":"hello-world:0.0.1","init":null,"arguments":[],"environment":{}}}}',
  '{"response":{"start":{"ok":{"container":"hello-world:0.0.1"}}}}',
  '{"response":{"start":{"error":{"container":"hello-world:0.0.1","error":{"start_container_started":{"container":"hello-world:0.0.1"}}}}}}',
  '{"request":{"kill":{"container":"hello-world:0.0.1","signal":15}}}',
  '{"response":{"kill":{"ok":{"container":"hello-world:0.0.1"}}}}',
  '{"request":{"mount":{"containers":["a:0.0.1","b:1.0.0"]}}}',
  '{"response":{"mount":[{"ok":{"container":"a:0.0.1"}},{"error":{"container":"b:1.0.0","error":{"invalid_container":{"container":"b:1.0.0"}}}}]}}',
  '{"request":{"umount":{"containers":["a:0.0.1"]}}}',
  '{"response":{"umount":[{"ok":{"container":"a:0.0.1"}}]}}',
  '{"request":{"install":{"repository":"memory","size":123456}}}',
  '{"response":{"install":{"ok":{"container":"hello-world:0.0.1"}}}}',
  '{"response":{"install":{"error":{"error":{"invalid_repository":{"repository":"nope"}}}}}}',
  '{"request":{"uninstall":{"container":"hello-world:0.0.1","wipe":false}}}',
  '{"response":{"uninstall":{"ok":{"container":"hello-world:0.0.1"}}}}',
  '{"request":{"inspect":{"container":"console:0.0.1"}}}',
  '{"request":"shutdown"}',
  '{"response":"shutdown"}',
  '{"request":{"token_create":{"target":"token-server","shared":"aGVsbG8h"}}}',
  '{"response":{"token_verification":"Ok"}}',
  '{"response":{"permission_denied":"repositories"}}',
  '{"response":{"permission_denied":{"kill":{"container":"x:0.0.1","signal":15}}}}',
  '{"notification":{"started":"hello-world:0.0.1"}}',
  '{"notification":{"exit":["hello-world:0.0.1",{"exit":{"code":0}}]}}',
  '{"notification":{"exit":["hello-world:0.0.1",{"signalled":{"signal":15}}]}}',
  '{"notification":{"install":"hello-world:0.0.1"}}',
  '{"notification":{"uninstall":"hello-world:0.0.1"}}',
  '{"notification":{"c_group":["hello-world:0.0.1",{"memory":{"low":null,"high":null,"max":null,"oom":1,"oom_kill":null}}]}}',
  '{"notification":"shutdown"}',
];

test('every console.md example parses and encodes back to the same bytes', () => {
  for (const line of SPEC_EXAMPLES) {
    assert.equal(encode(parseMessage(line)), line, line);
    assert.equal(encode(parseMessage(Buffer.from(line + '\r'))), line, 'bytes with a trailing \\r');
  }
});

test('every error variant (console.md §6) round-trips in declaration order', () => {
  const errors = [
    '{"configuration":{"context":"c"}}',
    '{"duplicate_container":{"container":"a:0.0.1"}}',
    '{"invalid_container":{"container":"a:0.0.1"}}',
    '{"invalid_arguments":{"cause":"env contains reserved key NORTHSTAR_NAME or NORTHSTAR_VERSION or NORTHSTAR_CONTAINER or NORTHSTAR_CONSOLE"}}',
    '{"mount_busy":{"container":"a:0.0.1"}}',
    '{"umount_busy":{"container":"a:0.0.1"}}',
    '{"start_container_started":{"container":"a:0.0.1"}}',
    '{"start_container_resource":{"container":"a:0.0.1"}}',
    '{"start_container_missing_resource":{"container":"a:0.0.1","resource":"message","version":">=0.0.1"}}',
    '{"start_container_failed":{"container":"a:0.0.1","error":"mount /data: ENOENT"}}',
    '{"stop_container_not_started":{"container":"a:0.0.1"}}',
    '{"invalid_repository":{"repository":"nope"}}',
    '{"install_duplicate":{"container":"a:0.0.1"}}',
    '{"critical_container":{"container":"a:0.0.1","status":{"exit":{"code":-1}}}}',
    '{"critical_container":{"container":"a:0.0.1","status":{"signalled":{"signal":9}}}}',
    '{"unexpected":{"error":"EINVAL: Invalid argument"}}',
  ];
  for (const e of errors) {
    const line = `{"response":{"kill":{"error":{"container":"a:0.0.1","error":${e}}}}}`;
    assert.equal(encode(parseMessage(line)), line);
  }
});

const INSPECT_EXAMPLE =
  '{"response":{"inspect":{"ok":{"container":"console:0.0.1","data":{"manifest":{"name":"console","version":"0.0.1","console":{"permissions":["ident","notifications","inspect","kill","list"]},"init":"/console","uid":1000,"gid":1000,"mounts":{"/dev":{"type":"dev"},"/lib":{"type":"bind","host":"/lib"}},"io":{"stdout":"pipe","stderr":"pipe"}},"repository":"memory","mounted":true,"process":{"pid":4242,"uptime":1234567890,"statistics":{"memory":{},"cpu":{},"blkio":{}}}}}}}}';

test('the inspect example (console.md §5.9) decodes to typed data; the manifest keeps upstream keys', () => {
  const line =
    '{"response":{"inspect":{"ok":{"container":"console:0.0.1","data":{"manifest":{"name":"console","version":"0.0.1","console":{"permissions":["ident","notifications","inspect","kill","list"]},"init":"/console","uid":1000,"gid":1000,"mounts":{"/dev":{"type":"dev"},"/lib":{"type":"bind","host":"/lib"}},"io":{"stdout":"pipe","stderr":"pipe"}},"repository":"memory","mounted":true,"process":{"pid":4242,"uptime":1234567890,"statistics":{"memory":{},"cpu":{},"blkio":{}}}}}}}}';
  const m = parseMessage(line);
  assert.ok('response' in m && typeof m.response === 'object' && 'inspect' in m.response && 'ok' in m.response.inspect);
  const data = m.response.inspect.ok.data;
  assert.equal(data.manifest.name, 'console');
  assert.equal(data.manifest.init, '/console');
  assert.equal(data.repository, 'memory');
  assert.equal(data.mounted, true);
  assert.deepEqual(data.process, { pid: 4242, uptime: 1234567890n, statistics: { memory: {}, cpu: {}, blkio: {} } });
  // Permissions are a set: we write them in declaration order.
  const out = encode(m);
  assert.equal(
    out,
    line.replace('["ident","notifications","inspect","kill","list"]', '["ident","inspect","kill","list","notifications"]'),
  );
  // Manifest JSON key order is upstream's.
  const keys = Object.keys(JSON.parse(encodeManifest(data.manifest)) as object);
  assert.deepEqual(keys, ['name', 'version', 'console', 'init', 'uid', 'gid', 'mounts', 'io']);
});

test('the inspect manifest rejects unknown fields (strict manifest) but data ignores extras', () => {
  const base = (manifest: string, extra = ''): string =>
    `{"response":{"inspect":{"ok":{"container":"a:0.0.1","data":{"manifest":${manifest},"repository":"r","mounted":false,"process":null${extra}}}}}}`;
  const ok = '{"name":"a","version":"0.0.1","init":"/a","uid":1,"gid":1}';
  assert.doesNotThrow(() => parseMessage(base(ok, ',"future":1')));
  assert.throws(() => parseMessage(base('{"name":"a","version":"0.0.1","init":"/a","uid":1,"gid":1,"bogus":true}')), (e: unknown) => {
    assert.ok(e instanceof ProtocolError);
    assert.match(e.message, /response\.inspect\.ok\.data\.manifest/);
    return true;
  });
});

test('u64 values are lossless: uptime and cgroup counters beyond 2^53 survive a round trip', () => {
  const big = '18446744073709551615';
  const line = `{"notification":{"c_group":["a:0.0.1",{"memory":{"low":0,"high":9007199254740993,"max":null,"oom":${big},"oom_kill":null}}]}}`;
  const m = parseMessage(line);
  assert.ok('notification' in m && typeof m.notification === 'object' && 'c_group' in m.notification);
  assert.equal(m.notification.c_group[1].memory.oom, 18446744073709551615n);
  assert.equal(m.notification.c_group[1].memory.high, 9007199254740993n);
  assert.equal(encode(m), line);
  const manifest = parseManifest('name: a\nversion: 0.0.1\ninit: /a\nuid: 1\ngid: 1\n');
  const r: Response = {
    inspect: {
      ok: {
        container: C('a:0.0.1'),
        data: { manifest, repository: 'r', mounted: true, process: { pid: 1, uptime: 2n ** 63n + 1n, statistics: { memory: { usage: 2n ** 60n + 3n, small: 5 } } } },
      },
    },
  };
  const text = encode({ response: r });
  assert.match(text, /"uptime":9223372036854775809/);
  assert.match(text, /"usage":1152921504606846979/);
  const back = parseMessage(text);
  assert.ok('response' in back && typeof back.response === 'object' && 'inspect' in back.response && 'ok' in back.response.inspect);
  assert.equal(back.response.inspect.ok.data.process?.uptime, 2n ** 63n + 1n);
  assert.deepEqual(back.response.inspect.ok.data.process?.statistics, { memory: { usage: 2n ** 60n + 3n, small: 5 } });
  assert.equal(encode(back), text);
});

test('unit variants are accepted as "x" and {"x":null}; non-unit variants need data', () => {
  assert.deepEqual(parseMessage('{"request":{"list":null}}'), { request: 'list' });
  assert.deepEqual(parseMessage('{"notification":{"shutdown":null}}'), { notification: 'shutdown' });
  assert.deepEqual(parseMessage('{"response":{"token_verification":{"Expired":null}}}'), { response: { token_verification: 'Expired' } });
  assert.throws(() => parseMessage('{"request":{"list":{}}}'), ProtocolError);
  assert.throws(() => parseMessage('{"request":"kill"}'), ProtocolError);
  assert.throws(() => parseMessage('{"request":{"kill":null}}'), ProtocolError);
});

test('the envelope is untagged: the first decodable key wins, other top-level keys are ignored', () => {
  assert.deepEqual(parseMessage('{"request":"list","extra":1}'), { request: 'list' });
  assert.deepEqual(parseMessage('{"request":"bogus","notification":"shutdown"}'), { notification: 'shutdown' });
  const m = parseMessage('{"request":"list","connect":{"version":"0.9.3","subscribe_notifications":true}}');
  assert.ok('connect' in m);
});

test('connect_ack must be null', () => {
  assert.throws(() => parseMessage('{"connect_ack":{}}'), ProtocolError);
  assert.throws(() => parseMessage('{"connect_ack":[]}'), ProtocolError);
});

test('unknown extra fields inside a request are ignored; missing required ones are named', () => {
  const m = parseMessage('{"request":{"kill":{"container":"a:0.0.1","signal":9,"why":"x"}}}');
  assert.deepEqual(m, { request: { kill: { container: C('a:0.0.1'), signal: 9 } } });
  assert.throws(() => parseMessage('{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":[]}}}'), /request\.start: missing field `environment`/);
  // Option fields may be left out.
  const s = parseMessage('{"request":{"start":{"container":"a:0.0.1","arguments":[],"environment":{}}}}');
  assert.deepEqual(s, { request: { start: { container: C('a:0.0.1'), init: null, arguments: [], environment: {} } } });
});

test('strict decoding: each bad input is a ProtocolError naming what was wrong', () => {
  const cases: [string, RegExp][] = [
    ['', /empty line/],
    ['   ', /invalid json/],
    ['{"request":"list"', /invalid json/],
    ['[1]', /expected a map/],
    ['{"nothing":1}', /expected one of/],
    ['{"request":"lust"}', /unknown variant `lust`/],
    ['{"request":{"list":null,"ident":null}}', /exactly one key/],
    ['{"request":{"kill":{"container":"a","signal":9}}}', /request\.kill\.container: invalid container "a"/],
    ['{"request":{"kill":{"container":"a:1","signal":9}}}', /request\.kill\.container/],
    ['{"request":{"kill":{"container":"a:0.0.1","signal":2147483648}}}', /out of range for i32/],
    ['{"request":{"kill":{"container":"a:0.0.1","signal":15.0}}}', /expected i32, found floating point/],
    ['{"request":{"install":{"repository":"r","size":-1}}}', /out of range for u64/],
    ['{"request":{"install":{"repository":"r","size":18446744073709551616}}}', /out of range for u64/],
    ['{"request":{"start":{"container":"a:0.0.1","init":"/bin\\u0000x","arguments":[],"environment":{}}}}', /request\.start\.init: must not contain a nul byte/],
    ['{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":["\\u0000"],"environment":{}}}}', /arguments\[0\]: must not contain a nul byte/],
    ['{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{"A":"\\u0000"}}}}', /environment\.A: must not contain a nul byte/],
    ['{"request":{"token_verify":{"token":"AAAA","user":"u","shared":""}}}', /token: invalid length/],
    ['{"request":{"token_create":{"target":"t","shared":"abc"}}}', /invalid base64/],
    ['{"request":{"token_create":{"target":"t","shared":"aGVsbG8h\\n"}}}', /invalid base64/],
    ['{"request":{"token_create":{"target":"t","shared":"aGVsbG9="}}}', /trailing bits/],
    ['{"request":{"token_create":{"target":"bad name","shared":""}}}', /request\.token_create\.target: invalid name/],
    ['{"request":{"mount":{"containers":["a:0.0.1","nope"]}}}', /containers\[1\]/],
    ['{"request":{"kill":{"container":"a:0.0.1","container":"b:0.0.1","signal":1}}}', /duplicate key/],
    ['{"request":"list"} x', /trailing characters/],
    ['{"request":"\\ud800"}', /lone leading surrogate/],
    ['{"connect":{"version":"0.9","subscribe_notifications":false}}', /connect\.version/],
    ['{"notification":{"cgroup":["a:0.0.1",{"memory":{}}]}}', /unknown variant `cgroup`/],
    ['{"notification":{"exit":["a:0.0.1"]}}', /tuple of 2/],
    ['{"response":{"token_verification":"ok"}}', /unknown variant `ok`/],
  ];
  for (const [line, re] of cases) {
    assert.throws(() => parseMessage(line), (e: unknown) => {
      assert.ok(e instanceof ProtocolError, `${line}: ${String(e)}`);
      assert.match(e.message, re, line);
      return true;
    });
  }
});

test('invalid UTF-8 and a BOM are rejected; raw UTF-8 is written unescaped', () => {
  assert.throws(() => parseMessage(Buffer.from([0x7b, 0xff, 0x7d])), /invalid utf-8/);
  assert.throws(() => parseMessage(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"request":"list"}')])), /invalid json/);
  const m: Message = { request: { start: { container: C('a:0.0.1'), init: '/ünï', arguments: ['日本', 'tab\t'], environment: { K: 'ß' } } } };
  const text = encode(m);
  assert.equal(text, '{"request":{"start":{"container":"a:0.0.1","init":"/ünï","arguments":["日本","tab\\t"],"environment":{"K":"ß"}}}}');
  assert.deepEqual(parseMessage(Buffer.from(text, 'utf8')), m);
});

test('versions drop pre-release and build parts; containers are canonical', () => {
  const m = parseMessage('{"connect":{"version":"0.9.3-pre+build","subscribe_notifications":true}}');
  assert.equal(encode(m), '{"connect":{"version":"0.9.3","subscribe_notifications":true}}');
});

test('tokens: exactly 40 bytes base64 both ways', () => {
  const token = Buffer.alloc(40, 7);
  const line = `{"response":{"token":"${token.toString('base64')}"}}`;
  assert.equal(token.toString('base64').length, 56);
  assert.deepEqual(parseMessage(line), { response: { token } });
  assert.equal(encode({ response: { token } }), line);
  assert.throws(() => parseMessage(`{"response":{"token":"${Buffer.alloc(39).toString('base64')}"}}`), /invalid length/);
  const v = `{"request":{"token_verify":{"token":"${token.toString('base64')}","user":"token-client","shared":"aGVsbG8h"}}}`;
  assert.equal(encode(parseMessage(v)), v);
});

test('environment keys like __proto__ stay plain data', () => {
  const m = parseMessage('{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{"__proto__":"x"}}}}');
  assert.ok('request' in m && typeof m.request === 'object' && 'start' in m.request);
  assert.deepEqual(Object.keys(m.request.start.environment), ['__proto__']);
  assert.equal(encode(m), '{"request":{"start":{"container":"a:0.0.1","init":null,"arguments":[],"environment":{"__proto__":"x"}}}}');
});

test('seeded mutations of valid lines only ever decode or raise ProtocolError, and decoded ones re-encode stably', () => {
  let seed = 0x2545f491;
  const rand = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const alphabet = '{}[]":,0123456789-.eE \\nulltruefalse_abcxyz:\u0000\u00e9\ud83d\ude00';
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const pool = [...SPEC_EXAMPLES, INSPECT_EXAMPLE];
    const base = Buffer.from(pool[rand(pool.length)]!, 'utf8');
    const bytes = Buffer.from(base);
    const edits = 1 + rand(3);
    let b = bytes;
    for (let k = 0; k < edits; k++) {
      const at = rand(b.length);
      switch (rand(4)) {
        case 0: // replace a byte with a random one
          b[at] = rand(256);
          break;
        case 1: // delete a byte
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
          break;
        case 2: {
          // insert a JSON-ish character
          const ch = Buffer.from([...alphabet][rand([...alphabet].length)]!, 'utf8');
          b = Buffer.concat([b.subarray(0, at), ch, b.subarray(at)]);
          break;
        }
        default: // duplicate a slice
          b = Buffer.concat([b.subarray(0, at), b.subarray(rand(b.length)), b.subarray(at)]);
      }
    }
    let m: Message;
    try {
      m = parseMessage(b);
    } catch (e) {
      assert.ok(e instanceof ProtocolError, `${JSON.stringify(b.toString())}: ${String(e)}`);
      continue;
    }
    decoded++;
    const text = encode(m);
    assert.equal(encode(parseMessage(text)), text, b.toString());
  }
  assert.ok(decoded > 0);
});

test('inspect data: our last_exit and restarts round-trip; without them the bytes are upstream\'s', () => {
  const base = `{"response":{"inspect":{"ok":{"container":"a:0.0.1","data":{"manifest":{"name":"a","version":"0.0.1","init":"/a","uid":1,"gid":1},"repository":"r","mounted":true,"process":null`;
  const plain = `${base}}}}}}`;
  assert.equal(encode(parseMessage(plain)), plain, 'a container that never ran reads as upstream');
  const ours = `${base},"last_exit":{"status":{"exit":{"code":3}},"time":1764866400123,"duration":18446744073709551615},"restarts":2}}}}}`;
  const m = parseMessage(ours);
  assert.ok('response' in m && typeof m.response === 'object' && 'inspect' in m.response && 'ok' in m.response.inspect);
  assert.deepEqual(m.response.inspect.ok.data.last_exit, { status: { exit: { code: 3 } }, time: 1764866400123n, duration: (1n << 64n) - 1n });
  assert.equal(m.response.inspect.ok.data.restarts, 2);
  assert.equal(encode(m), ours);
  const signalled = `${base},"last_exit":{"status":{"signalled":{"signal":9}},"time":1,"duration":2}}}}}}`;
  assert.equal(encode(parseMessage(signalled)), signalled);
  assert.throws(() => parseMessage(`${base},"last_exit":{"status":{"exit":{"code":3}},"time":-1,"duration":2}}}}}}`), /last_exit\.time/);
});

test('restart (ours): request and response round-trip; the "expected one of" lists stay upstream\'s', async () => {
  const req = '{"request":{"restart":{"container":"a:0.0.1","timeout":5000}}}';
  const m = parseMessage(req);
  assert.deepEqual(JSON.parse(JSON.stringify(m)), { request: { restart: { container: 'a:0.0.1', timeout: 5000 } } });
  assert.equal(encode(m), req);
  for (const res of ['{"response":{"restart":{"ok":{"container":"a:0.0.1"}}}}', '{"response":{"restart":{"error":{"container":"a:0.0.1","error":{"start_container_started":{"container":"a:0.0.1"}}}}}}']) {
    assert.equal(encode(parseMessage(res)), res);
  }
  assert.throws(() => parseMessage('{"request":{"restart":{"container":"a:0.0.1","timeout":-1}}}'), /request\.restart\.timeout/);
  assert.throws(() => parseMessage('{"request":{"restart":{"container":"a:0.0.1"}}}'), /request\.restart: missing field `timeout`|timeout/);
  let listed = '';
  try {
    parseMessage('{"request":"lust"}');
  } catch (e) {
    listed = (e as Error).message;
  }
  assert.ok(listed.includes('uninstall') && !listed.includes('restart'), listed);
  const { isPermitted, permissionSet } = await import('../../src/console/permissions.js');
  const r = m as { request: Parameters<typeof isPermitted>[0] };
  assert.equal(isPermitted(r.request, permissionSet(['kill'])), false);
  assert.equal(isPermitted(r.request, permissionSet(['start'])), false);
  assert.equal(isPermitted(r.request, permissionSet(['kill', 'start'])), true);
  assert.equal(isPermitted(r.request, permissionSet('full')), true);
});

test('exec (ours): the request, its answer and its messages round-trip byte for byte; bad ones are named', () => {
  const lines = [
    '{"request":{"exec":{"container":"redis:0.1.0","command":["redis-cli","ping"],"environment":{"A":"1"},"tty":true,"stdin":true,"size":{"rows":40,"cols":120}}}}',
    '{"request":{"exec":{"container":"redis:0.1.0","command":["/bin/sh"],"environment":{},"tty":false,"stdin":false,"size":null}}}',
    '{"response":{"exec":{"ok":{"container":"redis:0.1.0"}}}}',
    '{"response":{"exec":{"error":{"container":"redis:0.1.0","error":{"stop_container_not_started":{"container":"redis:0.1.0"}}}}}}',
    '{"exec_output":{"container":"redis:0.1.0","stream":"stderr","data":"UE9ORwo="}}',
    '{"exec_exit":{"container":"redis:0.1.0","status":{"signalled":{"signal":9}}}}',
    '{"exec_input":{"data":"aGVsbG8K","eof":true}}',
    '{"exec_resize":{"rows":24,"cols":80}}',
    '{"exec_signal":{"signal":2}}',
  ];
  for (const l of lines) assert.equal(encode(parseMessage(l)), l);
  const out = parseMessage(lines[4]!) as Extract<Message, { exec_output: unknown }>;
  assert.equal(out.exec_output.data.toString(), 'PONG\n');
  const bad: [string, RegExp][] = [
    ['{"request":{"exec":{"container":"a:0.0.1","command":[],"environment":{},"tty":false,"stdin":false}}}', /request\.exec\.command: must name a program/],
    ['{"request":{"exec":{"container":"a:0.0.1","command":["x"],"environment":{"A=B":"1"},"tty":false,"stdin":false}}}', /invalid variable name "A=B"/],
    ['{"request":{"exec":{"container":"a:0.0.1","command":["x"],"environment":{},"tty":false,"stdin":false,"size":{"rows":70000,"cols":1}}}}', /size\.rows: 70000 is out of range for u16/],
    ['{"exec_signal":{"signal":0}}', /exec_signal\.signal: 0 is not a signal number/],
    ['{"exec_input":{"data":"@@","eof":false}}', /exec_input\.data: invalid base64/],
    ['{"exec_output":{"container":"a:0.0.1","stream":"stdin","data":""}}', /exec_output\.stream/],
  ];
  for (const [l, re] of bad) assert.throws(() => parseMessage(l), (e: unknown) => e instanceof ProtocolError && re.test(e.message), l);
});
