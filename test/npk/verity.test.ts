import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { appendVerity, computeVerity, verifyVerity, formatUuid, levelBlockCounts, uuidV4 } from '../../src/npk/verity.js';
import { tempDir, hasCommand } from '../helpers/tmp.js';

const veritysetup = hasCommand('veritysetup');

function veritysetupFormat(data: string, hash: string, salt: Buffer, uuid: Buffer): string {
  const out = execFileSync('veritysetup', [
    'format', data, hash, '--format=1', '--hash=sha256', '--data-block-size=4096', '--hash-block-size=4096',
    `--salt=${salt.toString('hex')}`, `--uuid=${formatUuid(uuid)}`,
  ], { encoding: 'utf8' });
  const m = /Root hash:\s+([0-9a-f]{64})/.exec(out);
  assert.ok(m, out);
  return m[1]!;
}

test('level sizes follow the 128-hashes-per-block tree', () => {
  assert.deepEqual(levelBlockCounts(1), []);
  assert.deepEqual(levelBlockCounts(2), [1]);
  assert.deepEqual(levelBlockCounts(128), [1]);
  assert.deepEqual(levelBlockCounts(129), [2, 1]);
  assert.deepEqual(levelBlockCounts(300), [3, 1]);
  assert.deepEqual(levelBlockCounts(128 * 128 + 1), [129, 2, 1]);
});

for (const blocks of [1, 2, 127, 128, 129, 300, 16385]) {
  test(`hash area is byte-identical to veritysetup format (${blocks} blocks)`, { skip: !veritysetup && 'veritysetup not installed' }, async (t) => {
    const dir = tempDir(t);
    const data = join(dir, 'data');
    writeFileSync(data, randomBytes(blocks * 4096));
    const salt = randomBytes(32);
    const uuid = uuidV4(randomBytes(16));
    const root = veritysetupFormat(data, join(dir, 'hash'), salt, uuid);
    const ours = await computeVerity(data, { size: blocks * 4096, salt, uuid });
    assert.equal(ours.rootHash.toString('hex'), root);
    assert.ok(ours.hashArea.equals(readFileSync(join(dir, 'hash'))), 'hash device bytes differ');
  });
}

test('veritysetup verify accepts an appended tree; ours rejects a corrupted block', { skip: !veritysetup && 'veritysetup not installed' }, async (t) => {
  const dir = tempDir(t);
  const img = join(dir, 'img');
  const size = 1000 * 4096;
  writeFileSync(img, randomBytes(size));
  const v = await appendVerity(img);
  execFileSync('veritysetup', ['verify', img, img, v.rootHash.toString('hex'), `--hash-offset=${size}`], { stdio: 'pipe' });
  await verifyVerity(img, { dataSize: size, rootHash: v.rootHash });

  // Our verifier accepts what veritysetup itself wrote.
  const data2 = join(dir, 'data2');
  writeFileSync(data2, randomBytes(64 * 4096));
  const salt = randomBytes(32);
  const root = veritysetupFormat(data2, join(dir, 'hash2'), salt, uuidV4(randomBytes(16)));
  writeFileSync(data2, readFileSync(join(dir, 'hash2')), { flag: 'a' });
  await verifyVerity(data2, { dataSize: 64 * 4096, rootHash: Buffer.from(root, 'hex') });

  // Flip one byte in data block 517.
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.from([0x5a ^ readFileSync(img)[517 * 4096 + 7]!]), 0, 1, 517 * 4096 + 7);
  closeSync(fd);
  await assert.rejects(verifyVerity(img, { dataSize: size, rootHash: v.rootHash }), /data block 517 /);
  assert.throws(() =>
    execFileSync('veritysetup', ['verify', img, img, v.rootHash.toString('hex'), `--hash-offset=${size}`], { stdio: 'pipe' }),
  );
});

test('a wrong root hash or a tampered hash block is refused', async (t) => {
  const dir = tempDir(t);
  const img = join(dir, 'img');
  const size = 200 * 4096;
  writeFileSync(img, randomBytes(size));
  const v = await appendVerity(img);
  await assert.rejects(verifyVerity(img, { dataSize: size, rootHash: randomBytes(32) }), /root hash .* does not match/);
  // Corrupt the top hash level (first block after the superblock).
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, size + 4096 + 10);
  closeSync(fd);
  await assert.rejects(verifyVerity(img, { dataSize: size, rootHash: v.rootHash }), /hash tree's top block does not match the signed/);
});

test('images that are not a multiple of 4096 are refused', async (t) => {
  const dir = tempDir(t);
  const img = join(dir, 'img');
  writeFileSync(img, randomBytes(5000));
  await assert.rejects(appendVerity(img), /not a positive multiple of 4096/);
});
