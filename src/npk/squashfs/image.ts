/**
 * squashfs 4.0 reader (spec: shared/spec/squashfs.md §13). Reads images made by
 * mksquashfs and by our writer, from a path or an fd at a byte offset (fs.img inside an NPK).
 * Every ref, size, count and name is bounds-checked; directory cycles are refused.
 */
import { open as fsOpen, close as fsClose, fstat as fsFstat } from 'node:fs';
import { promisify } from 'node:util';
import { NpkError } from '../../common/errors.js';
import { BlockReader } from './blocks.js';
import { readerCodec } from './codec.js';
import { readChild, readListing, readRoot } from './directory.js';
import { extractTree } from './extract.js';
import { SUPERBLOCK_SIZE } from './format.js';
import { readXattrs, toEntry, type Inode, type SquashfsEntry } from './inode.js';
import { ImageSource, fail, readFull } from './source.js';
import { parseSuperblock, type SquashfsSuperblock } from './superblock.js';
import { loadTables, type Image } from './tables.js';

const openP = promisify(fsOpen);
const closeP = promisify(fsClose);
const fstatP = promisify(fsFstat);

const MAX_DEPTH = 4096;

export class SquashfsImage {
  readonly superblock: SquashfsSuperblock;
  private readonly blocks: BlockReader;

  private constructor(
    private readonly img: Image,
    private readonly fd: number,
    private readonly ownsFd: boolean,
  ) {
    this.superblock = img.sb;
    this.blocks = new BlockReader(img);
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
      const src = new ImageSource(fd, offset, sb.bytesUsed, readerCodec(sb.compressionId));
      const tables = await loadTables(src, sb);
      return new SquashfsImage({ src, sb, tables }, fd, owns);
    } catch (e) {
      if (owns) await closeP(fd).catch(() => undefined);
      throw e;
    }
  }

  async close(): Promise<void> {
    if (this.ownsFd) await closeP(this.fd);
    this.img.src.clearCache();
  }

  /** Depth-first walk, parents before children, children in name order. */
  async *walk(): AsyncGenerator<SquashfsEntry> {
    for await (const { entry } of this.walkInodes()) yield entry;
  }

  private async *walkInodes(): AsyncGenerator<{ entry: SquashfsEntry; ino: Inode }> {
    const img = this.img;
    const root = await readRoot(img);
    const seenDirs = new Set<number>();
    type Frame = { path: Buffer; ino: Inode; depth: number };
    const stack: Frame[] = [{ path: Buffer.from('/'), ino: root, depth: 0 }];
    while (stack.length) {
      const f = stack.pop()!;
      yield { entry: toEntry(f.path, f.ino, await readXattrs(img, f.ino)), ino: f.ino };
      if (f.ino.type !== 'dir') continue;
      if (seenDirs.has(f.ino.number)) fail(`directory inode ${f.ino.number} is reached twice (cycle)`);
      seenDirs.add(f.ino.number);
      if (f.depth >= MAX_DEPTH) fail(`directories nest deeper than ${MAX_DEPTH}`);
      const list = await readListing(img, f.ino);
      const frames: Frame[] = [];
      for (const e of list) {
        const ino = await readChild(img, e);
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
    const img = this.img;
    let ino = await readRoot(img);
    const parts = path.split('/').filter((p) => p !== '');
    for (const [i, part] of parts.entries()) {
      if (ino.type !== 'dir') throw new NpkError('ESQUASHFS_PATH', `squashfs image: /${parts.slice(0, i).join('/')} is not a directory`);
      const name = Buffer.from(part);
      const hit = (await readListing(img, ino)).find((e) => e.name.equals(name));
      if (!hit) throw new NpkError('ESQUASHFS_PATH', `squashfs image: /${parts.slice(0, i + 1).join('/')} does not exist`);
      ino = await readChild(img, hit);
    }
    return ino;
  }

  /** Metadata of one path. */
  async stat(path: string): Promise<SquashfsEntry> {
    const ino = await this.lookup(path);
    return toEntry(Buffer.from('/' + path.split('/').filter((p) => p !== '').join('/')), ino, await readXattrs(this.img, ino));
  }

  /** The content of a regular file. */
  async readFile(path: string): Promise<Buffer> {
    const ino = await this.lookup(path);
    if (ino.type !== 'file') throw new NpkError('ESQUASHFS_PATH', `squashfs image: ${path} is not a regular file`);
    if (ino.size > 0x7fffffff) throw new NpkError('ETOOBIG', `squashfs image: ${path} is too large to read into memory (${ino.size} bytes)`);
    const parts: Buffer[] = [];
    for await (const b of this.blocks.fileBlocks(ino)) parts.push(b.data ?? Buffer.alloc(b.length));
    return Buffer.concat(parts, ino.size);
  }

  /**
   * Extract the whole image into `dest` (created if missing; existing entries are not
   * overwritten). As root ownership, device nodes and all xattrs are restored; otherwise
   * what needs privileges is skipped and listed in `warnings`.
   */
  async extract(dest: string, opts: { xattrs?: boolean } = {}): Promise<{ warnings: string[] }> {
    return extractTree({ walk: () => this.walkInodes(), fileBlocks: (ino) => this.blocks.fileBlocks(ino) }, dest, opts);
  }
}
