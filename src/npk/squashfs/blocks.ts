/**
 * File contents of the reader (§5, §8): a file's data blocks in order, then its tail from a
 * fragment block. Each stored size and position is checked against the data area before it is
 * read; the last fragment block read is kept, since files sharing one come one after another.
 */
import { DATA_RAW, DATA_SIZE_MASK, NO_FRAGMENT, SUPERBLOCK_SIZE } from './format.js';
import type { Inode } from './inode.js';
import { fail } from './source.js';
import type { Image } from './tables.js';

/** One block of a file; sparse (all-zero, not stored) blocks come without data. */
export interface FileBlock {
  data?: Buffer;
  length: number;
}

export class BlockReader {
  private fragCache: { index: number; data: Buffer } | undefined;

  constructor(private readonly img: Image) {}

  /** The blocks of a file inode; sparse (all-zero, not stored) blocks come without data. */
  async *fileBlocks(ino: Inode): AsyncGenerator<FileBlock> {
    const { sb, src } = this.img;
    const bs = sb.blockSize;
    const dataEnd = sb.inodeTableStart;
    let pos = ino.blocksStart;
    let remaining = ino.size;
    for (const [i, entry] of ino.blockSizes.entries()) {
      const want = Math.min(bs, remaining);
      if (entry & 0xfe000000) fail(`inode ${ino.number} block ${i} has invalid size entry 0x${(entry >>> 0).toString(16)}`);
      const len = entry & DATA_SIZE_MASK;
      if (len === 0) {
        yield { length: want };
      } else {
        if (len > bs) fail(`inode ${ino.number} block ${i} is larger than the block size`);
        if (pos < SUPERBLOCK_SIZE || pos + len > dataEnd) fail(`inode ${ino.number} block ${i} at ${pos} lies outside the data area`);
        const stored = src.readAt(pos, len);
        const data = entry & DATA_RAW ? stored : src.inflate(stored, bs, `inode ${ino.number} block ${i}`);
        if (data.length !== want) fail(`inode ${ino.number} block ${i} holds ${data.length} bytes, expected ${want}`);
        yield { data, length: want };
        pos += len;
      }
      remaining -= want;
    }
    if (ino.fragIndex !== NO_FRAGMENT) {
      if (remaining <= 0 || remaining >= bs) fail(`inode ${ino.number} has a fragment but a tail of ${remaining} bytes`);
      const frag = await this.fragment(ino.fragIndex);
      if (ino.fragOffset + remaining > frag.length) fail(`inode ${ino.number} fragment range passes its fragment block`);
      yield { data: frag.subarray(ino.fragOffset, ino.fragOffset + remaining), length: remaining };
    } else if (remaining !== 0) fail(`inode ${ino.number}: block list covers ${ino.size - remaining} of ${ino.size} bytes`);
  }

  private async fragment(index: number): Promise<Buffer> {
    if (this.fragCache?.index === index) return this.fragCache.data;
    const { sb, src, tables } = this.img;
    const f = tables.fragments[index];
    if (!f) fail(`fragment index ${index} is outside the fragment table (${tables.fragments.length})`);
    if (f.size & 0xfe000000) fail(`fragment ${index} has invalid size entry`);
    const len = f.size & DATA_SIZE_MASK;
    if (len === 0 || len > sb.blockSize) fail(`fragment ${index} has invalid size ${len}`);
    if (f.start < SUPERBLOCK_SIZE || f.start + len > sb.inodeTableStart) fail(`fragment ${index} lies outside the data area`);
    const stored = src.readAt(f.start, len);
    const data = f.size & DATA_RAW ? stored : src.inflate(stored, sb.blockSize, `fragment ${index}`);
    this.fragCache = { index, data };
    return data;
  }
}
