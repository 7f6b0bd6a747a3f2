/**
 * The pure parts of OCI import: the streaming tar reader (ustar prefixes, checksums,
 * truncation), image references and platforms, the image config → manifest mapping (users
 * resolved in the image's /etc/passwd and /etc/group, a program found on the image's PATH,
 * root refused) and "explicit -m values win".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTar, TarError } from '../../src/oci/tar.js';
import { parseImageRef, parsePlatform, OciError } from '../../src/oci/image.js';
import { configToManifest } from '../../src/oci/config.js';
import { mergeManifest } from '../../src/recipe/manifest.js';
import { tarOf } from './images.js';

async function entries(b: Buffer, chunk = 7): Promise<{ path: string; type: string; data: string; link: string }[]> {
  const chunks = async function* () {
    for (let i = 0; i < b.length; i += chunk) yield b.subarray(i, i + chunk);
  };
  const out = [];
  for await (const { entry, body } of readTar(chunks(), 'test.tar')) {
    let data = '';
    if (entry.path.endsWith('skip-body')) {
      out.push({ path: entry.path, type: entry.type, data: '(skipped)', link: entry.linkname });
      continue;
    }
    for await (const c of body()) data += c.toString();
    out.push({ path: entry.path, type: entry.type, data, link: entry.linkname });
  }
  return out;
}

test('readTar: entries, bodies in small chunks, skipped bodies, long names with a ustar prefix', async () => {
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file`;
  const b = tarOf([
    { path: 'dir/', type: 'dir' },
    { path: 'dir/a', data: 'alpha' },
    { path: 'dir/skip-body', data: 'x'.repeat(1500) },
    { path: long, data: 'long' },
    { path: 'l', type: 'symlink', link: 'dir/a' },
    { path: 'h', type: 'hardlink', link: 'dir/a' },
  ]);
  assert.deepEqual(await entries(b), [
    { path: 'dir/', type: 'dir', data: '', link: '' },
    { path: 'dir/a', type: 'file', data: 'alpha', link: '' },
    { path: 'dir/skip-body', type: 'file', data: '(skipped)', link: '' },
    { path: long, type: 'file', data: 'long', link: '' },
    { path: 'l', type: 'symlink', data: '', link: 'dir/a' },
    { path: 'h', type: 'hardlink', data: '', link: 'dir/a' },
  ]);
});

test('readTar: a bad checksum and a truncated entry are refused, naming the archive and entry', async () => {
  const b = tarOf([{ path: 'a', data: 'x'.repeat(2000) }]);
  const bad = Buffer.from(b);
  bad[10] = 0x41;
  await assert.rejects(entries(bad), (e: unknown) => e instanceof TarError && /^test\.tar: bad tar header checksum at byte 0/.test(e.message));
  await assert.rejects(entries(b.subarray(0, 1200)), (e: unknown) => e instanceof TarError && /^test\.tar: entry "a": the archive ends after \d+ bytes, \d+ bytes short of the entry's size \(truncated\)/.test(e.message));
});

test('image references and platforms', () => {
  assert.deepEqual(parseImageRef('oci:/tmp/layout:v1'), { transport: 'oci', path: '/tmp/layout', ref: 'v1', text: 'oci:/tmp/layout:v1' });
  assert.deepEqual(parseImageRef('oci-archive:app.tar'), { transport: 'oci-archive', path: 'app.tar', ref: undefined, text: 'oci-archive:app.tar' });
  assert.equal(parseImageRef('docker-archive:d.tar:example/app:v1')?.ref, 'example/app:v1');
  assert.equal(parseImageRef('docker://alpine'), undefined);
  assert.throws(() => parseImageRef('oci:'), (e: unknown) => e instanceof OciError && /oci:: no path/.test(e.message));
  assert.deepEqual(parsePlatform('linux/arm/v7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.throws(() => parsePlatform('amd64'), /platform "amd64": expected os\/arch\[\/variant\]/);
});

test('image config → manifest: users and groups from the image, PATH search, root refused, warnings', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ns-oci-cfg-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'etc'));
  mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
  writeFileSync(join(root, 'usr', 'bin', 'app'), '');
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\napp:x:1001:\nstaff:x:50:\n');
  const all = { init: true, uid: true, gid: true };
  const r = await configToManifest({ User: 'app', Entrypoint: ['app', '--serve'], Cmd: ['x'], Env: ['PATH=/usr/bin', 'A=1=2', 'NORTHSTAR_CONSOLE=9'], WorkingDir: '/srv', Volumes: { '/data': {} } }, root, all);
  assert.deepEqual(r.implied, { env: { PATH: '/usr/bin', A: '1=2' }, init: '/usr/bin/app', args: ['--serve', 'x'], uid: 1000, gid: 1001 });
  assert.equal(r.warnings.length, 3);
  assert.match(r.warnings.join('\n'), /NORTHSTAR_CONSOLE is left out/);
  assert.match(r.warnings.join('\n'), /WorkingDir \/srv is not kept/);
  assert.match(r.warnings.join('\n'), /Volumes \/data: add them as manifest mounts/);
  assert.deepEqual((await configToManifest({ User: '1000:staff' }, root, all)).implied, { env: {}, uid: 1000, gid: 50 });
  assert.deepEqual((await configToManifest({ User: '2000:2000' }, root, all)).implied, { env: {}, uid: 2000, gid: 2000 });
  await assert.rejects(configToManifest({ User: '2000' }, root, all), /User "2000": no group given and uid 2000 has no \/etc\/passwd entry/);
  await assert.rejects(configToManifest({ User: 'nobody' }, root, all), /User "nobody": no user "nobody" in the image's \/etc\/passwd/);
  await assert.rejects(configToManifest({ User: 'root' }, root, all), /User "root" is root \(uid 0\); the manifest needs uid and gid ≥ 1/);
  await assert.rejects(configToManifest({ Cmd: ['missing'] }, root, { init: true, uid: false, gid: false }), /Entrypoint\/Cmd: program "missing" is not an absolute path and is not found on the image's PATH/);
  // What the manifest sets is not asked for: a root image with uid/gid in the manifest is fine.
  assert.deepEqual((await configToManifest({ User: '' }, root, { init: true, uid: false, gid: false })).implied, { env: {} });
});

test('explicit -m values win over the image config, env key by key', () => {
  const m = mergeManifest('name: a\nversion: 1.0.0\ninit: /mine\nuid: 5\nenv:\n  A: mine\n', 'yaml', { init: '/theirs', args: ['x'], uid: 1000, gid: 1000, env: { A: 'theirs', B: 'theirs' } }, 'manifest', true);
  assert.equal(m.init, '/mine');
  assert.deepEqual(m.args, []);
  assert.equal(m.uid, 5);
  assert.equal(m.gid, 1000);
  assert.deepEqual(m.env, { A: 'mine', B: 'theirs' });
  // A recipe's values replace the file's (the old behaviour, unchanged).
  assert.equal(mergeManifest('name: a\nversion: 1.0.0\ninit: /mine\nuid: 5\ngid: 5\n', 'yaml', { init: '/theirs', env: {} }).init, '/theirs');
});
