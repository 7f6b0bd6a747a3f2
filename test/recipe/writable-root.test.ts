/**
 * The writable root (our manifest extension `root: {writable: true, size}`): a container
 * writes to / and a restart sees the original image again; the tmpfs limit holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, mkdirSync, mkdtempSync, copyFileSync, rmSync, chmodSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest, serializeManifest, manifestJsonSchema } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { readSigningKey } from '../../src/npk/keys.js';
import { KEY, isExit, nextNotification, startRuntime } from '../runtime/harness.js';

const LAUNCH = new URL('../../../native/build/northstar-launch', import.meta.url);

test('root.writable parses, round-trips and is in the JSON Schema', () => {
  const m = parseManifest('name: w\nversion: 1.0.0\ninit: /x\nuid: 1\ngid: 1\nroot:\n  writable: true\n  size: 1 MiB\n');
  assert.deepEqual(m.root, { writable: true, size: 1048576n });
  assert.deepEqual(parseManifest(serializeManifest(m)), m);
  assert.deepEqual(parseManifest('name: w\nversion: 1.0.0\ninit: /x\nuid: 1\ngid: 1\nroot:\n  writable: true\n').root, { writable: true, size: 64n * 1024n * 1024n });
  assert.throws(() => parseManifest('name: w\nversion: 1.0.0\ninit: /x\nuid: 1\ngid: 1\nroot:\n  size: 1x\n'), /root.writable: missing field[\s\S]*root.size: invalid size/);
  const schema = manifestJsonSchema() as { properties: Record<string, { required?: string[] }> };
  assert.deepEqual(schema.properties['root']?.required, ['writable']);
});

test('a writable-root container writes to / and a restart sees the original image', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  if (!existsSync(LAUNCH)) return t.skip('native/build/northstar-launch is not built');
  if (!existsSync('/bin/busybox')) return t.skip('needs busybox-static at /bin/busybox');
  const dir = mkdtempSync(join(tmpdir(), 'ns-wroot-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  symlinkSync('busybox', join(root, 'bin', 'sh'));
  const script = 'echo "marker=$(busybox cat /marker 2>/dev/null || echo none)"; echo written > /marker && busybox mkdir -p /new/dir && echo ok > /new/dir/f && echo "wrote=$(busybox cat /marker)"; busybox dd if=/dev/zero of=/big bs=1024 count=4096 2>/dev/null; echo "big=$?"';
  const manifest = parseManifest(
    `name: wroot\nversion: 0.0.1\ninit: /bin/sh\nargs: ['-c', '${script}']\nuid: 1000\ngid: 1000\nio:\n  stdout: pipe\n  stderr: pipe\nroot:\n  writable: true\n  size: 1MiB\nmounts:\n  /dev:\n    type: dev\n`,
  );
  const npk = join(dir, 'wroot.npk');
  await packNpk({ manifest, root, out: npk, key: await readSigningKey(KEY) });
  const rt = await startRuntime(t, { npks: [npk] });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  for (let run = 1; run <= 2; run++) {
    const exit = nextNotification(client, isExit('wroot:0.0.1'));
    await client.start('wroot:0.0.1');
    await exit;
  }
  // The output is the subject. It reaches the test over the runtime's stderr, which is not
  // ordered with the console socket: wait until both runs' last lines have arrived.
  await rt.until(() => rt.logs.filter((l) => /big=/.test(l)).length >= 2, 'the output of both runs');
  const out = rt.logs.filter((l) => /marker=|wrote=|big=/.test(l)).map((l) => (JSON.parse(l) as { msg: string }).msg);
  assert.deepEqual(out.filter((l) => l.startsWith('marker=')), ['marker=none', 'marker=none'], 'the second start sees the original image');
  assert.deepEqual(out.filter((l) => l.startsWith('wrote=')), ['wrote=written', 'wrote=written']);
  assert.deepEqual(out.filter((l) => l.startsWith('big=')), ['big=1', 'big=1'], 'a 4 MiB write into a 1 MiB writable root fails');
  // A start that fails after the writable root is mounted (init missing) removes it again.
  const broken = parseManifest('name: wbroken\nversion: 0.0.1\ninit: /missing\nuid: 1000\ngid: 1000\nroot:\n  writable: true\n  size: 1MiB\n');
  const brokenNpk = join(dir, 'wbroken.npk');
  await packNpk({ manifest: broken, root, out: brokenNpk, key: await readSigningKey(KEY) });
  await client.install(brokenNpk, 'memory');
  await assert.rejects(client.start('wbroken:0.0.1'), /missing/);
  // No overlay or tmpfs of a writable root is left in the runtime's mount namespace.
  const mountinfo = readFileSync(`/proc/${rt.innerPid()}/mountinfo`, 'utf8');
  assert.deepEqual(mountinfo.split('\n').filter((l) => l.includes('writable-roots')), []);
  // Nothing of the writable roots is left in the runtime's run dir.
  const left = existsSync(join(rt.dir, 'run', 'writable-roots')) ? (await import('node:fs')).readdirSync(join(rt.dir, 'run', 'writable-roots')) : [];
  assert.deepEqual(left, []);
});
