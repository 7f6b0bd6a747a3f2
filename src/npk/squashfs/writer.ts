/**
 * squashfs 4.0 writer (spec: shared/spec/squashfs.md §12).
 *
 * Layout: superblock, data area (file blocks and fragment blocks in traversal order), inode
 * table, directory table, fragment table, export table, id table, xattr tables, zero padding
 * to 4096. File data is read and compressed streaming: blocks are deflated concurrently on
 * libuv's thread pool and written in submission order, so the output is deterministic.
 */
import { closeSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { NorthstarError, ValidationError } from '../../common/errors.js';
import { DeflatePool, writerCodec, type Codec } from './codec.js';
import {
  DATA_RAW,
  DEFAULT_BLOCK_SIZE,
  Flag,
  InodeType,
  MAX_BLOCK_SIZE,
  MAX_DIR_RUN,
  METADATA_SIZE,
  MIN_BLOCK_SIZE,
  NO_FRAGMENT,
  NO_TABLE,
  NO_XATTR,
  PADDING,
  SQUASHFS_MAGIC,
  SUPERBLOCK_SIZE,
  splitXattrName,
  BASIC_TYPE,
} from './format.js';
import { MetadataWriter } from './metadata.js';
import { FileSink, OrderedPipeline, type Stored } from './sink.js';
import { buildTree, sourceError, type FileData, type Node, type PseudoEntry } from './tree.js';

export type { PseudoEntry } from './tree.js';

export interface SquashfsWriteOptions {
  /** Source directory (optional: an image of only pseudo entries is valid). */
  root?: string;
  /** Added or overriding entries; missing parent directories are created 0755. */
  pseudo?: PseudoEntry[];
  /** Every inode gets these ids (modes kept); pseudo entries may name their own. */
  forceUid?: number;
  forceGid?: number;
  /**
   * gzip (zlib streams), zstd (if this Node has it) or none (all raw, superblock says gzip).
   * lzo and xz are sextant choices upstream; Node has no codec for them, so they fail with a clear error.
   */
  compression?: 'gzip' | 'zstd' | 'none' | 'lzo' | 'xz';
  /** Compressor level (gzip 1..9, default 9; zstd 1..22, default 15). */
  compressionLevel?: number;
  /** Power of two 4096..1048576, default 131072. */
  blockSize?: number;
  /** SOURCE_DATE_EPOCH: mkfs_time = mtime and every inode mtime is clamped to at most it. */
  mtime?: number;
  /** Pack tails of small files into fragment blocks (default true; false for 'none'). */
  fragments?: boolean;
  /** Write the NFS export table (default true, like mksquashfs). */
  exportTable?: boolean;
  /** Read xattrs of the source tree with getfattr (default true). */
  sourceXattrs?: boolean;
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface SquashfsWriteResult {
  /** File size including the 4096 padding. */
  size: number;
  bytesUsed: number;
  inodes: number;
  /** Things skipped on the way (unstorable source xattrs, missing getfattr). */
  warnings: string[];
}

/** Files up to this size are read whole (and hashed for duplicate detection before compressing). */
const WHOLE_FILE_LIMIT = 32 << 20;

function isU32(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

function checkOptions(opts: SquashfsWriteOptions): void {
  const issues: { path: string; rule: string }[] = [];
  const bs = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(bs) || bs < MIN_BLOCK_SIZE || bs > MAX_BLOCK_SIZE || (bs & (bs - 1)) !== 0) {
    issues.push({ path: 'blockSize', rule: `must be a power of two from 4096 to 1048576, got ${String(opts.blockSize)}` });
  }
  if (opts.forceUid !== undefined && !isU32(opts.forceUid)) issues.push({ path: 'forceUid', rule: 'must be an integer 0..4294967295' });
  if (opts.forceGid !== undefined && !isU32(opts.forceGid)) issues.push({ path: 'forceGid', rule: 'must be an integer 0..4294967295' });
  if (opts.mtime !== undefined && !isU32(opts.mtime)) issues.push({ path: 'mtime', rule: 'must be unix seconds 0..4294967295' });
  if (opts.pseudo !== undefined && !Array.isArray(opts.pseudo)) issues.push({ path: 'pseudo', rule: 'must be an array' });
  const lv = opts.compressionLevel;
  const maxLevel = opts.compression === 'zstd' ? 22 : 9;
  if (lv !== undefined && (!Number.isInteger(lv) || lv < 1 || lv > maxLevel)) {
    issues.push({ path: 'compressionLevel', rule: `must be an integer 1..${maxLevel} for ${opts.compression ?? 'gzip'}` });
  }
  if (issues.length) throw new ValidationError(issues, 'invalid squashfs options');
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

class Ids {
  readonly values: number[] = [];
  private readonly index = new Map<number, number>();
  get(v: number): number {
    let i = this.index.get(v);
    if (i === undefined) {
      i = this.values.length;
      if (i >= 0xffff) throw new NorthstarError('ESQUASHFS_LIMIT', 'squashfs image would need more than 65535 distinct uids/gids');
      this.values.push(v);
      this.index.set(v, i);
    }
    return i;
  }
}

class Xattrs {
  readonly kv: MetadataWriter;
  readonly ids: Buffer[] = [];
  private readonly byKey = new Map<string, number>();
  constructor(codec: Codec | undefined) {
    this.kv = new MetadataWriter(codec);
  }
  get(list: [string, Buffer][] | undefined): number {
    if (!list || list.length === 0) return NO_XATTR;
    const key = list.map(([n, v]) => `${n}\0${v.toString('hex')}`).join('\0');
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    const ref = this.kv.ref();
    let size = 0;
    for (const [name, value] of list) {
      const split = splitXattrName(name)!;
      const suffix = Buffer.from(split.suffix);
      const head = Buffer.alloc(4);
      head.writeUInt16LE(split.prefix, 0);
      head.writeUInt16LE(suffix.length, 2);
      const vlen = Buffer.alloc(4);
      vlen.writeUInt32LE(value.length, 0);
      this.kv.write(Buffer.concat([head, suffix, vlen, value]));
      size += Buffer.byteLength(name) + 1 + value.length;
    }
    const entry = Buffer.alloc(16);
    entry.writeBigUInt64LE(ref, 0);
    entry.writeUInt32LE(list.length, 8);
    entry.writeUInt32LE(size >>> 0, 12);
    const id = this.ids.length;
    this.ids.push(entry);
    this.byKey.set(key, id);
    return id;
  }
}

/** Write a squashfs image of `opts.root` plus `opts.pseudo` to `out`. */
export async function writeSquashfs(out: string, opts: SquashfsWriteOptions): Promise<SquashfsWriteResult> {
  checkOptions(opts);
  const compression = opts.compression ?? 'gzip';
  const codec = writerCodec(compression, opts.compressionLevel);
  const raw = compression === 'none';
  const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  const blockLog = Math.log2(blockSize);
  const fragmentsOn = opts.fragments ?? !raw;
  const exportOn = opts.exportTable ?? true;
  const mkfsTime = opts.mtime ?? Math.floor(Date.now() / 1000);

  const { root, warnings } = await buildTree({
    ...(opts.root !== undefined ? { root: opts.root } : {}),
    ...(opts.pseudo ? { pseudo: opts.pseudo } : {}),
    ...(opts.forceUid !== undefined ? { forceUid: opts.forceUid } : {}),
    ...(opts.forceGid !== undefined ? { forceGid: opts.forceGid } : {}),
    ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}),
    defaultTime: mkfsTime,
    exclude: [out],
    ...(opts.sourceXattrs !== undefined ? { sourceXattrs: opts.sourceXattrs } : {}),
  });

  // Number inodes: the children of a directory get consecutive numbers (compact directory
  // runs), then each subdirectory is numbered; the root is last.
  let next = 1;
  const files: Node[] = [];
  const numberDir = (d: Node): void => {
    for (const e of d.sorted!) {
      if (e.node.number === 0) {
        e.node.number = next++;
        if (e.node.type === 'file') files.push(e.node);
      }
    }
    for (const e of d.sorted!) if (e.node.type === 'dir') numberDir(e.node);
  };
  numberDir(root);
  root.number = next;
  const inodeCount = next;

  let fd: number;
  try {
    fd = openSync(out, 'w', 0o644);
  } catch (e) {
    throw new NorthstarError('ESQUASHFS_OUTPUT', `squashfs output ${out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
  try {
    const sink = new FileSink(fd, SUPERBLOCK_SIZE);
    const level = opts.compressionLevel ?? 9;
    const fragments = await writeData(files, sink, { codec, level, raw, blockSize, fragmentsOn, onProgress: opts.onProgress }).catch((e: unknown) => {
      throw sourceError(e);
    });
    const meta = raw ? undefined : codec;
    const ids = new Ids();
    const xattrs = new Xattrs(meta);
    const inodes = new MetadataWriter(meta);
    const dirs = new MetadataWriter(meta);
    writeInodes(root, inodeCount, { inodes, dirs, ids, xattrs, blockSize, fragmentsOn });

    const sb = Buffer.alloc(SUPERBLOCK_SIZE);
    const inodeTableStart = sink.pos;
    for (const b of inodes.finish().blocks) sink.write(b);
    const directoryTableStart = sink.pos;
    for (const b of dirs.finish().blocks) sink.write(b);

    const writeLookup = (entries: Buffer[]): number => {
      const w = new MetadataWriter(meta);
      for (const e of entries) w.write(e);
      const { blocks, blockStarts } = w.finish();
      const base = sink.pos;
      for (const b of blocks) sink.write(b);
      const index = Buffer.alloc(8 * blocks.length);
      blockStarts.forEach((s, i) => index.writeBigUInt64LE(BigInt(base + s), 8 * i));
      const at = sink.pos;
      sink.write(index);
      return at;
    };

    const fragmentTableStart = fragments.length ? writeLookup(fragments) : sink.pos;
    let lookupTableStart = NO_TABLE;
    if (exportOn) {
      const refs: Buffer[] = new Array<Buffer>(inodeCount);
      const visit = (d: Node): void => {
        for (const e of d.sorted!) {
          const n = e.node;
          if (!refs[n.number - 1]) {
            const b = Buffer.alloc(8);
            b.writeBigUInt64LE((BigInt(n.refBlock!) << 16n) | BigInt(n.refOffset!), 0);
            refs[n.number - 1] = b;
          }
          if (n.type === 'dir') visit(n);
        }
      };
      visit(root);
      const rb = Buffer.alloc(8);
      rb.writeBigUInt64LE((BigInt(root.refBlock!) << 16n) | BigInt(root.refOffset!), 0);
      refs[root.number - 1] = rb;
      lookupTableStart = BigInt(writeLookup(refs));
    }
    const idTableStart = writeLookup(
      ids.values.map((v) => {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v, 0);
        return b;
      }),
    );
    let xattrIdTableStart = NO_TABLE;
    if (xattrs.ids.length) {
      const kvStart = sink.pos;
      for (const b of xattrs.kv.finish().blocks) sink.write(b);
      const w = new MetadataWriter(meta);
      for (const e of xattrs.ids) w.write(e);
      const { blocks, blockStarts } = w.finish();
      const base = sink.pos;
      for (const b of blocks) sink.write(b);
      const header = Buffer.alloc(16 + 8 * blocks.length);
      header.writeBigUInt64LE(BigInt(kvStart), 0);
      header.writeUInt32LE(xattrs.ids.length, 8);
      blockStarts.forEach((s, i) => header.writeBigUInt64LE(BigInt(base + s), 16 + 8 * i));
      xattrIdTableStart = BigInt(sink.pos);
      sink.write(header);
    }
    const bytesUsed = sink.pos;
    sink.flush();

    let flags: number = Flag.DUPLICATES;
    if (raw) flags |= Flag.UNCOMPRESSED_INODES | Flag.UNCOMPRESSED_DATA | Flag.UNCOMPRESSED_FRAGMENTS | Flag.UNCOMPRESSED_XATTRS;
    if (!fragmentsOn) flags |= Flag.NO_FRAGMENTS;
    if (exportOn) flags |= Flag.EXPORTABLE;

    sb.writeUInt32LE(SQUASHFS_MAGIC, 0);
    sb.writeUInt32LE(inodeCount, 4);
    sb.writeUInt32LE(mkfsTime >>> 0, 8);
    sb.writeUInt32LE(blockSize, 12);
    sb.writeUInt32LE(fragments.length, 16);
    sb.writeUInt16LE(codec.id, 20);
    sb.writeUInt16LE(blockLog, 22);
    sb.writeUInt16LE(flags, 24);
    sb.writeUInt16LE(ids.values.length, 26);
    sb.writeUInt16LE(4, 28);
    sb.writeUInt16LE(0, 30);
    sb.writeBigUInt64LE((BigInt(root.refBlock!) << 16n) | BigInt(root.refOffset!), 32);
    sb.writeBigUInt64LE(BigInt(bytesUsed), 40);
    sb.writeBigUInt64LE(BigInt(idTableStart), 48);
    sb.writeBigUInt64LE(xattrIdTableStart, 56);
    sb.writeBigUInt64LE(BigInt(inodeTableStart), 64);
    sb.writeBigUInt64LE(BigInt(directoryTableStart), 72);
    sb.writeBigUInt64LE(BigInt(fragmentTableStart), 80);
    sb.writeBigUInt64LE(lookupTableStart, 88);
    writeSync(fd, sb, 0, SUPERBLOCK_SIZE, 0);

    const size = Math.ceil(bytesUsed / PADDING) * PADDING;
    // Cut anything a dropped duplicate left behind, then zero-pad.
    ftruncateSync(fd, bytesUsed);
    ftruncateSync(fd, size);
    closeSync(fd);
    return { size, bytesUsed, inodes: inodeCount, warnings };
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* already closed */
    }
    try {
      unlinkSync(out);
    } catch {
      /* nothing to remove */
    }
    throw e;
  }
}

interface DataOptions {
  codec: Codec;
  level: number;
  raw: boolean;
  blockSize: number;
  fragmentsOn: boolean;
  onProgress: ((done: number, total: number) => void) | undefined;
}

/** Write every regular file's data; returns the fragment table entries. */
async function writeData(files: Node[], sink: FileSink, o: DataOptions): Promise<Buffer[]> {
  const { codec, raw, blockSize: bs } = o;
  const pipeline = new OrderedPipeline(sink, 32, 64 << 20);
  const zero = Buffer.alloc(bs);
  const fragTable: Buffer[] = [];
  let fragBuf = Buffer.allocUnsafe(bs);
  let fragFill = 0;
  const sizeCount = new Map<number, number>();
  let total = 0;
  for (const f of files) {
    sizeCount.set(f.size, (sizeCount.get(f.size) ?? 0) + 1);
    total += f.size;
  }
  const dups = new Map<string, FileData>();
  let done = 0;

  const pool = !raw && codec.id === 1 ? new DeflatePool(o.level, threadPoolSize()) : undefined;
  const compress = pool ? (b: Buffer) => pool.compress(b) : (b: Buffer) => codec.compress(b);
  const store = (block: Buffer): Promise<Stored> | Stored => {
    if (raw) return { data: block, raw: true };
    return compress(block).then((c) => (c.length < block.length ? { data: c, raw: false } : { data: block, raw: true }));
  };
  const entryOf = (s: Stored): number => s.data.length | (s.raw ? DATA_RAW : 0);

  const submitBlock = async (block: Buffer, d: FileData, i: number, copy = false): Promise<void> => {
    if (block.equals(block.length === bs ? zero : zero.subarray(0, block.length))) {
      d.sizes[i] = 0;
      d.sparse += block.length;
      return;
    }
    if (copy) block = Buffer.from(block);
    await pipeline.push(store(block), block.length, (_pos, s) => {
      d.sizes[i] = entryOf(s);
    });
  };
  const flushFragment = async (): Promise<void> => {
    if (fragFill === 0) return;
    const block = fragBuf.subarray(0, fragFill);
    const entry = Buffer.alloc(16);
    fragTable.push(entry);
    await pipeline.push(store(block), block.length, (pos, s) => {
      entry.writeBigUInt64LE(BigInt(pos), 0);
      entry.writeUInt32LE(entryOf(s), 8);
    });
    fragBuf = Buffer.allocUnsafe(bs);
    fragFill = 0;
  };
  const addFragment = async (tail: Buffer, d: FileData): Promise<void> => {
    if (fragFill + tail.length > bs) await flushFragment();
    d.fragIndex = fragTable.length;
    d.fragOffset = fragFill;
    tail.copy(fragBuf, fragFill);
    fragFill += tail.length;
  };
  const startMarker = (d: FileData): Promise<void> =>
    pipeline.push({ data: Buffer.alloc(0), raw: true }, 0, (pos) => {
      d.blocksStart = pos;
    });

  try {
    for (const f of files) {
      const size = f.size;
      const useFrag = o.fragmentsOn && size < bs;
      const nBlocks = useFrag ? 0 : Math.ceil(size / bs);
      const d: FileData = { blocksStart: 0, sizes: new Array<number>(nBlocks).fill(0), fragIndex: NO_FRAGMENT, fragOffset: 0, sparse: 0 };
      f.data = d;
      if (size === 0) continue;
      const collides = (sizeCount.get(size) ?? 0) > 1;
      if (f.content || size <= WHOLE_FILE_LIMIT) {
        const buf = f.content ?? readWhole(f.sourcePath!, size);
        if (collides) {
          const key = `${size}:${createHash('sha256').update(buf).digest('hex')}`;
          const dup = dups.get(key);
          if (dup) {
            f.data = dup;
            done += size;
            o.onProgress?.(done, total);
            continue;
          }
          dups.set(key, d);
        }
        if (useFrag) {
          await addFragment(buf, d);
        } else {
          await startMarker(d);
          for (let i = 0; i < nBlocks; i++) await submitBlock(buf.subarray(i * bs, Math.min(size, (i + 1) * bs)), d, i);
        }
      } else {
        // Large file: stream it; a duplicate is only known at the end, then its blocks are dropped.
        const hash = collides ? createHash('sha256') : undefined;
        await startMarker(d);
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
            for (let off = 0; off < want; off += bs) await submitBlock(buf.subarray(off, Math.min(want, off + bs)), d, i++, true);
            pos += want;
            if (pos < size) o.onProgress?.(done + pos, total);
          }
        } finally {
          closeSync(fd);
        }
        if (hash) {
          const key = `${size}:${hash.digest('hex')}`;
          const dup = dups.get(key);
          if (dup) {
            await pipeline.drain();
            sink.seek(d.blocksStart);
            f.data = dup;
          } else dups.set(key, d);
        }
      }
      done += size;
      o.onProgress?.(done, total);
    }
    await flushFragment();
    await pipeline.drain();
  } finally {
    pool?.close();
  }
  return fragTable;
}

interface InodeContext {
  inodes: MetadataWriter;
  dirs: MetadataWriter;
  ids: Ids;
  xattrs: Xattrs;
  blockSize: number;
  fragmentsOn: boolean;
}

function header(type: number, n: Node, c: InodeContext, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt16LE(type, 0);
  b.writeUInt16LE(n.mode & 0o7777, 2);
  b.writeUInt16LE(c.ids.get(n.uid), 4);
  b.writeUInt16LE(c.ids.get(n.gid), 6);
  b.writeUInt32LE(n.mtime >>> 0, 8);
  b.writeUInt32LE(n.number, 12);
  return b;
}

function emit(n: Node, c: InodeContext, b: Buffer): void {
  const p = c.inodes.position();
  n.refBlock = p.block;
  n.refOffset = p.offset;
  c.inodes.write(b);
}

function writeLeaf(n: Node, c: InodeContext): void {
  const x = c.xattrs.get(n.xattrs);
  const hasX = x !== NO_XATTR;
  switch (n.type) {
    case 'file': {
      const d = n.data!;
      const count = d.sizes.length;
      const ext = n.nlink > 1 || hasX || n.size > 0xffffffff || d.blocksStart > 0xffffffff || d.sparse > 0;
      if (!ext) {
        const b = header(InodeType.FILE, n, c, 32 + 4 * count);
        b.writeUInt32LE(d.blocksStart, 16);
        b.writeUInt32LE(d.fragIndex, 20);
        b.writeUInt32LE(d.fragOffset, 24);
        b.writeUInt32LE(n.size, 28);
        d.sizes.forEach((s, i) => b.writeUInt32LE(s >>> 0, 32 + 4 * i));
        emit(n, c, b);
      } else {
        const b = header(InodeType.LFILE, n, c, 56 + 4 * count);
        b.writeBigUInt64LE(BigInt(d.blocksStart), 16);
        b.writeBigUInt64LE(BigInt(n.size), 24);
        b.writeBigUInt64LE(BigInt(Math.min(d.sparse, Math.max(0, n.size - 1))), 32);
        b.writeUInt32LE(n.nlink, 40);
        b.writeUInt32LE(d.fragIndex, 44);
        b.writeUInt32LE(d.fragOffset, 48);
        b.writeUInt32LE(x, 52);
        d.sizes.forEach((s, i) => b.writeUInt32LE(s >>> 0, 56 + 4 * i));
        emit(n, c, b);
      }
      return;
    }
    case 'symlink': {
      const t = n.target!;
      const b = header(hasX ? InodeType.LSYMLINK : InodeType.SYMLINK, n, c, 24 + t.length + (hasX ? 4 : 0));
      b.writeUInt32LE(n.nlink, 16);
      b.writeUInt32LE(t.length, 20);
      t.copy(b, 24);
      if (hasX) b.writeUInt32LE(x, 24 + t.length);
      emit(n, c, b);
      return;
    }
    case 'char':
    case 'block': {
      const basic = n.type === 'char' ? InodeType.CHAR : InodeType.BLOCK;
      const b = header(hasX ? basic + 7 : basic, n, c, hasX ? 28 : 24);
      b.writeUInt32LE(n.nlink, 16);
      b.writeUInt32LE(n.rdev >>> 0, 20);
      if (hasX) b.writeUInt32LE(x, 24);
      emit(n, c, b);
      return;
    }
    case 'fifo':
    case 'socket': {
      const basic = n.type === 'fifo' ? InodeType.FIFO : InodeType.SOCKET;
      const b = header(hasX ? basic + 7 : basic, n, c, hasX ? 24 : 20);
      b.writeUInt32LE(n.nlink, 16);
      if (hasX) b.writeUInt32LE(x, 20);
      emit(n, c, b);
      return;
    }
    case 'dir':
      throw new Error('writeLeaf called for a directory');
  }
}

/** Post-order: children's inodes, then the directory's listing and inode; root last. */
function writeInodes(root: Node, inodeCount: number, c: InodeContext): void {
  const writeDir = (d: Node, parentNumber: number): void => {
    for (const e of d.sorted!) {
      if (e.node.refBlock !== undefined) continue; // hard link already written
      if (e.node.type === 'dir') writeDir(e.node, d.number);
      else writeLeaf(e.node, c);
    }
    // Listing: runs of <= 256 entries sharing one inode block and numbers within s16 of the base.
    // Like mksquashfs, a run also ends before the listing would pass 8 KiB since the last index
    // point; big directories get an index (one entry per run after the first) so the kernel's
    // lookups and readdir seeks jump close to the name instead of scanning the whole listing.
    const pos = c.dirs.position();
    let listing = 0;
    let indexPoint = 0;
    const index: Buffer[] = [];
    const entries = d.sorted!;
    let i = 0;
    while (i < entries.length) {
      const first = entries[i]!.node;
      const block = first.refBlock!;
      const base = first.number;
      if (i > 0) {
        const at = c.dirs.position();
        const name = entries[i]!.name;
        const ie = Buffer.alloc(12 + name.length);
        ie.writeUInt32LE(listing, 0);
        ie.writeUInt32LE(at.block, 4);
        ie.writeUInt32LE(name.length - 1, 8);
        name.copy(ie, 12);
        index.push(ie);
        indexPoint = listing;
      }
      let j = i;
      let runBytes = 12;
      while (j < entries.length) {
        const n = entries[j]!.node;
        const size = 8 + entries[j]!.name.length;
        if (j - i >= MAX_DIR_RUN || n.refBlock !== block || n.number - base < -32768 || n.number - base > 32767) break;
        if (j > i && listing + runBytes + size - indexPoint > METADATA_SIZE) break;
        runBytes += size;
        j++;
      }
      const h = Buffer.alloc(12);
      h.writeUInt32LE(j - i - 1, 0);
      h.writeUInt32LE(block, 4);
      h.writeUInt32LE(base, 8);
      c.dirs.write(h);
      listing += 12;
      for (let k = i; k < j; k++) {
        const e = entries[k]!;
        const b = Buffer.alloc(8 + e.name.length);
        b.writeUInt16LE(e.node.refOffset!, 0);
        b.writeInt16LE(e.node.number - base, 2);
        b.writeUInt16LE(BASIC_TYPE[e.node.type], 4);
        b.writeUInt16LE(e.name.length - 1, 6);
        e.name.copy(b, 8);
        c.dirs.write(b);
        listing += b.length;
      }
      i = j;
    }
    const fileSize = listing + 3;
    const big = entries.length > MAX_DIR_RUN || listing > METADATA_SIZE;
    const x = c.xattrs.get(d.xattrs);
    if (x === NO_XATTR && fileSize <= 0xffff && !big) {
      const b = header(InodeType.DIR, d, c, 32);
      b.writeUInt32LE(pos.block, 16);
      b.writeUInt32LE(d.nlink, 20);
      b.writeUInt16LE(fileSize, 24);
      b.writeUInt16LE(pos.offset, 26);
      b.writeUInt32LE(parentNumber, 28);
      emit(d, c, b);
    } else {
      const idx = big ? index : [];
      if (idx.length > 0xffff) throw new NorthstarError('ESQUASHFS_LIMIT', 'squashfs directory would need more than 65535 index entries');
      const b = header(InodeType.LDIR, d, c, 40);
      b.writeUInt32LE(d.nlink, 16);
      b.writeUInt32LE(fileSize, 20);
      b.writeUInt32LE(pos.block, 24);
      b.writeUInt32LE(parentNumber, 28);
      b.writeUInt16LE(idx.length, 32);
      b.writeUInt16LE(pos.offset, 34);
      b.writeUInt32LE(x, 36);
      emit(d, c, Buffer.concat([b, ...idx]));
    }
  };
  writeDir(root, inodeCount + 1);
}
