/** Unit tests of nstar's pieces: the start argument split, tables, durations, lines, tokens, urls. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Container } from '../../src/common/container.js';
import type { ContainerData } from '../../src/api/model.js';
import { parseManifest } from '../../src/manifest/index.js';
import { parseSignal, resolveContainer, splitStartCommand, startedLine } from '../../src/nstar/args.js';
import { renderTable } from '../../src/nstar/table.js';
import { formatDuration, parseDuration, parseDurationMs } from '../../src/nstar/duration.js';
import { entriesJson, listTable, modelErrorText, notificationLine, psTable, resultsTable } from '../../src/nstar/format.js';
import { decodeToken, progressBar } from '../../src/nstar/commands.js';
import { compactJson, prettyJson } from '../../src/nstar/json.js';
import { DEFAULT_URL, DEVICE_SOCKET, QUICKSTART_SOCKET, defaultConsoleUrl, parseConsoleUrl } from '../../src/nstar/connect.js';
import { seccompYaml, straceSyscalls } from '../../src/nstar/seccomp.js';

const C = (s: string): Container => Container.parse(s);

describe('start argument split', () => {
  test('env, then init, then args', () => {
    assert.deepEqual(splitStartCommand(['DEBUG=1', '<INIT>', '-v']), { env: [['DEBUG', '1']], init: '<INIT>', args: ['-v'] });
    assert.deepEqual(splitStartCommand([]), { env: [], init: null, args: [] });
    assert.deepEqual(splitStartCommand(['A=1', 'B=x=y']), { env: [['A', '1'], ['B', 'x=y']], init: null, args: [] });
    assert.deepEqual(splitStartCommand(['/bin/sh', '-c', 'X=1 true']), { env: [], init: '/bin/sh', args: ['-c', 'X=1 true'] });
    assert.deepEqual(splitStartCommand(['EMPTY=', 'init', 'a=b']), { env: [['EMPTY', '']], init: 'init', args: ['a=b'] });
    assert.deepEqual(splitStartCommand(['--', '/bin/sh', '--', '-x']), { env: [], init: '/bin/sh', args: ['--', '-x'] }, 'only a first -- is dropped');
  });
  test('bad tokens are refused', () => {
    assert.throws(() => splitStartCommand(['=1']), /invalid environment variable "=1": empty name/);
    assert.throws(() => splitStartCommand(['init', 'a\0b']), /contains a nul byte/);
  });
  test('the started line', () => {
    const c = C('hello-world:0.0.1');
    assert.equal(startedLine(c, splitStartCommand([])), 'started hello-world:0.0.1');
    assert.equal(startedLine(c, splitStartCommand(['DEBUG=1', 'X=2', '<INIT>', '-v', 'x'])), 'started hello-world:0.0.1 DEBUG=1 X=2 <INIT> -v x');
  });
});

describe('signals and names', () => {
  test('numbers and names', () => {
    assert.equal(parseSignal('9'), 9);
    assert.equal(parseSignal('SIGKILL'), 9);
    assert.equal(parseSignal('term'), 15);
    assert.equal(parseSignal('USR1'), 10);
    assert.equal(parseSignal('0'), 0, 'numbers go to the runtime as they are; it refuses invalid ones');
    assert.throws(() => parseSignal('SIGFOO'), /unknown signal "SIGFOO"/);
    assert.throws(() => parseSignal('99999999999'), /invalid signal/);
  });
  test('resolution: one list, exactly one version', async () => {
    let calls = 0;
    const list = async (): Promise<Container[]> => {
      calls++;
      return [C('a:0.0.1'), C('b:0.0.1'), C('b:0.0.2')];
    };
    assert.deepEqual(await resolveContainer('a', list), C('a:0.0.1'));
    assert.equal(calls, 1);
    assert.deepEqual(await resolveContainer('c:1.0.0', list), C('c:1.0.0'), 'with a version: no list');
    assert.equal(calls, 1);
    await assert.rejects(resolveContainer('b', list), { message: 'container b has multiple versions: 0.0.1, 0.0.2; give one, for example b:0.0.2' });
    await assert.rejects(resolveContainer('x', list), { message: 'no container found with name x' });
    await assert.rejects(resolveContainer('a:x', list), /invalid container "a:x"/);
    await assert.rejects(resolveContainer('a b', list), /container name: invalid character " "/);
  });
});

describe('tables', () => {
  test('no border, line separator; trailing blanks dropped', () => {
    assert.equal(
      renderTable(['Name', 'Result'], [['hello-world:0.0.1', 'ok'], ['x:1.0.0', 'invalid container x:1.0.0']]),
      ' Name              | Result\n-------------------+---------------------------\n hello-world:0.0.1 | ok\n x:1.0.0           | invalid container x:1.0.0\n',
    );
    assert.equal(renderTable(['Name'], []), ' Name\n------\n');
    assert.equal(renderTable(['A', 'B'], [['', '']]), ' A | B\n---+---\n   |\n');
  });
  test('colours only when asked, padding computed without them', () => {
    const t = renderTable(['N', 'T'], [[{ text: 'ab', style: 'bold' }, { text: 'app', style: 'blue' }]], { color: true });
    assert.equal(t, ' \x1b[1mN\x1b[0m  | \x1b[1mT\x1b[0m\n----+-----\n \x1b[1mab\x1b[0m | \x1b[34mapp\x1b[0m\n');
    assert.throws(() => renderTable(['A'], [['1', '2']]), /table row has 2 cells, expected 1/);
  });
  const manifest = (text: string) => parseManifest(text);
  const app = (pid: number | null, mounted: boolean): ContainerData => ({
    manifest: manifest('name: hello\nversion: 0.0.1\ninit: /hello\nuid: 1\ngid: 1\n'),
    repository: 'default',
    mounted,
    process: pid === null ? null : { pid, uptime: 3_723_004_005_006n, statistics: {} },
  });
  const res: ContainerData = { manifest: manifest('name: data\nversion: 1.0.0\nuid: 1\ngid: 1\n'), repository: 'memory', mounted: false, process: null };
  const entries = [
    { container: C('zdata:1.0.0'), data: res },
    { container: C('hello:0.0.2'), data: app(null, true) },
    { container: C('hello:0.0.1'), data: app(42, true) },
    { container: C('adata:1.0.0'), data: res },
  ];
  test('list: apps first, then resources, each by name and version', () => {
    assert.equal(
      listTable(entries),
      [
        ' Name  | Version | Repository | Type     | Mounted | PID | Uptime',
        '-------+---------+------------+----------+---------+-----+----------------------',
        ' hello | 0.0.1   | default    | app      | yes     | 42  | 1h 2m 3s 4ms 5us 6ns',
        ' hello | 0.0.2   | default    | app      | yes     |     |',
        ' adata | 1.0.0   | memory     | resource | no      |     |',
        ' zdata | 1.0.0   | memory     | resource | no      |     |',
        '',
      ].join('\n'),
    );
  });
  test('ps: state, uptime in whole seconds', () => {
    assert.equal(
      psTable(entries),
      [
        ' Name  | Version | Type     | State     | PID | Uptime   | Repository',
        '-------+---------+----------+-----------+-----+----------+------------',
        ' hello | 0.0.1   | app      | running   | 42  | 1h 2m 3s | default',
        ' hello | 0.0.2   | app      | mounted   |     |          | default',
        ' adata | 1.0.0   | resource | installed |     |          | memory',
        ' zdata | 1.0.0   | resource | installed |     |          | memory',
        '',
      ].join('\n'),
    );
    const rows = entriesJson(entries) as Record<string, unknown>[];
    assert.deepEqual(rows[0], { container: 'hello:0.0.1', name: 'hello', version: '0.0.1', repository: 'default', type: 'app', mounted: true, state: 'running', pid: 42, uptime_ns: 3_723_004_005_006n });
    assert.equal(prettyJson(rows[0]!.uptime_ns as bigint), '3723004005006');
  });
  test('mount results', () => {
    assert.equal(
      resultsTable([{ ok: { container: C('a:0.0.1') } }, { error: { container: C('b:0.0.1'), error: { umount_busy: { container: C('b:0.0.1') } } } }]),
      ' Name    | Result\n---------+-------------------------\n a:0.0.1 | ok\n b:0.0.1 | container busy: b:0.0.1\n',
    );
  });
});

describe('durations', () => {
  test('humantime parsing', () => {
    assert.equal(parseDuration('10s'), 10_000_000_000n);
    assert.equal(parseDuration('1m 30s'), 90_000_000_000n);
    assert.equal(parseDuration('1h30m'), 5_400_000_000_000n);
    assert.equal(parseDuration('500ms'), 500_000_000n);
    assert.equal(parseDuration('2days'), 172_800_000_000_000n);
    assert.equal(parseDurationMs('1ns'), 1, 'rounded up to whole milliseconds');
    assert.throws(() => parseDuration(''), /invalid duration "": empty/);
    assert.throws(() => parseDuration('10'), /time unit needed/);
    assert.throws(() => parseDuration('1.5s'), /fractions are not supported/);
    assert.throws(() => parseDuration('3 fortnights'), /unknown time unit "fortnights"/);
    assert.throws(() => parseDuration('1s!'), /unexpected "!"/);
  });
  test('humantime formatting', () => {
    assert.equal(formatDuration(0n), '0s');
    assert.equal(formatDuration(1n), '1ns');
    assert.equal(formatDuration(1_500_000_000n), '1s 500ms');
    assert.equal(formatDuration(86_400n * 1_000_000_000n), '1day');
    assert.equal(formatDuration(2n * 86_400n * 1_000_000_000n + 1n), '2days 1ns');
    assert.equal(formatDuration(31_557_600n * 1_000_000_000n * 2n + 2_630_016n * 1_000_000_000n), '2years 1month');
  });
});

describe('notification lines and errors', () => {
  const c = C('hello-world:0.0.1');
  test('the upstream line of each notification', () => {
    assert.equal(notificationLine({ started: c }), 'started hello-world:0.0.1');
    assert.equal(notificationLine({ exit: [c, { exit: { code: 0 } }] }), 'container hello-world:0.0.1 exited with status exit code 0');
    assert.equal(notificationLine({ exit: [c, { signalled: { signal: 9 } }] }), 'container hello-world:0.0.1 exited with status signalled 9');
    assert.equal(notificationLine({ install: c }), 'installed hello-world:0.0.1');
    assert.equal(notificationLine({ uninstall: c }), 'uninstalled hello-world:0.0.1');
    assert.equal(notificationLine('shutdown'), 'shutting down');
    assert.equal(
      notificationLine({ c_group: [c, { memory: { low: null, high: null, max: null, oom: 1n, oom_kill: null } }] }),
      'container hello-world:0.0.1 memory event Memory(MemoryNotification { low: None, high: None, max: None, oom: Some(1), oom_kill: None })',
    );
  });
  test('error texts of the Result column', () => {
    assert.equal(modelErrorText({ invalid_container: { container: c } }), 'invalid container hello-world:0.0.1');
    assert.equal(modelErrorText({ unexpected: { error: 'boom' } }), 'boom');
    assert.equal(
      modelErrorText({ start_container_missing_resource: { container: c, resource: 'r' as never, version: '>=1' } }),
      'failed to start container hello-world:0.0.1: missing resource r version >=1',
    );
  });
});

describe('misc', () => {
  test('tokens: padded base64 of 40 bytes', () => {
    const t = Buffer.alloc(40, 7);
    assert.deepEqual(decodeToken(t.toString('base64')), t);
    assert.throws(() => decodeToken('not base64!'), /invalid token: not base64/);
    assert.throws(() => decodeToken('AAAA'), /expected 40 bytes, got 3/);
  });
  test('console urls', () => {
    assert.deepEqual(parseConsoleUrl('tcp://localhost'), { host: 'localhost', port: 4200 });
    assert.deepEqual(parseConsoleUrl('tcp://[::1]:4201'), { host: '::1', port: 4201 });
    assert.deepEqual(parseConsoleUrl('unix:///run/northstar/console'), { path: '/run/northstar/console' });
    assert.throws(() => parseConsoleUrl('http://x'), /the scheme must be tcp or unix/);
    assert.throws(() => parseConsoleUrl('unix://'), /no socket path/);
    assert.throws(() => parseConsoleUrl('::'), /invalid url "::"/);
  });
  test('the console without -u: $NORTHSTAR_URL, the device socket, the Quickstart socket, then tcp', () => {
    const at = (...present: string[]) => (p: string) => present.includes(p);
    assert.equal(defaultConsoleUrl({ NORTHSTAR_URL: 'tcp://dev:1' }, at(DEVICE_SOCKET)), 'tcp://dev:1');
    assert.equal(defaultConsoleUrl({}, at(DEVICE_SOCKET, QUICKSTART_SOCKET)), `unix://${DEVICE_SOCKET}`);
    assert.equal(defaultConsoleUrl({}, at(QUICKSTART_SOCKET)), `unix://${QUICKSTART_SOCKET}`);
    assert.match(QUICKSTART_SOCKET, /\/target\/northstar\/console\.sock$/);
    assert.equal(defaultConsoleUrl({}, at()), DEFAULT_URL);
  });
  test('JSON output keeps 64-bit integers and key order', () => {
    assert.equal(prettyJson({ b: [], a: {}, n: 18446744073709551615n, s: 'x' }), '{\n  "b": [],\n  "a": {},\n  "n": 18446744073709551615,\n  "s": "x"\n}');
    assert.equal(compactJson({ a: [1, null, true] }), '{"a":[1,null,true]}');
  });
  test('progress bar', () => {
    const out: string[] = [];
    const bar = progressBar((s) => out.push(s), 10);
    bar(0, 2 << 20);
    bar(1 << 20, 2 << 20);
    bar(1 << 20, 2 << 20);
    bar(2 << 20, 2 << 20);
    assert.deepEqual(out, [
      '\rinstalling [          ]   0% 0.0 MiB/2.0 MiB',
      '\rinstalling [#####     ]  50% 1.0 MiB/2.0 MiB',
      '\rinstalling [##########] 100% 2.0 MiB/2.0 MiB\n',
    ]);
  });
  test('strace log parsing', () => {
    assert.deepEqual(straceSyscalls('openat(AT_FDCWD, "/x", O_RDONLY) = 3\n[pid 7] clone3({flags=0}, 88) = 8\n--- SIGCHLD ---\n'), ['openat', 'clone3']);
    assert.equal(seccompYaml('', true), 'profile: default\n');
    assert.equal(seccompYaml('', false), '{}\n');
  });
});
