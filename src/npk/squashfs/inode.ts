/**
 * Inodes (§6) of the reader: the common header, the per-type bodies, their xattrs (§9), and
 * the public entry made of them. Numbers, ids, block lists and xattr ids are checked against
 * the superblock and the tables.
 */
import {
  InodeType,
  NO_FRAGMENT,
  NO_XATTR,
  XATTR_PREFIXES,
  decodeRdev,
  entryTypeOf,
  type EntryType,
} from './format.js';
import { fail, maxDecompressed, safeNumber } from './source.js';
import type { Image } from './tables.js';

export interface SquashfsEntry {
  /** '/' for the root, else '/a/b' (UTF-8 decoded; see rawPath for the exact bytes). */
  path: string;
  rawPath: Buffer;
  type: EntryType;
  /** Permission bits (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files: content length; directories: listing size as stored; symlinks: target length. */
  size: number;
  mtime: number;
  /** Inode number; hard links share it. */
  inode: number;
  nlink: number;
  target?: string;
  rawTarget?: Buffer;
  major?: number;
  minor?: number;
  /** Full names ('user.x', 'security.selinux') to values. */
  xattrs: Record<string, Buffer>;
}

export interface Inode {
  inodeType: number;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  number: number;
  nlink: number;
  xattr: number;
  size: number;
  // directories
  dirBlock: number;
  dirOffset: number;
  // files
  blocksStart: number;
  fragIndex: number;
  fragOffset: number;
  blockSizes: number[];
  // symlinks
  target?: Buffer;
  rdev: number;
}

/** A position in a metadata stream: block offset from the table start, offset in the block. */
interface At {
  block: number;
  offset: number;
}

function id(img: Image, index: number): number {
  const ids = img.tables.ids;
  const v = ids[index];
  if (v === undefined) fail(`uid/gid index ${index} is outside the id table (${ids.length})`);
  return v;
}

/** The inode at (block, offset) of the inode table. */
export async function readInode(img: Image, block: number, offset: number): Promise<Inode> {
  const t = img.tables.inodeTable;
  if (block >= t.end - t.start) fail(`inode ref block ${block} is outside the inode table`);
  const h = await img.src.readMeta(t, block, offset, 16);
  const b = h.data;
  const inodeType = b.readUInt16LE(0);
  const type = entryTypeOf(inodeType);
  if (!type) fail(`inode at ${block}:${offset} has invalid type ${inodeType}`);
  const number = b.readUInt32LE(12);
  if (number < 1 || number > img.sb.inodeCount) fail(`inode at ${block}:${offset} has invalid number ${number}`);
  const ino: Inode = {
    inodeType,
    type,
    mode: b.readUInt16LE(2) & 0o7777,
    uid: id(img, b.readUInt16LE(4)),
    gid: id(img, b.readUInt16LE(6)),
    mtime: b.readUInt32LE(8),
    number,
    nlink: 1,
    xattr: NO_XATTR,
    size: 0,
    dirBlock: 0,
    dirOffset: 0,
    blocksStart: 0,
    fragIndex: NO_FRAGMENT,
    fragOffset: 0,
    blockSizes: [],
    rdev: 0,
  };
  await readBody(img, ino, h);
  const xattrIds = img.tables.xattrIds;
  if (ino.xattr !== NO_XATTR && ino.xattr >= xattrIds.length) fail(`inode ${number} names xattr id ${ino.xattr} of ${xattrIds.length}`);
  return ino;
}

/** The type-specific part after the 16-byte header at `at`; fills `ino`. */
async function readBody(img: Image, ino: Inode, at: At): Promise<void> {
  const t = img.tables.inodeTable;
  const more = (n: number) => img.src.readMeta(t, at.block, at.offset, n);
  switch (ino.inodeType) {
    case InodeType.DIR: {
      const r = await more(16);
      ino.dirBlock = r.data.readUInt32LE(0);
      ino.nlink = r.data.readUInt32LE(4);
      ino.size = r.data.readUInt16LE(8);
      ino.dirOffset = r.data.readUInt16LE(10);
      break;
    }
    case InodeType.LDIR: {
      const r = await more(24);
      ino.nlink = r.data.readUInt32LE(0);
      ino.size = r.data.readUInt32LE(4);
      ino.dirBlock = r.data.readUInt32LE(8);
      ino.dirOffset = r.data.readUInt16LE(18);
      ino.xattr = r.data.readUInt32LE(20);
      break;
    }
    case InodeType.FILE: {
      const r = await more(16);
      ino.blocksStart = r.data.readUInt32LE(0);
      ino.fragIndex = r.data.readUInt32LE(4);
      ino.fragOffset = r.data.readUInt32LE(8);
      ino.size = r.data.readUInt32LE(12);
      ino.blockSizes = await blockList(img, ino, r);
      break;
    }
    case InodeType.LFILE: {
      const r = await more(40);
      ino.blocksStart = safeNumber(r.data.readBigUInt64LE(0), 'blocks_start');
      ino.size = safeNumber(r.data.readBigUInt64LE(8), 'file size');
      ino.nlink = r.data.readUInt32LE(24);
      ino.fragIndex = r.data.readUInt32LE(28);
      ino.fragOffset = r.data.readUInt32LE(32);
      ino.xattr = r.data.readUInt32LE(36);
      ino.blockSizes = await blockList(img, ino, r);
      break;
    }
    case InodeType.SYMLINK:
    case InodeType.LSYMLINK: {
      const r = await more(8);
      ino.nlink = r.data.readUInt32LE(0);
      const len = r.data.readUInt32LE(4);
      if (len === 0 || len > 65535) fail(`symlink inode ${ino.number} has invalid target size ${len}`);
      const tgt = await img.src.readMeta(t, r.block, r.offset, len + (ino.inodeType === InodeType.LSYMLINK ? 4 : 0));
      ino.target = tgt.data.subarray(0, len);
      ino.size = len;
      if (ino.inodeType === InodeType.LSYMLINK) ino.xattr = tgt.data.readUInt32LE(len);
      break;
    }
    case InodeType.BLOCK:
    case InodeType.CHAR:
    case InodeType.LBLOCK:
    case InodeType.LCHAR: {
      const ext = ino.inodeType > 7;
      const r = await more(ext ? 12 : 8);
      ino.nlink = r.data.readUInt32LE(0);
      ino.rdev = r.data.readUInt32LE(4);
      if (ext) ino.xattr = r.data.readUInt32LE(8);
      break;
    }
    default: {
      const ext = ino.inodeType > 7;
      const r = await more(ext ? 8 : 4);
      ino.nlink = r.data.readUInt32LE(0);
      if (ext) ino.xattr = r.data.readUInt32LE(4);
    }
  }
}

/** A file inode's block sizes at `at`; a tail in a fragment has no entry. Needs fragIndex and size set. */
async function blockList(img: Image, ino: Inode, at: At): Promise<number[]> {
  const t = img.tables.inodeTable;
  const bs = img.sb.blockSize;
  const size = ino.size;
  const count = ino.fragIndex !== NO_FRAGMENT ? Math.floor(size / bs) : Math.ceil(size / bs);
  if (count * 4 > maxDecompressed(t)) fail(`file inode ${ino.number} has a block list longer than the inode table`);
  const l = await img.src.readMeta(t, at.block, at.offset, count * 4);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(l.data.readUInt32LE(4 * i));
  return out;
}

/** An inode's xattrs, full names to values; out-of-line values are followed. */
export async function readXattrs(img: Image, ino: Inode): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  if (ino.xattr === NO_XATTR) return out;
  const src = img.src;
  const kv = img.tables.xattrKv!;
  const xid = img.tables.xattrIds[ino.xattr]!;
  let at = { block: Number(xid.ref >> 16n), offset: Number(xid.ref & 0xffffn) };
  for (let i = 0; i < xid.count; i++) {
    const k = await src.readMeta(kv, at.block, at.offset, 4);
    const type = k.data.readUInt16LE(0);
    const nameLen = k.data.readUInt16LE(2);
    const n = await src.readMeta(kv, k.block, k.offset, nameLen + 4);
    const vlen = n.data.readUInt32LE(nameLen);
    if (vlen > maxDecompressed(kv)) fail(`xattr value of ${vlen} bytes is larger than the xattr table`);
    const v = await src.readMeta(kv, n.block, n.offset, vlen);
    at = { block: v.block, offset: v.offset };
    let value = v.data;
    if (type & 0x100) {
      if (vlen !== 8) fail('out-of-line xattr value ref is not 8 bytes');
      const ref = value.readBigUInt64LE(0);
      const s = await src.readMeta(kv, Number(ref >> 16n), Number(ref & 0xffffn), 4);
      const olen = s.data.readUInt32LE(0);
      if (olen > maxDecompressed(kv)) fail(`xattr value of ${olen} bytes is larger than the xattr table`);
      value = (await src.readMeta(kv, s.block, s.offset, olen)).data;
    }
    const prefix = XATTR_PREFIXES[type & 0xff];
    if (prefix) out[prefix + n.data.subarray(0, nameLen).toString('utf8')] = value;
  }
  return out;
}

export function toEntry(rawPath: Buffer, ino: Inode, xattrs: Record<string, Buffer>): SquashfsEntry {
  const e: SquashfsEntry = {
    path: rawPath.toString('utf8'),
    rawPath,
    type: ino.type,
    mode: ino.mode,
    uid: ino.uid,
    gid: ino.gid,
    size: ino.size,
    mtime: ino.mtime,
    inode: ino.number,
    nlink: ino.nlink,
    xattrs,
  };
  if (ino.target) {
    e.rawTarget = ino.target;
    e.target = ino.target.toString('utf8');
  }
  if (ino.type === 'char' || ino.type === 'block') Object.assign(e, decodeRdev(ino.rdev));
  return e;
}
