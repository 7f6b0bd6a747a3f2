/**
 * The NPK zip writer. Written by hand because the layout must be byte-exact with
 * upstream (zip 2.2.0 without its `time` feature): stored entries only, a 0xA11E
 * alignment extra field that puts the fs.img data at a 4096 boundary (so it can be
 * loop-mounted in place), fixed header values and the meta document as zip comment.
 * No general-purpose zip library writes a custom alignment field. Reading goes
 * through yauzl (see reader.ts).
 */
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as zlib from 'node:zlib';

export const NPK_ALIGNMENT = 4096;
export const ALIGN_EXTRA_ID = 0xa11e;
const LOCAL_SIG = 0x04034b50;
const CENTRAL_SIG = 0x02014b50;
const EOCD_SIG = 0x06054b50;
const VERSION_NEEDED = 10;
const VERSION_MADE_BY = 0x030a; // Unix, 1.0
const DOS_TIME = 0;
const DOS_DATE = 0x0021; // 1980-01-01
const EXTERNAL_ATTRS = (0o100644 << 16) >>> 0;
export const MAX_ENTRY_SIZE = 0xffffffff;

type Crc = (data: Buffer, value?: number) => number;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** zlib.crc32 exists from Node 20.15; older 20.x gets the table version. */
export const crc32: Crc =
  typeof (zlib as { crc32?: Crc }).crc32 === 'function'
    ? (zlib as unknown as { crc32: Crc }).crc32
    : (data, value = 0) => {
        let c = (value ^ 0xffffffff) >>> 0;
        for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
        return (c ^ 0xffffffff) >>> 0;
      };

/** The alignment extra field for a local header at `offset` with a name of `nameLength` bytes. */
export function alignmentExtra(offset: number, nameLength: number, alignment = NPK_ALIGNMENT): Buffer {
  const rem = (offset + 30 + nameLength) % alignment;
  if (rem === 0) return Buffer.alloc(0);
  let pad = alignment - rem;
  if (pad < 6) pad += alignment;
  const extra = Buffer.alloc(pad);
  extra.writeUInt16LE(ALIGN_EXTRA_ID, 0);
  extra.writeUInt16LE(pad - 4, 2);
  extra.writeUInt16LE(alignment, 4);
  return extra;
}

interface Written {
  name: Buffer;
  extra: Buffer;
  crc: number;
  size: number;
  offset: number;
}

function localHeader(e: Written): Buffer {
  const h = Buffer.alloc(30);
  h.writeUInt32LE(LOCAL_SIG, 0);
  h.writeUInt16LE(VERSION_NEEDED, 4);
  h.writeUInt16LE(0, 6); // flags
  h.writeUInt16LE(0, 8); // stored
  h.writeUInt16LE(DOS_TIME, 10);
  h.writeUInt16LE(DOS_DATE, 12);
  h.writeUInt32LE(e.crc, 14);
  h.writeUInt32LE(e.size, 18);
  h.writeUInt32LE(e.size, 22);
  h.writeUInt16LE(e.name.length, 26);
  h.writeUInt16LE(e.extra.length, 28);
  return Buffer.concat([h, e.name, e.extra]);
}

function centralHeader(e: Written): Buffer {
  const h = Buffer.alloc(46);
  h.writeUInt32LE(CENTRAL_SIG, 0);
  h.writeUInt16LE(VERSION_MADE_BY, 4);
  h.writeUInt16LE(VERSION_NEEDED, 6);
  h.writeUInt16LE(0, 8);
  h.writeUInt16LE(0, 10);
  h.writeUInt16LE(DOS_TIME, 12);
  h.writeUInt16LE(DOS_DATE, 14);
  h.writeUInt32LE(e.crc, 16);
  h.writeUInt32LE(e.size, 20);
  h.writeUInt32LE(e.size, 24);
  h.writeUInt16LE(e.name.length, 28);
  h.writeUInt16LE(e.extra.length, 30);
  h.writeUInt16LE(0, 32); // comment length
  h.writeUInt16LE(0, 34); // disk
  h.writeUInt16LE(0, 36); // internal attributes
  h.writeUInt32LE(EXTERNAL_ATTRS, 38);
  h.writeUInt32LE(e.offset, 42);
  return Buffer.concat([h, e.name, e.extra]);
}

/** Sequential writer of an NPK-shaped zip into an open file handle. */
export class NpkZipWriter {
  private pos = 0;
  private readonly entries: Written[] = [];
  constructor(private readonly fh: FileHandle) {}

  private async put(buf: Buffer, at = this.pos): Promise<void> {
    let done = 0;
    while (done < buf.length) {
      const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, at + done);
      done += bytesWritten;
    }
    if (at === this.pos) this.pos += buf.length;
  }

  async addBuffer(name: string, data: Buffer): Promise<void> {
    const e: Written = { name: Buffer.from(name), extra: Buffer.alloc(0), crc: crc32(data), size: data.length, offset: this.pos };
    await this.put(localHeader(e));
    await this.put(data);
    this.entries.push(e);
  }

  /** Add `size` bytes of `file` from its start, with the data aligned to 4096. Returns the data offset. */
  async addFileAligned(name: string, file: string, size: number): Promise<number> {
    if (size > MAX_ENTRY_SIZE) throw new Error(`${name}: ${size} bytes exceeds the 4 GiB zip entry limit`);
    const nameBuf = Buffer.from(name);
    const e: Written = { name: nameBuf, extra: alignmentExtra(this.pos, nameBuf.length), crc: 0, size, offset: this.pos };
    const header = localHeader(e);
    await this.put(header);
    const dataStart = this.pos;
    let crc = 0;
    let copied = 0;
    if (size > 0) {
      for await (const chunk of createReadStream(file, { start: 0, end: size - 1, highWaterMark: 1 << 20 })) {
        const b = chunk as Buffer;
        crc = crc32(b, crc);
        await this.put(b);
        copied += b.length;
      }
    }
    if (copied !== size) throw new Error(`${file}: read ${copied} bytes, expected ${size}`);
    e.crc = crc;
    await this.put(localHeader(e).subarray(0, 30), e.offset); // patch CRC into the local header
    this.entries.push(e);
    return dataStart;
  }

  async finish(comment: Buffer): Promise<number> {
    if (comment.length > 0xffff) throw new Error('zip comment longer than 65535 bytes');
    const cdStart = this.pos;
    for (const e of this.entries) await this.put(centralHeader(e));
    const cdSize = this.pos - cdStart;
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(EOCD_SIG, 0);
    eocd.writeUInt16LE(0, 4);
    eocd.writeUInt16LE(0, 6);
    eocd.writeUInt16LE(this.entries.length, 8);
    eocd.writeUInt16LE(this.entries.length, 10);
    eocd.writeUInt32LE(cdSize, 12);
    eocd.writeUInt32LE(cdStart, 16);
    eocd.writeUInt16LE(comment.length, 20);
    await this.put(eocd);
    await this.put(comment);
    await this.fh.truncate(this.pos);
    return this.pos;
  }
}
