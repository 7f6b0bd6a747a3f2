/**
 * Issue 9 "Hostile containers", container output: a container with `io: pipe` must not be
 * able to crash the runtime (and every other container with it) by writing a line that
 * never ends, nor forge or hide lines of the daemon's log with control characters.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Notification } from '../../src/client/index.js';
import { isRoot, tempDir } from '../helpers/tmp.js';
import { isExit, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest, type TestRuntime } from './harness.js';

const TC = 'test-container:0.0.1';
const BYSTANDER = 'bystander:0.0.1';
/** More than V8's longest string (2^29 - 24 characters): a whole-line reader must fail. */
const FLOOD_BYTES = 640 * 2 ** 20;
const MAX_PIECE = 8192;
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

const setup = startWithTestContainers;

function exitOf(n: Notification): unknown {
  return typeof n === 'object' && 'exit' in n ? n.exit[1] : undefined;
}

/** Peak and current resident set of a process, in bytes. */
function memory(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

/** Lines of the human log whose target is `c`, message part only. */
function outputOf(rt: TestRuntime, c: string): string[] {
  const re = new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} +${c.replace(/\./g, '\\.')} (?:DEBUG|INFO ): (.*)$`);
  return rt.logs.flatMap((l) => {
    const m = re.exec(l);
    return m ? [m[1] as string] : [];
  });
}

describe('hostile container io', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a container writing 640 MiB without a newline does not crash the runtime or disturb another container', async (t) => {
    // Info level: the pieces are read and dropped, not shipped to the test's log buffer.
    const { rt, client } = await setup(t, { logLevel: 'info' });
    await client.install(await packTestVariant('bystander', testContainerManifest().replace('name: test-container', 'name: bystander')), 'memory');
    await client.start(BYSTANDER, { args: ['sleep'] });
    const bystander = (await client.inspect(BYSTANDER)).process;
    assert.ok(bystander, 'the bystander runs');

    const pid = rt.innerPid();
    const before = memory(pid);
    await client.start(TC, { args: ['flood', String(FLOOD_BYTES)] });
    const exit = await nextNotification(client, isExit(TC), 300_000);
    assert.deepEqual(exitOf(exit), { exit: { code: 0 } }, 'the flooding container wrote everything and exited');

    // The runtime is still there and answers; the bystander still runs, untouched.
    assert.equal(rt.child.exitCode, null, `runtime exited; logs:\n${rt.logs.slice(-20).join('\n')}`);
    assert.deepEqual((await client.list()).map(String).sort(), [BYSTANDER, TC, 'test-resource:0.0.1']);
    assert.equal((await client.inspect(TC)).process, null);
    assert.equal((await client.inspect(BYSTANDER)).process?.pid, bystander.pid);
    assert.ok(existsSync(`/proc/${bystander.pid}`));
    const after = memory(pid);
    const rise = after.hwm - before.hwm;
    t.diagnostic(`runtime VmHWM ${before.hwm >> 20} -> ${after.hwm >> 20} MiB, VmRSS now ${after.rss >> 20} MiB`);
    assert.ok(rise < 200 * 2 ** 20, `runtime peak RSS rose by ${rise >> 20} MiB while reading the flood`);

    await client.kill(BYSTANDER, 15);
    assert.deepEqual(exitOf(await nextNotification(client, isExit(BYSTANDER))), { signalled: { signal: 15 } });
  });

  test('io: inherit into a runtime stdout whose reader is gone (EPIPE) neither crashes the runtime nor blocks the container', async (t) => {
    const { rt, client } = await setup(t, { logLevel: 'info' });
    const manifest = testContainerManifest().replace('name: test-container', 'name: inherit').replace('stdout: pipe', 'stdout: inherit');
    await client.install(await packTestVariant('inherit', manifest), 'memory');
    // Close the reading end of the runtime's stdout: its next write fails with EPIPE.
    rt.child.stdout!.destroy();
    // More than the pipe buffers hold: the container only exits if its output is drained.
    for (let i = 0; i < 2; i++) {
      await client.start('inherit:0.0.1', { args: ['flood', String(4 * 2 ** 20)] });
      assert.deepEqual(exitOf(await nextNotification(client, isExit('inherit:0.0.1'))), { exit: { code: 0 } });
    }
    assert.equal(rt.child.exitCode, null, `runtime exited; logs:\n${rt.logs.slice(-20).join('\n')}`);
    assert.ok((await client.list()).map(String).includes('inherit:0.0.1'));
  });

  test('container output is logged in pieces of at most 8 KiB, in order and complete', async (t) => {
    const { rt, client } = await setup(t, { logFormat: 'human' });
    const bytes = 100_000;
    await client.start(TC, { args: ['flood', String(bytes)] });
    assert.deepEqual(exitOf(await nextNotification(client, isExit(TC))), { exit: { code: 0 } });
    const pieces = () => outputOf(rt, TC).filter((l) => /^x+$/.test(l));
    // The exit may be notified before the last piece is read from the pipe.
    await rt.until(() => pieces().join('').length >= bytes, 'all flood bytes logged');
    assert.equal(pieces().join('').length, bytes);
    assert.deepEqual(
      pieces().map((p) => p.length),
      [...Array<number>(Math.floor(bytes / MAX_PIECE)).fill(MAX_PIECE), bytes % MAX_PIECE],
    );
  });

  test('a container cannot forge or hide lines of the human log with \\r and escape sequences', async (t) => {
    // The same for a debug command's output (a host tool may echo container data).
    const dir = tempDir(t, 'ns-io-');
    const debugOut = join(dir, 'debug-output');
    writeFileSync(debugOut, 'debug says\r00:00:00.000                northstar INFO : Forged by debug\x1b[1A\x1b[2K\n');
    const { rt, client } = await setup(t, { logFormat: 'human', extraConfig: `[debug]\ncommands = ["cat ${debugOut}"]\n` });
    const forged = 'harmless\r12:34:56.789                northstar INFO : Forged by a container\x1b[2K\x1b]0;pwned\x07\x7f\u009b';
    await client.start(TC, { args: ['print', forged] });
    // The app's output is the subject (how the runtime logs it): all of it is logged by its Sleeping.
    await rt.waitLog(/test-container:0\.0\.1 DEBUG: Sleeping/);
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
    await client.start(TC, { args: ['print', '--io', 'stderr', `err ${forged}`] });
    await rt.until(() => outputOf(rt, TC).some((l) => l.startsWith('err ')), 'the stderr line logged');
    await rt.until(() => outputOf(rt, TC).filter((l) => l.startsWith('debug says')).length === 2, 'the debug command output logged twice');

    const escaped = 'harmless\\r12:34:56.789                northstar INFO : Forged by a container\\u001b[2K\\u001b]0;pwned\\u0007\\u007f\\u009b';
    const out = outputOf(rt, TC);
    assert.ok(out.includes(escaped), `stdout line not logged escaped; container lines:\n${out.join('\n')}`);
    assert.ok(out.includes(`err ${escaped}`), `stderr line not logged escaped; container lines:\n${out.join('\n')}`);
    assert.ok(out.includes('debug says\\r00:00:00.000                northstar INFO : Forged by debug\\u001b[1A\\u001b[2K'));
    for (const l of rt.logs) {
      assert.doesNotMatch(l, RAW_CONTROL, `raw control character in a log line: ${JSON.stringify(l)}`);
      assert.doesNotMatch(l, /^\d\d:\d\d:\d\d\.\d{3} +northstar INFO : Forged/, `forged log line: ${l}`);
    }
    await client.kill(TC, 9);
    await nextNotification(client, isExit(TC));
  });
});
