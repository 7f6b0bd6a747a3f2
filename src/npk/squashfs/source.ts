/**
 * The byte layer of the squashfs reader: positioned reads inside the image region, metadata
 * blocks (§4) with a small cache, metadata streams that cross block boundaries, and the
 * two-level lookup tables (id, fragment, xattr id). Every position and length is checked
 * against the image or the table it must lie in.
 */
import { read as fsRead, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { NpkError } from '../../common/errors.js';
import type { Codec } from './codec.js';
import { METADATA_RAW, METADATA_SIZE, SUPERBLOCK_SIZE } from './format.js';

const readP = promisify(fsRead);

/** A metadata table: its name for messages and its byte range in the image. */
export interface Table {
  name: string;
  start: number;
  end: number;
}

export function fail(message: string): never {
  throw new NpkError('ESQUASHFS_CORRUPT', `squashfs image: ${message}`);
}

/** Upper bound of a metadata table's decompressed size: every block is >= 3 bytes stored, <= 8192 decompressed. */
export function maxDecompressed(t: Table): number {
  return (Math.floor((t.end - t.start) / 3) + 1) * METADATA_SIZE;
}

export function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} is too large`);
  return Number(v);
}

function readFullSync(fd: number, b: Buffer, pos: number): void {
  let got = 0;
  while (got < b.length) {
    const n = readSync(fd, b, got, b.length - got, pos + got);
    if (n === 0) fail(`unexpected end of file at ${pos + got}`);
    got += n;
  }
}

export async function readFull(fd: number, b: Buffer, pos: number): Promise<void> {
  let got = 0;
  while (got < b.length) {
    const { bytesRead } = await readP(fd, b, got, b.length - got, pos + got);
    if (bytesRead === 0) fail(`unexpected end of file at ${pos + got}`);
    got += bytesRead;
  }
}

/** Reads of one image: `offset` is where it starts in the file, `bytesUsed` where it ends. */
export class ImageSource {
  private readonly cache = new Map<number, { data: Buffer; next: number }>();

  constructor(
    private readonly fd: number,
    private readonly offset: number,
    private readonly bytesUsed: number,
    private readonly codec: Codec,
  ) {}

  clearCache(): void {
    this.cache.clear();
  }

  /** Synchronous positioned read: one syscall, no thread-pool round trip per metadata or data block. */
  readAt(pos: number, len: number): Buffer {
    if (pos < 0 || len < 0 || pos + len > this.bytesUsed) fail(`read of ${len} bytes at ${pos} passes bytes_used`);
    const b = Buffer.allocUnsafe(len);
    readFullSync(this.fd, b, this.offset + pos);
    return b;
  }

  inflate(data: Buffer, max: number, what: string): Buffer {
    try {
      return this.codec.decompressSync(data, max);
    } catch (e) {
      fail(`${what} does not decompress (${(e as Error).message})`);
    }
  }

  /** One metadata block at absolute `pos`, which must lie in `table`. */
  async metaBlock(table: Table, pos: number): Promise<{ data: Buffer; next: number }> {
    const hit = this.cache.get(pos);
    if (hit) return hit;
    if (pos < table.start || pos + 2 > table.end) fail(`${table.name} block at ${pos} is outside the table`);
    const h = (this.readAt(pos, 2)).readUInt16LE(0);
    const len = h & 0x7fff;
    if (len === 0) fail(`${table.name} block at ${pos} is empty`);
    if (pos + 2 + len > table.end) fail(`${table.name} block at ${pos} (${len} bytes) passes the table end`);
    const stored = this.readAt(pos + 2, len);
    let data: Buffer;
    if (h & METADATA_RAW) data = stored;
    else data = this.inflate(stored, METADATA_SIZE, `${table.name} block at ${pos}`);
    if (data.length > METADATA_SIZE) fail(`${table.name} block at ${pos} holds more than 8192 bytes`);
    const r = { data, next: pos + 2 + len };
    if (this.cache.size > 8192) this.cache.clear();
    this.cache.set(pos, r);
    return r;
  }

  /** Read `len` bytes of a metadata stream starting at (block, offset); returns the bytes and the position after. */
  async readMeta(table: Table, block: number, offset: number, len: number): Promise<{ data: Buffer; block: number; offset: number }> {
    if (offset >= METADATA_SIZE) fail(`${table.name} ref offset ${offset} is beyond 8192`);
    if (len > maxDecompressed(table)) fail(`${table.name} record of ${len} bytes is larger than the table`);
    const out = Buffer.allocUnsafe(len);
    let got = 0;
    let pos = table.start + block;
    let off = offset;
    while (true) {
      const b = await this.metaBlock(table, pos);
      if (off > b.data.length) fail(`${table.name} ref offset ${off} passes its block (${b.data.length} bytes)`);
      const n = Math.min(len - got, b.data.length - off);
      b.data.copy(out, got, off, off + n);
      got += n;
      off += n;
      if (got === len) {
        // A record ending exactly at a block's end continues at the next block's start.
        if (off === b.data.length && b.next < table.end) return { data: out, block: b.next - table.start, offset: 0 };
        return { data: out, block: pos - table.start, offset: off };
      }
      pos = b.next;
      off = 0;
    }
  }

  /** Entries of a two-level lookup table (id, fragment, xattr id). */
  async readLookup(name: string, indexStart: number, count: number, entrySize: number, limit: number): Promise<Buffer> {
    const total = count * entrySize;
    const nBlocks = Math.ceil(total / METADATA_SIZE);
    if (indexStart + 8 * nBlocks > limit) fail(`${name} index (${nBlocks} entries at ${indexStart}) passes ${limit}`);
    const index = this.readAt(indexStart, 8 * nBlocks);
    const out = Buffer.allocUnsafe(total);
    let got = 0;
    for (let i = 0; i < nBlocks; i++) {
      const pos = Number(index.readBigUInt64LE(8 * i));
      const b = await this.metaBlock({ name, start: SUPERBLOCK_SIZE, end: indexStart }, pos);
      const want = Math.min(METADATA_SIZE, total - got);
      if (b.data.length !== want) fail(`${name} block ${i} holds ${b.data.length} bytes, expected ${want}`);
      b.data.copy(out, got);
      got += want;
    }
    return out;
  }
}
