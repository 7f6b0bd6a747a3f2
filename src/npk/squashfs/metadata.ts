/**
 * Metadata streams (§4): a table is a byte stream cut into 8192-byte pieces, each stored as
 * `u16 header` + payload (compressed, or raw with bit 15). Blocks are emitted only when full,
 * so the ref of the next record is known in advance.
 */
import type { Codec } from './codec.js';
import { METADATA_RAW, METADATA_SIZE } from './format.js';

export class MetadataWriter {
  private readonly blocks: Buffer[] = [];
  private emitted = 0;
  private readonly pending = Buffer.alloc(METADATA_SIZE);
  private used = 0;

  constructor(private readonly codec: Codec | undefined) {}

  /** Position of the next byte: [relative block position, offset in the decompressed block]. */
  position(): { block: number; offset: number } {
    return { block: this.emitted, offset: this.used };
  }

  /** `(blockPos << 16) | offset` of the next byte, as a bigint. */
  ref(): bigint {
    return (BigInt(this.emitted) << 16n) | BigInt(this.used);
  }

  /** Number of decompressed bytes written so far. */
  get length(): number {
    return this.blocks.length * METADATA_SIZE + this.used;
  }

  write(data: Buffer): void {
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, METADATA_SIZE - this.used);
      data.copy(this.pending, this.used, off, off + n);
      this.used += n;
      off += n;
      if (this.used === METADATA_SIZE) this.flushBlock();
    }
  }

  private flushBlock(): void {
    const raw = this.pending.subarray(0, this.used);
    let block: Buffer;
    const packed = this.codec?.compressSync(raw);
    if (packed && packed.length < raw.length) {
      block = Buffer.allocUnsafe(2 + packed.length);
      block.writeUInt16LE(packed.length, 0);
      packed.copy(block, 2);
    } else {
      block = Buffer.allocUnsafe(2 + raw.length);
      block.writeUInt16LE(METADATA_RAW | raw.length, 0);
      raw.copy(block, 2);
    }
    this.blocks.push(block);
    this.emitted += block.length;
    this.used = 0;
  }

  /** Flush the last partial block and return the stored blocks. Never emits an empty block. */
  finish(): { blocks: Buffer[]; size: number; blockStarts: number[] } {
    if (this.used > 0) this.flushBlock();
    const blockStarts: number[] = [];
    let pos = 0;
    for (const b of this.blocks) {
      blockStarts.push(pos);
      pos += b.length;
    }
    return { blocks: this.blocks, size: this.emitted, blockStarts };
  }
}
