/**
 * squashfs 4.0 writer (spec: shared/spec/squashfs.md §12).
 *
 * Layout: superblock, data area (file blocks and fragment blocks in traversal order), inode
 * table, directory table, fragment table, export table, id table, xattr tables, zero padding
 * to 4096. File data is read and compressed streaming: blocks are deflated concurrently on
 * libuv's thread pool and written in submission order, so the output is deterministic.
 */
import { closeSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { NorthstarError, ValidationError } from '../../common/errors.js';
import { writerCodec, type Codec } from './codec.js';
import { writeData } from './data.js';
import {
  DEFAULT_BLOCK_SIZE,
  Flag,
  MAX_BLOCK_SIZE,
  MIN_BLOCK_SIZE,
  NO_TABLE,
  PADDING,
  SQUASHFS_MAGIC,
  SUPERBLOCK_SIZE,
} from './format.js';
import { Ids, Xattrs, writeInodes } from './inodes.js';
import { MetadataWriter } from './metadata.js';
import { FileSink } from './sink.js';
import { buildTree, sourceError, type Node, type PseudoEntry } from './tree.js';

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

/** The image-wide choices that follow from the options. */
interface Layout {
  codec: Codec;
  level: number;
  raw: boolean;
  blockSize: number;
  fragmentsOn: boolean;
  exportOn: boolean;
  mkfsTime: number;
}

function layoutOf(opts: SquashfsWriteOptions): Layout {
  const compression = opts.compression ?? 'gzip';
  const codec = writerCodec(compression, opts.compressionLevel);
  const raw = compression === 'none';
  return {
    codec,
    level: opts.compressionLevel ?? 9,
    raw,
    blockSize: opts.blockSize ?? DEFAULT_BLOCK_SIZE,
    fragmentsOn: opts.fragments ?? !raw,
    exportOn: opts.exportTable ?? true,
    mkfsTime: opts.mtime ?? Math.floor(Date.now() / 1000),
  };
}

/**
 * Write a squashfs image of `opts.root` plus `opts.pseudo` to `out`, in layout order:
 * the tree, inode numbers, the data area, the inode and directory tables, the lookup and
 * xattr tables, then the superblock at offset 0 and the padding.
 */
export async function writeSquashfs(out: string, opts: SquashfsWriteOptions): Promise<SquashfsWriteResult> {
  checkOptions(opts);
  const layout = layoutOf(opts);
  const { root, warnings } = await buildTree({
    ...(opts.root !== undefined ? { root: opts.root } : {}),
    ...(opts.pseudo ? { pseudo: opts.pseudo } : {}),
    ...(opts.forceUid !== undefined ? { forceUid: opts.forceUid } : {}),
    ...(opts.forceGid !== undefined ? { forceGid: opts.forceGid } : {}),
    ...(opts.mtime !== undefined ? { mtime: opts.mtime } : {}),
    defaultTime: layout.mkfsTime,
    exclude: [out],
    ...(opts.sourceXattrs !== undefined ? { sourceXattrs: opts.sourceXattrs } : {}),
  });
  const { files, inodeCount } = numberInodes(root);
  const fd = openOutput(out);
  try {
    const sink = new FileSink(fd, SUPERBLOCK_SIZE);
    const { codec, raw, blockSize, fragmentsOn } = layout;
    const dataOptions = { codec, level: layout.level, raw, blockSize, fragmentsOn, onProgress: opts.onProgress };
    const fragments = await writeData(files, sink, dataOptions).catch((e: unknown) => {
      throw sourceError(e);
    });
    const meta = raw ? undefined : codec;
    const ids = new Ids();
    const xattrs = new Xattrs(meta);
    const inodes = new MetadataWriter(meta);
    const dirs = new MetadataWriter(meta);
    writeInodes(root, inodeCount, { inodes, dirs, ids, xattrs, blockSize, fragmentsOn });
    const refs = layout.exportOn ? exportRefs(root, inodeCount) : undefined;
    const starts = writeTables(sink, meta, { inodes, dirs, fragments, ids, xattrs, exportRefs: refs });
    const bytesUsed = sink.pos;
    sink.flush();
    const counts = { inodeCount, fragmentCount: fragments.length, idCount: ids.values.length, rootRef: inodeRef(root), bytesUsed };
    const sb = encodeSuperblock(layout, starts, counts);
    writeSync(fd, sb, 0, SUPERBLOCK_SIZE, 0);
    const size = Math.ceil(bytesUsed / PADDING) * PADDING;
    // Cut anything a dropped duplicate left behind, then zero-pad.
    ftruncateSync(fd, bytesUsed);
    ftruncateSync(fd, size);
    closeSync(fd);
    return { size, bytesUsed, inodes: inodeCount, warnings };
  } catch (e) {
    discardOutput(fd, out);
    throw e;
  }
}

/**
 * Number inodes: the children of a directory get consecutive numbers (compact directory
 * runs), then each subdirectory is numbered; the root is last. Returns the regular files in
 * that order, which is the order of their data.
 */
function numberInodes(root: Node): { files: Node[]; inodeCount: number } {
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
  return { files, inodeCount: next };
}

function openOutput(out: string): number {
  try {
    return openSync(out, 'w', 0o644);
  } catch (e) {
    throw new NorthstarError('ESQUASHFS_OUTPUT', `squashfs output ${out}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
  }
}

/** A failed write leaves no partial image behind. */
function discardOutput(fd: number, out: string): void {
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
}

function inodeRef(n: Node): bigint {
  return (BigInt(n.refBlock!) << 16n) | BigInt(n.refOffset!);
}

/** The export table's entries: the inode ref of every inode number, in number order. */
function exportRefs(root: Node, inodeCount: number): Buffer[] {
  const refs: Buffer[] = new Array<Buffer>(inodeCount);
  const visit = (d: Node): void => {
    for (const e of d.sorted!) {
      const n = e.node;
      if (!refs[n.number - 1]) {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(inodeRef(n), 0);
        refs[n.number - 1] = b;
      }
      if (n.type === 'dir') visit(n);
    }
  };
  visit(root);
  const rb = Buffer.alloc(8);
  rb.writeBigUInt64LE(inodeRef(root), 0);
  refs[root.number - 1] = rb;
  return refs;
}

interface TableStarts {
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  lookupTableStart: bigint;
  idTableStart: number;
  xattrIdTableStart: bigint;
}

interface TableContents {
  inodes: MetadataWriter;
  dirs: MetadataWriter;
  fragments: Buffer[];
  ids: Ids;
  xattrs: Xattrs;
  /** Export table entries, or undefined for no export table. */
  exportRefs: Buffer[] | undefined;
}

/** Everything after the data area, in layout order; returns where each table starts. */
function writeTables(sink: FileSink, meta: Codec | undefined, t: TableContents): TableStarts {
  const inodeTableStart = sink.pos;
  for (const b of t.inodes.finish().blocks) sink.write(b);
  const directoryTableStart = sink.pos;
  for (const b of t.dirs.finish().blocks) sink.write(b);
  const fragmentTableStart = t.fragments.length ? writeLookup(sink, meta, t.fragments) : sink.pos;
  const lookupTableStart = t.exportRefs ? BigInt(writeLookup(sink, meta, t.exportRefs)) : NO_TABLE;
  const idTableStart = writeLookup(
    sink,
    meta,
    t.ids.values.map((v) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v, 0);
      return b;
    }),
  );
  const xattrIdTableStart = t.xattrs.ids.length ? BigInt(writeXattrTables(sink, meta, t.xattrs)) : NO_TABLE;
  return { inodeTableStart, directoryTableStart, fragmentTableStart, lookupTableStart, idTableStart, xattrIdTableStart };
}

/** A two-level lookup table: the entries in metadata blocks, then the index of those blocks; returns the index position. */
function writeLookup(sink: FileSink, meta: Codec | undefined, entries: Buffer[]): number {
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
}

/** The xattr key/value table, the xattr id table and its header; returns the header position. */
function writeXattrTables(sink: FileSink, meta: Codec | undefined, xattrs: Xattrs): number {
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
  const at = sink.pos;
  sink.write(header);
  return at;
}

function encodeSuperblock(
  l: Layout,
  t: TableStarts,
  c: { inodeCount: number; fragmentCount: number; idCount: number; rootRef: bigint; bytesUsed: number },
): Buffer {
  let flags: number = Flag.DUPLICATES;
  if (l.raw) flags |= Flag.UNCOMPRESSED_INODES | Flag.UNCOMPRESSED_DATA | Flag.UNCOMPRESSED_FRAGMENTS | Flag.UNCOMPRESSED_XATTRS;
  if (!l.fragmentsOn) flags |= Flag.NO_FRAGMENTS;
  if (l.exportOn) flags |= Flag.EXPORTABLE;
  const sb = Buffer.alloc(SUPERBLOCK_SIZE);
  sb.writeUInt32LE(SQUASHFS_MAGIC, 0);
  sb.writeUInt32LE(c.inodeCount, 4);
  sb.writeUInt32LE(l.mkfsTime >>> 0, 8);
  sb.writeUInt32LE(l.blockSize, 12);
  sb.writeUInt32LE(c.fragmentCount, 16);
  sb.writeUInt16LE(l.codec.id, 20);
  sb.writeUInt16LE(Math.log2(l.blockSize), 22);
  sb.writeUInt16LE(flags, 24);
  sb.writeUInt16LE(c.idCount, 26);
  sb.writeUInt16LE(4, 28);
  sb.writeUInt16LE(0, 30);
  sb.writeBigUInt64LE(c.rootRef, 32);
  sb.writeBigUInt64LE(BigInt(c.bytesUsed), 40);
  sb.writeBigUInt64LE(BigInt(t.idTableStart), 48);
  sb.writeBigUInt64LE(t.xattrIdTableStart, 56);
  sb.writeBigUInt64LE(BigInt(t.inodeTableStart), 64);
  sb.writeBigUInt64LE(BigInt(t.directoryTableStart), 72);
  sb.writeBigUInt64LE(BigInt(t.fragmentTableStart), 80);
  sb.writeBigUInt64LE(t.lookupTableStart, 88);
  return sb;
}
