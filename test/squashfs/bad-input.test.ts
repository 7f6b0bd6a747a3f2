/** Bad images and bad writer options: clear errors, never a crash or a hang. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { NorthstarError, NpkError, ValidationError } from '../../src/common/errors.js';
import { SquashfsImage } from '../../src/npk/squashfs/reader.js';
import { writeSquashfs } from '../../src/npk/squashfs/writer.js';
import { availableCompressors } from '../../src/npk/squashfs/codec.js';
import { deferrer, have, prng, tempDir } from './helpers.js';

async function sampleImage(dir: string, opts: { compression?: 'gzip' | 'none'; blockSize?: number } = {}): Promise<Buffer> {
  const src = join(dir, 'src');
  mkdirSync(join(src, 'sub', 'deeper'), { recursive: true });
  writeFileSync(join(src, 'a.txt'), 'alpha\n'.repeat(100));
  writeFileSync(join(src, 'big.bin'), Buffer.concat([prng(1, 9000), Buffer.from('text '.repeat(4000))]));
  writeFileSync(join(src, 'sub', 'b'), 'bravo');
  writeFileSync(join(src, 'sub', 'deeper', 'c'), prng(2, 5000));
  for (let i = 0; i < 300; i++) writeFileSync(join(src, 'sub', `f${i}`), `file ${i}\n`);
  const img = join(dir, `sample-${opts.compression ?? 'gzip'}.img`);
  await writeSquashfs(img, {
    root: src,
    blockSize: opts.blockSize ?? 4096,
    mtime: 1700000000,
    compression: opts.compression ?? 'gzip',
    sourceXattrs: false,
    pseudo: [{ path: '/x', type: 'file', mode: 0o644, content: Buffer.from('x'), xattrs: { 'user.k': 'v'.repeat(50) } }],
  });
  return readFileSync(img);
}

/** Open, list and read everything; returns the error or undefined. */
async function readAll(path: string): Promise<unknown> {
  let img: SquashfsImage | undefined;
  try {
    img = await SquashfsImage.open(path);
    for (const e of await img.entries()) if (e.type === 'file') await img.readFile(e.path);
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await img?.close();
  }
}

test('a truncated image is refused with a clear error', async (t) => {
  const dir = tempDir(deferrer(t));
  const good = await sampleImage(dir);
  const p = join(dir, 'cut.img');
  writeFileSync(p, good.subarray(0, Math.floor(good.length / 2)));
  await assert.rejects(SquashfsImage.open(p), (e: unknown) => e instanceof NpkError && /bytes_used \d+ is larger than the image .*truncated/.test(e.message));
  writeFileSync(p, good.subarray(0, 50));
  await assert.rejects(SquashfsImage.open(p), /too short for a superblock/);
  writeFileSync(p, Buffer.alloc(0));
  await assert.rejects(SquashfsImage.open(p), /too short for a superblock/);
  await assert.rejects(SquashfsImage.open(join(dir, 'missing.img')), (e: unknown) => e instanceof NpkError && /missing\.img: ENOENT/.test(e.message));
  // An offset/size region that passes the end of the file.
  await assert.rejects(SquashfsImage.open(join(dir, 'sample-gzip.img'), { offset: 4096, size: good.length }), /passes the file end/);
});

test('wrong magic, version, block size and compressors are named in the error', async (t) => {
  const dir = tempDir(deferrer(t));
  const good = await sampleImage(dir);
  const p = join(dir, 'bad.img');
  const variant = (edit: (b: Buffer) => void): string => {
    const b = Buffer.from(good);
    edit(b);
    writeFileSync(p, b);
    return p;
  };
  await assert.rejects(SquashfsImage.open(variant((b) => b.write('PK\x03\x04', 0, 'latin1'))), /bad magic 0x04034b50 \(not a squashfs image\)/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt32BE(0x73717368, 0))), /big-endian/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(3, 28))), /version 3\.0 is not supported/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt32LE(5000, 12))), /block size 5000 is not a power of two/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt32LE(2 << 20, 12))), /block size 2097152/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(13, 22))), /block_log 13 does not match block size 4096/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(4, 20))), /compressed with xz, which is not supported/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(3, 20))), /compressed with lzo/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(5, 20))), /compressed with lz4/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(99, 20))), /unknown compressor id 99/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeUInt16LE(0, 26))), /id table is empty/);
  await assert.rejects(SquashfsImage.open(variant((b) => b.writeBigUInt64LE(1n << 40n, 64))), /inode table start \d+ lies outside the image/);
});

test('corrupted metadata gives NpkError, never a crash or a hang (seeded fuzz)', async (t) => {
  const dir = tempDir(deferrer(t));
  for (const compression of ['gzip', 'none'] as const) {
    const good = await sampleImage(dir, { compression });
    const inodeStart = Number(good.readBigUInt64LE(64));
    const end = Number(good.readBigUInt64LE(40));
    const p = join(dir, `fuzz-${compression}.img`);
    let failures = 0;
    for (let seed = 1; seed <= 150; seed++) {
      const b = Buffer.from(good);
      const r = prng(seed, 16);
      const flips = 1 + (r[0]! % 4);
      for (let i = 0; i < flips; i++) {
        const at = inodeStart + (r.readUInt32LE(4 * (i % 3) + 1) % (end - inodeStart));
        b[at] = b[at]! ^ (1 + r[13 + (i % 3)]!);
      }
      writeFileSync(p, b);
      const err = await readAll(p);
      if (err !== undefined) {
        failures++;
        assert.ok(err instanceof NpkError, `seed ${seed}: ${String(err)}`);
        assert.match((err as Error).message, /^squashfs image/);
      }
    }
    assert.ok(failures > 20, `most corruptions are detected (${failures}/150)`);
    // Bit flips in the superblock.
    for (let seed = 1; seed <= 150; seed++) {
      const b = Buffer.from(good);
      const r = prng(1000 + seed, 8);
      for (let i = 0; i < 1 + (r[0]! % 3); i++) {
        const at = r[1 + i]! % 96;
        b[at] = b[at]! ^ (1 << (r[4 + i]! % 8));
      }
      writeFileSync(p, b);
      const err = await readAll(p);
      if (err !== undefined) {
        assert.ok(err instanceof NpkError, `superblock seed ${seed}: ${String(err)}`);
        assert.match((err as Error).message, /^squashfs image/);
      }
    }
  }
});

test('specific structural corruptions are detected', async (t) => {
  const dir = tempDir(deferrer(t));
  const good = await sampleImage(dir, { compression: 'none' });
  const dirStart = Number(good.readBigUInt64LE(72));
  const p = join(dir, 'bad.img');
  const check = async (edit: (b: Buffer) => void, re: RegExp): Promise<void> => {
    const b = Buffer.from(good);
    edit(b);
    writeFileSync(p, b);
    const err = await readAll(p);
    assert.ok(err instanceof NpkError, String(err));
    assert.match(err.message, re);
  };
  // Metadata header (raw, uncompressed tables): first directory block.
  await check((b) => b.writeUInt16LE(0x8000, dirStart), /directory table block at \d+ is empty/);
  // First run header's count: 300 entries in a run.
  await check((b) => b.writeUInt32LE(299, dirStart + 2), /run of 300 entries|truncated|not sorted|invalid/);
  // Root inode ref pointing to an inode that is not a directory.
  await check((b) => b.writeBigUInt64LE(0n, 32), /root inode is not a directory/);
  // Root inode offset beyond the block.
  await check((b) => b.writeBigUInt64LE(9000n, 32), /root inode ref offset is beyond 8192/);
  // Root inode number 0.
  const root = good.readBigUInt64LE(32);
  const inodeStart = Number(good.readBigUInt64LE(64));
  // Raw metadata: the block at (ref >> 16) stores its bytes right after its 2-byte header.
  const rootAt = inodeStart + Number(root >> 16n) + 2 + Number(root & 0xffffn);
  assert.ok(rootAt + 32 <= dirStart, 'the root inode does not straddle a block');
  await check((b) => b.writeUInt32LE(0, rootAt + 12), /invalid number 0/);
  await check((b) => b.writeUInt16LE(15, rootAt), /invalid type 15/);
  await check((b) => b.writeUInt16LE(200, rootAt + 4), /uid\/gid index 200 is outside the id table/);
});

test('a directory cycle is refused', async (t) => {
  const dir = tempDir(deferrer(t));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'a'), { recursive: true });
  const img = join(dir, 'cycle.img');
  await writeSquashfs(img, { root: src, compression: 'none', mtime: 1, exportTable: false });
  const b = readFileSync(img);
  // Inode table (raw): [dir a (32 bytes)][root (32 bytes)]. Directory table: listing of root only.
  // Point a's listing at the root's listing: a contains a, which contains a, ...
  const inodeStart = Number(b.readBigUInt64LE(64));
  const a = inodeStart + 2;
  const root = inodeStart + 2 + 32;
  assert.equal(b.readUInt16LE(a), 1);
  assert.equal(b.readUInt16LE(root), 1);
  b.writeUInt32LE(b.readUInt32LE(root + 16), a + 16); // dir_block
  b.writeUInt16LE(b.readUInt16LE(root + 24), a + 24); // file_size
  b.writeUInt16LE(b.readUInt16LE(root + 26), a + 26); // dir_offset
  writeFileSync(img, b);
  const err = await readAll(img);
  assert.ok(err instanceof NpkError, String(err));
  assert.match(err.message, /reached twice \(cycle\)/);
});

test('writer rejects bad options and pseudo entries with clear errors', async (t) => {
  const dir = tempDir(deferrer(t));
  const out = join(dir, 'o.img');
  await assert.rejects(writeSquashfs(out, { blockSize: 1000 }), (e: unknown) => e instanceof ValidationError && /blockSize: must be a power of two/.test(e.message));
  await assert.rejects(writeSquashfs(out, { blockSize: 2 << 20 }), /blockSize/);
  await assert.rejects(writeSquashfs(out, { blockSize: 3 * 4096 }), /blockSize/);
  await assert.rejects(writeSquashfs(out, { compression: 'xz' }), (e: unknown) => e instanceof NorthstarError && /compression xz is not supported/.test(e.message));
  await assert.rejects(writeSquashfs(out, { compression: 'lzo' }), /compression lzo is not supported/);
  if (!availableCompressors().includes('zstd')) {
    await assert.rejects(writeSquashfs(out, { compression: 'zstd' }), /compression zstd is not available: node v[\d.]+ has no zstd codec/);
  }
  await assert.rejects(writeSquashfs(out, { root: join(dir, 'nope') }), /squashfs source .*nope: ENOENT/);
  writeFileSync(join(dir, 'file'), 'x');
  await assert.rejects(writeSquashfs(out, { root: join(dir, 'file') }), /is not a directory/);
  await assert.rejects(writeSquashfs(out, { pseudo: [{ path: 'relative', type: 'dir', mode: 0o755 }] }), /must be an absolute path/);
  await assert.rejects(writeSquashfs(out, { pseudo: [{ path: '/a/../b', type: 'dir', mode: 0o755 }] }), /component '\.\.' is '\.' or '\.\.'/);
  await assert.rejects(writeSquashfs(out, { pseudo: [{ path: '/a', type: 'dir', mode: 0o10000 }] }), /mode: must be permission bits/);
  await assert.rejects(writeSquashfs(out, { pseudo: [{ path: '/d', type: 'char', mode: 0o600, major: 5000, minor: 1 }] }), /major 5000 is outside 0\.\.4095/);
  await assert.rejects(writeSquashfs(out, { pseudo: [{ path: '/l', type: 'symlink', mode: 0o777 }] }), /symlink needs a target/);
  await assert.rejects(
    writeSquashfs(out, { pseudo: [{ path: '/f', type: 'file', mode: 0o644, xattrs: { 'system.posix_acl_access': 'x' } }] }),
    /only user\.\*, trusted\.\* and security\.\* can be stored/,
  );
  await assert.rejects(writeSquashfs(out, { pseudo: [{ path: '/', type: 'file', mode: 0o644 }] }), /the root '\/' can only be a directory/);
  await assert.rejects(writeSquashfs(out, { forceUid: -1 }), /forceUid/);
  await assert.rejects(writeSquashfs(out, { compressionLevel: 10 }), /compressionLevel: must be an integer 1\.\.9 for gzip/);
  await assert.rejects(writeSquashfs(out, { mtime: -5 }), /mtime: must be unix seconds/);
  await assert.rejects(writeSquashfs(join(dir, 'no', 'such', 'dir.img'), {}), /squashfs output .*: ENOENT/);
  assert.equal(existsSync(out), false, 'no partial output is left behind');
});

test('unreadable source entries are reported with their path', async (t) => {
  if (process.getuid?.() !== 0 || !have('setpriv')) return t.skip('needs root and setpriv to run the writer as an unprivileged user');
  const dir = tempDir(deferrer(t));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'closed'), { recursive: true });
  writeFileSync(join(src, 'secret'), 'x');
  chmodSync(join(src, 'secret'), 0o600);
  chmodSync(join(src, 'closed'), 0o700);
  chmodSync(dir, 0o777);
  const run = (root: string): { status: number | null; stderr: string } => {
    const script = `import { writeSquashfs } from ${JSON.stringify(new URL('../../src/npk/squashfs/writer.js', import.meta.url).href)};
try { await writeSquashfs(${JSON.stringify(join(dir, 'o.img'))}, { root: ${JSON.stringify(root)} }); } catch (e) { console.error(e.code + ': ' + e.message); process.exit(3); }`;
    return spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  };
  const a = run(src);
  assert.equal(a.status, 3, a.stderr);
  assert.match(a.stderr, /^ESQUASHFS_SOURCE: squashfs source .*\/(closed|secret): (scandir|open) failed with EACCES/m);
  assert.equal(existsSync(join(dir, 'o.img')), false);
});
