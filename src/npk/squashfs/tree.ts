/**
 * The in-memory tree the writer packs: one node per inode (hard links share a node),
 * directories hold name-sorted entries. Built from a source directory (metadata only; file
 * contents are read later, streaming) plus manifest-implied pseudo entries.
 */
import { lstatSync, readdirSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { NorthstarError, ValidationError } from '../../common/errors.js';
import { encodeRdev, nameProblem, splitXattrName, type EntryType } from './format.js';
import { readTreeXattrs, type XattrList } from './xattrs.js';

export interface PseudoEntry {
  /** Absolute inside the image, e.g. '/dev/null'. */
  path: string;
  type: EntryType;
  /** Permission bits only (0o7777). */
  mode: number;
  /** Default: forceUid/forceGid, else 0. */
  uid?: number;
  gid?: number;
  /** char/block devices. */
  major?: number;
  minor?: number;
  /** symlink target. */
  target?: string;
  /** regular file content. */
  content?: Buffer;
  /** Full names, e.g. 'security.selinux'. */
  xattrs?: Record<string, Buffer | string>;
}

export interface Node {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  xattrs: XattrList | undefined;
  /** Entries naming this inode (files etc.); for directories computed as 2 + subdirs. */
  nlink: number;
  /** Inode number, 1..inode_count (0 until numbered). */
  number: number;
  /** Directories: children by latin1(name bytes) while building. */
  children?: Map<string, Entry>;
  /** Directories: children sorted by name bytes, after finalize(). */
  sorted?: Entry[];
  /** Regular files. */
  size: number;
  sourcePath?: Buffer;
  content?: Buffer;
  /** Symlinks. */
  target?: Buffer;
  /** Devices (squashfs encoding). */
  rdev: number;
  /** Filled by the writer: where a regular file's data went. */
  data?: FileData;
  /** Filled by the writer: position of the inode in the inode table. */
  refBlock?: number;
  refOffset?: number;
}

export interface FileData {
  /** Absolute position of the first stored block (0 without blocks). */
  blocksStart: number;
  /** u32 size entries (bit 24 = raw, 0 = sparse). */
  sizes: number[];
  fragIndex: number;
  fragOffset: number;
  /** Bytes of all-zero blocks not stored. */
  sparse: number;
}

export interface Entry {
  name: Buffer;
  node: Node;
}

export interface TreeOptions {
  root?: string;
  pseudo?: PseudoEntry[];
  forceUid?: number;
  forceGid?: number;
  /** Clamp for source mtimes and the time of pseudo entries. */
  mtime?: number;
  /** Time given to entries without a source (pseudo entries, implied directories). */
  defaultTime: number;
  /** Read source xattrs with getfattr (default true). */
  sourceXattrs?: boolean;
  /** Absolute paths to leave out of the scan (the output image when it lies inside the root). */
  exclude?: string[];
}

const U32_MAX = 0xffffffff;

function clampTime(seconds: number, max: number | undefined): number {
  let t = Math.floor(seconds);
  if (!Number.isFinite(t) || t < 0) t = 0;
  if (t > U32_MAX) t = U32_MAX;
  if (max !== undefined && t > max) t = max;
  return t;
}

/** Split a Linux dev_t (as stat reports it) into major/minor. */
function splitDev(dev: number): { major: number; minor: number } {
  const hi = Math.floor(dev / 0x100000000);
  const lo = dev >>> 0;
  const major = ((lo >>> 8) & 0xfff) | ((hi & 0xfffff000) >>> 0);
  const minor = (lo & 0xff) | ((lo >>> 12) & 0xfff00) | 0;
  return { major: major >>> 0, minor: minor >>> 0 };
}

function checkDevice(where: string, major: number, minor: number): number {
  if (!Number.isInteger(major) || major < 0 || major > 0xfff) {
    throw new ValidationError([{ path: where, rule: `device major ${major} is outside 0..4095` }]);
  }
  if (!Number.isInteger(minor) || minor < 0 || minor > 0xfffff) {
    throw new ValidationError([{ path: where, rule: `device minor ${minor} is outside 0..1048575` }]);
  }
  return encodeRdev(major, minor);
}

/** Turn a raw fs error from scanning the source into a NorthstarError naming the path. */
export function sourceError(e: unknown): unknown {
  if (e instanceof NorthstarError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.syscall) {
    return new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${String(err.path ?? '')}: ${err.syscall} failed with ${err.code}`, { cause: e });
  }
  return e;
}

function newDir(mode: number, uid: number, gid: number, mtime: number): Node {
  return { type: 'dir', mode, uid, gid, mtime, xattrs: undefined, nlink: 0, number: 0, children: new Map(), size: 0, rdev: 0 };
}

function sortXattrs(list: XattrList): XattrList | undefined {
  if (list.length === 0) return undefined;
  return [...list].sort((a, b) => Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0])));
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX;
}

export interface BuiltTree {
  root: Node;
  warnings: string[];
}

/** Scan the source directory (if any) and apply the pseudo entries. */
export async function buildTree(opts: TreeOptions): Promise<BuiltTree> {
  const warnings: string[] = [];
  const { forceUid, forceGid, mtime } = opts;
  const defUid = forceUid ?? 0;
  const defGid = forceGid ?? 0;
  const defTime = clampTime(opts.defaultTime, mtime);
  const root = opts.root !== undefined ? await scanSource(opts.root, opts, warnings) : newDir(0o755, defUid, defGid, defTime);
  for (const [i, p] of (opts.pseudo ?? []).entries()) applyPseudo(root, p, `pseudo[${i}]`, defUid, defGid, defTime);
  finalize(root);
  return { root, warnings };
}

/** The tree of the source directory `rootOption`; source xattrs come from one getfattr run. */
async function scanSource(rootOption: string, opts: TreeOptions, warnings: string[]): Promise<Node> {
  // The root itself may be a symlink to the tree (like mksquashfs); nothing below it is followed.
  let rootPath = path.resolve(rootOption);
  let st: Stats;
  try {
    rootPath = realpathSync(rootPath);
    st = lstatSync(rootPath);
  } catch (e) {
    throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${rootPath}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      cause: e,
    });
  }
  if (!st.isDirectory()) throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${rootPath} is not a directory`);
  let xattrs = new Map<string, XattrList>();
  if (opts.sourceXattrs !== false) {
    const r = await readTreeXattrs(rootPath);
    xattrs = r.files;
    warnings.push(...r.warnings);
  }
  const scanner = new SourceScanner(opts, xattrs);
  const root = scanner.fromStat(st, '');
  root.type = 'dir';
  root.children = new Map();
  try {
    scanner.scan(Buffer.from(rootPath), '', root, 0);
  } catch (e) {
    throw sourceError(e);
  }
  return root;
}

/** One scan of a source directory: nodes from lstat, hard links found by dev:ino. */
class SourceScanner {
  private readonly hardlinks = new Map<string, Node>();
  private readonly exclude: Set<string>;

  constructor(
    private readonly opts: TreeOptions,
    private readonly xattrs: Map<string, XattrList>,
  ) {
    this.exclude = new Set((opts.exclude ?? []).map((p) => path.resolve(p)));
  }

  fromStat(st: Stats, rel: string): Node {
    const { forceUid, forceGid, mtime } = this.opts;
    return {
      type: 'file',
      mode: st.mode & 0o7777,
      uid: forceUid ?? st.uid,
      gid: forceGid ?? st.gid,
      mtime: clampTime(st.mtimeMs / 1000, mtime),
      xattrs: sortXattrs(this.xattrs.get(rel) ?? []),
      nlink: 0,
      number: 0,
      size: 0,
      rdev: 0,
    };
  }

  scan(dirPath: Buffer, rel: string, node: Node, depth: number): void {
    if (depth > 4096) throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${dirPath.toString()}: nesting too deep`);
    const names = readdirSync(dirPath, { encoding: 'buffer' });
    for (const name of names) {
      const bad = nameProblem(name);
      if (bad) throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source name ${name.toString()} in ${dirPath.toString()} ${bad}`);
      const p = Buffer.concat([dirPath, Buffer.from('/'), name]);
      if (this.exclude.size && this.exclude.has(p.toString())) continue;
      const childRel = rel === '' ? name.toString('latin1') : `${rel}/${name.toString('latin1')}`;
      const cst = lstatSync(p);
      let child: Node;
      if (cst.isDirectory()) {
        child = this.fromStat(cst, childRel);
        child.type = 'dir';
        child.children = new Map();
        this.scan(p, childRel, child, depth + 1);
      } else {
        child = this.leaf(cst, p, childRel);
      }
      node.children!.set(name.toString('latin1'), { name, node: child });
    }
  }

  /** A non-directory; a second name of a hard-linked inode gets the node of the first. */
  private leaf(cst: Stats, p: Buffer, rel: string): Node {
    const key = cst.nlink > 1 ? `${cst.dev}:${cst.ino}` : undefined;
    const linked = key ? this.hardlinks.get(key) : undefined;
    if (linked) return linked;
    const child = this.fromStat(cst, rel);
    if (cst.isFile()) {
      child.size = cst.size;
      child.sourcePath = p;
    } else if (cst.isSymbolicLink()) {
      child.type = 'symlink';
      child.target = readlinkSync(p, { encoding: 'buffer' });
    } else if (cst.isCharacterDevice() || cst.isBlockDevice()) {
      child.type = cst.isCharacterDevice() ? 'char' : 'block';
      const d = splitDev(cst.rdev);
      child.rdev = checkDevice(p.toString(), d.major, d.minor);
    } else if (cst.isFIFO()) child.type = 'fifo';
    else if (cst.isSocket()) child.type = 'socket';
    else throw new NorthstarError('ESQUASHFS_SOURCE', `squashfs source ${p.toString()}: unsupported file type`);
    if (key) this.hardlinks.set(key, child);
    return child;
  }
}

/** Check a pseudo entry; returns its path components and xattrs. */
function checkPseudo(p: PseudoEntry, where: string): { components: string[]; xattrs: XattrList } {
  const issues: { path: string; rule: string }[] = [];
  if (typeof p.path !== 'string' || !p.path.startsWith('/')) issues.push({ path: `${where}.path`, rule: 'must be an absolute path' });
  if (!Number.isInteger(p.mode) || p.mode < 0 || p.mode > 0o7777) {
    issues.push({ path: `${where}.mode`, rule: 'must be permission bits 0..0o7777' });
  }
  if (p.uid !== undefined && !isId(p.uid)) issues.push({ path: `${where}.uid`, rule: 'must be an integer 0..4294967295' });
  if (p.gid !== undefined && !isId(p.gid)) issues.push({ path: `${where}.gid`, rule: 'must be an integer 0..4294967295' });
  const components = typeof p.path === 'string' ? p.path.split('/').filter((c) => c !== '') : [];
  for (const c of components) {
    const bad = nameProblem(Buffer.from(c));
    if (bad) issues.push({ path: `${where}.path`, rule: `component '${c}' ${bad}` });
  }
  if (p.type === 'symlink') {
    if (typeof p.target !== 'string' || p.target.length === 0) issues.push({ path: `${where}.target`, rule: 'symlink needs a target' });
    else if (Buffer.byteLength(p.target) > 4096) issues.push({ path: `${where}.target`, rule: 'longer than 4096 bytes' });
  }
  if (p.type === 'file' && p.content !== undefined && !Buffer.isBuffer(p.content)) {
    issues.push({ path: `${where}.content`, rule: 'must be a Buffer' });
  }
  if (!['dir', 'file', 'symlink', 'char', 'block', 'fifo', 'socket'].includes(p.type)) {
    issues.push({ path: `${where}.type`, rule: `unknown type ${String(p.type)}` });
  }
  const xattrs: XattrList = [];
  for (const [name, value] of Object.entries(p.xattrs ?? {})) {
    if (!splitXattrName(name)) {
      issues.push({ path: `${where}.xattrs.${name}`, rule: 'only user.*, trusted.* and security.* can be stored in squashfs' });
    } else if (Buffer.byteLength(name) - (name.indexOf('.') + 1) > 0xffff) {
      issues.push({ path: `${where}.xattrs.${name}`, rule: 'name too long' });
    }
    xattrs.push([name, Buffer.isBuffer(value) ? value : Buffer.from(String(value))]);
  }
  if (issues.length) throw new ValidationError(issues, `invalid squashfs pseudo entry ${String(p.path)}`);
  return { components, xattrs };
}

function applyPseudo(root: Node, p: PseudoEntry, where: string, defUid: number, defGid: number, time: number): void {
  const { components, xattrs } = checkPseudo(p, where);
  let rdev = 0;
  if (p.type === 'char' || p.type === 'block') rdev = checkDevice(`${where}.major/minor`, p.major ?? -1, p.minor ?? -1);
  const node: Node = {
    type: p.type,
    mode: p.mode,
    uid: p.uid ?? defUid,
    gid: p.gid ?? defGid,
    mtime: time,
    xattrs: sortXattrs(xattrs),
    nlink: 0,
    number: 0,
    size: p.type === 'file' ? (p.content?.length ?? 0) : 0,
    rdev,
  };
  if (p.type === 'file') node.content = p.content ?? Buffer.alloc(0);
  if (p.type === 'symlink') node.target = Buffer.from(p.target!);

  if (components.length === 0) {
    if (p.type !== 'dir') throw new ValidationError([{ path: `${where}.type`, rule: "the root '/' can only be a directory" }]);
    root.mode = node.mode;
    root.uid = node.uid;
    root.gid = node.gid;
    if (node.xattrs) root.xattrs = node.xattrs;
    return;
  }
  placePseudo(root, components, node, () => newDir(0o755, defUid, defGid, time));
}

/** Put `node` at `components` below `root`, creating missing (or replacing non-directory) parents. */
function placePseudo(root: Node, components: string[], node: Node, implied: () => Node): void {
  let dir = root;
  for (const c of components.slice(0, -1)) {
    const key = Buffer.from(c).toString('latin1');
    let e = dir.children!.get(key);
    if (!e || e.node.type !== 'dir') {
      e = { name: Buffer.from(c), node: implied() };
      dir.children!.set(key, e);
    }
    dir = e.node;
  }
  const last = components[components.length - 1]!;
  const key = Buffer.from(last).toString('latin1');
  const existing = dir.children!.get(key);
  if (node.type === 'dir' && existing && existing.node.type === 'dir') {
    // A pseudo directory over an existing one sets its attributes and keeps its contents.
    existing.node.mode = node.mode;
    existing.node.uid = node.uid;
    existing.node.gid = node.gid;
    if (node.xattrs) existing.node.xattrs = node.xattrs;
    return;
  }
  if (node.type === 'dir') node.children = new Map();
  dir.children!.set(key, { name: Buffer.from(last), node });
}

/** Sort every directory by name bytes and compute link counts. */
function finalize(root: Node): void {
  const stack: Node[] = [root];
  const seen = new Set<Node>();
  while (stack.length) {
    const d = stack.pop()!;
    const sorted = [...d.children!.values()].sort((a, b) => Buffer.compare(a.name, b.name));
    d.sorted = sorted;
    d.children = undefined;
    let subdirs = 0;
    for (const e of sorted) {
      if (e.node.type === 'dir') {
        subdirs++;
        stack.push(e.node);
      } else {
        if (!seen.has(e.node)) {
          seen.add(e.node);
          e.node.nlink = 0;
        }
        e.node.nlink++;
      }
    }
    d.nlink = 2 + subdirs;
  }
}
