/** Our reader against mksquashfs images (several option sets) and our own images. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, lstatSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SquashfsImage, formatListing } from '../../src/npk/squashfs/reader.js';
import { availableCompressors } from '../../src/npk/squashfs/codec.js';
import { writeSquashfs } from '../../src/npk/squashfs/writer.js';
import { buildVariedTree, deferrer, differences, have, isRoot, snapshot, tempDir, xattrSnapshot } from './helpers.js';

const optionSets: [string, string[]][] = [
  ['default gzip', []],
  ['-noI -noD -noF -noX', ['-noI', '-noD', '-noF', '-noX']],
  ['upstream none (-noI -noD -noF -noX -no-fragments)', ['-noI', '-noD', '-noF', '-noX', '-no-fragments']],
  ['-no-fragments -no-exports -no-xattrs', ['-no-fragments', '-no-exports', '-no-xattrs']],
  ['-b 4096 -always-use-fragments', ['-b', '4096', '-always-use-fragments']],
  ['-b 1M -no-duplicates -all-root', ['-b', '1M', '-no-duplicates', '-all-root']],
  ['compression options block (-Xcompression-level 6 -Xwindow-size 12)', ['-Xcompression-level', '6', '-Xwindow-size', '12']],
];

/** unsquashfs 4.5 prints minors > 255 wrongly (rdev >> 8, rdev & 0xff); we print the real numbers. */
function withoutBigMinor(listing: string): string {
  return listing
    .split('\n')
    .filter((l) => !l.endsWith('/devs/big-minor'))
    .join('\n');
}

function skipReason(): string | undefined {
  if (!isRoot) return 'needs root to build the source tree (mknod, chown)';
  for (const c of ['mksquashfs', 'unsquashfs', 'getfattr', 'setfattr']) if (!have(c)) return `${c} is not installed`;
  return undefined;
}

for (const [label, args] of optionSets) {
  test(`reader lists and extracts a mksquashfs image (${label}) like unsquashfs`, async (t) => {
    const why = skipReason();
    if (why) return t.skip(why);
    const defer = deferrer(t);
    const dir = tempDir(defer);
    const src = join(dir, 'src');
    await buildVariedTree(src, { blockSize: 131072, bigDir: 700, depth: 12 });
    const img = join(dir, 'ref.img');
    execFileSync('mksquashfs', [src, img, '-noappend', '-no-progress', '-quiet', ...args], { stdio: 'ignore' });

    const sq = await SquashfsImage.open(img);
    defer(() => void sq.close());
    const ours = await formatListing(sq, { numeric: true });
    const theirs = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
    assert.equal(withoutBigMinor(ours), withoutBigMinor(theirs));
    assert.match(ours, / 240,300000 .* squashfs-root\/devs\/big-minor\n/);

    // Extract with both and compare the trees (sockets: unsquashfs does not create them).
    const a = join(dir, 'ours');
    const b = join(dir, 'theirs');
    const r = await sq.extract(a);
    assert.deepEqual(r.warnings, []);
    const u = spawnSync('unsquashfs', ['-d', b, img], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(u.status, 0, u.stderr);
    assert.deepEqual(differences(snapshot(b), snapshot(a)), []);
    // And against the source itself.
    const forced = args.includes('-all-root') ? { uid: 0, gid: 0 } : {};
    assert.deepEqual(differences(snapshot(src), snapshot(a), forced), []);
    if (!args.includes('-no-xattrs')) assert.deepEqual(xattrSnapshot(a, 'user'), xattrSnapshot(src, 'user'));
    assert.ok(lstatSync(join(a, 'devs/socket')).isSocket());

    // Entries: hard links share the inode number; xattrs and device numbers are reported.
    const entries = await sq.entries();
    const byPath = new Map(entries.map((e) => [e.path, e]));
    assert.equal(byPath.get('/links/original')!.inode, byPath.get('/hardlink-third')!.inode);
    assert.equal(byPath.get('/links/original')!.nlink, 3);
    assert.notEqual(byPath.get('/dup-small-1')!.inode, byPath.get('/dup-small-2')!.inode);
    assert.deepEqual(
      { major: byPath.get('/devs/big-minor')!.major, minor: byPath.get('/devs/big-minor')!.minor },
      { major: 240, minor: 300000 },
    );
    if (!args.includes('-no-xattrs')) assert.equal(byPath.get('/hello.txt')!.xattrs['user.comment']!.toString(), 'greeting');
    assert.equal(byPath.get('/rel-link')!.target, 'hello.txt');
    assert.equal(byPath.get('/grüße/ünïcødé-文件.txt')!.type, 'file');

    // readFile of every regular file equals the source.
    for (const e of entries) {
      if (e.type !== 'file') continue;
      assert.ok((await sq.readFile(e.path)).equals(readFileSync(join(src, e.path))), e.path);
    }
    await assert.rejects(sq.readFile('/nope'), /does not exist/);
    await assert.rejects(sq.readFile('/links'), /not a regular file/);
  });
}

test('reader reads our own images from a path, an fd and at an offset', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = join(dir, 'src');
  await buildVariedTree(src, { blockSize: 65536, bigDir: 400, depth: 6 });
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, {
    root: src,
    blockSize: 65536,
    forceUid: 1000,
    forceGid: 1001,
    mtime: 1700000000,
    pseudo: [{ path: '/dev/null', type: 'char', mode: 0o666, major: 1, minor: 3, xattrs: { 'security.selinux': 'u:object_r:null_device:s0' } }],
  });
  const theirs = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });

  const direct = await SquashfsImage.open(img);
  assert.equal(withoutBigMinor(await formatListing(direct, { numeric: true })), withoutBigMinor(theirs));
  assert.equal(direct.superblock.blockSize, 65536);
  assert.equal(direct.superblock.compression, 'gzip');
  assert.equal((await direct.stat('/dev/null')).xattrs['security.selinux']!.toString(), 'u:object_r:null_device:s0');
  await direct.close();

  // Embedded in a bigger file at 8192, opened through an fd the caller owns.
  const image = readFileSync(img);
  const big = join(dir, 'container.bin');
  writeFileSync(big, Buffer.concat([Buffer.alloc(8192, 0xaa), image, Buffer.alloc(1000, 0xbb)]));
  const fd = openSync(big, 'r');
  defer(() => closeSync(fd));
  const embedded = await SquashfsImage.open(fd, { offset: 8192, size: image.length });
  assert.equal(withoutBigMinor(await formatListing(embedded, { numeric: true })), withoutBigMinor(theirs));
  const out = join(dir, 'out');
  const r = await embedded.extract(out);
  assert.deepEqual(r.warnings, []);
  assert.deepEqual(
    differences(snapshot(src), snapshot(out), { uid: 1000, gid: 1001, ignore: (rel) => rel.startsWith('dev') }),
    [],
  );
  // All-zero blocks are stored sparse and extracted as holes.
  assert.equal(lstatSync(join(out, 'zeros.bin')).blocks, 0);
  assert.ok(lstatSync(join(out, 'sparse.bin')).blocks * 512 < lstatSync(join(out, 'sparse.bin')).size);
  assert.deepEqual(xattrSnapshot(out, 'security').get('dev/null'), [`security.selinux=0x${Buffer.from('u:object_r:null_device:s0').toString('hex')}`]);
  await embedded.close();
  // The fd stays open for its owner.
  assert.ok(lstatSync(big).size > 0);
});

test('extract as a non-root user skips what needs privileges and says so', async (t) => {
  if (!isRoot || !have('setpriv')) return t.skip('needs root and setpriv to run a child as an unprivileged user');
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, {
    mtime: 1700000000,
    forceUid: 1000,
    forceGid: 1000,
    pseudo: [
      { path: '/dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 },
      { path: '/fifo', type: 'fifo', mode: 0o644 },
      { path: '/f', type: 'file', mode: 0o600, content: Buffer.from('x'), xattrs: { 'user.a': 'b', 'trusted.t': 'v' } },
    ],
  });
  execFileSync('chmod', ['0755', dir]);
  execFileSync('chmod', ['0644', img]);
  const out = join(dir, 'out');
  const script = `import { SquashfsImage } from ${JSON.stringify(new URL('../../src/npk/squashfs/reader.js', import.meta.url).href)};
const img = await SquashfsImage.open(${JSON.stringify(img)});
const r = await img.extract(${JSON.stringify(out)});
console.log(JSON.stringify(r.warnings));`;
  execFileSync('mkdir', ['-m', '0777', out]);
  const res = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    cwd: dir,
  });
  assert.equal(res.status, 0, res.stderr);
  const warnings = JSON.parse(res.stdout) as string[];
  assert.ok(warnings.some((w) => w.includes('device nodes') && w.includes('/dev/null')), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('ownership')), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('trusted.t')), warnings.join('\n'));
  assert.equal(readFileSync(join(out, 'f'), 'utf8'), 'x');
  assert.ok(lstatSync(join(out, 'fifo')).isFIFO());
});

test('records that end exactly at a metadata block boundary are followed into the next block', async (t) => {
  if (!have('unsquashfs')) return t.skip('unsquashfs is not installed');
  const defer = deferrer(t);
  const dir = tempDir(defer);
  // 3000 file inodes of 36..64 bytes (1..8 block entries): inode records start and end at
  // every multiple of 4 across ~25 metadata blocks, so some header ends exactly at 8192.
  const pseudo = [];
  for (let i = 0; i < 3000; i++) {
    const blocks = 1 + ((i * 7) % 8);
    pseudo.push({ path: `/d${i % 3}/f${i}`, type: 'file' as const, mode: 0o644, content: Buffer.alloc(blocks * 4096 - 1, 0x61 + blocks) });
  }
  const img = join(dir, 'fs.img');
  await writeSquashfs(img, { pseudo, blockSize: 4096, fragments: false, mtime: 1700000000, compression: 'none' });
  const sq = await SquashfsImage.open(img);
  defer(() => void sq.close());
  const theirs = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
  assert.equal(await formatListing(sq, { numeric: true }), theirs);
  assert.ok((await sq.readFile('/d1/f2998')).equals(Buffer.alloc(((2998 * 7) % 8 + 1) * 4096 - 1, 0x61 + ((2998 * 7) % 8) + 1)));
  // And a mksquashfs image of the same kind.
  const src = join(dir, 'src');
  mkdirSync(src);
  for (let i = 0; i < 3000; i++) {
    const blocks = 1 + ((i * 5) % 8);
    writeFileSync(join(src, `f${i}`), Buffer.alloc(blocks * 4096 - 3, 0x41 + blocks));
  }
  if (!have('mksquashfs')) return;
  const ref = join(dir, 'ref.img');
  execFileSync('mksquashfs', [src, ref, '-noappend', '-no-progress', '-quiet', '-b', '4096', '-no-fragments'], { stdio: 'ignore' });
  const r = await SquashfsImage.open(ref);
  defer(() => void r.close());
  const theirsRef = execFileSync('unsquashfs', ['-lln', ref], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
  assert.equal(await formatListing(r, { numeric: true }), theirsRef);
});

async function compressorSource(dir: string): Promise<string> {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'd'), { recursive: true });
  writeFileSync(join(src, 'd', 'a.txt'), 'text '.repeat(1000));
  writeFileSync(join(src, 'b.bin'), Buffer.alloc(300000, 7));
  return src;
}

test('images with compressors Node lacks are refused naming the compressor', async (t) => {
  if (!have('mksquashfs')) return t.skip('mksquashfs is not installed');
  const dir = tempDir(deferrer(t));
  const src = await compressorSource(dir);
  const lacking = ['xz', 'lzo', 'lz4', ...(availableCompressors().includes('zstd') ? [] : ['zstd'])];
  for (const comp of lacking) {
    const img = join(dir, `${comp}.img`);
    execFileSync('mksquashfs', [src, img, '-comp', comp, '-noappend', '-no-progress', '-quiet'], { stdio: 'ignore' });
    const re = comp === 'zstd' ? /compressed with zstd, which node v[\d.]+ cannot decompress/ : new RegExp(`compressed with ${comp}, which is not supported \\(supported: gzip`);
    await assert.rejects(SquashfsImage.open(img), re);
  }
});

test('zstd images from mksquashfs are read when Node has a zstd codec', async (t) => {
  if (!availableCompressors().includes('zstd')) return t.skip(`node ${process.version} has no zstd codec`);
  if (!have('mksquashfs') || !have('unsquashfs')) return t.skip('mksquashfs/unsquashfs are not installed');
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const src = await compressorSource(dir);
  const img = join(dir, 'zstd.img');
  execFileSync('mksquashfs', [src, img, '-comp', 'zstd', '-noappend', '-no-progress', '-quiet'], { stdio: 'ignore' });
  const sq = await SquashfsImage.open(img);
  defer(() => void sq.close());
  const theirs = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  assert.equal(await formatListing(sq, { numeric: true }), theirs);
  assert.equal((await sq.readFile('/d/a.txt')).toString(), 'text '.repeat(1000));
});

test('a real system tree (/etc) packed by mksquashfs extracts like unsquashfs', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const defer = deferrer(t);
  const dir = tempDir(defer);
  const img = join(dir, 'etc.img');
  execFileSync('mksquashfs', ['/etc', img, '-noappend', '-no-progress', '-quiet'], { stdio: 'ignore' });
  const sq = await SquashfsImage.open(img);
  defer(() => void sq.close());
  const theirs = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
  assert.equal(withoutBigMinor(await formatListing(sq, { numeric: true })), withoutBigMinor(theirs));
  // The default form shows host user/group names like `unsquashfs -ll` (what sextant inspect prints).
  const named = execFileSync('unsquashfs', ['-ll', img], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, TZ: 'UTC' } });
  assert.equal(withoutBigMinor(await formatListing(sq)), withoutBigMinor(named));
  const a = join(dir, 'ours');
  const b = join(dir, 'theirs');
  await sq.extract(a);
  const u = spawnSync('unsquashfs', ['-d', b, img], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(u.status, 0, u.stderr);
  assert.deepEqual(differences(snapshot(b), snapshot(a), { skipTypes: ['socket'] }), []);
});
