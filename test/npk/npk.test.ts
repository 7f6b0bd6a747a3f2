import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, readdirSync, lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { privateKeyFromSeed, publicKeyBytes, publicKeyFromBytes, readPublicKey, readSigningKey } from '../../src/npk/keys.js';
import { Npk } from '../../src/npk/reader.js';
import { unpackNpk, verifyNpk } from '../../src/npk/tools.js';
import { crc32 } from '../../src/npk/zip.js';
import { tempDir, hasCommand, isRoot } from '../helpers/tmp.js';

import { UPSTREAM_EXAMPLES as FIXTURES } from '../helpers/fixtures.js';
const SEXTANT = fileURLToPath(new URL('../../src/cli/sextant.js', import.meta.url));
const KEY = join(FIXTURES, 'northstar.key');
const PUB = join(FIXTURES, 'northstar.pub');

const MANIFEST = `name: hello
version: 0.0.1
init: /bin/hello
uid: 1000
gid: 1001
mounts:
  /dev:
    type: dev
  /proc:
    type: proc
  /lib:
    type: bind
    host: /lib
    options: nosuid,nodev
  /data:
    type: persist
  /res/msg:
    type: resource
    name: message
    version: '>=0.0.1'
    dir: /
`;

/** 300 kB of deterministic incompressible bytes, so the image spans many verity blocks. */
const NOISE = (() => {
  const parts: Buffer[] = [];
  let h = createHash('sha256').update('seed').digest();
  for (let n = 0; n < 300000; n += 32) {
    parts.push(h);
    h = createHash('sha256').update(h).digest();
  }
  return Buffer.concat(parts).subarray(0, 300000);
})();

function makeRoot(dir: string, name = 'root'): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'etc/deep/er'), { recursive: true });
  writeFileSync(join(root, 'bin/hello'), '#!/bin/sh\necho hello\n');
  chmodSync(join(root, 'bin/hello'), 0o755);
  writeFileSync(join(root, 'etc/config'), NOISE);
  writeFileSync(join(root, 'etc/deep/er/empty'), '');
  symlinkSync('../bin/hello', join(root, 'etc/link'));
  return root;
}

async function pack(dir: string, opts: { key?: boolean; name?: string; seed?: string; mtime?: number } = {}): Promise<string> {
  const out = join(dir, opts.name ?? 'hello.npk');
  await packNpk({
    manifest: parseManifest(MANIFEST),
    root: makeRoot(dir, `root-${opts.name ?? 'hello'}`),
    key: opts.key === false ? undefined : await readSigningKey(KEY),
    out,
    mtime: opts.mtime,
    seed: opts.seed,
  });
  return out;
}

function sextant(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SEXTANT, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('layout: stored entries in order, fs.img aligned with the 0xA11E field, upstream header values', async (t) => {
  const dir = tempDir(t);
  const path = await pack(dir);
  const buf = readFileSync(path);
  // Walk the local headers.
  let pos = 0;
  const names: string[] = [];
  while (buf.readUInt32LE(pos) === 0x04034b50) {
    assert.equal(buf.readUInt16LE(pos + 4), 10, 'version needed');
    assert.equal(buf.readUInt16LE(pos + 6), 0, 'flags');
    assert.equal(buf.readUInt16LE(pos + 8), 0, 'stored');
    assert.equal(buf.readUInt16LE(pos + 10), 0, 'dos time');
    assert.equal(buf.readUInt16LE(pos + 12), 0x21, 'dos date');
    const size = buf.readUInt32LE(pos + 18);
    const nameLen = buf.readUInt16LE(pos + 26);
    const extraLen = buf.readUInt16LE(pos + 28);
    const name = buf.toString('utf8', pos + 30, pos + 30 + nameLen);
    names.push(name);
    const dataStart = pos + 30 + nameLen + extraLen;
    if (name === 'fs.img') {
      assert.equal(dataStart % 4096, 0);
      assert.equal(buf.readUInt16LE(pos + 30 + nameLen), 0xa11e);
      assert.equal(buf.readUInt16LE(pos + 30 + nameLen + 4), 4096);
    } else {
      assert.equal(extraLen, 0);
    }
    assert.equal(crc32(buf.subarray(dataStart, dataStart + size)), buf.readUInt32LE(pos + 14), `${name} crc`);
    pos = dataStart + size;
  }
  assert.deepEqual(names, ['manifest.yaml', 'signature.yaml', 'fs.img']);
  assert.equal(buf.readUInt32LE(pos), 0x02014b50);
  assert.equal(buf.readUInt16LE(pos + 4), 0x030a, 'version made by');
  assert.equal(buf.readUInt32LE(pos + 38), 0x81a40000, 'external attributes');
  assert.ok(buf.subarray(buf.length - 'version: 0.9.3\n'.length).equals(Buffer.from('version: 0.9.3\n')));

  const npk = await Npk.open(path, { key: await readPublicKey(PUB) });
  assert.equal(npk.manifest.name, 'hello');
  assert.equal(npk.fsImg.offset % 4096, 0);
  assert.ok(npk.verity);
  assert.equal(npk.verity.dataSize % 4096, 0);
  assert.match(
    npk.signatureBytes!.toString(),
    /^meta:\n {2}hash: [0-9a-f]{64}\nmanifest\.yaml:\n {2}hash: [0-9a-f]{64}\nfs\.img:\n {2}verity-hash: [0-9a-f]{64}\n {2}verity-offset: \d+\n---\nsignature: [A-Za-z0-9+/]{86}==$/,
  );
  await npk.verifyImage();
});

function checkMountedTree(mnt: string): void {
  assert.equal(readFileSync(join(mnt, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hello\n');
  assert.ok(readFileSync(join(mnt, 'etc/config')).equals(NOISE));
  assert.equal(readlinkSync(join(mnt, 'etc/link')), '../bin/hello');
  const st = lstatSync(join(mnt, 'bin/hello'));
  assert.equal(st.uid, 1000);
  assert.equal(st.gid, 1001);
  assert.equal(st.mode & 0o7777, 0o755);
  // Mount points of the manifest, with upstream's modes.
  assert.equal(lstatSync(join(mnt, 'proc')).mode & 0o7777, 0o444);
  assert.equal(lstatSync(join(mnt, 'lib')).mode & 0o7777, 0o555);
  assert.equal(lstatSync(join(mnt, 'data')).mode & 0o7777, 0o755);
  assert.equal(lstatSync(join(mnt, 'res')).mode & 0o7777, 0o555);
  assert.equal(lstatSync(join(mnt, 'res/msg')).mode & 0o7777, 0o555);
  // /dev: six nodes with their own labels, and the links because /proc is mounted too.
  const dev = readdirSync(join(mnt, 'dev')).sort();
  assert.deepEqual(dev, ['fd', 'full', 'null', 'random', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']);
  const nul = lstatSync(join(mnt, 'dev/null'));
  assert.ok(nul.isCharacterDevice());
  assert.equal(nul.rdev, (1 << 8) | 3);
  assert.equal(nul.mode & 0o777, 0o666);
  assert.equal(readlinkSync(join(mnt, 'dev/stdout')), '/proc/self/fd/1');
  if (hasCommand('getfattr')) {
    const label = execFileSync('getfattr', ['--only-values', '-n', 'security.selinux', join(mnt, 'dev/null')], { encoding: 'utf8' });
    assert.equal(label.replace(/\0$/, ''), 'u:object_r:null_device:s0');
  }
}

test('the kernel mounts fs.img in place (loop at its offset); veritysetup verifies our tree', { skip: !isRoot && 'needs root' }, async (t) => {
  const dir = tempDir(t);
  const path = await pack(dir);
  const npk = await Npk.open(path, { key: await readPublicKey(PUB) });
  const loop = execFileSync('losetup', ['-f', '--show', '-r', '-o', String(npk.fsImg.offset), '--sizelimit', String(npk.fsImg.size), path], { encoding: 'utf8' }).trim();
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  try {
    if (hasCommand('veritysetup')) {
      execFileSync('veritysetup', ['verify', loop, loop, npk.verity!.rootHash.toString('hex'), `--hash-offset=${npk.verity!.dataSize}`], { stdio: 'pipe' });
    }
    execFileSync('mount', ['-t', 'squashfs', '-o', 'ro,nosuid,nodev', loop, mnt]);
    try {
      checkMountedTree(mnt);
    } finally {
      spawnSync('umount', [mnt]);
    }
  } finally {
    spawnSync('losetup', ['-d', loop]);
  }
});

test('upstream example key: a package signed with northstar.key verifies with northstar.pub', async (t) => {
  const dir = tempDir(t);
  const path = await pack(dir);
  const r = await verifyNpk(path, await readPublicKey(PUB));
  assert.equal(r.name, 'hello');
  const cli = sextant(['verify', '-k', PUB, path]);
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /ok \(hello:0\.0\.1/);
});

function flip(path: string, offset: number): void {
  const b = readFileSync(path);
  b[offset] = b[offset]! ^ 0x01;
  writeFileSync(path, b);
}

function findBytes(path: string, needle: string): number {
  const i = readFileSync(path).indexOf(needle);
  assert.ok(i >= 0, `${needle} not found`);
  return i;
}

test('every tampering is refused with what did not match', async (t) => {
  const dir = tempDir(t);
  const original = await pack(dir);
  const key = await readPublicKey(PUB);
  const npk = await Npk.open(original, { key });
  const copy = (name: string) => {
    const p = join(dir, name);
    writeFileSync(p, readFileSync(original));
    return p;
  };
  const cases: [string, (p: string) => void, RegExp][] = [
    ['manifest byte', (p) => flip(p, findBytes(p, 'init: /bin/hello') + 7), /manifest\.yaml: crc-32 mismatch|manifest\.yaml hash does not match/],
    ['signature byte', (p) => flip(p, findBytes(p, 'signature: ') + 20), /signature|crc-32 mismatch/],
    ['hashes document byte', (p) => flip(p, findBytes(p, 'verity-offset: ') + 3), /signature|crc-32 mismatch/],
    ['zip comment', (p) => flip(p, readFileSync(p).length - 3), /meta|version|comment/],
    ['image data block', (p) => flip(p, npk.fsImg.offset + 100), /verity: data block 0 /],
    ['image last data block', (p) => flip(p, npk.fsImg.offset + npk.verity!.dataSize - 1), /verity: data block \d+ /],
    ['verity superblock salt', (p) => flip(p, npk.fsImg.offset + npk.verity!.dataSize + 90), /does not match/],
    ['hash tree', (p) => flip(p, npk.fsImg.offset + npk.fsImg.size - 5), /does not match/],
  ];
  for (const [what, mutate, expected] of cases) {
    const p = copy(`t-${what.replace(/ /g, '-')}.npk`);
    mutate(p);
    await assert.rejects(
      (async () => {
        const n = await Npk.open(p, { key });
        await n.verifyImage();
      })(),
      expected,
      what,
    );
    const cli = sextant(['verify', '-k', PUB, p]);
    assert.equal(cli.status, 1, `${what}: sextant verify must fail`);
    assert.match(cli.stderr, /^sextant: error: /, what);
  }
});

test('wrong key, unsigned package, truncated and misaligned files are refused', async (t) => {
  const dir = tempDir(t);
  const signed = await pack(dir);
  const other = publicKeyFromBytes(publicKeyBytes(createPublicKey(privateKeyFromSeed(Buffer.alloc(32, 9)))));
  await assert.rejects(Npk.open(signed, { key: other }), /signature does not verify with the repository key/);

  const unsigned = await pack(dir, { key: false, name: 'unsigned.npk' });
  await assert.rejects(Npk.open(unsigned, { key: await readPublicKey(PUB) }), /is not signed \(it has no signature\.yaml\)/);
  const trusted = await Npk.open(unsigned);
  assert.equal(trusted.signature, undefined);
  await assert.rejects(trusted.verifyImage(), /lacks verity information/);

  const buf = readFileSync(signed);
  for (const cut of [buf.length - 10, buf.length - 200, Math.floor(buf.length / 2), 100]) {
    const p = join(dir, `trunc-${cut}.npk`);
    writeFileSync(p, buf.subarray(0, cut));
    await assert.rejects(Npk.open(p, { key: await readPublicKey(PUB) }), /not a valid npk|truncated|malformed|end of/i, `cut at ${cut}`);
  }
});

function python(script: string, ...args: string[]): void {
  execFileSync('python3', ['-c', script, ...args], { stdio: 'pipe' });
}

test('zips with compressed or extra entries are refused, a misaligned fs.img is accepted', { skip: !hasCommand('python3') && 'python3 not installed' }, async (t) => {
  const dir = tempDir(t);
  const signed = await pack(dir);
  const rebuild = (name: string, body: string) => {
    const out = join(dir, name);
    python(
      `import sys, zipfile
src = zipfile.ZipFile(sys.argv[1])
dst = zipfile.ZipFile(sys.argv[2], 'w')
${body}
dst.comment = src.comment
dst.close()`,
      signed,
      out,
    );
    return out;
  };
  const deflated = rebuild('deflated.npk', `for i in src.infolist(): dst.writestr(i.filename, src.read(i.filename), compress_type=zipfile.ZIP_DEFLATED)`);
  await assert.rejects(Npk.open(deflated), /is compressed \(method 8\); npk entries must be stored/);
  const extra = rebuild('extra.npk', `for i in src.infolist(): dst.writestr(i.filename, src.read(i.filename))\ndst.writestr('evil.sh', b'x')`);
  await assert.rejects(Npk.open(extra), /unexpected entry 'evil\.sh'/);
  const misaligned = rebuild('misaligned.npk', `for i in src.infolist(): dst.writestr(i.filename, src.read(i.filename))`);
  // Upstream does not check the alignment of fs.img; neither do we (test/npk/unaligned.test.ts).
  const opened = await Npk.open(misaligned);
  assert.notEqual(opened.fsImg.offset % 4096, 0);
  const missing = rebuild('missing.npk', `for i in src.infolist():\n  if i.filename != 'fs.img': dst.writestr(i.filename, src.read(i.filename))`);
  await assert.rejects(Npk.open(missing), /npk has no 'fs\.img'/);
});

test('reproducible: same inputs and SOURCE_DATE_EPOCH give byte-identical packages', async (t) => {
  const a = tempDir(t);
  const b = tempDir(t);
  const pa = await pack(a, { mtime: 1700000000 });
  const pb = await pack(b, { mtime: 1700000000 });
  assert.ok(readFileSync(pa).equals(readFileSync(pb)), 'derived salt: packages differ');
  const sa = await pack(a, { mtime: 1700000000, seed: 'x', name: 's1.npk' });
  const sb = await pack(b, { mtime: 1700000000, seed: 'x', name: 's1.npk' });
  assert.ok(readFileSync(sa).equals(readFileSync(sb)), 'seeded: packages differ');
  assert.ok(!readFileSync(sa).equals(readFileSync(pa)), 'the seed must change the salt');
  // Without a fixed epoch, salts are random like upstream's.
  const r1 = await pack(a, { name: 'r1.npk' });
  const r2 = await pack(b, { name: 'r1.npk' });
  assert.ok(!readFileSync(r1).equals(readFileSync(r2)));
});

test('unpack extracts manifest, signature and the root tree', async (t) => {
  const dir = tempDir(t);
  const path = await pack(dir);
  const out = join(dir, 'unpacked');
  await unpackNpk(path, out);
  assert.ok(readFileSync(join(out, 'manifest.yaml'), 'utf8').startsWith('name: hello\n'));
  assert.ok(readFileSync(join(out, 'signature.yaml'), 'utf8').startsWith('meta:\n'));
  assert.equal(readFileSync(join(out, 'root/bin/hello'), 'utf8'), '#!/bin/sh\necho hello\n');
  assert.ok(readFileSync(join(out, 'root/etc/config')).equals(NOISE));
  assert.equal(readlinkSync(join(out, 'root/etc/link')), '../bin/hello');
});

test('sextant CLI: pack, inspect --short, gen-key, schema, and clear errors', async (t) => {
  const dir = tempDir(t);
  const root = makeRoot(dir);
  const manifest = join(dir, 'manifest.yaml');
  writeFileSync(manifest, MANIFEST);
  const r = sextant(['pack', '-m', manifest, '-r', root, '-k', KEY, '-o', dir]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Packed .*hello-0\.0\.1\.npk/);
  const s = sextant(['inspect', '--short', join(dir, 'hello-0.0.1.npk')]);
  assert.equal(s.stdout, 'name: hello, version: 0.0.1, NPK version: 0.9.3, resource container: no\n');
  const long = sextant(['inspect', join(dir, 'hello-0.0.1.npk')]);
  assert.match(long.stdout, /^# inspection of '.*hello-0\.0\.1\.npk'\n## NPK Content\nmanifest\.yaml\nsignature\.yaml\nfs\.img\n/);
  assert.match(long.stdout, /## SquashFS listing\n[\s\S]*bin\/hello/);

  const clones = join(dir, 'clones');
  mkdirSync(clones);
  const c = sextant(['pack', '-m', manifest, '-r', root, '-o', clones, '--clones', '10', '-c', 'none']);
  assert.equal(c.status, 0, c.stderr);
  assert.deepEqual(readdirSync(clones).sort(), Array.from({ length: 10 }, (_, i) => `hello-0${i}-0.0.1.npk`));

  const g = sextant(['gen-key', '-n', 'test', '-o', dir]);
  assert.equal(g.status, 0, g.stderr);
  assert.equal(readFileSync(join(dir, 'test.pub')).length, 32);
  assert.equal(sextant(['gen-key', '-n', 'test', '-o', dir]).status, 1);

  const schema = sextant(['schema']);
  assert.equal(schema.status, 0);
  assert.equal(JSON.parse(schema.stdout).type, 'object');

  writeFileSync(manifest, MANIFEST.replace('host: /lib', 'host: lib'));
  const bad = sextant(['pack', '-m', manifest, '-o', dir]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /mounts\.\/lib\.host: must be an absolute path/);
  assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  const missingKey = sextant(['pack', '-m', join(dir, 'nope.yaml'), '-o', dir]);
  assert.equal(missingKey.status, 1);
  assert.match(missingKey.stderr, /nope\.yaml: ENOENT/);
  const badBlock = sextant(['pack', '-m', manifest, '-o', dir, '-b', '1000']);
  assert.notEqual(badBlock.status, 0);
});
