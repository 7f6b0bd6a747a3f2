import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectOptions, ConsoleUrlError, DEFAULT_CONSOLE_PORT, DEFAULT_CONSOLE_URL, parseConsoleUrl } from '../../src/common/console-url.js';

function problem(text: string, what?: string): ConsoleUrlError {
  try {
    parseConsoleUrl(text, what);
  } catch (e) {
    assert.ok(e instanceof ConsoleUrlError, `${text}: ${String(e)}`);
    assert.equal(e.code, 'EURL');
    return e;
  }
  assert.fail(`${text}: parsed`);
}

test("tcp urls: host and port, upstream's port 4200 when left out, IPv6 without brackets", () => {
  assert.equal(DEFAULT_CONSOLE_PORT, 4200);
  assert.equal(DEFAULT_CONSOLE_URL, 'tcp://localhost:4200');
  assert.deepEqual(parseConsoleUrl(DEFAULT_CONSOLE_URL), { scheme: 'tcp', host: 'localhost', port: 4200 });
  assert.deepEqual(parseConsoleUrl('tcp://127.0.0.1'), { scheme: 'tcp', host: '127.0.0.1', port: 4200 });
  assert.deepEqual(parseConsoleUrl('tcp://[::1]:4201'), { scheme: 'tcp', host: '::1', port: 4201 });
  assert.deepEqual(parseConsoleUrl('TCP://Example.org:0'), { scheme: 'tcp', host: 'Example.org', port: 0 });
  assert.deepEqual(connectOptions(parseConsoleUrl('tcp://[::1]:4201')), { host: '::1', port: 4201 });
});

test('unix urls: only the absolute path counts, percent escapes decoded', () => {
  assert.deepEqual(parseConsoleUrl('unix:///run/northstar/console'), { scheme: 'unix', path: '/run/northstar/console' });
  assert.deepEqual(parseConsoleUrl('unix:///run/my%20console?x=1#f'), { scheme: 'unix', path: '/run/my console' });
  assert.deepEqual(parseConsoleUrl('unix://ignored/run/c'), { scheme: 'unix', path: '/run/c' });
  assert.deepEqual(connectOptions(parseConsoleUrl('unix:///run/c')), { path: '/run/c' });
});

test('each bad url names the url and what is wrong', () => {
  const cases: [string, string, string][] = [
    ['nonsense', 'syntax', 'invalid console url "nonsense"'],
    ['::', 'syntax', 'invalid console url "::"'],
    ['http://localhost:4200', 'scheme', 'invalid console url "http://localhost:4200": the scheme must be tcp or unix'],
    ['tcp://', 'host', 'invalid console url "tcp://": no host'],
    ['tcp://:4200', 'syntax', 'invalid console url "tcp://:4200"'],
    ['unix://', 'path', 'invalid console url "unix://": no socket path'],
    ['unix:///', 'path', 'invalid console url "unix:///": no socket path'],
    ['unix:run/c', 'path', 'invalid console url "unix:run/c": the socket path must be absolute (unix:///path)'],
    ['unix:///run/%zz', 'path', 'invalid console url "unix:///run/%zz": the socket path has an invalid percent escape'],
  ];
  for (const [text, kind, message] of cases) {
    const e = problem(text);
    assert.deepEqual([e.problem, e.message, e.url], [kind, message, text], text);
  }
  // The caller names the url; a scheme problem carries the scheme found.
  const e = problem('ftp://y', 'url');
  assert.deepEqual([e.message, e.scheme], ['invalid url "ftp://y": the scheme must be tcp or unix', 'ftp']);
  assert.equal(problem('x').scheme, undefined);
});
