/**
 * Extraction of a whole image into a directory: entries in walk order (parents first), hard
 * links by the first path of their inode, then xattrs (one setfattr run), then ownership,
 * modes and times (deepest first). What needs privileges the caller lacks is skipped and
 * reported in the warnings, never silently.
 */
import {
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
} from 'node:fs';
import { mkdir, link, stat as fsStat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { NpkError } from '../../common/errors.js';
import { run as runTool } from '../../common/exec.js';
import type { FileBlock } from './blocks.js';
import type { Inode, SquashfsEntry } from './inode.js';

/** What extraction reads from an image: its entries in walk order and a file's blocks. */
export interface ExtractSource {
  walk(): AsyncIterable<{ entry: SquashfsEntry; ino: Inode }>;
  fileBlocks(ino: Inode): AsyncIterable<FileBlock>;
}

interface Extraction {
  isRoot: boolean;
  /** Path of the first entry of each inode, for the hard links that follow. */
  firstPath: Map<number, Buffer>;
  fixups: { p: Buffer; e: SquashfsEntry }[];
  /** What was skipped, by reason. */
  skipped: Record<string, string[]>;
  /** A getfattr-style dump of the xattrs to restore. */
  xattrLines: string[];
}

function skip(x: Extraction, what: string, p: string): void {
  (x.skipped[what] ??= []).push(p);
}

/**
 * Extract the whole image into `dest` (created if missing; existing entries are not
 * overwritten). As root ownership, device nodes and all xattrs are restored; otherwise
 * what needs privileges is skipped and listed in `warnings`.
 */
export async function extractTree(src: ExtractSource, dest: string, opts: { xattrs?: boolean } = {}): Promise<{ warnings: string[] }> {
  const warnings: string[] = [];
  const isRoot = process.getuid?.() === 0;
  await mkdir(dest, { recursive: true });
  const destBuf = Buffer.from(dest.replace(/\/+$/, '') || '/');
  const x: Extraction = { isRoot, firstPath: new Map(), fixups: [], skipped: {}, xattrLines: [] };
  for await (const { entry: e, ino } of src.walk()) {
    const p = e.rawPath.length === 1 ? destBuf : Buffer.concat([destBuf, e.rawPath]);
    let made: boolean;
    try {
      made = await createEntry(x, src, e, ino, p);
    } catch (err) {
      const c = (err as NodeJS.ErrnoException).code;
      if (err instanceof NpkError) throw err;
      throw new NpkError('ESQUASHFS_EXTRACT', `extract ${e.path} to ${p.toString()}: ${c ?? (err as Error).message}`, { cause: err });
    }
    if (!made) continue;
    if (e.type !== 'dir') x.firstPath.set(e.inode, p);
    x.fixups.push({ p, e });
    if (opts.xattrs !== false) collectXattrs(x, e, p);
  }
  if (x.xattrLines.length) await restoreXattrs(x.xattrLines, warnings);
  restoreAttributes(x);
  for (const [what, list] of Object.entries(x.skipped)) {
    const more = list.length > 10 ? ` and ${list.length - 10} more` : '';
    warnings.push(`skipped ${what}: ${list.slice(0, 10).join(', ')}${more}`);
  }
  return { warnings };
}

/** Create one entry at `p`; false if it was a hard link to an earlier path or had to be skipped. */
async function createEntry(x: Extraction, src: ExtractSource, e: SquashfsEntry, ino: Inode, p: Buffer): Promise<boolean> {
  if (e.type !== 'dir') {
    const earlier = x.firstPath.get(e.inode);
    if (earlier) {
      linkSync(earlier, p);
      return false;
    }
  }
  switch (e.type) {
    case 'dir':
      if (e.rawPath.length > 1) mkdirSync(p, 0o700);
      break;
    case 'file':
      await writeFile(p, src.fileBlocks(ino));
      break;
    case 'symlink':
      symlinkSync(e.rawTarget!, p);
      break;
    case 'fifo':
      // mkfifo needs no privileges; created right away so hard links to it work.
      await run('mkfifo', ['-m', '0600', '--', p.toString()]);
      break;
    case 'char':
    case 'block':
      if (!x.isRoot) {
        skip(x, 'device nodes (need root)', e.path);
        return false;
      }
      await run('mknod', ['-m', '0600', p.toString(), e.type === 'char' ? 'c' : 'b', String(e.major), String(e.minor)]);
      break;
    case 'socket':
      if (!(await makeSocket(p))) {
        skip(x, 'sockets (path too long to bind)', e.path);
        return false;
      }
      break;
  }
  return true;
}

async function writeFile(p: Buffer, blocks: AsyncIterable<FileBlock>): Promise<void> {
  // Synchronous writes: far faster than a thread-pool round trip per block; holes stay holes.
  const fd = openSync(p, 'wx', 0o600);
  try {
    let at = 0;
    for await (const b of blocks) {
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
}

function collectXattrs(x: Extraction, e: SquashfsEntry, p: Buffer): void {
  const lines = x.xattrLines;
  for (const [name, value] of Object.entries(e.xattrs)) {
    if (!x.isRoot && !name.startsWith('user.')) {
      skip(x, 'xattrs outside user.* (need root)', `${e.path} ${name}`);
      continue;
    }
    if (lines.length === 0 || !lines[lines.length - 1]!.startsWith('# file: ' + escapeForAttr(p))) {
      lines.push(`# file: ${escapeForAttr(p)}`);
    }
    lines.push(`${name}=0x${value.toString('hex')}`);
  }
}

async function restoreXattrs(xattrLines: string[], warnings: string[]): Promise<void> {
  const text = groupAttrDump(xattrLines);
  const r = await run('setfattr', ['-h', '--restore=-'], text, true);
  if (r.missing) warnings.push('xattrs not restored: setfattr (package attr) is not installed');
  else for (const l of r.stderr.split('\n').filter(Boolean)) warnings.push(`setfattr: ${l}`);
}

/** Ownership, modes and times; directories deepest first so their times stick. */
function restoreAttributes(x: Extraction): void {
  const myUid = process.getuid?.() ?? 0;
  const myGid = process.getgid?.() ?? 0;
  for (let i = x.fixups.length - 1; i >= 0; i--) {
    const { p, e } = x.fixups[i]!;
    if (x.isRoot) lchownSync(p, e.uid, e.gid);
    else if (e.uid !== myUid || e.gid !== myGid) skip(x, 'ownership (needs root)', `${e.path} ${e.uid}:${e.gid}`);
    try {
      if (e.type !== 'symlink') chmodSync(p, e.mode);
      if (e.type === 'symlink') lutimesSync(p, e.mtime, e.mtime);
      else utimesSync(p, e.mtime, e.mtime);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (x.isRoot || (code !== 'EPERM' && code !== 'EACCES')) {
        throw new NpkError('ESQUASHFS_EXTRACT', `extract ${e.path}: setting mode/time of ${p.toString()}: ${code ?? String(err)}`, { cause: err });
      }
      skip(x, 'modes/times of entries owned by someone else', e.path);
    }
  }
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
  const r = await runTool(cmd, args, { timeout: 0, ...(input !== undefined ? { input } : {}) });
  if (r.spawnError?.code === 'ENOENT') {
    if (tolerate) return { stderr: '', missing: true };
    throw new NpkError('ESQUASHFS_EXTRACT', `extract: ${cmd} is not installed`);
  }
  if (r.code !== 0 && !tolerate) throw new NpkError('ESQUASHFS_EXTRACT', `extract: ${cmd} failed: ${r.stderr.trim() || `exit code ${r.code}`}`);
  return { stderr: r.stderr, missing: false };
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
