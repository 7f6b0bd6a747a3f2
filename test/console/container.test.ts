/**
 * Container consoles over a real socketpair, made the way the runtime makes it: an extra
 * 'pipe' entry in the child's stdio (libuv creates an AF_UNIX stream socketpair), the child
 * end as fd 3 and NORTHSTAR_CONSOLE=3 in its environment, the parent end served by the
 * console. The child is a small node script using the client library with Client.connect('env').
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { Container } from '../../src/common/container.js';
import { ConsoleServer, type PermissionsInput } from '../../src/console/server.js';
import { FakeHandle } from './fake.js';
import { tempDir } from '../helpers/tmp.js';

const CLIENT = fileURLToPath(new URL('../../src/client/index.js', import.meta.url));
const ME = Container.parse('console:0.0.1');

interface Run {
  stdout: string;
  code: number | null;
  handle: FakeHandle;
  closed: Promise<void>;
}

async function runInContainer(t: TestContext, body: string, permissions: PermissionsInput): Promise<Run> {
  const dir = tempDir(t);
  const script = join(dir, 'app.mjs');
  writeFileSync(script, `import { Client } from ${JSON.stringify(CLIENT)};\nconst out = {};\n${body}\nprocess.stdout.write(JSON.stringify(out));\n`);
  const handle = new FakeHandle();
  // A short global deadline: container consoles must not be subject to it.
  const server = new ConsoleServer({ handle, connectTimeout: 50 });
  t.after(() => server.close(100));
  const child = spawn(process.execPath, [script], {
    stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    env: { ...process.env, NORTHSTAR_CONSOLE: '3' },
  });
  t.after(() => child.kill('SIGKILL'));
  const consoleEnd = child.stdio[3] as Duplex;
  const served = server.serveContainer(consoleEnd, ME, permissions);
  let stdout = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { stdout, code, handle, closed: served.closed };
}

test('an app inside a container talks to the runtime over NORTHSTAR_CONSOLE', async (t) => {
  const run = await runInContainer(
    t,
    `const c = await Client.connect('env', { subscribe: true });
     out.ident = String(await c.ident());
     out.list = (await c.list()).map(String);
     const token = await c.createToken('token-server', 'hello!');
     out.token = token.length;
     out.verify = await c.verifyToken(token, 'console', 'hello!');
     try { await c.repositories(); } catch (e) { out.denied = e.name; }
     await c.close();`,
    ['ident', 'list', 'notifications', 'token_create', 'token_verification'],
  );
  assert.equal(run.code, 0, run.stdout);
  const out = JSON.parse(run.stdout) as Record<string, unknown>;
  assert.equal(out.ident, 'console:0.0.1');
  assert.deepEqual(out.list, ['hello-world:0.0.1']);
  assert.equal(out.token, 40);
  // Made by console for token-server: console itself (target console) cannot verify it.
  assert.equal(out.verify, 'Invalid');
  assert.equal(out.denied, 'PermissionDeniedError');
  assert.deepEqual(run.handle.requests.map((r) => [r.req, r.peer]), [['list', { kind: 'container', container: ME }]]);
  await run.closed; // the console end closes when the container's end goes
});

test('a container console with no connect in time is not cut (no deadline) and closes with the container', async (t) => {
  const run = await runInContainer(
    t,
    `await new Promise((r) => setTimeout(r, 300));
     const c = await Client.connect({ fd: 3 });
     out.ident = String(await c.ident());
     await c.close();`,
    'full',
  );
  assert.equal(run.code, 0);
  assert.deepEqual(JSON.parse(run.stdout), { ident: 'console:0.0.1' });
  await run.closed;
});

test('a container exiting mid-session closes its console without disturbing the server', async (t) => {
  const run = await runInContainer(
    t,
    `const c = await Client.connect('env');
     out.list = (await c.list()).length;
     process.stdout.write(JSON.stringify(out));
     process.exit(0);`,
    'full',
  );
  assert.equal(run.code, 0);
  assert.match(run.stdout, /"list":1/);
  await run.closed;
});
