/**
 * Applying image layers to a staging directory, as the OCI image spec describes:
 * entries in order, whiteouts (`.wh.<name>` removes <name> of the layers below, `.wh..wh..opq`
 * empties its directory of what the layers below put there), hard links to entries already
 * applied, symlinks stored as they are.
 *
 * Nothing is ever written outside the staging root: an entry path that is absolute or has a
 * `..` component is refused; a symlink is never followed as an entry's last component; a
 * symlink met on the way to an entry (a parent directory that a lower layer made a link) is
 * resolved inside the root, the way the container will see it (`/` is the root, `..` stops
 * there). Device nodes and FIFOs are skipped with a warning (the manifest's `dev` mount
 * provides /dev). Ownership is not kept: the NPK forces the manifest's uid and gid.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { createHash } from 'node:crypto';
import { link, lstat, lutimes, mkdir, open, readdir, rm, symlink, unlink, chmod, utimes } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { imagePath } from '../common/image-path.js';
import { Duplex, pipeline, Readable, type Transform } from 'node:stream';
import * as zlib from 'node:zlib';
import { OciError, type Layer } from './image.js';
import { readTar, TarError, type TarEntry } from './tar.js';

type ZstdZlib = { createZstdDecompress?: () => Transform };

function zstdBinaryAt(p: string): boolean {
  try {
    accessSync(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** How zstd layers are decompressed here: Node's zlib (22.15+), else the zstd program, else not at all. */
export function zstdSupport(): 'zlib' | 'zstd binary' | undefined {
  if (typeof (zlib as unknown as ZstdZlib).createZstdDecompress === 'function') return 'zlib';
  const dirs = (process.env['PATH'] ?? '/usr/bin:/bin').split(':');
  return dirs.some((d) => d !== '' && zstdBinaryAt(join(d, 'zstd'))) ? 'zstd binary' : undefined;
}

function zstdStream(layer: Layer): Duplex | Transform {
  const z = (zlib as unknown as ZstdZlib).createZstdDecompress;
  if (typeof z === 'function') return z();
  if (zstdSupport() !== 'zstd binary') {
    throw new OciError(`layer ${layer.name}: media type ${layer.mediaType} is zstd-compressed; Node ${process.version} has no zstd in zlib (22.15+ has) and no zstd program is installed (apt-get install zstd)`);
  }
  const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.once('close', (code) => {
    if (code !== 0) d.destroy(new OciError(`layer ${layer.name}: zstd failed (${code}): ${err.trim()}`));
  });
  child.once('error', (e) => d.destroy(new OciError(`layer ${layer.name}: zstd: ${e.message}`)));
  return d;
}

/** The uncompressed tar bytes of a layer, with its compressed blob verified as it streams. */
async function* layerTar(layer: Layer, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  const raw = layer.open();
  raw.on('data', (c: Buffer) => onBytes(c.length));
  let compression = layer.compression;
  let src: Readable = raw;
  if (compression === 'sniff') {
    // docker-archive layers: uncompressed usually, but recognise the magic numbers.
    const it = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const first = await it.next();
    const head: Buffer = first.done ? Buffer.alloc(0) : first.value;
    compression = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528 ? 'zstd' : 'none';
    src = Readable.from(
      (async function* () {
        if (head.length) yield head;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      })(),
    );
  }
  let out: Readable = src;
  if (compression === 'gzip' || compression === 'zstd') {
    const d = compression === 'gzip' ? zlib.createGunzip() : zstdStream(layer);
    out = pipeline(src, d, () => {}) as unknown as Readable;
  }
  yield* out as AsyncIterable<Buffer>;
}

export interface ApplyOptions {
  warn: (message: string) => void;
  /** Compressed bytes read so far, over all layers. */
  onBytes?: ((n: number) => void) | undefined;
  /** Stops between entries (e.g. on SIGINT); the caller removes the staging tree. */
  signal?: AbortSignal | undefined;
}

interface DirMeta {
  mode: number;
  mtime: number;
}

/** Builds a root filesystem from layers in `root` (an empty directory). */
export class RootBuilder {
  private readonly dirs = new Map<string, DirMeta>();
  /** Resolved parent directories (relative path → relative real path), valid until a directory is removed. */
  private readonly parents = new Map<string, string>();
  private layerPaths = new Set<string>();
  private devices: string[] = [];
  private fifos: string[] = [];
  private others: string[] = [];

  constructor(
    readonly root: string,
    private readonly opts: ApplyOptions,
  ) {}

  async apply(layer: Layer, index: number): Promise<void> {
    this.layerPaths = new Set();
    const what = `layer ${index} (${layer.name})`;
    const diff = layer.diffId ? createHash(layer.diffId.slice(0, layer.diffId.indexOf(':'))) : undefined;
    const onBytes = this.opts.onBytes ?? (() => {});
    const hashed = async function* (): AsyncGenerator<Buffer> {
      for await (const c of layerTar(layer, onBytes)) {
        diff?.update(c);
        yield c;
      }
    };
    try {
      for await (const { entry, body } of readTar(hashed(), what)) {
        if (this.opts.signal?.aborted) throw new OciError(`${what}: interrupted`);
        await this.entry(entry, body, what);
      }
    } catch (e) {
      if (e instanceof TarError) throw new OciError(e.message, { cause: e });
      if (e instanceof OciError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'Z_DATA_ERROR' || err.code === 'Z_BUF_ERROR' || err.code?.startsWith('ERR_ZLIB')) throw new OciError(`${what}: corrupt compressed data: ${err.message}`, { cause: e });
      throw e;
    }
    if (diff && layer.diffId) {
      const got = `${layer.diffId.slice(0, layer.diffId.indexOf(':'))}:${diff.digest('hex')}`;
      if (got !== layer.diffId) throw new OciError(`${what}: the uncompressed layer hashes to ${got}, the config's rootfs.diff_ids says ${layer.diffId}`);
    }
  }

  /** Directory modes and times (deepest first, after all their children), and the warnings gathered. */
  async finish(): Promise<void> {
    const list = [...this.dirs.entries()].sort((a, b) => b[0].split('/').length - a[0].split('/').length);
    for (const [rel, m] of list) {
      const p = rel === '' ? this.root : join(this.root, rel);
      const s = await lstat(p).catch(() => undefined);
      if (!s?.isDirectory()) continue;
      await chmod(p, m.mode);
      await utimes(p, m.mtime, m.mtime);
    }
    const say = (list: string[], what: string) => {
      if (list.length === 0) return;
      const shown = list.slice(0, 5).join(', ') + (list.length > 5 ? `, … (${list.length} in all)` : '');
      this.opts.warn(`${what}: ${shown}`);
    };
    say(this.devices, 'device nodes skipped (the manifest\'s dev mount provides /dev; bind what else is needed)');
    say(this.fifos, 'FIFOs skipped (create them at run time, e.g. in a tmpfs mount)');
    say(this.others, 'entries of an unsupported tar type skipped');
  }

  /** `a/b/c` checked: relative, no `..`; returns the components. */
  private components(path: string, what: string, field = 'path'): string[] {
    let p = path;
    while (p.startsWith('./')) p = p.slice(2);
    if (p.startsWith('/')) throw new OciError(`${what}: entry ${field} ${JSON.stringify(path)} is absolute; layer entries must be relative to the root (refused)`);
    const parts = p.split('/').filter((c) => c !== '' && c !== '.');
    if (parts.includes('..')) throw new OciError(`${what}: entry ${field} ${JSON.stringify(path)} has a '..' component that could escape the root (refused)`);
    if (parts.some((c) => c.includes('\0'))) throw new OciError(`${what}: entry ${field} ${JSON.stringify(path)} contains a NUL byte`);
    return parts;
  }

  /**
   * The real relative path of directory `parts` inside the root, following symlinks inside it.
   * Missing directories are created when `create` is set, else undefined is returned.
   */
  private async dir(parts: string[], create: boolean, what: string): Promise<string | undefined> {
    const key = parts.join('/');
    const known = this.parents.get(key);
    if (known !== undefined) return known;
    const r = await imagePath(this.root, key, { followLast: true, create, dir: true });
    if (!r.ok) {
      if (r.kind === 'missing') return undefined;
      throw new OciError(`${what}: ${r.problem}`);
    }
    const real = relative(this.root, r.path);
    this.parents.set(key, real);
    return real;
  }

  private mark(rel: string): void {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) this.layerPaths.add(parts.slice(0, i).join('/'));
  }

  private async remove(host: string, isDir: boolean): Promise<void> {
    if (isDir) {
      await rm(host, { recursive: true, force: true });
      this.parents.clear();
    } else {
      await unlink(host);
    }
  }

  private async entry(e: TarEntry, body: () => AsyncGenerator<Buffer>, what: string): Promise<void> {
    const parts = this.components(e.path, what);
    if (parts.length === 0) {
      if (e.type === 'dir') this.dirs.set('', { mode: e.mode, mtime: e.mtime });
      return;
    }
    const name = parts[parts.length - 1]!;
    // A whiteout in a directory that does not exist has nothing to hide: no directory is made for it.
    const whiteout = name.startsWith('.wh.');
    const parentRel = await this.dir(parts.slice(0, -1), !whiteout, what);
    if (parentRel === undefined) return;
    const parentHost = parentRel === '' ? this.root : join(this.root, parentRel);
    const rel = parentRel === '' ? name : `${parentRel}/${name}`;
    if (whiteout) {
      if (name === '.wh..wh..opq') {
        for (const n of await readdir(parentHost)) {
          const childRel = parentRel === '' ? n : `${parentRel}/${n}`;
          if (this.layerPaths.has(childRel)) continue;
          const s = await lstat(join(parentHost, n));
          await this.remove(join(parentHost, n), s.isDirectory());
        }
        return;
      }
      if (name.startsWith('.wh..wh.')) return; // aufs bookkeeping (.wh..wh.plnk, ...): not content
      const victim = name.slice(4);
      const vp = join(parentHost, victim);
      const s = await lstat(vp).catch(() => undefined);
      if (s) await this.remove(vp, s.isDirectory());
      return;
    }
    const host = join(parentHost, name);
    const existing = await lstat(host).catch(() => undefined);
    if (e.type === 'dir') {
      if (existing && !existing.isDirectory()) await this.remove(host, false);
      if (!existing?.isDirectory()) await mkdir(host, 0o755);
      this.dirs.set(rel, { mode: e.mode, mtime: e.mtime });
      this.mark(rel);
      return;
    }
    if (e.type === 'char' || e.type === 'block' || e.type === 'fifo' || e.type === 'other') {
      (e.type === 'fifo' ? this.fifos : e.type === 'other' ? this.others : this.devices).push(`/${rel}${e.type === 'other' ? ` (type ${JSON.stringify(e.flag)})` : ''}`);
      return;
    }
    if (e.type === 'hardlink') {
      const tparts = this.components(e.linkname, what, 'hard link target');
      if (tparts.length === 0) throw new OciError(`${what}: hard link /${rel} names the root as its target`);
      const tparent = await this.dir(tparts.slice(0, -1), false, what);
      const target = tparent === undefined ? undefined : join(this.root, tparent, tparts[tparts.length - 1]!);
      const ts = target ? await lstat(target).catch(() => undefined) : undefined;
      if (!target || !ts) throw new OciError(`${what}: hard link /${rel} → /${tparts.join('/')}: the target does not exist in the layers applied so far`);
      if (ts.isDirectory()) throw new OciError(`${what}: hard link /${rel} → /${tparts.join('/')}: the target is a directory`);
      if (target === host) return;
      if (existing) await this.remove(host, existing.isDirectory());
      await link(target, host);
      this.mark(rel);
      return;
    }
    if (existing) await this.remove(host, existing.isDirectory());
    if (e.type === 'symlink') {
      await symlink(e.linkname, host);
      await lutimes(host, e.mtime, e.mtime).catch(() => {});
      this.mark(rel);
      return;
    }
    // Regular file: a new inode (never writing through an existing one a hard link may share).
    const fh = await open(host, 'wx', 0o600);
    try {
      for await (const c of body()) await fh.write(c);
      await fh.chmod(e.mode);
      await fh.utimes(e.mtime, e.mtime);
    } finally {
      await fh.close();
    }
    this.mark(rel);
  }
}
