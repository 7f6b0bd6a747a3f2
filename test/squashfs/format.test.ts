/** Unit tests of the format helpers and the reader on the spec's worked example (no root needed). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeRdev, encodeRdev, modeString, nameProblem, splitXattrName } from '../../src/npk/squashfs/format.js';
import { SquashfsImage, formatListing } from '../../src/npk/squashfs/reader.js';
import { writeSquashfs } from '../../src/npk/squashfs/writer.js';
import { parseGetfattr, unescapeGetfattr } from '../../src/npk/squashfs/xattrs.js';
import { MetadataWriter } from '../../src/npk/squashfs/metadata.js';
import { deferrer, prng, tempDir } from './helpers.js';
import { DeflatePool } from '../../src/npk/squashfs/codec.js';
import { deflateSync, inflateSync } from 'node:zlib';

/** spec squashfs.md §14: `mksquashfs -noI -noD -noF -noX -all-root` of dir/{hello.txt, link, tty}. */
const EXAMPLE_A = [
  '687371730500000000f1536500000200',
  '0100000001001100cb01010004000000',
  '7900000000000000a801000000000000',
  'a001000000000000ffffffffffffffff',
  '66000000000000000101000000000000',
  '60010000000000009201000000000000',
  '68656c6c6f0a99800200a40100000000',
  '257d9365020000000000000000000000',
  '00000000060000000300ff0100000000',
  '257d9365030000000100000009000000',
  '68656c6c6f2e7478740500a401000000',
  '00257d93650400000001000000050400',
  '000100ed0100000000257d9365010000',
  '00000000000200000037000000050000',
  '000100ed0100000000257d9365050000',
  '0000000000030000001a003400060000',
  '004b8002000000000000000200000000',
  '0000000200080068656c6c6f2e747874',
  '20000100030003006c696e6b41000200',
  '05000200747479000000000000000001',
  '00000059000000010002006469721080',
  '60000000000000000600000100000000',
  '4e010000000000002880590000000000',
  '00000000000000000000200000000000',
  '00004100000000000000790000000000',
  '00006801000000000000048000000000',
  '9a01000000000000',
].join('');

function exampleA(): Buffer {
  const b = Buffer.alloc(4096);
  Buffer.from(EXAMPLE_A, 'hex').copy(b);
  return b;
}

test('rdev encoding matches the kernel (new encoding, big minors)', () => {
  assert.equal(encodeRdev(240, 300000) >>> 0, 0x4930f0e0);
  assert.deepEqual(decodeRdev(0x4930f0e0), { major: 240, minor: 300000 });
  assert.equal(encodeRdev(4, 5), 0x0405);
  assert.deepEqual(decodeRdev(0x0103), { major: 1, minor: 3 });
  assert.deepEqual(decodeRdev(encodeRdev(4095, 1048575) >>> 0), { major: 4095, minor: 1048575 });
});

test('names, modes and xattr prefixes', () => {
  assert.equal(nameProblem(Buffer.from('ok')), undefined);
  assert.match(nameProblem(Buffer.from('a/b'))!, /'\/'/);
  assert.match(nameProblem(Buffer.from('..'))!, /'\.' or '\.\.'/);
  assert.match(nameProblem(Buffer.alloc(0))!, /empty/);
  assert.match(nameProblem(Buffer.alloc(257, 0x61))!, /longer than 256/);
  assert.equal(nameProblem(Buffer.alloc(256, 0x61)), undefined);
  assert.equal(modeString('file', 0o4755), '-rwsr-xr-x');
  assert.equal(modeString('dir', 0o1777), 'drwxrwxrwt');
  assert.equal(modeString('file', 0o2640), '-rw-r-S---');
  assert.equal(modeString('char', 0o666), 'crw-rw-rw-');
  assert.deepEqual(splitXattrName('security.selinux'), { prefix: 2, suffix: 'selinux' });
  assert.deepEqual(splitXattrName('user.a'), { prefix: 0, suffix: 'a' });
  assert.equal(splitXattrName('system.posix_acl_access'), undefined);
  assert.equal(splitXattrName('user.'), undefined);
});

test('getfattr output parsing (escaped names, hex values, unstorable names)', () => {
  assert.equal(unescapeGetfattr('a\\012b\\\\c'), 'a\nb\\c');
  const { files, dropped } = parseGetfattr(
    '# file: /r/we ird\\012nm\nuser.x=0x3132\nuser.empty\n\n# file: /r/a\nsystem.posix_acl_access=0x0200\nsecurity.selinux=0x753a\n\n',
  );
  assert.deepEqual([...files.keys()], ['/r/we ird\nnm', '/r/a']);
  assert.deepEqual(files.get('/r/we ird\nnm'), [
    ['user.x', Buffer.from('12')],
    ['user.empty', Buffer.alloc(0)],
  ]);
  assert.deepEqual(files.get('/r/a'), [['security.selinux', Buffer.from('u:')]]);
  assert.deepEqual(dropped, ['/r/a: system.posix_acl_access']);
});

test('metadata writer: full 8192-byte blocks, refs known in advance, raw when not smaller', () => {
  const w = new MetadataWriter(undefined);
  w.write(Buffer.alloc(8000, 1));
  assert.equal(w.ref(), 8000n);
  w.write(Buffer.alloc(500, 2));
  assert.equal(w.ref(), ((8192n + 2n) << 16n) | 308n);
  const { blocks, size, blockStarts } = w.finish();
  assert.equal(blocks.length, 2);
  assert.equal(blocks[0]!.readUInt16LE(0), 0x8000 | 8192);
  assert.equal(blocks[1]!.readUInt16LE(0), 0x8000 | 308);
  assert.deepEqual(blockStarts, [0, 8194]);
  assert.equal(size, 8194 + 310);
  assert.equal(new MetadataWriter(undefined).finish().blocks.length, 0, 'an empty table has no blocks');
});

test("reader parses the spec's worked example A byte for byte", async (t) => {
  const dir = tempDir(deferrer(t));
  const p = join(dir, 'a.img');
  const bytes = exampleA();
  assert.equal(createHash('sha256').update(bytes).digest('hex'), 'cc88412bcb3817e8b1a64aa5be22807f1ccd8e03eed8375fb6aa03543495ea30');
  writeFileSync(p, bytes);
  const img = await SquashfsImage.open(p);
  t.after(() => img.close());
  const sb = img.superblock;
  assert.equal(sb.inodeCount, 5);
  assert.equal(sb.flags, 0x01cb);
  assert.equal(sb.bytesUsed, 0x1a8);
  assert.equal(sb.mkfsTime, 1700000000);
  const entries = await img.entries();
  assert.deepEqual(
    entries.map((e) => [e.path, e.type, e.mode.toString(8), e.inode, e.nlink, e.size, e.mtime]),
    [
      ['/', 'dir', '755', 5, 3, 26, 0x65937d25],
      ['/dir', 'dir', '755', 1, 2, 55, 0x65937d25],
      ['/dir/hello.txt', 'file', '644', 2, 1, 6, 0x65937d25],
      ['/dir/link', 'symlink', '777', 3, 1, 9, 0x65937d25],
      ['/dir/tty', 'char', '644', 4, 1, 0, 0x65937d25],
    ],
  );
  assert.equal(entries[3]!.target, 'hello.txt');
  assert.deepEqual([entries[4]!.major, entries[4]!.minor], [4, 5]);
  assert.equal((await img.readFile('/dir/hello.txt')).toString(), 'hello\n');
  assert.equal(
    await formatListing(img, { prefix: 'r', numeric: true }),
    [
      'drwxr-xr-x 0/0                      26 2024-01-02 03:04 r',
      'drwxr-xr-x 0/0                      55 2024-01-02 03:04 r/dir',
      '-rw-r--r-- 0/0                       6 2024-01-02 03:04 r/dir/hello.txt',
      'lrwxrwxrwx 0/0                       9 2024-01-02 03:04 r/dir/link -> hello.txt',
      'crw-r--r-- 0/0                   4,  5 2024-01-02 03:04 r/dir/tty',
      '',
    ].join('\n'),
  );
});

test('our writer reproduces the structure of example A (pseudo entries only, all raw)', async (t) => {
  const dir = tempDir(deferrer(t));
  const p = join(dir, 'ours.img');
  await writeSquashfs(p, {
    compression: 'none',
    fragments: true,
    mtime: 0x65937d25,
    pseudo: [
      { path: '/dir', type: 'dir', mode: 0o755 },
      { path: '/dir/hello.txt', type: 'file', mode: 0o644, content: Buffer.from('hello\n') },
      { path: '/dir/link', type: 'symlink', mode: 0o777, target: 'hello.txt' },
      { path: '/dir/tty', type: 'char', mode: 0o644, major: 4, minor: 5 },
    ],
  });
  const ours = readFileSync(p);
  const ref = exampleA();
  // Same superblock apart from the flags (we say "no fragments" only when fragments are off).
  assert.equal(ours.length, 4096);
  assert.equal(ours.readUInt32LE(4), 5);
  assert.equal(ours.readUInt32LE(16), 1, 'one fragment');
  assert.equal(ours.readBigUInt64LE(40), ref.readBigUInt64LE(40), 'same bytes_used');
  for (const off of [48, 64, 72, 80, 88]) assert.equal(ours.readBigUInt64LE(off), ref.readBigUInt64LE(off), `table start at ${off}`);
  // Data area and the tables after the inode table are identical; inode numbering differs.
  assert.ok(ours.subarray(0x60, 0x66).equals(ref.subarray(0x60, 0x66)));
  assert.ok(ours.subarray(0x14e, 0x168).equals(ref.subarray(0x14e, 0x168)), 'fragment table');
  assert.ok(ours.subarray(0x19a, 0x1a8).equals(ref.subarray(0x19a, 0x1a8)), 'id table');
});

test('an output file inside the source tree is left out of the image', async (t) => {
  const dir = tempDir(deferrer(t));
  writeFileSync(join(dir, 'a.txt'), 'a\n');
  const out = join(dir, 'self.img');
  writeFileSync(out, 'an older image that must not be packed');
  await writeSquashfs(out, { root: dir, mtime: 1, sourceXattrs: false });
  await writeSquashfs(out, { root: dir, mtime: 1, sourceXattrs: false });
  const img = await SquashfsImage.open(out);
  t.after(() => img.close());
  assert.deepEqual(
    (await img.entries()).map((e) => e.path),
    ['/', '/a.txt'],
  );
});

test('the deflate pool gives each block its own zlib stream, identical to deflateSync', async () => {
  const pool = new DeflatePool(9, 3);
  try {
    const blocks: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const len = 1 + ((i * 977) % 20000);
      blocks.push(i % 3 === 0 ? prng(i + 1, len) : Buffer.from('squashfs block '.repeat(Math.ceil(len / 15))).subarray(0, len));
    }
    const outs = await Promise.all(blocks.map((b) => pool.compress(b)));
    outs.forEach((o, i) => {
      assert.ok(o.equals(deflateSync(blocks[i]!, { level: 9 })), `block ${i}`);
      assert.ok(inflateSync(o).equals(blocks[i]!));
      assert.equal(o[0], 0x78, 'zlib header');
    });
  } finally {
    pool.close();
  }
});

test('a source root given through a symlink is packed (links below it are not followed)', async (t) => {
  const dir = tempDir(deferrer(t));
  mkdirSync(join(dir, 'real'));
  writeFileSync(join(dir, 'real', 'f'), 'f\n');
  symlinkSync('real', join(dir, 'via-link'));
  symlinkSync('/etc', join(dir, 'real', 'etc-link'));
  const out = join(dir, 'o.img');
  await writeSquashfs(out, { root: join(dir, 'via-link'), mtime: 1, sourceXattrs: false });
  const img = await SquashfsImage.open(out);
  t.after(() => img.close());
  const entries = await img.entries();
  assert.deepEqual(entries.map((e) => [e.path, e.type]), [['/', 'dir'], ['/etc-link', 'symlink'], ['/f', 'file']]);
});
