/**
 * squashfs 4.0 reader (spec: shared/spec/squashfs.md §13). Reads images made by
 * mksquashfs and by our writer, from a path or an fd at a byte offset (fs.img inside an NPK).
 * Every ref, size, count and name is bounds-checked; directory cycles are refused.
 */
import {
  read as fsRead,
  open as fsOpen,
  close as fsClose,
  fstat as fsFstat,
  readSync,
  openSync,
  writeSync,
  closeSync,
  ftruncateSync,
  mkdirSync,
  symlinkSync,
  linkSync,
  lchownSync,
  chmodSync,
  lutimesSync,
  utimesSync,
  readFileSync,
} from 'node:fs';
import { mkdir, link, stat as fsStat } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { NpkError } from '../../common/errors.js';
import { readerCodec, type Codec } from './codec.js';
import {
  COMPRESSOR_NAMES,
  DATA_RAW,
  DATA_SIZE_MASK,
  Flag,
  InodeType,
  MAX_DIR_RUN,
  METADATA_RAW,
  METADATA_SIZE,
  NO_FRAGMENT,
  NO_TABLE,
  NO_XATTR,
  SQUASHFS_MAGIC,
  SUPERBLOCK_SIZE,
  XATTR_PREFIXES,
  decodeRdev,
  entryTypeOf,
  modeString,
  nameProblem,
  type EntryType,
} from './format.js';

const readP = promisify(fsRead);
const openP = promisify(fsOpen);
const closeP = promisify(fsClose);
const fstatP = promisify(fsFstat);

export interface SquashfsSuperblock {
  inodeCount: number;
  mkfsTime: number;
  blockSize: number;
  fragmentCount: number;
  compressionId: number;
  compression: string;
  blockLog: number;
  flags: number;
  idCount: number;
  rootInode: bigint;
  bytesUsed: number;
  idTableStart: number;
  xattrIdTableStart: bigint;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  lookupTableStart: bigint;
}

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

interface Inode {
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

interface DirEntry {
  name: Buffer;
  type: EntryType;
  block: number;
  offset: number;
  number: number;
}

interface Table {
  name: string;
  start: number;
  end: number;
}

function fail(message: string): never {
  throw new NpkError('ESQUASHFS_CORRUPT', `squashfs image: ${message}`);
}

const MAX_DEPTH = 4096;

export class SquashfsImage {
  readonly superblock: SquashfsSuperblock;
  private readonly codec: Codec;
  private readonly cache = new Map<number, { data: Buffer; next: number }>();
  private ids: number[] = [];
  private fragments: { start: number; size: number }[] = [];
  private xattrIds: { ref: bigint; count: number }[] = [];
  private xattrKv: Table | undefined;
  private inodeTable!: Table;
  private dirTable!: Table;
  private fragCache: { index: number; data: Buffer } | undefined;

  private constructor(
    private readonly fd: number,
    private readonly ownsFd: boolean,
    private readonly offset: number,
    sb: SquashfsSuperblock,
  ) {
    this.superblock = sb;
    this.codec = readerCodec(sb.compressionId);
  }

  /** Open an image at `offset` (default 0) of a file; `size` limits the region (default: to the end). */
  static async open(pathOrFd: string | number, opts: { offset?: number; size?: number } = {}): Promise<SquashfsImage> {
    const offset = opts.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0) throw new NpkError('ESQUASHFS_ARG', `squashfs image offset ${offset} is invalid`);
    let fd: number;
    const owns = typeof pathOrFd === 'string';
    try {
      fd = owns ? await openP(pathOrFd, 'r') : pathOrFd;
    } catch (e) {
      throw new NpkError('ESQUASHFS_OPEN', `squashfs image ${String(pathOrFd)}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
    }
    try {
      const st = await fstatP(fd);
      const avail = st.size - offset;
      const size = opts.size ?? avail;
      const name = typeof pathOrFd === 'string' ? pathOrFd : `fd ${pathOrFd}`;
      if (size > avail) throw new NpkError('ESQUASHFS_CORRUPT', `squashfs image ${name}: region of ${size} bytes at ${offset} passes the file end`);
      if (size < SUPERBLOCK_SIZE) throw new NpkError('ESQUASHFS_CORRUPT', `squashfs image ${name}: too short for a superblock (${Math.max(0, size)} bytes)`);
      const b = Buffer.alloc(SUPERBLOCK_SIZE);
      await readFull(fd, b, offset);
      const sb = parseSuperblock(b, size, name);
      const img = new SquashfsImage(fd, owns, offset, sb);
      await img.loadTables();
      return img;
    } catch (e) {
      if (owns) await closeP(fd).catch(() => undefined);
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.ownsFd) await closeP(this.fd);
    this.cache.clear();
  }

  // ---- low-level reads -------------------------------------------------------------

  /** Synchronous positioned read: one syscall, no thread-pool round trip per metadata or data block. */
  private readAt(pos: number, len: number): Buffer {
    if (pos < 0 || len < 0 || pos + len > this.superblock.bytesUsed) fail(`read of ${len} bytes at ${pos} passes bytes_used`);
    const b = Buffer.allocUnsafe(len);
    readFullSync(this.fd, b, this.offset + pos);
    return b;
  }

  /** One metadata block at absolute `pos`, which must lie in `table`. */
  private async metaBlock(table: Table, pos: number): Promise<{ data: Buffer; next: number }> {
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

  private inflate(data: Buffer, max: number, what: string): Buffer {
    try {
      return this.codec.decompressSync(data, max);
    } catch (e) {
      fail(`${what} does not decompress (${(e as Error).message})`);
    }
  }

  /** Read `len` bytes of a metadata stream starting at (block, offset); returns the bytes and the position after. */
  private async readMeta(table: Table, block: number, offset: number, len: number): Promise<{ data: Buffer; block: number; offset: number }> {
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
  private async readLookup(name: string, indexStart: number, count: number, entrySize: number, limit: number): Promise<Buffer> {
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

  private async loadTables(): Promise<void> {
    const sb = this.superblock;
    let next = sb.bytesUsed;
    if (sb.xattrIdTableStart !== NO_TABLE) {
      const hpos = Number(sb.xattrIdTableStart);
      if (hpos + 16 > next) fail('xattr id table header passes bytes_used');
      const h = this.readAt(hpos, 16);
      const kvStart = Number(h.readBigUInt64LE(0));
      const count = h.readUInt32LE(8);
      if (count === 0) fail('xattr id table has no entries');
      if (count * 16 > next) fail(`xattr id count ${count} is larger than the image`);
      const raw = await this.readLookup('xattr id table', hpos + 16, count, 16, next);
      for (let i = 0; i < count; i++) this.xattrIds.push({ ref: raw.readBigUInt64LE(16 * i), count: raw.readUInt32LE(16 * i + 8) });
      const firstBlock = Number((this.readAt(hpos + 16, 8)).readBigUInt64LE(0));
      if (kvStart < SUPERBLOCK_SIZE || kvStart > firstBlock) fail(`xattr kv start ${kvStart} is out of place`);
      this.xattrKv = { name: 'xattr table', start: kvStart, end: firstBlock };
      next = kvStart;
    }
    if (sb.idCount === 0) fail('id table is empty');
    const ids = await this.readLookup('id table', sb.idTableStart, sb.idCount, 4, next);
    for (let i = 0; i < sb.idCount; i++) this.ids.push(ids.readUInt32LE(4 * i));
    next = Number((this.readAt(sb.idTableStart, 8)).readBigUInt64LE(0));
    if (sb.lookupTableStart !== NO_TABLE) {
      const at = Number(sb.lookupTableStart);
      if (at >= sb.idTableStart || at < SUPERBLOCK_SIZE) fail('export table is out of place');
      const first = Number((this.readAt(at, 8)).readBigUInt64LE(0));
      if (first < next) next = first;
    }
    if (sb.fragmentCount > 0) {
      if (sb.fragmentCount * 16 > sb.bytesUsed) fail(`fragment count ${sb.fragmentCount} is larger than the image`);
      const raw = await this.readLookup('fragment table', sb.fragmentTableStart, sb.fragmentCount, 16, next);
      for (let i = 0; i < sb.fragmentCount; i++) {
        this.fragments.push({ start: Number(raw.readBigUInt64LE(16 * i)), size: raw.readUInt32LE(16 * i + 8) });
      }
      next = Number((this.readAt(sb.fragmentTableStart, 8)).readBigUInt64LE(0));
    }
    if (!(sb.inodeTableStart < sb.directoryTableStart && sb.directoryTableStart <= next)) {
      fail(`inode table (${sb.inodeTableStart}) and directory table (${sb.directoryTableStart}) are out of order`);
    }
    this.inodeTable = { name: 'inode table', start: sb.inodeTableStart, end: sb.directoryTableStart };
    this.dirTable = { name: 'directory table', start: sb.directoryTableStart, end: next };
  }

  // ---- inodes and directories -----------------------------------------------------------

  private id(index: number): number {
    const v = this.ids[index];
    if (v === undefined) fail(`uid/gid index ${index} is outside the id table (${this.ids.length})`);
    return v;
  }

  private async inode(block: number, offset: number): Promise<Inode> {
    const t = this.inodeTable;
    if (block >= t.end - t.start) fail(`inode ref block ${block} is outside the inode table`);
    const h = await this.readMeta(t, block, offset, 16);
    const b = h.data;
    const inodeType = b.readUInt16LE(0);
    const type = entryTypeOf(inodeType);
    if (!type) fail(`inode at ${block}:${offset} has invalid type ${inodeType}`);
    const number = b.readUInt32LE(12);
    if (number < 1 || number > this.superblock.inodeCount) fail(`inode at ${block}:${offset} has invalid number ${number}`);
    const ino: Inode = {
      inodeType,
      type,
      mode: b.readUInt16LE(2) & 0o7777,
      uid: this.id(b.readUInt16LE(4)),
      gid: this.id(b.readUInt16LE(6)),
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
    const more = (n: number) => this.readMeta(t, h.block, h.offset, n);
    const bs = this.superblock.blockSize;
    const blockList = async (at: { block: number; offset: number }, size: number): Promise<number[]> => {
      const count = ino.fragIndex !== NO_FRAGMENT ? Math.floor(size / bs) : Math.ceil(size / bs);
      if (count * 4 > maxDecompressed(t)) fail(`file inode ${number} has a block list longer than the inode table`);
      const l = await this.readMeta(t, at.block, at.offset, count * 4);
      const out: number[] = [];
      for (let i = 0; i < count; i++) out.push(l.data.readUInt32LE(4 * i));
      return out;
    };
    switch (inodeType) {
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
        ino.blockSizes = await blockList(r, ino.size);
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
        ino.blockSizes = await blockList(r, ino.size);
        break;
      }
      case InodeType.SYMLINK:
      case InodeType.LSYMLINK: {
        const r = await more(8);
        ino.nlink = r.data.readUInt32LE(0);
        const len = r.data.readUInt32LE(4);
        if (len === 0 || len > 65535) fail(`symlink inode ${number} has invalid target size ${len}`);
        const tgt = await this.readMeta(t, r.block, r.offset, len + (inodeType === InodeType.LSYMLINK ? 4 : 0));
        ino.target = tgt.data.subarray(0, len);
        ino.size = len;
        if (inodeType === InodeType.LSYMLINK) ino.xattr = tgt.data.readUInt32LE(len);
        break;
      }
      case InodeType.BLOCK:
      case InodeType.CHAR:
      case InodeType.LBLOCK:
      case InodeType.LCHAR: {
        const ext = inodeType > 7;
        const r = await more(ext ? 12 : 8);
        ino.nlink = r.data.readUInt32LE(0);
        ino.rdev = r.data.readUInt32LE(4);
        if (ext) ino.xattr = r.data.readUInt32LE(8);
        break;
      }
      default: {
        const ext = inodeType > 7;
        const r = await more(ext ? 8 : 4);
        ino.nlink = r.data.readUInt32LE(0);
        if (ext) ino.xattr = r.data.readUInt32LE(4);
      }
    }
    if (ino.xattr !== NO_XATTR && ino.xattr >= this.xattrIds.length) fail(`inode ${number} names xattr id ${ino.xattr} of ${this.xattrIds.length}`);
    return ino;
  }

  private async rootInode(): Promise<Inode> {
    const ref = this.superblock.rootInode;
    const ino = await this.inode(Number(ref >> 16n), Number(ref & 0xffffn));
    if (ino.type !== 'dir') fail('root inode is not a directory');
    return ino;
  }

  /** Parse and check a directory listing. */
  private async listing(dir: Inode): Promise<DirEntry[]> {
    if (dir.size < 3) fail(`directory inode ${dir.number} has size ${dir.size} (< 3)`);
    const len = dir.size - 3;
    if (len === 0) return [];
    if (dir.dirBlock >= this.dirTable.end - this.dirTable.start) fail(`directory inode ${dir.number} points outside the directory table`);
    const { data } = await this.readMeta(this.dirTable, dir.dirBlock, dir.dirOffset, len);
    const out: DirEntry[] = [];
    let p = 0;
    let prev: Buffer | undefined;
    while (p < len) {
      if (p + 12 > len) fail(`directory inode ${dir.number}: truncated run header`);
      const count = data.readUInt32LE(p) + 1;
      const block = data.readUInt32LE(p + 4);
      const base = data.readUInt32LE(p + 8);
      p += 12;
      if (count > MAX_DIR_RUN) fail(`directory inode ${dir.number}: run of ${count} entries (max 256)`);
      if (block >= this.inodeTable.end - this.inodeTable.start) fail(`directory inode ${dir.number}: inode block ${block} outside the inode table`);
      for (let i = 0; i < count; i++) {
        if (p + 8 > len) fail(`directory inode ${dir.number}: truncated entry`);
        const offset = data.readUInt16LE(p);
        const delta = data.readInt16LE(p + 2);
        const t = data.readUInt16LE(p + 4);
        const nameLen = data.readUInt16LE(p + 6) + 1;
        p += 8;
        if (p + nameLen > len) fail(`directory inode ${dir.number}: truncated name`);
        const name = data.subarray(p, p + nameLen);
        p += nameLen;
        const bad = nameProblem(name);
        if (bad) fail(`directory inode ${dir.number}: entry name ${JSON.stringify(name.toString())} ${bad}`);
        if (prev && Buffer.compare(prev, name) >= 0) fail(`directory inode ${dir.number}: names are not sorted or repeat (${name.toString()})`);
        prev = name;
        const type = t >= 1 && t <= 7 ? entryTypeOf(t) : undefined;
        if (!type) fail(`directory inode ${dir.number}: entry ${name.toString()} has invalid type ${t}`);
        const number = base + delta;
        if (number < 1 || number > this.superblock.inodeCount) fail(`directory inode ${dir.number}: entry ${name.toString()} has invalid inode number ${number}`);
        if (offset >= METADATA_SIZE) fail(`directory inode ${dir.number}: entry ${name.toString()} has inode offset ${offset}`);
        out.push({ name: Buffer.from(name), type, block, offset, number });
      }
    }
    return out;
  }

  private async child(e: DirEntry): Promise<Inode> {
    const ino = await this.inode(e.block, e.offset);
    if (ino.type !== e.type) fail(`entry ${e.name.toString()} says ${e.type} but its inode is a ${ino.type}`);
    if (ino.number !== e.number) fail(`entry ${e.name.toString()} says inode ${e.number} but the inode has number ${ino.number}`);
    return ino;
  }

  private async xattrsOf(ino: Inode): Promise<Record<string, Buffer>> {
    const out: Record<string, Buffer> = {};
    if (ino.xattr === NO_XATTR) return out;
    const kv = this.xattrKv!;
    const id = this.xattrIds[ino.xattr]!;
    let at = { block: Number(id.ref >> 16n), offset: Number(id.ref & 0xffffn) };
    for (let i = 0; i < id.count; i++) {
      const k = await this.readMeta(kv, at.block, at.offset, 4);
      const type = k.data.readUInt16LE(0);
      const nameLen = k.data.readUInt16LE(2);
      const n = await this.readMeta(kv, k.block, k.offset, nameLen + 4);
      const vlen = n.data.readUInt32LE(nameLen);
      if (vlen > maxDecompressed(kv)) fail(`xattr value of ${vlen} bytes is larger than the xattr table`);
      const v = await this.readMeta(kv, n.block, n.offset, vlen);
      at = { block: v.block, offset: v.offset };
      let value = v.data;
      if (type & 0x100) {
        if (vlen !== 8) fail('out-of-line xattr value ref is not 8 bytes');
        const ref = value.readBigUInt64LE(0);
        const s = await this.readMeta(kv, Number(ref >> 16n), Number(ref & 0xffffn), 4);
        const olen = s.data.readUInt32LE(0);
        if (olen > maxDecompressed(kv)) fail(`xattr value of ${olen} bytes is larger than the xattr table`);
        value = (await this.readMeta(kv, s.block, s.offset, olen)).data;
      }
      const prefix = XATTR_PREFIXES[type & 0xff];
      if (prefix) out[prefix + n.data.subarray(0, nameLen).toString('utf8')] = value;
    }
    return out;
  }

  private toEntry(rawPath: Buffer, ino: Inode, xattrs: Record<string, Buffer>): SquashfsEntry {
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

  /** Depth-first walk, parents before children, children in name order. */
  async *walk(): AsyncGenerator<SquashfsEntry> {
    for await (const { entry } of this.walkInodes()) yield entry;
  }

  private async *walkInodes(): AsyncGenerator<{ entry: SquashfsEntry; ino: Inode }> {
    const root = await this.rootInode();
    const seenDirs = new Set<number>();
    type Frame = { path: Buffer; ino: Inode; depth: number };
    const stack: Frame[] = [{ path: Buffer.from('/'), ino: root, depth: 0 }];
    while (stack.length) {
      const f = stack.pop()!;
      yield { entry: this.toEntry(f.path, f.ino, await this.xattrsOf(f.ino)), ino: f.ino };
      if (f.ino.type !== 'dir') continue;
      if (seenDirs.has(f.ino.number)) fail(`directory inode ${f.ino.number} is reached twice (cycle)`);
      seenDirs.add(f.ino.number);
      if (f.depth >= MAX_DEPTH) fail(`directories nest deeper than ${MAX_DEPTH}`);
      const list = await this.listing(f.ino);
      const frames: Frame[] = [];
      for (const e of list) {
        const ino = await this.child(e);
        const p = f.path.length === 1 ? Buffer.concat([f.path, e.name]) : Buffer.concat([f.path, Buffer.from('/'), e.name]);
        frames.push({ path: p, ino, depth: f.depth + 1 });
      }
      for (let i = frames.length - 1; i >= 0; i--) stack.push(frames[i]!);
    }
  }

  /** Every entry, root first, parents before children. */
  async entries(): Promise<SquashfsEntry[]> {
    const out: SquashfsEntry[] = [];
    for await (const e of this.walk()) out.push(e);
    return out;
  }

  private async lookup(path: string): Promise<Inode> {
    let ino = await this.rootInode();
    const parts = path.split('/').filter((p) => p !== '');
    for (const [i, part] of parts.entries()) {
      if (ino.type !== 'dir') throw new NpkError('ENOENT', `squashfs image: /${parts.slice(0, i).join('/')} is not a directory`);
      const name = Buffer.from(part);
      const hit = (await this.listing(ino)).find((e) => e.name.equals(name));
      if (!hit) throw new NpkError('ENOENT', `squashfs image: /${parts.slice(0, i + 1).join('/')} does not exist`);
      ino = await this.child(hit);
    }
    return ino;
  }

  /** Metadata of one path. */
  async stat(path: string): Promise<SquashfsEntry> {
    const ino = await this.lookup(path);
    return this.toEntry(Buffer.from('/' + path.split('/').filter((p) => p !== '').join('/')), ino, await this.xattrsOf(ino));
  }

  /** The content of a regular file. */
  async readFile(path: string): Promise<Buffer> {
    const ino = await this.lookup(path);
    if (ino.type !== 'file') throw new NpkError('EISDIR', `squashfs image: ${path} is not a regular file`);
    if (ino.size > 0x7fffffff) throw new NpkError('ETOOBIG', `squashfs image: ${path} is too large to read into memory (${ino.size} bytes)`);
    const parts: Buffer[] = [];
    for await (const c of this.fileChunks(ino)) parts.push(c);
    return Buffer.concat(parts, ino.size);
  }

  /** The content of a file inode, block by block. */
  private async *fileChunks(ino: Inode): AsyncGenerator<Buffer> {
    for await (const b of this.fileBlocks(ino)) yield b.data ?? Buffer.alloc(b.length);
  }

  /** The blocks of a file inode; sparse (all-zero, not stored) blocks come without data. */
  private async *fileBlocks(ino: Inode): AsyncGenerator<{ data?: Buffer; length: number }> {
    const sb = this.superblock;
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
        const stored = this.readAt(pos, len);
        const data = entry & DATA_RAW ? stored : this.inflate(stored, bs, `inode ${ino.number} block ${i}`);
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
    const f = this.fragments[index];
    if (!f) fail(`fragment index ${index} is outside the fragment table (${this.fragments.length})`);
    if (f.size & 0xfe000000) fail(`fragment ${index} has invalid size entry`);
    const len = f.size & DATA_SIZE_MASK;
    if (len === 0 || len > this.superblock.blockSize) fail(`fragment ${index} has invalid size ${len}`);
    if (f.start < SUPERBLOCK_SIZE || f.start + len > this.superblock.inodeTableStart) fail(`fragment ${index} lies outside the data area`);
    const stored = this.readAt(f.start, len);
    const data = f.size & DATA_RAW ? stored : this.inflate(stored, this.superblock.blockSize, `fragment ${index}`);
    this.fragCache = { index, data };
    return data;
  }

  /**
   * Extract the whole image into `dest` (created if missing; existing entries are not
   * overwritten). As root ownership, device nodes and all xattrs are restored; otherwise
   * what needs privileges is skipped and listed in `warnings`.
   */
  async extract(dest: string, opts: { xattrs?: boolean } = {}): Promise<{ warnings: string[] }> {
    const warnings: string[] = [];
    const isRoot = process.getuid?.() === 0;
    await mkdir(dest, { recursive: true });
    const destBuf = Buffer.from(dest.replace(/\/+$/, '') || '/');
    const firstPath = new Map<number, Buffer>();
    const fixups: { p: Buffer; e: SquashfsEntry }[] = [];
    const skipped: Record<string, string[]> = {};
    const skip = (what: string, p: string): void => {
      (skipped[what] ??= []).push(p);
    };
    const xattrLines: string[] = [];
    for await (const { entry: e, ino } of this.walkInodes()) {
      const p = e.rawPath.length === 1 ? destBuf : Buffer.concat([destBuf, e.rawPath]);
      const shown = e.path;
      try {
        if (e.type !== 'dir') {
          const earlier = firstPath.get(e.inode);
          if (earlier) {
            linkSync(earlier, p);
            continue;
          }
        }
        switch (e.type) {
          case 'dir':
            if (e.rawPath.length > 1) mkdirSync(p, 0o700);
            break;
          case 'file': {
            // Synchronous writes: far faster than a thread-pool round trip per block; holes stay holes.
            const fd = openSync(p, 'wx', 0o600);
            try {
              let at = 0;
              for await (const b of this.fileBlocks(ino)) {
                if (b.data) {
                  let done = 0;
                  while (done < b.data.length) done += writeSync(fd, b.data, done, b.data.length - done, at + done);
                }
                at += b.length;
              }
              ftruncateSync(fd, at);
            } finally {
              closeSync(fd);
            }
            break;
          }
          case 'symlink':
            symlinkSync(e.rawTarget!, p);
            break;
          case 'fifo':
            // mkfifo needs no privileges; created right away so hard links to it work.
            await run('mkfifo', ['-m', '0600', '--', p.toString()]);
            break;
          case 'char':
          case 'block':
            if (!isRoot) {
              skip('device nodes (need root)', shown);
              continue;
            }
            await run('mknod', ['-m', '0600', p.toString(), e.type === 'char' ? 'c' : 'b', String(e.major), String(e.minor)]);
            break;
          case 'socket':
            if (!(await makeSocket(p))) {
              skip('sockets (path too long to bind)', shown);
              continue;
            }
            break;
        }
      } catch (err) {
        const c = (err as NodeJS.ErrnoException).code;
        if (err instanceof NpkError) throw err;
        throw new NpkError('ESQUASHFS_EXTRACT', `extract ${shown} to ${p.toString()}: ${c ?? (err as Error).message}`, { cause: err });
      }
      if (e.type !== 'dir') firstPath.set(e.inode, p);
      fixups.push({ p, e });
      if (opts.xattrs !== false) {
        for (const [name, value] of Object.entries(e.xattrs)) {
          if (!isRoot && !name.startsWith('user.')) {
            skip('xattrs outside user.* (need root)', `${shown} ${name}`);
            continue;
          }
          if (xattrLines.length === 0 || !xattrLines[xattrLines.length - 1]!.startsWith('# file: ' + escapeForAttr(p))) {
            xattrLines.push(`# file: ${escapeForAttr(p)}`);
          }
          xattrLines.push(`${name}=0x${value.toString('hex')}`);
        }
      }
    }
    if (xattrLines.length) {
      const text = groupAttrDump(xattrLines);
      const r = await run('setfattr', ['-h', '--restore=-'], text, true);
      if (r.missing) warnings.push('xattrs not restored: setfattr (package attr) is not installed');
      else for (const l of r.stderr.split('\n').filter(Boolean)) warnings.push(`setfattr: ${l}`);
    }
    // Ownership, modes and times; directories deepest first so their times stick.
    const myUid = process.getuid?.() ?? 0;
    const myGid = process.getgid?.() ?? 0;
    for (let i = fixups.length - 1; i >= 0; i--) {
      const { p, e } = fixups[i]!;
      if (isRoot) lchownSync(p, e.uid, e.gid);
      else if (e.uid !== myUid || e.gid !== myGid) skip('ownership (needs root)', `${e.path} ${e.uid}:${e.gid}`);
      try {
        if (e.type !== 'symlink') chmodSync(p, e.mode);
        if (e.type === 'symlink') lutimesSync(p, e.mtime, e.mtime);
        else utimesSync(p, e.mtime, e.mtime);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (isRoot || (code !== 'EPERM' && code !== 'EACCES')) {
          throw new NpkError('ESQUASHFS_EXTRACT', `extract ${e.path}: setting mode/time of ${p.toString()}: ${code ?? String(err)}`, { cause: err });
        }
        skip('modes/times of entries owned by someone else', e.path);
      }
    }
    for (const [what, list] of Object.entries(skipped)) {
      const more = list.length > 10 ? ` and ${list.length - 10} more` : '';
      warnings.push(`skipped ${what}: ${list.slice(0, 10).join(', ')}${more}`);
    }
    return { warnings };
  }
}

/** Upper bound of a metadata table's decompressed size: every block is >= 3 bytes stored, <= 8192 decompressed. */
function maxDecompressed(t: Table): number {
  return (Math.floor((t.end - t.start) / 3) + 1) * METADATA_SIZE;
}

function safeNumber(v: bigint, what: string): number {
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

async function readFull(fd: number, b: Buffer, pos: number): Promise<void> {
  let got = 0;
  while (got < b.length) {
    const { bytesRead } = await readP(fd, b, got, b.length - got, pos + got);
    if (bytesRead === 0) fail(`unexpected end of file at ${pos + got}`);
    got += bytesRead;
  }
}

function parseSuperblock(b: Buffer, size: number, name: string): SquashfsSuperblock {
  const bad = (m: string): never => {
    throw new NpkError('ESQUASHFS_CORRUPT', `squashfs image ${name}: ${m}`);
  };
  const magic = b.readUInt32LE(0);
  if (magic !== SQUASHFS_MAGIC) {
    bad(magic === 0x68737173 ? 'big-endian squashfs is not supported' : `bad magic 0x${magic.toString(16).padStart(8, '0')} (not a squashfs image)`);
  }
  const major = b.readUInt16LE(28);
  const minor = b.readUInt16LE(30);
  if (major !== 4 || minor !== 0) bad(`version ${major}.${minor} is not supported (only 4.0)`);
  const compressionId = b.readUInt16LE(20);
  const sb: SquashfsSuperblock = {
    inodeCount: b.readUInt32LE(4),
    mkfsTime: b.readUInt32LE(8),
    blockSize: b.readUInt32LE(12),
    fragmentCount: b.readUInt32LE(16),
    compressionId,
    compression: COMPRESSOR_NAMES[compressionId] ?? `unknown (${compressionId})`,
    blockLog: b.readUInt16LE(22),
    flags: b.readUInt16LE(24),
    idCount: b.readUInt16LE(26),
    rootInode: b.readBigUInt64LE(32),
    bytesUsed: Number(b.readBigUInt64LE(40)),
    idTableStart: Number(b.readBigUInt64LE(48)),
    xattrIdTableStart: b.readBigUInt64LE(56),
    inodeTableStart: Number(b.readBigUInt64LE(64)),
    directoryTableStart: Number(b.readBigUInt64LE(72)),
    fragmentTableStart: Number(b.readBigUInt64LE(80)),
    lookupTableStart: b.readBigUInt64LE(88),
  };
  const bs = sb.blockSize;
  if (bs < 4096 || bs > 1048576 || (bs & (bs - 1)) !== 0) bad(`block size ${bs} is not a power of two from 4096 to 1048576`);
  if (sb.blockLog > 20 || 1 << sb.blockLog !== bs) bad(`block_log ${sb.blockLog} does not match block size ${bs}`);
  if (sb.bytesUsed > size) bad(`bytes_used ${sb.bytesUsed} is larger than the image (${size} bytes); truncated?`);
  if (sb.inodeCount === 0) bad('inode count is 0');
  if (sb.flags & Flag.CHECK) bad('flag 0x0004 (check data) is set, which squashfs 4.0 never uses');
  if (sb.flags & Flag.COMPRESSOR_OPTIONS && !(sb.inodeTableStart > SUPERBLOCK_SIZE)) bad('compressor options flag set but no room for them');
  if ((sb.rootInode & 0xffffn) >= BigInt(METADATA_SIZE)) bad('root inode ref offset is beyond 8192');
  for (const [k, v] of [
    ['inode table', sb.inodeTableStart],
    ['directory table', sb.directoryTableStart],
    ['id table', sb.idTableStart],
  ] as const) {
    if (v < SUPERBLOCK_SIZE || v >= sb.bytesUsed) bad(`${k} start ${v} lies outside the image`);
  }
  if (sb.fragmentCount > 0 && (sb.fragmentTableStart < SUPERBLOCK_SIZE || sb.fragmentTableStart >= sb.bytesUsed)) {
    bad(`fragment table start ${sb.fragmentTableStart} lies outside the image`);
  }
  if (sb.xattrIdTableStart !== NO_TABLE && (sb.xattrIdTableStart < BigInt(SUPERBLOCK_SIZE) || sb.xattrIdTableStart >= BigInt(sb.bytesUsed))) {
    bad('xattr table start lies outside the image');
  }
  if (sb.lookupTableStart !== NO_TABLE && (sb.lookupTableStart < BigInt(SUPERBLOCK_SIZE) || sb.lookupTableStart >= BigInt(sb.bytesUsed))) {
    bad('export table start lies outside the image');
  }
  // The compressor is checked last so corrupt images get the more precise message above.
  readerCodec(compressionId);
  return sb;
}

/** getfattr/setfattr dump quoting: backslash, control and non-ASCII bytes as \ooo. */
function escapeForAttr(p: Buffer): string {
  let s = '';
  for (const c of p) {
    if (c === 0x5c) s += '\\\\';
    else if (c <= 0x20 || c >= 0x7f || c === 0x3d || c === 0x22) s += '\\' + c.toString(8).padStart(3, '0');
    else s += String.fromCharCode(c);
  }
  return s;
}

function groupAttrDump(lines: string[]): string {
  const out: string[] = [];
  for (const l of lines) {
    if (l.startsWith('# file: ') && out.length) out.push('');
    out.push(l);
  }
  return out.join('\n') + '\n\n';
}

async function run(cmd: string, args: string[], input?: string, tolerate = false): Promise<{ stderr: string; missing: boolean }> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, _stdout, stderr) => {
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') {
        if (tolerate) resolve({ stderr: '', missing: true });
        else reject(new NpkError('ESQUASHFS_EXTRACT', `extract: ${cmd} is not installed`));
        return;
      }
      if (err && !tolerate) reject(new NpkError('ESQUASHFS_EXTRACT', `extract: ${cmd} failed: ${String(stderr).trim() || err.message}`));
      else resolve({ stderr: String(stderr), missing: false });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Create a socket file at `p`: bind a temporary socket beside it and hard-link it into place. */
async function makeSocket(p: Buffer): Promise<boolean> {
  const tmp = `${p.toString()}.${process.pid}.sock`;
  if (Buffer.byteLength(tmp) >= 108) return false;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(tmp, () => resolve());
  });
  try {
    await link(tmp, p);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await fsStat(p);
  return true;
}

/** uid/gid -> name maps from the host's /etc/passwd and /etc/group (what unsquashfs -ll shows). */
function hostNames(): { users: Map<number, string>; groups: Map<number, string> } {
  const parse = (file: string): Map<number, string> => {
    const m = new Map<number, string>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return m;
    }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      const id = Number(f[2]);
      if (f[0] && f.length >= 3 && Number.isInteger(id) && !m.has(id)) m.set(id, f[0]);
    }
    return m;
  };
  return { users: parse('/etc/passwd'), groups: parse('/etc/group') };
}

/**
 * An `unsquashfs -ll`-like listing: mode, owner/group, size (or major,minor), mtime (UTC), path.
 * Owners are shown by the host's user and group names like unsquashfs -ll (numbers when unknown);
 * `numeric: true` gives the `unsquashfs -lln` form.
 */
export async function formatListing(img: SquashfsImage, opts: { prefix?: string; numeric?: boolean } = {}): Promise<string> {
  const prefix = opts.prefix ?? 'squashfs-root';
  const names = opts.numeric ? undefined : hostNames();
  const lines: string[] = [];
  for (const e of await img.entries()) {
    const ug = `${names?.users.get(e.uid) ?? e.uid}/${names?.groups.get(e.gid) ?? e.gid}`;
    const pad = Math.max(1, 25 - ug.length + 2);
    let size: string;
    if (e.type === 'char' || e.type === 'block') size = `${String(e.major).padStart(pad - 4)},${String(e.minor).padStart(3)}`;
    else size = String(e.size).padStart(pad);
    const d = new Date(e.mtime * 1000);
    const two = (n: number) => String(n).padStart(2, '0');
    const time = `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
    const path = e.path === '/' ? prefix : prefix + e.path;
    lines.push(`${modeString(e.type, e.mode)} ${ug}${size} ${time} ${path}${e.type === 'symlink' ? ` -> ${e.target}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
