import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignmentExtra, crc32 } from '../../src/npk/zip.js';

test('alignment extra field puts fs.img data on a 4096 boundary (upstream example)', () => {
  // A 300-byte manifest and a 400-byte signature put the fs.img header at 787.
  const extra = alignmentExtra(787, 'fs.img'.length);
  assert.equal(extra.length, 3273);
  assert.equal(787 + 30 + 6 + extra.length, 4096);
  assert.equal(extra.readUInt16LE(0), 0xa11e);
  assert.equal(extra.readUInt16LE(2), 3273 - 4);
  assert.equal(extra.readUInt16LE(4), 4096);
  assert.ok(extra.subarray(6).every((b) => b === 0));
});

test('no field when already aligned; a pad below 6 bytes grows by 4096', () => {
  assert.equal(alignmentExtra(4096 - 36, 6).length, 0);
  const e = alignmentExtra(4096 - 36 - 3, 6);
  assert.equal(e.length, 3 + 4096);
  assert.equal((4096 - 39 + 36 + e.length) % 4096, 0);
});

test('crc32 matches the reference value', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.from('6789'), crc32(Buffer.from('12345'))), 0xcbf43926);
});
