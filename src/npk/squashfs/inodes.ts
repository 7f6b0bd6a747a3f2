/**
 * The writer's inode and directory tables (§6, §7), the uid/gid table (§10) and the xattr
 * tables (§9) their inodes point into. Inodes are written post-order: a directory's listing
 * needs the positions of its children's inodes, so children come first and the root last.
 */
import { NorthstarError } from '../../common/errors.js';
import type { Codec } from './codec.js';
import { BASIC_TYPE, InodeType, MAX_DIR_RUN, METADATA_SIZE, NO_XATTR, splitXattrName } from './format.js';
import { MetadataWriter } from './metadata.js';
import type { Entry, Node } from './tree.js';

/** The id table: each distinct uid/gid once, inodes refer to it by index. */
export class Ids {
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

/** The xattr tables: each distinct xattr set once, inodes refer to it by id. */
export class Xattrs {
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

export interface InodeContext {
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
export function writeInodes(root: Node, inodeCount: number, c: InodeContext): void {
  const writeDir = (d: Node, parentNumber: number): void => {
    for (const e of d.sorted!) {
      if (e.node.refBlock !== undefined) continue; // hard link already written
      if (e.node.type === 'dir') writeDir(e.node, d.number);
      else writeLeaf(e.node, c);
    }
    const listing = writeListing(d.sorted!, c);
    writeDirInode(d, parentNumber, listing, c);
  };
  writeDir(root, inodeCount + 1);
}

/** Where a directory's listing went, its size and its index entries. */
interface Listing {
  pos: { block: number; offset: number };
  bytes: number;
  index: Buffer[];
}

/**
 * A directory's listing: runs of <= 256 entries sharing one inode block and numbers within s16 of the base.
 * Like mksquashfs, a run also ends before the listing would pass 8 KiB since the last index
 * point; big directories get an index (one entry per run after the first) so the kernel's
 * lookups and readdir seeks jump close to the name instead of scanning the whole listing.
 */
function writeListing(entries: Entry[], c: InodeContext): Listing {
  const pos = c.dirs.position();
  let listing = 0;
  let indexPoint = 0;
  const index: Buffer[] = [];
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
    listing += writeRun(entries, i, j, block, base, c);
    i = j;
  }
  return { pos, bytes: listing, index };
}

/** One run of a listing: its header, then entries i..j-1; returns the bytes written. */
function writeRun(entries: Entry[], i: number, j: number, block: number, base: number, c: InodeContext): number {
  const h = Buffer.alloc(12);
  h.writeUInt32LE(j - i - 1, 0);
  h.writeUInt32LE(block, 4);
  h.writeUInt32LE(base, 8);
  c.dirs.write(h);
  let bytes = 12;
  for (let k = i; k < j; k++) {
    const e = entries[k]!;
    const b = Buffer.alloc(8 + e.name.length);
    b.writeUInt16LE(e.node.refOffset!, 0);
    b.writeInt16LE(e.node.number - base, 2);
    b.writeUInt16LE(BASIC_TYPE[e.node.type], 4);
    b.writeUInt16LE(e.name.length - 1, 6);
    e.name.copy(b, 8);
    c.dirs.write(b);
    bytes += b.length;
  }
  return bytes;
}

/** A directory's inode: basic when it can be, extended (with the index) when big or with xattrs. */
function writeDirInode(d: Node, parentNumber: number, l: Listing, c: InodeContext): void {
  const { pos, index } = l;
  const fileSize = l.bytes + 3;
  const big = d.sorted!.length > MAX_DIR_RUN || l.bytes > METADATA_SIZE;
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
}
