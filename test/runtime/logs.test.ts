/**
 * Logs (ours, issue 12) against a real runtime: the test container's `io: pipe` output is
 * kept per container with stream and time, survives the container's restarts, goes at
 * uninstall, stays within `logs.buffer_size` under a flood, and can be followed until the
 * container's exit. Waits are on notifications and on the runtime's reported buffer (lines,
 * dropped), never on sleeps.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, openSync, closeSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { type Client, type LogLine, type Logs } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { allNotifications, isExit, isStarted, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest, testNpks, type TestRuntime } from './harness.js';

const TC = 'test-container:0.0.1';

/** Poll the runtime's reported logs of `c` until `ok` holds (the deadline only bounds a broken runtime). */
async function logsUntil(client: Client, c: string, ok: (l: Logs) => boolean, what: string, timeoutMs = 120_000): Promise<Logs> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = await client.logs(c);
    if (ok(l)) return l;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms; last lines: ${JSON.stringify(texts(l.lines.slice(-5)))}, buffer ${JSON.stringify(l.buffer, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const texts = (ls: readonly LogLine[]): string[] => ls.map((l) => l.line);
const hasLine = (text: string) => (l: Logs): boolean => l.lines.some((x) => x.line === text);

/** The persist dir of the test container, made before its start, with `files` in it. */
function persistDir(rt: TestRuntime, files: Record<string, string> = {}): string {
  const dir = join(rt.dataDir, 'test-container');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chownSync(dir, 1000, 1000);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('logs', { skip: !isRoot && 'needs root', timeout: 900_000 }, () => {
  test('print output is kept with stream and time; tail n; kept across a restart; gone after uninstall', async (t) => {
    const { client } = await startWithTestContainers(t);
    const before = BigInt(Date.now());
    await client.start(TC, { args: ['print', 'hello logs'] });
    const first = await logsUntil(client, TC, hasLine('Sleeping...'), 'the print ran');
    assert.deepEqual(texts(first.lines), ['Executing "Print { message: "hello logs", io: Stdout }"', 'hello logs', 'Sleeping...']);
    assert.deepEqual(first.io, { stdout: 'pipe', stderr: 'pipe' });
    for (const l of first.lines) {
      assert.equal(l.stream, 'stdout');
      assert.ok(l.time >= before && l.time <= BigInt(Date.now()), `time ${l.time} is when it was read`);
    }
    assert.equal(first.buffer.lines, 3n);
    assert.equal(first.buffer.dropped, 0n);
    assert.equal(first.buffer.capacity, 1048576n, 'the default: 1 MiB');
    assert.deepEqual(texts((await client.logs(TC, { tail: 2 })).lines), ['hello logs', 'Sleeping...']);
    assert.deepEqual(texts((await client.logs(TC, { tail: 0 })).lines), []);

    // A restart of the container: the earlier lines stay, the new ones (stderr) follow them.
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
    assert.deepEqual(texts((await client.logs(TC)).lines), texts(first.lines), 'kept while stopped');
    await client.start(TC, { args: ['print', '--io', 'stderr', 'oops'] });
    const second = await logsUntil(client, TC, hasLine('oops'), 'the second print ran');
    assert.deepEqual(texts(second.lines.slice(0, 3)), texts(first.lines));
    assert.deepEqual(second.lines.find((l) => l.line === 'oops')?.stream, 'stderr');

    // Uninstall drops the buffer: the same container installed again has no lines.
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
    await client.uninstall(TC);
    await client.install((await testNpks())['test-container']!, 'default');
    const fresh = await client.logs(TC);
    assert.deepEqual(fresh.lines, []);
    assert.equal(fresh.buffer.lines, 0n);
    await assert.rejects(client.logs('nothere:0.0.1'), /nothere:0\.0\.1/);
  });

  test('follow gets the lines written after the request and ends once the exit has been delivered', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    const dir = persistDir(rt);
    execFileSync('mkfifo', ['-m', '0644', join(dir, 'fifo')]);
    // A stopped container's follow ends at once.
    const idle = await client.logs(TC, { follow: true });
    const idleLines: LogLine[] = [];
    for await (const l of idle) idleLines.push(l);
    assert.deepEqual([idleLines, idle.endReason], [[], 'not_running']);

    // cat blocks on the fifo until the test writes it: every line after `Executing` comes
    // after the follow began.
    await client.start(TC, { args: ['cat', '/data/fifo'] });
    await logsUntil(client, TC, (l) => l.lines.some((x) => x.line.startsWith('Executing "Cat')), 'cat started');
    const follow = await client.logs(TC, { follow: true });
    assert.deepEqual(texts(follow.info.lines), ['Executing "Cat { path: "/data/fifo" }"']);
    const fd = openSync(join(dir, 'fifo'), 'w');
    writeSync(fd, 'one\ntwo\n');
    closeSync(fd);
    const got: string[] = [];
    let killed = false;
    for await (const l of follow) {
      got.push(l.line);
      if (l.line === 'Sleeping...' && !killed) {
        killed = true;
        await client.kill(TC, 15);
      }
    }
    assert.deepEqual(got, ['Executing "Cat { path: "/data/fifo" }"', 'one', 'two', '', 'Sleeping...']);
    assert.equal(follow.endReason, 'exit');
    await nextNotification(client, isExit(TC));

    // Breaking out of a follow stops it (a later request on the connection still works).
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    const stopped = await client.logs(TC, { follow: true, tail: 1 });
    for await (const l of stopped) {
      assert.equal(l.line, 'Sleeping...');
      break;
    }
    assert.equal(stopped.endReason, 'stopped');
    assert.equal((await client.inspect(TC)).process !== null, true);
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
  });

  test('a flood (one 3 MB line, then 100,000 lines) stays within logs.buffer_size, oldest lines dropped', async (t) => {
    const { rt, client } = await startWithTestContainers(t, { extraConfig: '[logs]\nbuffer_size = "64KiB"\n' });
    const lines = Array.from({ length: 100_000 }, (_, i) => `l${i}`);
    persistDir(rt, { 'lines.txt': `${lines.join('\n')}\n` });
    const cap = 64 * 1024;

    await client.start(TC, { args: ['flood', '3000000'] });
    await nextNotification(client, isExit(TC));
    // The Executing line and the 3,000,000 bytes cut into pieces of 8 KiB at most.
    const pieces = Math.ceil(3_000_000 / 8192);
    const flood = await logsUntil(client, TC, (l) => l.buffer.lines + l.buffer.dropped === BigInt(1 + pieces), 'the flood was read');
    assert.ok(flood.buffer.bytes <= BigInt(cap), `bytes ${flood.buffer.bytes} within ${cap}`);
    assert.equal(flood.buffer.capacity, BigInt(cap));
    assert.ok(flood.buffer.dropped > 0n);
    for (const l of flood.lines) assert.ok(Buffer.byteLength(l.line) <= 8192 && /^x+$/.test(l.line), 'pieces of at most 8 KiB');
    assert.equal(flood.lines.at(-1)?.line.length, 3_000_000 % 8192, 'the last piece');

    await client.start(TC, { args: ['cat', '/data/lines.txt'] });
    // Executing, the 100,000 lines, cat's own newline, Sleeping...
    const total = BigInt(1 + pieces + 1 + 100_000 + 1 + 1);
    const many = await logsUntil(client, TC, (l) => l.buffer.lines + l.buffer.dropped === total, 'the lines were read');
    assert.ok(many.buffer.bytes <= BigInt(cap), `bytes ${many.buffer.bytes} within ${cap}`);
    assert.equal(many.buffer.lines, BigInt(many.lines.length));
    assert.deepEqual(texts(many.lines.slice(-3)), ['l99999', '', 'Sleeping...']);
    const kept = many.lines.slice(0, -2).map((l) => l.line);
    assert.deepEqual(kept, lines.slice(lines.length - kept.length), 'the newest lines, in order');
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
  });

  test('the logs permission: denied to a container console without it, granted with it; off for buffer_size 0', async (t) => {
    const { client } = await startWithTestContainers(t);
    const variant = async (name: string, perms: string): Promise<void> => {
      const m = testContainerManifest().replace('name: test-container', `name: ${name}`).replace('init: /test-container', `init: /test-container\nconsole:\n  permissions: ${perms}`);
      await client.install(await packTestVariant(name, m), 'memory');
    };
    await variant('no-logs', '[ident, list, inspect]');
    await variant('with-logs', '[logs]');
    const ask = (c: string): string => `{"request":{"logs":{"container":"${c}","tail":1,"follow":false}}}`;
    await client.start('no-logs:0.0.1', { args: ['console', ask('no-logs:0.0.1')] });
    await client.start('with-logs:0.0.1', { args: ['console', ask('with-logs:0.0.1')] });
    // The console command prints each answer, then exits: its output is read through logs.
    await allNotifications(client, [isExit('no-logs:0.0.1'), isExit('with-logs:0.0.1')]);
    const answer = (l: Logs): string | undefined => l.lines.find((x) => x.line.startsWith('console: {"response"'))?.line;
    const denied = await logsUntil(client, 'no-logs:0.0.1', (l) => answer(l) !== undefined, 'no-logs answered');
    assert.equal(answer(denied), `console: {"response":{"permission_denied":${ask('no-logs:0.0.1').slice(11, -1)}}}`);
    const granted = await logsUntil(client, 'with-logs:0.0.1', (l) => answer(l) !== undefined, 'with-logs answered');
    // Its own lines so far (how many the runtime has read from its pipe by then may vary).
    assert.match(answer(granted)!, /^console: \{"response":\{"logs":\{"ok":\{"container":"with-logs:0\.0\.1","io":\{"stdout":"pipe","stderr":"pipe"\},"lines":\[\{"time":\d+,"stream":"stdout","line":".*\],"buffer":\{"lines":\d+,"bytes":\d+,"capacity":1048576,"dropped":0\}\}\}\}\}$/);

    // `logs.buffer_size = 0`: nothing is kept, and a request says so.
    const { rt: off } = await startWithTestContainers(t, { extraConfig: '[logs]\nbuffer_size = "0"\n' });
    const c = await off.client();
    t.after(() => c.close());
    await assert.rejects(c.logs(TC), /logs are off: logs\.buffer_size is 0/);
  });
});
