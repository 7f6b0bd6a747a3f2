/**
 * The writer's data area (§5, §8): every regular file's blocks in traversal order, tails of
 * small files packed into fragment blocks, all-zero blocks left as holes, and duplicate files
 * stored once. Blocks are compressed concurrently and written in submission order (sink.ts),
 * so the output is deterministic.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { NorthstarError } from '../../common/errors.js';
import { DeflatePool, type Codec } from './codec.js';
import { DATA_RAW, NO_FRAGMENT } from './format.js';
import { OrderedPipeline, type FileSink, type Stored } from './sink.js';
import type { FileData, Node } from './tree.js';

/** Files up to this size are read whole (and hashed for duplicate detection before compressing). */
const WHOLE_FILE_LIMIT = 32 << 20;

export interface DataOptions {
  codec: Codec;
  level: number;
  raw: boolean;
  blockSize: number;
  fragmentsOn: boolean;
  onProgress: ((done: number, total: number) => void) | undefined;
}

/** Compression jobs in flight: libuv's thread pool size (UV_THREADPOOL_SIZE, default 4). */
function threadPoolSize(): number {
  const n = Number(process.env['UV_THREADPOOL_SIZE']);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 64) : 4;
}

/** Read a whole regular file of known size. */
function readWhole(path: Buffer, size: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, buf, got, size - got, got);
      if (n === 0) throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${path.toString()} shrank while it was packed`);
      got += n;
    }
    return buf;
  } finally {
    closeSync(fd);
  }
}

function entryOf(s: Stored): number {
  return s.data.length | (s.raw ? DATA_RAW : 0);
}

/** Write every regular file's data; returns the fragment table entries. */
export async function writeData(files: Node[], sink: FileSink, o: DataOptions): Promise<Buffer[]> {
  const w = new DataWriter(files, sink, o);
  try {
    for (const f of files) await w.pack(f);
    await w.finish();
  } finally {
    w.close();
  }
  return w.fragTable;
}

class DataWriter {
  readonly fragTable: Buffer[] = [];
  private readonly bs: number;
  private readonly pipeline: OrderedPipeline;
  private readonly zero: Buffer;
  private fragBuf: Buffer;
  private fragFill = 0;
  /** Files per size: only a file whose size repeats can be a duplicate, so only those are hashed. */
  private readonly sizeCount = new Map<number, number>();
  private readonly total: number;
  private readonly dups = new Map<string, FileData>();
  private done = 0;
  private readonly pool: DeflatePool | undefined;
  private readonly compress: (b: Buffer) => Promise<Buffer>;

  constructor(
    files: Node[],
    private readonly sink: FileSink,
    private readonly o: DataOptions,
  ) {
    const bs = (this.bs = o.blockSize);
    this.pipeline = new OrderedPipeline(sink, 32, 64 << 20);
    this.zero = Buffer.alloc(bs);
    this.fragBuf = Buffer.allocUnsafe(bs);
    let total = 0;
    for (const f of files) {
      this.sizeCount.set(f.size, (this.sizeCount.get(f.size) ?? 0) + 1);
      total += f.size;
    }
    this.total = total;
    const pool = !o.raw && o.codec.id === 1 ? new DeflatePool(o.level, threadPoolSize()) : undefined;
    this.pool = pool;
    this.compress = pool ? (b: Buffer) => pool.compress(b) : (b: Buffer) => o.codec.compress(b);
  }

  close(): void {
    this.pool?.close();
  }

  /** Write the last fragment block and wait for every block to be written. */
  async finish(): Promise<void> {
    await this.flushFragment();
    await this.pipeline.drain();
  }

  /** Pack one regular file: whole (small, or pseudo content) or streamed (large). */
  async pack(f: Node): Promise<void> {
    const size = f.size;
    const useFrag = this.o.fragmentsOn && size < this.bs;
    const nBlocks = useFrag ? 0 : Math.ceil(size / this.bs);
    const d: FileData = { blocksStart: 0, sizes: new Array<number>(nBlocks).fill(0), fragIndex: NO_FRAGMENT, fragOffset: 0, sparse: 0 };
    f.data = d;
    if (size === 0) return;
    const collides = (this.sizeCount.get(size) ?? 0) > 1;
    if (f.content || size <= WHOLE_FILE_LIMIT) await this.packWhole(f, d, useFrag, nBlocks, collides);
    else await this.packStreamed(f, d, collides);
    this.done += size;
    this.o.onProgress?.(this.done, this.total);
  }

  private async packWhole(f: Node, d: FileData, useFrag: boolean, nBlocks: number, collides: boolean): Promise<void> {
    const size = f.size;
    const bs = this.bs;
    const buf = f.content ?? readWhole(f.sourcePath!, size);
    if (collides) {
      const key = `${size}:${createHash('sha256').update(buf).digest('hex')}`;
      const dup = this.dups.get(key);
      if (dup) {
        f.data = dup;
        return;
      }
      this.dups.set(key, d);
    }
    if (useFrag) {
      await this.addFragment(buf, d);
    } else {
      await this.startMarker(d);
      for (let i = 0; i < nBlocks; i++) await this.submitBlock(buf.subarray(i * bs, Math.min(size, (i + 1) * bs)), d, i);
    }
  }

  /** Large file: stream it; a duplicate is only known at the end, then its blocks are dropped. */
  private async packStreamed(f: Node, d: FileData, collides: boolean): Promise<void> {
    const size = f.size;
    const bs = this.bs;
    const hash = collides ? createHash('sha256') : undefined;
    await this.startMarker(d);
    const fd = openSync(f.sourcePath!, 'r');
    try {
      const chunk = Math.max(bs, Math.floor((8 << 20) / bs) * bs);
      // One scratch buffer per file: blocks going to the compressor are copied out, so
      // long runs of zeros (sparse sources) cost no fresh memory per chunk.
      const scratch = Buffer.allocUnsafe(Math.min(chunk, size));
      let pos = 0;
      let i = 0;
      while (pos < size) {
        const want = Math.min(chunk, size - pos);
        const buf = scratch.subarray(0, want);
        let got = 0;
        while (got < want) {
          const n = readSync(fd, buf, got, want - got, pos + got);
          if (n === 0) {
            throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${f.sourcePath!.toString()} shrank while it was packed`);
          }
          got += n;
        }
        hash?.update(buf);
        for (let off = 0; off < want; off += bs) await this.submitBlock(buf.subarray(off, Math.min(want, off + bs)), d, i++, true);
        pos += want;
        if (pos < size) this.o.onProgress?.(this.done + pos, this.total);
      }
    } finally {
      closeSync(fd);
    }
    if (hash) {
      const key = `${size}:${hash.digest('hex')}`;
      const dup = this.dups.get(key);
      if (dup) {
        await this.pipeline.drain();
        this.sink.seek(d.blocksStart);
        f.data = dup;
      } else this.dups.set(key, d);
    }
  }

  private store(block: Buffer): Promise<Stored> | Stored {
    if (this.o.raw) return { data: block, raw: true };
    return this.compress(block).then((c) => (c.length < block.length ? { data: c, raw: false } : { data: block, raw: true }));
  }

  private async submitBlock(block: Buffer, d: FileData, i: number, copy = false): Promise<void> {
    if (block.equals(block.length === this.bs ? this.zero : this.zero.subarray(0, block.length))) {
      d.sizes[i] = 0;
      d.sparse += block.length;
      return;
    }
    if (copy) block = Buffer.from(block);
    await this.pipeline.push(this.store(block), block.length, (_pos, s) => {
      d.sizes[i] = entryOf(s);
    });
  }

  private async flushFragment(): Promise<void> {
    if (this.fragFill === 0) return;
    const block = this.fragBuf.subarray(0, this.fragFill);
    const entry = Buffer.alloc(16);
    this.fragTable.push(entry);
    await this.pipeline.push(this.store(block), block.length, (pos, s) => {
      entry.writeBigUInt64LE(BigInt(pos), 0);
      entry.writeUInt32LE(entryOf(s), 8);
    });
    this.fragBuf = Buffer.allocUnsafe(this.bs);
    this.fragFill = 0;
  }

  private async addFragment(tail: Buffer, d: FileData): Promise<void> {
    if (this.fragFill + tail.length > this.bs) await this.flushFragment();
    d.fragIndex = this.fragTable.length;
    d.fragOffset = this.fragFill;
    tail.copy(this.fragBuf, this.fragFill);
    this.fragFill += tail.length;
  }

  /** A zero-length job whose written position is where the file's first block will land. */
  private startMarker(d: FileData): Promise<void> {
    return this.pipeline.push({ data: Buffer.alloc(0), raw: true }, 0, (pos) => {
      d.blocksStart = pos;
    });
  }
}
