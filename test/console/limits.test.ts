/**
 * Console limits against a real runtime: no client can starve the others by holding
 * connections, by never finishing its handshake, or by a stalled or trickling upload.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { isRoot } from '../helpers/tmp.js';
import { startRuntime, testNpks } from '../runtime/harness.js';
import { Raw } from './fake.js';

const CONNECT = '{"connect":{"version":"0.9.3","subscribe_notifications":false}}';
const LIST = '{"request":"list"}';
const EMPTY_LIST = '{"response":{"list":[]}}';

/** `[console.global.options]` with our keys (the harness appends it after its own tables). */
const options = (lines: string) => `\n[console.global.options]\n${lines}\n`;

describe('console limits (real runtime)', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('max_connections: one connection more than the limit is closed at once, the others keep working', async (t) => {
    const rt = await startRuntime(t, { extraConfig: options('max_connections = 3') });
    const first = [await Raw.open(t, rt.consoleUrl), await Raw.open(t, rt.consoleUrl), await Raw.open(t, rt.consoleUrl)];
    for (const r of first) await r.connect();
    // The fourth is accepted by the kernel and closed by the runtime before any byte.
    const extra = await Raw.open(t, rt.consoleUrl);
    extra.send(CONNECT + '\n');
    assert.equal(await extra.eof(), true, 'the extra connection is closed');
    // Logged for the deployer before the connection was closed.
    await rt.logged(/console connection refused: 3 connections are open \(console\.options\.max_connections\)/);
    for (const r of first) assert.equal(await r.ask(LIST), EMPTY_LIST);
    // A freed place can be taken again: close one and wait until the runtime saw it go.
    first[0]!.socket.end();
    assert.equal(await first[0]!.eof(), true);
    let again: Raw | undefined;
    for (let i = 0; i < 50 && again === undefined; i++) {
      const r = await Raw.open(t, rt.consoleUrl);
      r.send(CONNECT + '\n');
      if ((await r.line()) === '{"connect_ack":null}') again = r;
      else await new Promise((res) => setTimeout(res, 100)); // the runtime has not yet seen the close
    }
    assert.ok(again, 'a new connection is served once one of the three has closed');
    assert.equal(await again.ask(LIST), EMPTY_LIST);
  });

  test('connect_timeout: a connection that sends no complete connect in time is closed; others are served meanwhile', async (t) => {
    const rt = await startRuntime(t, { extraConfig: options('connect_timeout = "1s"') });
    const silent = await Raw.open(t, rt.consoleUrl);
    const partial = await Raw.open(t, rt.consoleUrl);
    partial.send('{"connect":{"version":"0.9.3",');
    const began = Date.now();
    const ok = await Raw.open(t, rt.consoleUrl);
    await ok.connect();
    assert.equal(await ok.ask(LIST), EMPTY_LIST);
    // Within 6 s: the configured 1 s, not the built-in 10 s.
    assert.equal(await silent.eof(6_000), true);
    assert.equal(await partial.eof(20_000), true);
    assert.ok(Date.now() - began >= 900, 'not before the deadline');
    assert.equal(await ok.ask(LIST), EMPTY_LIST, 'the connected client is not cut');
  });

  test('a stalled upload is cut after npk_stream_timeout and leaves nothing; another client is served meanwhile and after', async (t) => {
    const rt = await startRuntime(t, { extraConfig: options('npk_stream_timeout = "3s"') });
    const npk = readFileSync((await testNpks())['test-resource']!);
    const stalled = await Raw.open(t, rt.consoleUrl);
    await stalled.connect();
    stalled.send(`{"request":{"install":{"repository":"default","size":${npk.length}}}}\n`);
    stalled.send(npk.subarray(0, npk.length >> 1));
    const other = await Raw.open(t, rt.consoleUrl);
    await other.connect();
    assert.equal(await other.ask(LIST), EMPTY_LIST);
    assert.equal(await other.ask('{"request":"repositories"}'), '{"response":{"repositories":["default","memory"]}}');
    assert.equal(await stalled.eof(20_000), true, 'the stalled upload is cut off');
    // Logged for the deployer before the connection was closed.
    await rt.logged(/install upload stalled: connection closed/);
    assert.equal(await other.ask(LIST), EMPTY_LIST);
    // The repository is free again: a whole upload from the other client installs. Installs
    // into one repository are serial, so the cut one has been cleaned up by then.
    other.send(`{"request":{"install":{"repository":"default","size":${npk.length}}}}\n`);
    other.send(npk);
    assert.equal(await other.line(), '{"response":{"install":{"ok":{"container":"test-resource:0.0.1"}}}}');
    assert.deepEqual(readdirSync(rt.repoDir), ['test-resource:0.0.1.npk'], 'no partial file is left in the repository');
  });

  test('npk_install_timeout: an upload that trickles bytes (never stalls) is cut at its deadline; the repository is free again', async (t) => {
    const rt = await startRuntime(t, { extraConfig: options('npk_stream_timeout = "10s"\nnpk_install_timeout = "3s"') });
    const npk = readFileSync((await testNpks())['test-resource']!);
    const slow = await Raw.open(t, rt.consoleUrl);
    await slow.connect();
    slow.send(`{"request":{"install":{"repository":"default","size":${npk.length}}}}\n`);
    // One byte every 100 ms: progress all the time, but the upload would take hours.
    let sent = 0;
    const trickle = setInterval(() => {
      if (!slow.socket.destroyed && sent < npk.length) slow.send(npk.subarray(sent, ++sent));
    }, 100);
    t.after(() => clearInterval(trickle));
    const other = await Raw.open(t, rt.consoleUrl);
    await other.connect();
    assert.equal(await other.ask(LIST), EMPTY_LIST);
    // Without a deadline the trickle would hold the repository (its installs are serial) for hours.
    assert.equal(await slow.eof(20_000), true, 'the trickling upload is cut off');
    clearInterval(trickle);
    // Logged for the deployer before the connection was closed.
    await rt.logged(/install upload too slow: connection closed/);
    assert.ok(sent < npk.length);
    other.send(`{"request":{"install":{"repository":"default","size":${npk.length}}}}\n`);
    other.send(npk);
    assert.equal(await other.line(), '{"response":{"install":{"ok":{"container":"test-resource:0.0.1"}}}}');
    assert.deepEqual(readdirSync(rt.repoDir), ['test-resource:0.0.1.npk'], 'no partial file is left in the repository');
  });
});
