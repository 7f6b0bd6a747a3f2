/** Shared fixtures for the squashfs tests: a varied source tree, tree comparison, mounts. */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export const isRoot = process.getuid?.() === 0;

export function have(cmd: string): boolean {
  return !spawnSync('sh', ['-c', `command -v ${cmd}`]).status;
}

export type Defer = (fn: () => void) => void;

/** Cleanups that run after the test in reverse order of registration (unmount before rm). */
export function deferrer(t: TestContext): Defer {
  const fns: (() => void)[] = [];
  t.after(() => {
    for (const f of fns.reverse()) f();
  });
  return (fn) => fns.push(fn);
}

/** A temp dir removed after the test. */
export function tempDir(defer: Defer, name = 'sqfs'): string {
  const d = mkdtempSync(join(tmpdir(), `nstest-${name}-`));
  defer(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Deterministic pseudo-random bytes. */
export function prng(seed: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

export function setXattr(p: string, name: string, value: string): void {
  execFileSync('setfattr', ['-h', '-n', name, '-v', value, p]);
}

async function makeSocket(p: string): Promise<void> {
  const tmp = `${p}.tmp`;
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(tmp, () => resolve());
  });
  linkSync(tmp, p);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface TreeSpec {
  blockSize: number;
  /** Entries in the big directory (default 3000). */
  bigDir?: number;
  /** Depth of the nested chain (default 40). */
  depth?: number;
}

/**
 * The varied tree: UTF-8 names, setuid/setgid/sticky modes, symlinks, devices, fifo, socket,
 * user.* xattrs, hard links, empty file, files larger than a block and fragment-sized, sparse
 * regions, duplicates, a directory with thousands of entries, deep nesting. Needs root (mknod).
 */
export async function buildVariedTree(root: string, spec: TreeSpec): Promise<void> {
  const bs = spec.blockSize;
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'hello.txt'), 'hello\n');
  mkdirSync(join(root, 'grüße'));
  writeFileSync(join(root, 'grüße', 'ünïcødé-文件.txt'), 'utf-8 name\n');
  writeFileSync(join(root, 'grüße', 'é'), 'e acute\n');
  writeFileSync(join(root, 'setuid'), '#!/bin/sh\n');
  chmodSync(join(root, 'setuid'), 0o4755);
  writeFileSync(join(root, 'setgid'), 'x');
  chmodSync(join(root, 'setgid'), 0o2711);
  mkdirSync(join(root, 'sticky'));
  chmodSync(join(root, 'sticky'), 0o1777);
  mkdirSync(join(root, 'private'));
  chmodSync(join(root, 'private'), 0o700);
  writeFileSync(join(root, 'private', 'secret'), 'secret');
  chmodSync(join(root, 'private', 'secret'), 0o400);
  writeFileSync(join(root, 'empty'), '');
  mkdirSync(join(root, 'emptydir'));
  writeFileSync(join(root, 'big.bin'), prng(1, 3 * bs + 1234));
  writeFileSync(join(root, 'exact-block.bin'), prng(2, bs));
  writeFileSync(join(root, 'two-blocks-text.txt'), Buffer.from('compressible line of text\n'.repeat(Math.ceil((2 * bs) / 26))).subarray(0, 2 * bs));
  writeFileSync(join(root, 'fragment.bin'), prng(3, Math.floor(bs / 3)));
  // Sparse: random block, two zero blocks, random tail; plus a file that is all zeros.
  writeFileSync(join(root, 'sparse.bin'), Buffer.concat([prng(4, bs), Buffer.alloc(2 * bs), prng(5, 777)]));
  writeFileSync(join(root, 'zeros.bin'), Buffer.alloc(2 * bs + 100));
  // Duplicates (small and large), not hard links.
  writeFileSync(join(root, 'dup-small-1'), 'same small content\n');
  writeFileSync(join(root, 'dup-small-2'), 'same small content\n');
  writeFileSync(join(root, 'dup-large-1'), prng(6, 2 * bs + 5));
  writeFileSync(join(root, 'dup-large-2'), prng(6, 2 * bs + 5));
  // Hard links across directories.
  mkdirSync(join(root, 'links'));
  writeFileSync(join(root, 'links', 'original'), 'linked content\n');
  linkSync(join(root, 'links', 'original'), join(root, 'links', 'second'));
  linkSync(join(root, 'links', 'original'), join(root, 'hardlink-third'));
  // Symlinks.
  symlinkSync('hello.txt', join(root, 'rel-link'));
  symlinkSync('/etc/passwd', join(root, 'abs-link'));
  symlinkSync('does/not/exist', join(root, 'dangling'));
  symlinkSync('x'.repeat(1000), join(root, 'long-target'));
  // Devices, fifo, socket.
  mkdirSync(join(root, 'devs'));
  execFileSync('mknod', ['-m', '0620', join(root, 'devs', 'null-like'), 'c', '1', '3']);
  execFileSync('mknod', ['-m', '0600', join(root, 'devs', 'big-minor'), 'c', '240', '300000']);
  execFileSync('mknod', ['-m', '0660', join(root, 'devs', 'loopish'), 'b', '7', '200']);
  execFileSync('mkfifo', ['-m', '0640', join(root, 'devs', 'fifo')]);
  await makeSocket(join(root, 'devs', 'socket'));
  // Hard-linked special files.
  linkSync(join(root, 'devs', 'fifo'), join(root, 'devs', 'fifo-link'));
  linkSync(join(root, 'devs', 'null-like'), join(root, 'devs', 'null-link'));
  // user.* xattrs on a file, a directory and a value of more than 128 bytes.
  setXattr(join(root, 'hello.txt'), 'user.comment', 'greeting');
  setXattr(join(root, 'hello.txt'), 'user.empty', '');
  setXattr(join(root, 'links'), 'user.dir', 'yes');
  setXattr(join(root, 'big.bin'), 'user.long', 'v'.repeat(300));
  setXattr(join(root, 'dup-small-1'), 'user.shared', 'same');
  setXattr(join(root, 'dup-small-2'), 'user.shared', 'same');
  // Owners that are not forced in every test.
  chownSync(join(root, 'hello.txt'), 1234, 5678);
  chownSync(join(root, 'links'), 42, 43);
  // A big directory.
  const n = spec.bigDir ?? 3000;
  if (n > 0) {
    mkdirSync(join(root, 'many'));
    for (let i = 0; i < n; i++) writeFileSync(join(root, 'many', `entry-${String(i).padStart(5, '0')}-${'n'.repeat(i % 40)}`), i % 7 === 0 ? '' : `${i}\n`);
  }
  // Deep nesting and a 255-byte name.
  let d = join(root, 'deep');
  for (let i = 0; i < (spec.depth ?? 40); i++) d = join(d, `level${i}`);
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'bottom.txt'), 'deep\n');
  writeFileSync(join(root, 'n'.repeat(255)), 'long name\n');
}

export interface Snapshot {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  hash?: string;
  target?: string;
  rdev?: number;
  ino: number;
  nlink: number;
}

/** lstat + content hash of every entry under `root`, keyed by relative path. */
export function snapshot(root: string): Map<string, Snapshot> {
  const out = new Map<string, Snapshot>();
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const type = st.isDirectory()
        ? 'dir'
        : st.isFile()
          ? 'file'
          : st.isSymbolicLink()
            ? 'symlink'
            : st.isCharacterDevice()
              ? 'char'
              : st.isBlockDevice()
                ? 'block'
                : st.isFIFO()
                  ? 'fifo'
                  : 'socket';
      const s: Snapshot = { type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, ino: st.ino, nlink: st.nlink };
      if (type === 'file') s.hash = createHash('sha256').update(readFileSync(p)).digest('hex');
      if (type === 'symlink') s.target = readlinkSync(p);
      if (type === 'char' || type === 'block') s.rdev = st.rdev;
      out.set(r, s);
      if (type === 'dir') walk(p, r);
    }
  };
  walk(root, '');
  return out;
}

/** xattrs of every entry under root (getfattr), relative path -> sorted "name=hex" lines. */
export function xattrSnapshot(root: string, match = '-'): Map<string, string[]> {
  const r = spawnSync('getfattr', ['-R', '-P', '-h', '-d', '-m', match, '-e', 'hex', '--absolute-names', root], { encoding: 'latin1' });
  const out = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      let p = line.slice(8).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
      p = Buffer.from(p, 'latin1').toString('utf8');
      const rel = p === root ? '' : p.slice(root.length + 1);
      cur = [];
      out.set(rel, cur);
    } else if (line && cur) cur.push(line);
  }
  for (const [k, v] of out) {
    if (v.length === 0) out.delete(k);
    else v.sort();
  }
  return out;
}

export interface CompareOptions {
  /** Expected uid/gid of every entry (forced), else compared with the source. */
  uid?: number;
  gid?: number;
  skipTypes?: string[];
  /** Compare modes of directories (unsquashfs/extract set them; a mount shows them). */
  ignore?: (rel: string) => boolean;
}

/** Assert that `actual` holds the same entries as `expected`; returns a list of differences. */
export function differences(expected: Map<string, Snapshot>, actual: Map<string, Snapshot>, o: CompareOptions = {}): string[] {
  const diffs: string[] = [];
  const skip = (rel: string, s: Snapshot): boolean => (o.skipTypes ?? []).includes(s.type) || (o.ignore?.(rel) ?? false);
  for (const [rel, e] of expected) {
    if (skip(rel, e)) continue;
    const a = actual.get(rel);
    if (!a) {
      diffs.push(`missing ${rel}`);
      continue;
    }
    const check = (what: string, x: unknown, y: unknown): void => {
      if (x !== y) diffs.push(`${rel}: ${what} ${String(y)} != expected ${String(x)}`);
    };
    check('type', e.type, a.type);
    check('mode', e.mode.toString(8), a.mode.toString(8));
    check('uid', o.uid ?? e.uid, a.uid);
    check('gid', o.gid ?? e.gid, a.gid);
    if (e.type === 'file') {
      check('size', e.size, a.size);
      check('content', e.hash, a.hash);
    }
    if (e.type === 'symlink') check('target', e.target, a.target);
    if (e.type === 'char' || e.type === 'block') check('rdev', e.rdev, a.rdev);
    if (e.type !== 'dir') check('nlink', e.nlink, a.nlink);
  }
  for (const [rel, a] of actual) if (!expected.has(rel) && !skip(rel, a)) diffs.push(`unexpected ${rel}`);
  // Hard links: entries sharing an inode in the source share one in the copy.
  const groups = new Map<number, string[]>();
  for (const [rel, e] of expected) if (e.type !== 'dir' && e.nlink > 1 && !skip(rel, e)) groups.set(e.ino, [...(groups.get(e.ino) ?? []), rel]);
  for (const names of groups.values()) {
    const inos = new Set(names.map((n) => actual.get(n)?.ino));
    if (inos.size !== 1) diffs.push(`hard links ${names.join(', ')} do not share one inode`);
  }
  return diffs;
}

/** Mount an image read-only (loop) at a fresh dir; unmounted after the test. */
export function mountImage(defer: Defer, image: string, mnt: string): void {
  mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'squashfs', '-o', 'loop,ro', image, mnt]);
  defer(() => {
    spawnSync('umount', [mnt]);
  });
}

export function randomName(): string {
  return randomBytes(6).toString('hex');
}
