/**
 * The recipe-built examples (examples/recipes/<name>: Recipe + manifest.yaml, FROM
 * debian:bookworm) built with `sextant build` exactly as `make -C examples recipes` does and
 * run in a real runtime: python-web answers an HTTP GET, redis answers PING over RESP and
 * keeps a key on its persist mount across a restart. The Debian root is the debootstrap
 * cache shared with build.test.ts and the step cache a fixed directory, so after the first
 * run (which downloads python3 and redis-server) a run costs two cached builds. Skipped when
 * the Debian archive is not reachable and nothing is cached.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEY, isExit, isStarted, nextNotification, startRuntime } from '../runtime/harness.js';
import { debianBuildSkip } from '../helpers/debian.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const RECIPES = join(ROOT, 'examples', 'recipes');
const SEXTANT = join(ROOT, 'dist', 'src', 'cli', 'sextant.js');
const LAUNCH = join(ROOT, 'native', 'build', 'northstar-launch');
/** Kept between runs: the apt-get layers are the expensive part. */
const STEP_CACHE = '/var/cache/northstar/recipe-examples-test';

async function skipReason(): Promise<string | null> {
  if (!existsSync(LAUNCH)) return 'native/build/northstar-launch is not built (make -C native)';
  return debianBuildSkip('the recipe examples');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `sextant build` of examples/recipes/<name> with the given manifest text, as the Makefile runs it. */
function build(t: TestContext, name: string, manifestText: string): string {
  const dir = mkdtempSync(join(tmpdir(), `ns-recipe-example-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = join(dir, 'manifest.yaml');
  writeFileSync(manifest, manifestText);
  const r = spawnSync(process.execPath, [SEXTANT, 'build', join(RECIPES, name, 'Recipe'), '-m', manifest, '-k', KEY, '-o', `${dir}/out/`, '--cache-dir', STEP_CACHE], {
    encoding: 'utf8',
    cwd: join(ROOT, 'examples'),
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /warning: .*Recipe:\d+: EXPOSE is ignored: northstar maps no ports/);
  assert.match(r.stdout, /CMD: [a-z0-9-]+ is \/usr\/bin\/[a-z0-9-]+ in the image/, 'the bare program name was resolved');
  const npks = readdirSync(join(dir, 'out'));
  assert.equal(npks.length, 1, npks.join(' '));
  return join(dir, 'out', npks[0]!);
}

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('timeout', () => req.destroy(new Error('GET timed out')));
    req.once('error', reject);
    req.end();
  });
}

/** Send RESP commands on one connection; resolves with the raw reply once `done` holds. */
function resp(port: number, commands: string[][], done: (reply: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => sock.destroy(new Error(`no complete reply from redis: ${JSON.stringify(reply)}`)), 30_000);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('data', (d: Buffer) => {
      reply += d.toString();
      if (done(reply)) {
        clearTimeout(timer);
        sock.end();
        resolve(reply);
      }
    });
    sock.on('connect', () => {
      for (const c of commands) sock.write(`*${c.length}\r\n${c.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    });
  });
}

test('examples/recipes/python-web: built from its recipe, it serves HTTP from a real runtime', async (t) => {
  const why = await skipReason();
  if (why) return t.skip(why);
  const port = await freePort();
  const manifest = readFileSync(join(RECIPES, 'python-web', 'manifest.yaml'), 'utf8').replace(/PORT: "8080"/, `PORT: "${port}"`);
  assert.match(manifest, new RegExp(`PORT: "${port}"`));
  const npk = build(t, 'python-web', manifest);
  const rt = await startRuntime(t, { npks: [npk] });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  const started = nextNotification(client, isStarted('python-web:0.1.0'));
  await client.start('python-web:0.1.0');
  await started;
  await rt.waitLog(new RegExp(`serving on http://127\\.0\\.0\\.1:${port}/`));
  const r = await get(port);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'hello from northstar (python-web:0.1.0, request 1)\n');
  await rt.waitLog(/GET \/ HTTP\/1\.1\\?" 200/);
  const exited = nextNotification(client, isExit('python-web:0.1.0'));
  await client.kill('python-web:0.1.0', 15);
  await exited;
});

test('examples/recipes/redis: built from its recipe, it answers PING and keeps its data on the persist mount across a restart', async (t) => {
  const why = await skipReason();
  if (why) return t.skip(why);
  const port = await freePort();
  const npk = build(t, 'redis', readFileSync(join(RECIPES, 'redis', 'manifest.yaml'), 'utf8'));
  const rt = await startRuntime(t, { npks: [npk] });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  // The recipe's CMD with another port (the start request's args replace the manifest's).
  const args = ['--dir', '/data', '--bind', '127.0.0.1', '--port', String(port), '--appendonly', 'yes'];
  const run = async (n: number): Promise<void> => {
    const started = nextNotification(client, isStarted('redis:0.1.0'));
    await client.start('redis:0.1.0', { args });
    await started;
    await rt.until(() => rt.logs.filter((l) => /Ready to accept connections/.test(l)).length >= n, `redis start ${n} is ready`);
  };
  await run(1);
  assert.equal(await resp(port, [['PING']], (r) => r.endsWith('\r\n')), '+PONG\r\n');
  assert.equal(await resp(port, [['SET', 'greeting', 'kept']], (r) => r.endsWith('\r\n')), '+OK\r\n');
  const exited = nextNotification(client, isExit('redis:0.1.0'));
  await client.kill('redis:0.1.0', 15); // redis writes its data on SIGTERM
  await exited;
  assert.ok(readdirSync(join(rt.dir, 'data', 'redis')).length > 0, 'redis wrote to <data_dir>/redis');
  await run(2);
  assert.equal(await resp(port, [['GET', 'greeting']], (r) => /\r\nkept\r\n$/.test(r) || r.startsWith('$-1')), '$4\r\nkept\r\n');
  const again = nextNotification(client, isExit('redis:0.1.0'));
  await client.kill('redis:0.1.0', 15);
  await again;
});
