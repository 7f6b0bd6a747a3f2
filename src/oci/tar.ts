/**
 * A streaming tar reader (ustar, POSIX pax and GNU long names), enough for OCI layers and
 * image archives. Entries come one at a time; an entry's body is an async iterable of chunks
 * that must be consumed (or skipped) before the next entry is asked for, so nothing larger
 * than a chunk is held in memory. Every header's checksum is checked; a stream that ends
 * inside an entry is refused as truncated.
 */
import { NorthstarError } from '../common/errors.js';

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo' | 'other';

export interface TarEntry {
  path: string;
  type: TarType;
  /** The raw type flag, for messages. */
  flag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Byte offset of the entry's data in the tar stream. */
  offset: number;
}

export class TarError extends NorthstarError {
  constructor(message: string) {
    super('ETAR', message);
    this.name = 'TarError';
  }
}

const BLOCK = 512;

/** Reads exact byte counts from an async iterable of chunks. */
class ByteReader {
  private readonly it: AsyncIterator<Buffer | Uint8Array | string>;
  private buf: Buffer = Buffer.alloc(0);
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    const r = await this.it.next();
    if (r.done) return false;
    const c = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    return true;
  }

  /** Exactly n bytes, or null when the stream ends before the first byte; throws when it ends in between. */
  async exact(n: number, what: string): Promise<Buffer | null> {
    while (this.buf.length < n) {
      if (!(await this.fill())) {
        if (this.buf.length === 0) return null;
        throw new TarError(`${what}: the archive ends after ${this.position + this.buf.length} bytes, inside an entry (truncated)`);
      }
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.position += n;
    return out;
  }

  /** n bytes as chunks. */
  async *take(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw new TarError(`${what}: the archive ends after ${this.position} bytes, ${left} bytes short of the entry's size (truncated)`);
      }
      const c = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(c.length);
      this.position += c.length;
      left -= c.length;
      yield c;
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const c of this.take(n, what)) void c;
  }

  /** Drain what is left (stream consumers, e.g. a digest, need the whole stream). */
  async drain(): Promise<void> {
    this.position += this.buf.length;
    this.buf = Buffer.alloc(0);
    while (await this.fill()) {
      this.position += this.buf.length;
      this.buf = Buffer.alloc(0);
    }
  }
}

function cstr(b: Buffer): string {
  const z = b.indexOf(0);
  return (z < 0 ? b : b.subarray(0, z)).toString('utf8');
}

function num(b: Buffer, field: string, where: string): number {
  if (b.length > 0 && (b[0]! & 0x80) !== 0) {
    // base-256 (GNU): big-endian two's complement; only positive values make sense here.
    if ((b[0]! & 0x40) !== 0) throw new TarError(`${where}: negative ${field} in the tar header`);
    let v = b[0]! & 0x3f;
    for (let i = 1; i < b.length; i++) v = v * 256 + b[i]!;
    if (!Number.isSafeInteger(v)) throw new TarError(`${where}: ${field} too large in the tar header`);
    return v;
  }
  const s = cstr(b).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`${where}: ${field} ${JSON.stringify(s)} is not an octal number in the tar header`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  const s = cstr(h.subarray(148, 156)).trim();
  return /^[0-7]+$/.test(s) && parseInt(s, 8) === sum;
}

function parsePax(data: Buffer, where: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) throw new TarError(`${where}: malformed pax header`);
    const len = Number(data.subarray(i, sp).toString('latin1'));
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > data.length) throw new TarError(`${where}: malformed pax record length`);
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8');
    const eq = rec.indexOf('=');
    if (eq < 0) throw new TarError(`${where}: malformed pax record`);
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    i += len;
  }
  return out;
}

/**
 * What every reader takes from a header block at byte `at`: the checksum checked, the type
 * flag, the path (a ustar prefix joined), the size (a pax `size` wins, checked).
 */
function header(h: Buffer, pax: ReadonlyMap<string, string>, what: string, at: number): { flag: string; path: string; where: string; size: number; magic: string } {
  if (!checksumOk(h)) throw new TarError(`${what}: bad tar header checksum at byte ${at} (not a tar archive, or corrupt)`);
  const flag = String.fromCharCode(h[156]!);
  let path = cstr(h.subarray(0, 100));
  const magic = h.subarray(257, 263).toString('latin1');
  if (magic === 'ustar\0') {
    const prefix = cstr(h.subarray(345, 500));
    if (prefix !== '') path = `${prefix}/${path}`;
  }
  const where = `${what}: entry ${JSON.stringify(path)}`;
  let size = num(h.subarray(124, 136), 'size', where);
  if (pax.has('size')) size = Number(pax.get('size'));
  if (!Number.isSafeInteger(size) || size < 0) throw new TarError(`${where}: invalid size`);
  return { flag, path, where, size, magic };
}

/** The pax and GNU long-name/long-link entries that apply to the next real entry. */
class Extensions {
  pax = new Map<string, string>();
  private longName: string | undefined;
  private longLink: string | undefined;

  /** The body of an `x`, `L` or `K` entry (bounded by MAX_META before it is read). */
  add(flag: string, body: Buffer, where: string): void {
    if (flag === 'x') this.pax = parsePax(body, where);
    else if (flag === 'L') this.longName = cstr(body);
    else if (flag === 'K') this.longLink = cstr(body);
  }

  path(fromHeader: string): string {
    return this.pax.get('path') ?? this.longName ?? fromHeader;
  }

  linkname(h: Buffer): string {
    return this.pax.get('linkpath') ?? this.longLink ?? cstr(h.subarray(157, 257));
  }

  /** After a real entry: they applied to it only. */
  reset(): void {
    this.pax = new Map();
    this.longName = undefined;
    this.longLink = undefined;
  }
}

/** An entry of a tar file found by `indexTar`: where its data lies in the file. */
export interface TarIndexEntry {
  path: string;
  type: TarType;
  offset: number;
  size: number;
  linkname: string;
}

/**
 * The entries of a seekable tar file, reading only the headers (a multi-GiB archive is not
 * read through). Refuses an entry whose data would extend past the end of the file.
 */
export async function indexTar(read: (pos: number, len: number) => Promise<Buffer>, fileSize: number, what: string): Promise<TarIndexEntry[]> {
  const out: TarIndexEntry[] = [];
  let pos = 0;
  const ext = new Extensions();
  for (;;) {
    if (pos + BLOCK > fileSize) {
      if (pos === fileSize) return out;
      throw new TarError(`${what}: the archive ends inside a header at byte ${pos} (truncated)`);
    }
    const h = await read(pos, BLOCK);
    if (h.every((b) => b === 0)) return out;
    const { flag, path, where, size } = header(h, ext.pax, what, pos);
    const type = TYPES[flag] ?? 'other';
    const hasData = type === 'file' || type === 'other';
    const dataAt = pos + BLOCK;
    if (hasData && dataAt + size > fileSize) throw new TarError(`${where}: its ${size} bytes extend past the end of the archive (truncated)`);
    if (flag === 'x' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new TarError(`${where}: a ${size}-byte metadata entry is too large`);
      ext.add(flag, await read(dataAt, size), where);
    } else if (flag !== 'g') {
      out.push({ path: ext.path(path), type, offset: dataAt, size: hasData ? size : 0, linkname: ext.linkname(h) });
      ext.reset();
    }
    pos = dataAt + (hasData ? Math.ceil(size / BLOCK) * BLOCK : 0);
  }
}

const TYPES: Record<string, TarType> = { '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };
const MAX_META = 1 << 20;

/**
 * The entries of a tar stream. `body(entry)` gives the current entry's data; what is not
 * read is skipped when the next entry is requested. `what` names the archive in errors.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>, what: string): AsyncGenerator<{ entry: TarEntry; body: () => AsyncGenerator<Buffer> }> {
  const r = new ByteReader(source);
  const ext = new Extensions();
  for (;;) {
    const h = await r.exact(BLOCK, what);
    if (h === null) return; // ends at a header boundary without the end blocks: accepted, like Go's reader
    if (h.every((b) => b === 0)) {
      await r.drain();
      return;
    }
    const { flag, path, where, size, magic } = header(h, ext.pax, what, r.position - BLOCK);
    const pax = ext.pax;
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > MAX_META) throw new TarError(`${where}: a ${size}-byte metadata entry is too large`);
      const data = (await r.exact(padded, where)) ?? Buffer.alloc(0);
      if (data.length < padded) throw new TarError(`${where}: truncated`);
      // 'g' (global pax headers): nothing in them matters for a root filesystem.
      ext.add(flag, data.subarray(0, size), where);
      continue;
    }
    const entry: TarEntry = {
      path: ext.path(path),
      type: TYPES[flag] ?? 'other',
      flag,
      mode: num(h.subarray(100, 108), 'mode', where) & 0o7777,
      uid: pax.has('uid') ? Number(pax.get('uid')) : num(h.subarray(108, 116), 'uid', where),
      gid: pax.has('gid') ? Number(pax.get('gid')) : num(h.subarray(116, 124), 'gid', where),
      size,
      mtime: pax.has('mtime') ? Math.floor(Number(pax.get('mtime'))) : num(h.subarray(136, 148), 'mtime', where),
      linkname: ext.linkname(h),
      devmajor: magic.startsWith('ustar') ? num(h.subarray(329, 337), 'devmajor', where) : 0,
      devminor: magic.startsWith('ustar') ? num(h.subarray(337, 345), 'devminor', where) : 0,
      offset: r.position,
    };
    if (!Number.isFinite(entry.mtime)) entry.mtime = 0;
    ext.reset();
    // Hard links, symlinks, directories and devices carry no data whatever size says (as Go's reader does).
    const hasData = entry.type === 'file' || entry.type === 'other';
    const dataSize = hasData ? size : 0;
    const dataPadded = hasData ? padded : 0;
    if (!hasData) entry.size = 0;
    let consumed = 0;
    let started = false;
    const ew = `${what}: entry ${JSON.stringify(entry.path)}`;
    const body = async function* (): AsyncGenerator<Buffer> {
      if (started) throw new TarError(`${ew}: body read twice`);
      started = true;
      for await (const c of r.take(dataSize, ew)) {
        consumed += c.length;
        yield c;
      }
    };
    yield { entry, body };
    if (!started) started = true;
    await r.skip(dataPadded - consumed, ew);
  }
}
