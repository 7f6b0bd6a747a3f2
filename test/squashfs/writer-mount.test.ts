/** Our writer's images, checked by the real kernel (loop mounts) and by unsquashfs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { SquashfsImage } from '../../src/npk/squashfs/reader.js';
import { join } from 'node:path';
import { writeSquashfs, type PseudoEntry } from '../../src/npk/squashfs/writer.js';
import { availableCompressors } from '../../src/npk/squashfs/codec.js';
import { buildVariedTree, deferrer, differences, have, isRoot, mountImage, prng, snapshot, tempDir, xattrSnapshot } from './helpers.js';

const MTIME = 1700000000;
const pseudo: PseudoEntry[] = [
  { path: '/dev', type: 'dir', mode: 0o755 },
  { path: '/dev/null', type: 'char', mode: 0o666, major: 1, minor: 3, xattrs: { 'security.selinux': 'u:object_r:null_device:s0' } },
  { path: '/dev/stdin', type: 'symlink', mode: 0o777, target: '/proc/self/fd/0', xattrs: { 'security.selinux': 'u:r:su:s0' } },
  { path: '/proc', type: 'dir', mode: 0o444, uid: 7, gid: 8 },
  { path: '/data/nested/file.txt', type: 'file', mode: 0o640, content: Buffer.from('pseudo content\n') },
  { path: '/grüße', type: 'dir', mode: 0o711 },
];

function skipReason(): string | undefined {
  if (!isRoot) return 'needs root for mknod, loop mounts and chown';
  for (const c of ['mount', 'losetup', 'getfattr', 'setfattr', 'mknod']) if (!have(c)) return `${c} is not installed`;
  return undefined;
}

test('kernel mounts our image and shows the source tree exactly (forced ids, pseudo entries, xattrs)', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  const bs = 131072;
  await buildVariedTree(src, { blockSize: bs });
  const img = join(dir, 'fs.img');
  const progress: number[] = [];
  const r = await writeSquashfs(img, {
    root: src,
    pseudo,
    forceUid: 1000,
    forceGid: 1000,
    mtime: MTIME,
    onProgress: (done, total) => progress.push(done / total),
  });
  assert.equal(r.size % 4096, 0);
  assert.equal(statSync(img).size, r.size);
  assert.ok(r.bytesUsed <= r.size && r.bytesUsed > r.size - 4096);
  assert.deepEqual(r.warnings, []);
  assert.equal(progress.at(-1), 1);

  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  const want = snapshot(src);
  const got = snapshot(mnt);
  const pseudoPaths = new Set(['dev', 'dev/null', 'dev/stdin', 'proc', 'data', 'data/nested', 'data/nested/file.txt']);
  const diffs = differences(want, got, {
    uid: 1000,
    gid: 1000,
    ignore: (rel) => pseudoPaths.has(rel) || rel === 'grüße',
  });
  assert.deepEqual(diffs, []);
  assert.equal(got.size, want.size + pseudoPaths.size);

  // Pseudo entries.
  const null_ = lstatSync(join(mnt, 'dev/null'));
  assert.ok(null_.isCharacterDevice());
  assert.equal(null_.mode & 0o7777, 0o666);
  assert.equal(null_.rdev, (1 << 8) | 3);
  assert.equal(null_.uid, 1000);
  assert.equal(lstatSync(join(mnt, 'proc')).mode & 0o7777, 0o444);
  assert.equal(lstatSync(join(mnt, 'proc')).uid, 7);
  assert.equal(lstatSync(join(mnt, 'proc')).gid, 8);
  assert.equal(readFileSync(join(mnt, 'data/nested/file.txt'), 'utf8'), 'pseudo content\n');
  assert.equal(lstatSync(join(mnt, 'data/nested')).mode & 0o7777, 0o755);
  // A pseudo dir over a source dir changes its mode and keeps its contents.
  assert.equal(lstatSync(join(mnt, 'grüße')).mode & 0o7777, 0o711);
  assert.equal(readFileSync(join(mnt, 'grüße', 'é'), 'utf8'), 'e acute\n');

  // Directory link counts as find relies on them; the 3000-entry dir lists completely.
  assert.equal(statSync(mnt).nlink, 2 + [...got.entries()].filter(([k, v]) => !k.includes('/') && v.type === 'dir').length);
  assert.equal([...got.keys()].filter((k) => k.startsWith('many/')).length, 3000);
  assert.equal(readFileSync(join(mnt, 'many', 'entry-02999-' + 'n'.repeat(2999 % 40)), 'utf8'), '2999\n');

  // xattrs: the source's user.* plus the pseudo security.selinux labels.
  const wantX = xattrSnapshot(src);
  const gotX = xattrSnapshot(mnt);
  assert.deepEqual(gotX.get('hello.txt'), wantX.get('hello.txt'));
  assert.deepEqual(gotX.get('links'), wantX.get('links'));
  assert.deepEqual(gotX.get('big.bin'), wantX.get('big.bin'));
  assert.deepEqual(gotX.get('dev/null'), [`security.selinux=0x${Buffer.from('u:object_r:null_device:s0').toString('hex')}`]);
  assert.deepEqual(gotX.get('dev/stdin'), [`security.selinux=0x${Buffer.from('u:r:su:s0').toString('hex')}`]);
  for (const [k, v] of wantX) assert.deepEqual(gotX.get(k), v, `xattrs of ${k}`);

  // mtimes are clamped to the given mtime (the source files are newer).
  assert.equal(lstatSync(join(mnt, 'hello.txt')).mtimeMs, MTIME * 1000);
});

test('ownership from the source is kept when not forced', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  await buildVariedTree(src, { blockSize: 4096, bigDir: 300, depth: 5 });
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, { root: src, blockSize: 4096 });
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  assert.deepEqual(differences(snapshot(src), snapshot(mnt)), []);
  assert.equal(lstatSync(join(mnt, 'hello.txt')).uid, 1234);
  assert.equal(lstatSync(join(mnt, 'links')).gid, 43);
});

test('an image embedded at a 4096-aligned offset mounts through losetup --offset (like fs.img in an NPK)', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  await buildVariedTree(src, { blockSize: 131072, bigDir: 500, depth: 3 });
  const img = join(dir, 'fs.img');
  const r = await writeSquashfs(img, { root: src, forceUid: 1000, forceGid: 1000, pseudo, mtime: MTIME });
  const container = join(dir, 'container.bin');
  const offset = 3 * 4096;
  const fd = openSync(container, 'w');
  writeSync(fd, prng(9, offset), 0, offset, 0);
  const image = readFileSync(img);
  writeSync(fd, image, 0, image.length, offset);
  writeSync(fd, prng(10, 5000), 0, 5000, offset + image.length);
  closeSync(fd);
  const loop = execFileSync('losetup', ['--find', '--show', '--read-only', '--offset', String(offset), '--sizelimit', String(r.size), container], {
    encoding: 'utf8',
  }).trim();
  defer(() => {
    spawnSync('losetup', ['-d', loop]);
  });
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt);
  execFileSync('mount', ['-t', 'squashfs', '-o', 'ro', loop, mnt]);
  defer(() => {
    spawnSync('umount', [mnt]);
  });
  const isPseudo = (rel: string): boolean => rel === 'grüße' || /^(dev|proc|data)(\/|$)/.test(rel);
  const diffs = differences(snapshot(src), snapshot(mnt), { uid: 1000, gid: 1000, ignore: isPseudo });
  assert.deepEqual(diffs, []);
  assert.ok(lstatSync(join(mnt, 'dev/null')).isCharacterDevice());
});

for (const compression of ['gzip', 'none'] as const) {
  for (const blockSize of [4096, 65536, 131072, 1048576]) {
    test(`unsquashfs -s/-l/-lls/-d accept our ${compression} image with ${blockSize}-byte blocks`, async (t) => {
      const why = skipReason() ?? (have('unsquashfs') ? undefined : 'unsquashfs is not installed');
      if (why) return t.skip(why);
      const defer = deferrer(t);
      const dir = tempDir(defer);
      const src = join(dir, 'src');
      await buildVariedTree(src, { blockSize, bigDir: 600, depth: 10 });
      const img = join(dir, 'fs.img');
      await writeSquashfs(img, { root: src, compression, blockSize, mtime: MTIME, pseudo });
      const s = execFileSync('unsquashfs', ['-s', img], { encoding: 'utf8' });
      assert.match(s, new RegExp(`Block size ${blockSize}`));
      assert.match(s, /Compression gzip/);
      assert.match(s, compression === 'none' ? /Data is uncompressed/ : /Data is compressed/);
      const listed = execFileSync('unsquashfs', ['-l', img], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.match(listed, /squashfs-root\/many\/entry-00599/);
      execFileSync('unsquashfs', ['-lls', img], { maxBuffer: 64 << 20 });
      const out = join(dir, 'out');
      const u = spawnSync('unsquashfs', ['-d', out, img], { encoding: 'utf8', maxBuffer: 64 << 20 });
      assert.equal(u.status, 0, u.stderr);
      const diffs = differences(snapshot(src), snapshot(out), {
        ignore: (rel) => rel === 'grüße' || rel.startsWith('dev') || rel.startsWith('proc') || rel.startsWith('data'),
        skipTypes: ['socket'], // unsquashfs does not create sockets
      });
      assert.deepEqual(diffs, []);
      assert.equal(lstatSync(join(out, 'dev/null')).rdev, (1 << 8) | 3);
    });
  }
}

test('two writes with the same inputs and mtime are byte-identical', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  await buildVariedTree(src, { blockSize: 131072, bigDir: 1000, depth: 8 });
  const a = join(dir, 'a.img');
  const b = join(dir, 'b.img');
  await writeSquashfs(a, { root: src, pseudo, forceUid: 1000, forceGid: 1000, mtime: MTIME });
  await writeSquashfs(b, { root: src, pseudo, forceUid: 1000, forceGid: 1000, mtime: MTIME });
  assert.ok(readFileSync(a).equals(readFileSync(b)));
  const c = join(dir, 'c.img');
  await writeSquashfs(c, { root: src, pseudo, forceUid: 1000, forceGid: 1000, mtime: MTIME - 1 });
  assert.ok(!readFileSync(a).equals(readFileSync(c)), 'a different mtime gives a different image');
  assert.equal(readFileSync(a).readUInt32LE(8), MTIME, 'mkfs_time is the given mtime');
});

test('an image of pseudo entries only (no source tree) mounts', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const img = join(dir, 'fs.img');
  const r = await writeSquashfs(img, { pseudo, forceUid: 1000, forceGid: 1000, mtime: MTIME, compression: 'none' });
  assert.equal(r.inodes, 9);
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  assert.equal(lstatSync(join(mnt, 'dev/stdin')).isSymbolicLink(), true);
  assert.equal(readFileSync(join(mnt, 'data/nested/file.txt'), 'utf8'), 'pseudo content\n');
  assert.equal(lstatSync(mnt).uid, 1000);
  assert.equal(lstatSync(join(mnt, 'grüße')).mode & 0o7777, 0o711);
  // upstream "none" flags: -noI -noD -noF -noX -no-fragments, superblock gzip
  assert.equal(readFileSync(img).readUInt16LE(24), 0x01db);
  assert.equal(readFileSync(img).readUInt16LE(20), 1);
});

test('an empty source directory gives a mountable image with an empty root', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  mkdirSync(src);
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, { root: src, mtime: MTIME, exportTable: false });
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  assert.equal(snapshot(mnt).size, 0);
  assert.equal(readFileSync(img).readUInt16LE(24), 0x0040);
});

test('zstd images mount and pass unsquashfs when this Node has a zstd codec', async (t) => {
  if (!availableCompressors().includes('zstd')) return t.skip(`node ${process.version} has no zstd codec`);
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  await buildVariedTree(src, { blockSize: 131072, bigDir: 300, depth: 4 });
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, { root: src, compression: 'zstd', mtime: MTIME });
  assert.equal(readFileSync(img).readUInt16LE(20), 6);
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  assert.deepEqual(differences(snapshot(src), snapshot(mnt)), []);
  const out = join(dir, 'out');
  const u = spawnSync('unsquashfs', ['-d', out, img], { encoding: 'utf8' });
  assert.equal(u.status, 0, u.stderr);
});

test('a directory of 20000 entries (indexed) resolves every name through the kernel', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const names: string[] = [];
  const pseudo: PseudoEntry[] = [];
  for (let i = 0; i < 20000; i++) {
    const name = `${(i * 7919) % 20000}-${'x'.repeat(i % 61)}-ü`;
    names.push(name);
    pseudo.push(i % 3 === 0 ? { path: `/big/${name}`, type: 'symlink', mode: 0o777, target: name } : { path: `/big/${name}`, type: 'file', mode: 0o644, content: Buffer.from(name) });
  }
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, { pseudo, mtime: MTIME });
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  const listed = readdirSync(join(mnt, 'big'));
  assert.equal(listed.length, 20000);
  assert.deepEqual([...listed].sort(), [...names].sort());
  for (const [i, name] of names.entries()) {
    const st = lstatSync(join(mnt, 'big', name));
    assert.equal(st.isSymbolicLink(), i % 3 === 0, name);
  }
  assert.equal(readFileSync(join(mnt, 'big', names[19999]!), 'utf8'), names[19999]);
  assert.throws(() => lstatSync(join(mnt, 'big', 'not-there')), /ENOENT/);
  assert.throws(() => lstatSync(join(mnt, 'big', '0')), /ENOENT/);
  const u = spawnSync('unsquashfs', ['-l', img], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(u.status, 0, u.stderr);
});

test('a file larger than 4 GiB (sparse source) gets an extended inode and reads back through the kernel', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  mkdirSync(src);
  const size = 5 * 1024 * 1024 * 1024 + 12345;
  const marks: [number, string][] = [
    [0, 'start'],
    [4400000000, 'beyond 4 GiB'],
    [size - 3, 'end'],
  ];
  const fd = openSync(join(src, 'huge'), 'w');
  for (const [at, text] of marks) writeSync(fd, Buffer.from(text), 0, text.length, at);
  closeSync(fd);
  writeFileSync(join(src, 'after'), 'a file written after the huge one\n');
  const img = join(dir, 'fs.img');
  const progress: number[] = [];
  const r = await writeSquashfs(img, { root: src, mtime: MTIME, onProgress: (d, total) => progress.push(d / total) });
  assert.ok(r.size < 1 << 20, 'holes are stored as sparse blocks');
  assert.ok(progress.length > 100, 'progress is reported while a big file streams');
  assert.ok(progress.every((v, i) => i === 0 || v >= progress[i - 1]!), 'progress never goes back');
  assert.equal(progress.at(-1), 1);
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  assert.equal(statSync(join(mnt, 'huge')).size, size);
  const rfd = openSync(join(mnt, 'huge'), 'r');
  defer(() => closeSync(rfd));
  for (const [at, text] of marks) {
    const b = Buffer.alloc(text.length + 2);
    const n = readSync(rfd, b, 0, b.length, at - 1 < 0 ? 0 : at - 1);
    const got = at === 0 ? b.subarray(0, text.length) : b.subarray(1, 1 + text.length);
    assert.equal(got.toString(), text, `at ${at} (${n} bytes read)`);
  }
  const zeros = Buffer.alloc(65536);
  assert.equal(readSync(rfd, zeros, 0, zeros.length, 3 * 1024 * 1024 * 1024), zeros.length);
  assert.ok(zeros.equals(Buffer.alloc(65536)));
  assert.equal(readFileSync(join(mnt, 'after'), 'utf8'), 'a file written after the huge one\n');
  const sq = await SquashfsImage.open(img);
  defer(() => void sq.close());
  assert.equal((await sq.stat('/huge')).size, size);
  await assert.rejects(sq.readFile('/huge'), /too large to read into memory/);
});

test('names that are not valid UTF-8 keep their exact bytes (mount, reader, extract)', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  mkdirSync(src);
  const raw = Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0x31, 0xe9, 0xff, 0x2e, 0x74, 0x78, 0x74]); // "latin1\xe9\xff.txt"
  writeFileSync(Buffer.concat([Buffer.from(src + '/'), raw]), 'bytes\n');
  writeFileSync(join(src, 'plain'), 'plain\n');
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, { root: src, mtime: MTIME });
  const mnt = join(dir, 'mnt');
  mountImage(defer, img, mnt);
  const names = readdirSync(mnt, { encoding: 'buffer' });
  assert.ok(names.some((n) => n.equals(raw)));
  assert.equal(readFileSync(Buffer.concat([Buffer.from(mnt + '/'), raw])).toString(), 'bytes\n');
  const sq = await SquashfsImage.open(img);
  defer(() => void sq.close());
  const e = (await sq.entries()).find((x) => x.rawPath.equals(Buffer.concat([Buffer.from('/'), raw])));
  assert.ok(e, 'the reader reports the raw bytes');
  const out = join(dir, 'out');
  await sq.extract(out);
  assert.ok(readdirSync(out, { encoding: 'buffer' }).some((n) => n.equals(raw)));
});
