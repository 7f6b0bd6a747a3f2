/**
 * Rewrite an NPK so that its fs.img data starts at an odd byte offset, as zip writers
 * other than ours (upstream's `zip` crate without the alignment field) produce: the same
 * entries (manifest.yaml, signature.yaml, fs.img, all stored) and the same meta comment,
 * so the signature still verifies, but fs.img's local header carries an extra field whose
 * length puts the data at `offset % 4096 === target` (default 291, an odd byte).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { Npk } from '../../src/npk/reader.js';
import { crc32 } from '../../src/npk/zip.js';

interface Entry {
  name: Buffer;
  data: Buffer;
  crc: number;
  offset: number;
}

function local(e: Entry, extra: Buffer): Buffer {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(0x04034b50, 0);
  h.writeUInt16LE(10, 4);
  h.writeUInt16LE(0x0021, 12);
  h.writeUInt32LE(e.crc, 14);
  h.writeUInt32LE(e.data.length, 18);
  h.writeUInt32LE(e.data.length, 22);
  h.writeUInt16LE(e.name.length, 26);
  h.writeUInt16LE(extra.length, 28);
  return Buffer.concat([h, e.name, extra]);
}

function central(e: Entry): Buffer {
  const h = Buffer.alloc(46);
  h.writeUInt32LE(0x02014b50, 0);
  h.writeUInt16LE(0x030a, 4);
  h.writeUInt16LE(10, 6);
  h.writeUInt16LE(0x0021, 14);
  h.writeUInt32LE(e.crc, 16);
  h.writeUInt32LE(e.data.length, 20);
  h.writeUInt32LE(e.data.length, 24);
  h.writeUInt16LE(e.name.length, 28);
  h.writeUInt32LE((0o100644 << 16) >>> 0, 38);
  h.writeUInt32LE(e.offset, 42);
  return Buffer.concat([h, e.name]);
}

/** Write `out` from `src` with fs.img data at an unaligned offset; returns that offset. */
export async function unalignNpk(src: string, out: string, target = 291): Promise<number> {
  const npk = await Npk.open(src);
  const file = readFileSync(src);
  const parts: { name: string; data: Buffer }[] = [{ name: 'manifest.yaml', data: npk.manifestBytes }];
  if (npk.signatureBytes) parts.push({ name: 'signature.yaml', data: npk.signatureBytes });
  parts.push({ name: 'fs.img', data: file.subarray(npk.fsImg.offset, npk.fsImg.offset + npk.fsImg.size) });
  const chunks: Buffer[] = [];
  const entries: Entry[] = [];
  let pos = 0;
  let fsOffset = -1;
  for (const p of parts) {
    const e: Entry = { name: Buffer.from(p.name), data: p.data, crc: crc32(p.data), offset: pos };
    let extra = Buffer.alloc(0);
    if (p.name === 'fs.img') {
      // An unknown extra field (id 0xcafe) of the length that lands the data on `target`.
      const bare = pos + 30 + e.name.length + 4;
      const pad = (((target - bare) % 4096) + 4096) % 4096;
      extra = Buffer.alloc(4 + pad);
      extra.writeUInt16LE(0xcafe, 0);
      extra.writeUInt16LE(pad, 2);
    }
    const header = local(e, extra);
    chunks.push(header, p.data);
    if (p.name === 'fs.img') fsOffset = pos + header.length;
    pos += header.length + p.data.length;
    entries.push(e);
  }
  const cdStart = pos;
  for (const e of entries) {
    const c = central(e);
    chunks.push(c);
    pos += c.length;
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(pos - cdStart, 12);
  eocd.writeUInt32LE(cdStart, 16);
  eocd.writeUInt16LE(npk.metaBytes.length, 20);
  chunks.push(eocd, npk.metaBytes);
  writeFileSync(out, Buffer.concat(chunks));
  return fsOffset;
}
