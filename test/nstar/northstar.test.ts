/**
 * The `northstar` command's own output a new user sees: a console address that is taken is
 * named with what to do; the log of a start has no V8 flag warning and one line per console.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, tempDir } from '../helpers/tmp.js';
import { startRuntime } from '../runtime/harness.js';

const NORTHSTAR = fileURLToPath(new URL('../../src/cli/northstar.js', import.meta.url));

describe('northstar', { skip: !isRoot && 'needs root (the runtime mounts and starts containers)', timeout: 300_000 }, () => {
  test('a console address in use: the error names it and the config to change', async (t) => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => busy.close(() => r())));
    const port = (busy.address() as net.AddressInfo).port;
    const dir = tempDir(t);
    for (const d of ['run', 'data', 'sockets']) mkdirSync(join(dir, d));
    const config = join(dir, 'northstar.toml');
    writeFileSync(config, `run_dir = "${dir}/run"\ndata_dir = "${dir}/data"\nsocket_dir = "${dir}/sockets"\ncgroup = "northstar-test-busy-${process.pid}"\n\n[console.global]\nbind = "tcp://127.0.0.1:${port}"\npermissions = "full"\n`);
    const child = spawn(process.execPath, [NORTHSTAR, '-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 1, err);
    assert.ok(
      err.includes(`northstar: error: console address tcp://127.0.0.1:${port} is in use: another process (another northstar?) listens there (EADDRINUSE); stop that process or change the console's bind or also_bind in ${config}\n`),
      err,
    );
  });

  test('the log of a start: no --expose_wasm warning, one "console listening" line per console', async (t) => {
    const rt = await startRuntime(t, { logFormat: 'human', logLevel: 'debug' });
    assert.deepEqual(rt.logs.filter((l) => l.includes('expose_wasm')), []);
    const listening = rt.logs.filter((l) => l.includes('console listening'));
    assert.equal(listening.length, 1, listening.join('\n'));
    assert.match(listening[0]!, / northstar INFO : console listening on unix:\/\/.*\/console\.sock \(full\)$/);
  });
});
