/**
 * `sextant build`: recipe → layers → signed NPK.
 *
 * The image is a stack of overlayfs layers in the build cache, each the upper directory of
 * one COPY or RUN step (so deletions are overlay whiteouts), on top of the FROM base. A
 * step's layer is stored under a key hashed from the previous key and the step's inputs
 * (instruction, ENV so far, and for COPY every source file's path, type, mode and content),
 * so an unchanged step is found again and not run. COPY writes through an overlay mount
 * with every path resolved inside the image; RUN executes in a container of our launch
 * core (uid 0, all capabilities, no seccomp, network host or a new empty namespace) whose
 * root is an overlay of the image so far with the new layer as upper; the host sees none
 * of it. The final image is a read-only overlay of all layers, packed with packNpk.
 */
import { imagePath } from '../common/image-path.js';
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, lchown, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile, chown } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { NorthstarError, ValidationError, errorMessage } from '../common/errors.js';
import { Launcher, LaunchError, type ContainerProcess, type ExitStatus } from '../launch/launcher.js';
import { MS, type LaunchPlan, type MountCall } from '../launch/plan.js';
import { CAPABILITY_NUMBERS, serializeManifest, type Manifest } from '../manifest/index.js';
import { packNpk, packTarget, type Compression, type PackResult } from '../npk/builder.js';
import { Npk } from '../npk/reader.js';
import { publicKeyBytes } from '../npk/keys.js';
import { checkStartable, initProblems, startProblems } from './check.js';
import { resolveBase, DEFAULT_DEBOOTSTRAP_CACHE, type Base } from './base.js';
import { formatOf, mergeManifest } from './manifest.js';
import { mountOverlay, umount } from '../runtime/mount/overlay.js';
import { impliedManifest, initInstruction, parseRecipe, RecipeError, type CommandForm, type Instruction } from './parse.js';

export const DEFAULT_CACHE_DIR = '/var/cache/northstar/recipe';
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Host devices bound into a RUN container (on empty files of the scaffold layer). */
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

/** A RUN step that did not exit with 0: `exitCode` is its code (128 + n for a signal n). */
export class BuildStepError extends NorthstarError {
  constructor(
    readonly step: number,
    readonly exitCode: number,
    message: string,
  ) {
    super('ESTEP', message);
    this.name = 'BuildStepError';
  }
}

export interface BuildOptions {
  /** The recipe file; COPY sources and FROM paths are relative to its directory. */
  recipe: string;
  /** The manifest file (-m) the recipe's implications are merged into. */
  manifest: string;
  key?: KeyObject | undefined;
  cacheDir?: string | undefined;
  debootstrapCache?: string | undefined;
  mirror?: string | undefined;
  /** Do not reuse cached steps (they are still stored) nor the previous NPK. */
  noCache?: boolean | undefined;
  /** After the build, remove every cached layer and extracted base this build did not use. */
  prune?: boolean | undefined;
  compression?: Compression | undefined;
  mtime?: number | undefined;
  /** Output file, or an existing directory for <name>-<version>.npk. */
  out: string;
  /** Every output line (step headers, RUN output prefixed with the step number). */
  log?: ((line: string) => void) | undefined;
  launcher?: Launcher | undefined;
  /** Aborts a running step (its container is killed) and the build. */
  signal?: AbortSignal | undefined;
}

export interface StepReport {
  step: number;
  op: Instruction['op'];
  /** A COPY or RUN whose layer came from the cache. */
  cached: boolean;
}

export interface BuildResult {
  npk: PackResult;
  manifest: Manifest;
  steps: StepReport[];
  /** Layer ids, lowest first. */
  layers: string[];
  /** Nothing that goes into the NPK changed: the previous one at the same path was kept. */
  reused: boolean;
  /** The step cache after the build (and after --prune). */
  cache: CacheUsage;
  /** What --prune removed. */
  pruned?: CacheUsage | undefined;
}

export interface CacheUsage {
  layers: number;
  bytes: number;
}

/** Disk usage of a tree (allocated blocks, not apparent size), never following symlinks. */
async function diskUsage(path: string): Promise<number> {
  const s = await lstat(path).catch(() => null);
  if (s === null) return 0;
  let total = s.blocks * 512;
  if (s.isDirectory()) for (const n of await readdir(path).catch(() => [] as string[])) total += await diskUsage(join(path, n));
  return total;
}

/** The stored layers and extracted NPK bases of a cache (temporary entries of running builds excluded). */
async function cacheEntries(cacheDir: string): Promise<{ layers: string[]; bases: string[] }> {
  const layers = (await readdir(join(cacheDir, 'layers')).catch(() => [] as string[])).filter((n) => !n.startsWith('tmp-'));
  const bases = (await readdir(join(cacheDir, 'bases')).catch(() => [] as string[])).filter((n) => (n.startsWith('npk-') || n.startsWith('oci-')) && !n.endsWith('.complete'));
  return { layers, bases };
}

async function cacheUsage(cacheDir: string): Promise<CacheUsage> {
  const { layers, bases } = await cacheEntries(cacheDir);
  let bytes = 0;
  for (const l of layers) bytes += await diskUsage(join(cacheDir, 'layers', l));
  for (const b of bases) bytes += await diskUsage(join(cacheDir, 'bases', b));
  return { layers: layers.length, bytes };
}

/** Remove every layer and NPK base not in `keep` (a build using them at the same time would lose them). */
async function pruneCache(cacheDir: string, keepLayers: readonly string[], keepBase: string): Promise<CacheUsage> {
  const { layers, bases } = await cacheEntries(cacheDir);
  const removed: CacheUsage = { layers: 0, bytes: 0 };
  for (const l of layers) {
    if (keepLayers.includes(l)) continue;
    const dir = join(cacheDir, 'layers', l);
    removed.bytes += await diskUsage(dir);
    removed.layers++;
    // The marker first: a half-removed layer is never taken for a complete one.
    await rm(join(dir, 'done'), { force: true });
    await rm(dir, { recursive: true, force: true });
  }
  for (const b of bases) {
    const dir = join(cacheDir, 'bases', b);
    if (dir === keepBase) continue;
    removed.bytes += await diskUsage(dir);
    await rm(`${dir}.complete`, { force: true });
    await rm(dir, { recursive: true, force: true });
  }
  return removed;
}

/** What a build records about the NPK it wrote, to reuse it when nothing changed. */
interface OutputRecord {
  packKey: string;
  path: string;
  sha256: string;
  size: number;
  fsImg: { offset: number; size: number };
  rootHash?: string | undefined;
}

async function sha256File(path: string): Promise<string> {
  const x = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) x.update(c as Buffer);
  return x.digest('hex');
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

const h = (...parts: string[]): string => {
  const x = createHash('sha256');
  for (const p of parts) x.update(`${p.length}:${p}`);
  return x.digest('hex').slice(0, 32);
};

// --- paths inside an image ----------------------------------------------------------------

/**
 * The host path of `path` inside the image mounted at `root`, following symlinks as the
 * container would see them (absolute targets are relative to `root`, `..` stops at it).
 * With `followLast` false, the last component itself is not followed. Missing directories
 * on the way are created when `create` is set.
 */
export async function resolveInRoot(root: string, path: string, opts: { followLast: boolean; create: boolean }): Promise<string> {
  const r = await imagePath(root, path, opts);
  if (!r.ok) throw new RecipeError(r.problem);
  return r.path;
}

// --- COPY -------------------------------------------------------------------------------

function globRegex(seg: string): RegExp {
  let re = '';
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = seg.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let cls = seg.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Expand one COPY source (globs per path component) to sorted absolute paths. */
async function expandSource(base: string, pattern: string, where: string): Promise<string[]> {
  if (pattern.startsWith('/')) throw new RecipeError(`${where}: COPY source ${pattern} must be relative to the recipe's directory`);
  const parts = pattern.split('/').filter((p) => p !== '' && p !== '.');
  let paths = [base];
  for (const part of parts) {
    const next: string[] = [];
    if (!/[*?[]/.test(part)) {
      for (const p of paths) next.push(join(p, part));
    } else {
      const re = globRegex(part);
      for (const p of paths) {
        const names = await readdir(p).catch(() => [] as string[]);
        for (const n of names.sort()) if (re.test(n) && (part.startsWith('.') || !n.startsWith('.'))) next.push(join(p, n));
      }
    }
    paths = next;
  }
  const out: string[] = [];
  for (const p of paths) {
    const rel = relative(base, p);
    if (rel === '..' || rel.startsWith(`..${sep}`)) throw new RecipeError(`${where}: COPY source ${pattern} lies outside the recipe's directory`);
    if (existsSync(p)) out.push(p);
  }
  if (out.length === 0) throw new RecipeError(`${where}: COPY source ${pattern} matches nothing in ${base}`);
  return out;
}

/** Hash of what a COPY reads: relative paths, types, modes, contents and link targets. */
async function sourcesHash(sources: string[]): Promise<string> {
  const x = createHash('sha256');
  const visit = async (p: string, name: string): Promise<void> => {
    const s = await lstat(p);
    x.update(`${name}\0${s.mode}\0`);
    if (s.isSymbolicLink()) x.update(`link:${await readlink(p)}\0`);
    else if (s.isDirectory()) {
      for (const n of (await readdir(p)).sort()) await visit(join(p, n), `${name}/${n}`);
    } else if (s.isFile()) {
      for await (const c of createReadStream(p, { highWaterMark: 1 << 20 })) x.update(c as Buffer);
      x.update('\0');
    } else throw new RecipeError(`COPY source ${p}: only files, directories and symlinks can be copied`);
  };
  for (const src of sources) {
    // The top-level source is followed (a symlink named on the line copies its target).
    const s = await stat(src);
    if (s.isDirectory()) await visit(src, '.');
    else {
      x.update(`${s.mode}\0`);
      for await (const c of createReadStream(src, { highWaterMark: 1 << 20 })) x.update(c as Buffer);
    }
    x.update(`\0${basename(src)}\0`);
  }
  return x.digest('hex');
}

interface Owner {
  uid: number;
  gid: number;
}

async function replaceFile(src: string, dst: string, mode: number, owner: Owner): Promise<void> {
  const s = await lstat(dst).catch(() => null);
  if (s?.isDirectory()) throw new RecipeError(`COPY: cannot replace the directory ${dst} with a file`);
  if (s) await rm(dst, { force: true });
  await copyFile(src, dst);
  await chown(dst, owner.uid, owner.gid);
  await chmod(dst, mode & 0o7777);
}

async function copyTree(srcDir: string, root: string, destPath: string, owner: Owner): Promise<void> {
  for (const n of (await readdir(srcDir)).sort()) {
    const src = join(srcDir, n);
    const s = await lstat(src);
    const dest = `${destPath}/${n}`;
    if (s.isDirectory()) {
      const host = await resolveInRoot(root, dest, { followLast: true, create: true });
      const d = await lstat(host).catch(() => null);
      if (d && !d.isDirectory()) await rm(host, { force: true });
      if (!d || !d.isDirectory()) await mkdir(host);
      await chown(host, owner.uid, owner.gid);
      await chmod(host, s.mode & 0o7777);
      await copyTree(src, root, dest, owner);
    } else {
      const host = await resolveInRoot(root, dest, { followLast: false, create: true });
      if (s.isSymbolicLink()) {
        const d = await lstat(host).catch(() => null);
        if (d?.isDirectory()) throw new RecipeError(`COPY: cannot replace the directory ${dest} with a symlink`);
        if (d) await rm(host, { force: true });
        await symlink(await readlink(src), host);
        await lchown(host, owner.uid, owner.gid);
      } else if (s.isFile()) {
        await replaceFile(src, host, s.mode, owner);
      } else {
        throw new RecipeError(`COPY source ${src}: only files, directories and symlinks can be copied`);
      }
    }
  }
}

/** Docker's COPY semantics: a directory source copies its contents; several sources or a trailing / make dest a directory. */
async function copyInto(root: string, sources: string[], dest: string, owner: Owner): Promise<void> {
  const destAbs = dest.startsWith('/') ? dest : `/${dest}`;
  const destHost = await resolveInRoot(root, destAbs, { followLast: true, create: true });
  const existing = await lstat(destHost).catch(() => null);
  const asDir = sources.length > 1 || dest.endsWith('/') || existing?.isDirectory() === true || (await Promise.all(sources.map((s) => stat(s)))).some((s) => s.isDirectory());
  if (asDir) {
    if (existing && !existing.isDirectory()) throw new RecipeError(`COPY: destination ${dest} exists in the image and is not a directory`);
    if (!existing) {
      await mkdir(destHost, { recursive: true });
      await chown(destHost, owner.uid, owner.gid);
    }
  }
  for (const src of sources) {
    const s = await stat(src);
    if (s.isDirectory()) await copyTree(src, root, destAbs, owner);
    else if (asDir) await replaceFile(src, await resolveInRoot(root, `${destAbs}/${basename(src)}`, { followLast: false, create: true }), s.mode, owner);
    else await replaceFile(src, destHost, s.mode, owner);
  }
}

// --- RUN --------------------------------------------------------------------------------

/** A layer with empty mount points for /proc and the devices, used on top of the image during RUN. */
async function scaffold(cacheDir: string): Promise<string> {
  const dir = join(cacheDir, 'scaffold');
  if (existsSync(join(dir, '.ready'))) return join(dir, 'root');
  const root = join(dir, 'root');
  await mkdir(join(root, 'proc'), { recursive: true });
  await mkdir(join(root, 'dev', 'shm'), { recursive: true });
  await mkdir(join(root, 'dev', 'pts'), { recursive: true });
  for (const d of DEVICES) await writeFile(join(root, 'dev', d), '');
  await writeFile(join(dir, '.ready'), '');
  return root;
}

function runMounts(): MountCall[] {
  const mounts: MountCall[] = [{ source: 'proc', target: 'proc', fstype: 'proc', flags: MS.NOSUID | MS.NODEV | MS.NOEXEC, data: null }];
  for (const d of DEVICES) mounts.push({ source: `/dev/${d}`, target: `dev/${d}`, fstype: null, flags: MS.BIND, data: null });
  mounts.push({ source: 'tmpfs', target: 'dev/shm', fstype: 'tmpfs', flags: MS.NOSUID | MS.NODEV, data: 'mode=1777' });
  mounts.push({ source: 'devpts', target: 'dev/pts', fstype: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: 'newinstance,ptmxmode=0666,mode=620' });
  return mounts;
}

async function findExecutable(root: string, name: string, env: Map<string, string>): Promise<string> {
  if (name.includes('/')) return name;
  for (const dir of (env.get('PATH') ?? DEFAULT_PATH).split(':')) {
    if (dir === '') continue;
    const p = `${dir}/${name}`;
    const host = await resolveInRoot(root, p, { followLast: true, create: false }).catch(() => null);
    if (host && existsSync(host)) return p;
  }
  throw new RecipeError(`RUN: ${name} is not found in PATH of the image`);
}

/** The image path of `name` in `path` (colon-separated) inside `root`: an executable regular file. */
async function findProgram(root: string, name: string, path: string): Promise<string | null> {
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/')) continue;
    const p = `${dir.replace(/\/+$/, '')}/${name}`;
    const host = await resolveInRoot(root, p, { followLast: true, create: false }).catch(() => null);
    const s = host === null ? null : await stat(host).catch(() => null);
    if (s !== null && s.isFile() && (s.mode & 0o111) !== 0) return p;
  }
  return null;
}

function lines(stream: Readable | null, out: (l: string) => void): Promise<void> {
  if (!stream) return Promise.resolve();
  return new Promise((res) => {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', out);
    rl.once('close', res);
    stream.once('error', () => rl.close());
  });
}

// --- the build --------------------------------------------------------------------------

export async function buildRecipe(opts: BuildOptions): Promise<BuildResult> {
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const recipePath = resolve(opts.recipe);
  const recipeDir = dirname(recipePath);
  const cacheDir = resolve(opts.cacheDir ?? DEFAULT_CACHE_DIR);
  const layersDir = join(cacheDir, 'layers');
  const text = await readFile(recipePath, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new RecipeError(`recipe ${opts.recipe}: ${e.code === 'ENOENT' ? 'no such file' : errorMessage(e)}`);
  });
  const recipe = parseRecipe(text, opts.recipe);
  for (const w of recipe.warnings) log(`warning: ${w}`);
  const manifestText = await readFile(opts.manifest, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new NorthstarError('EMANIFEST', `manifest ${opts.manifest}: ${e.code === 'ENOENT' ? 'no such file' : errorMessage(e)}`);
  });
  // Fails before anything runs if the result cannot be a valid manifest.
  const subject = `manifest ${opts.manifest} merged with ${opts.recipe}`;
  let manifest = mergeManifest(manifestText, formatOf(opts.manifest), impliedManifest(recipe), subject);
  // What the runtime would refuse at start, before any work. A bare program name of an exec
  // form ENTRYPOINT/CMD is resolved through the image's PATH once the image exists.
  const initIns = initInstruction(recipe);
  const program = initIns !== null && 'exec' in initIns.command ? initIns.command.exec[0]! : null;
  const bare = program !== null && !program.includes('/') ? program : null;
  if (initIns !== null && program !== null && !program.startsWith('/') && bare === null) {
    throw new RecipeError(`${opts.recipe}:${initIns.line}: ${initIns.op}: the program ${JSON.stringify(program)} must be an absolute path or a name found in the image's PATH (a container has no working directory)`);
  }
  const early = startProblems(manifest).filter((i) => !(bare !== null && i.path === 'init'));
  if (early.length > 0) throw new ValidationError(early, `${subject}: the runtime would refuse to start this container`);
  const out = await packTarget(opts.out, manifest.name, manifest.version);

  if (process.getuid?.() !== 0 && recipe.instructions.some((i) => i.op === 'COPY' || i.op === 'RUN')) {
    throw new NorthstarError('EPRIVILEGE', 'sextant build needs root for COPY and RUN steps (overlay mounts and the launch core)');
  }
  await mkdir(layersDir, { recursive: true });
  const empty = join(cacheDir, 'empty');
  await mkdir(empty, { recursive: true });
  const total = recipe.instructions.length;
  const from = recipe.instructions[0]!;
  if (from.op !== 'FROM') throw new RecipeError('the first instruction must be FROM');
  log(`Step 1/${total} : ${from.text}`);
  const base: Base = await resolveBase(from.source, {
    recipeDir,
    cacheDir,
    debootstrapCache: opts.debootstrapCache ?? DEFAULT_DEBOOTSTRAP_CACHE,
    mirror: opts.mirror,
    log: (l) => log(`[1] ${l}`),
  });
  let key = h('base', base.key);
  const layers: string[] = [];
  const env = new Map<string, string>([['PATH', DEFAULT_PATH], ['HOME', '/root']]);
  const steps: StepReport[] = [];
  let launcher = opts.launcher;
  let ownLauncher = false;
  /** Lowers for an overlay: layers topmost first (relative to layersDir), then the base. */
  const lowers = (): string[] => [...layers.map((l) => `${l}/diff`).reverse(), base.dir];

  const withLayer = async (n: number, ins: Instruction, stepKey: string, fill: (merged: string) => Promise<void>, extraTop: string[] = []): Promise<boolean> => {
    const done = join(layersDir, stepKey, 'done');
    if (!opts.noCache && existsSync(done)) {
      layers.push(stepKey);
      log(`[${n}] using the cached layer ${stepKey}`);
      return true;
    }
    const tmpId = `tmp-${randomBytes(8).toString('hex')}`;
    const tmp = join(layersDir, tmpId);
    await mkdir(join(tmp, 'diff'), { recursive: true });
    await mkdir(join(tmp, 'work'));
    await mkdir(join(tmp, 'merged'));
    let mounted = false;
    try {
      await mountOverlay(join(tmp, 'merged'), { lowers: [...extraTop, ...lowers()], upper: `${tmpId}/diff`, work: `${tmpId}/work`, cwd: layersDir });
      mounted = true;
      await fill(join(tmp, 'merged'));
      await umount(join(tmp, 'merged'));
      mounted = false;
      await rm(join(tmp, 'work'), { recursive: true, force: true });
      await rm(join(tmp, 'merged'), { recursive: true, force: true });
      await writeFile(join(tmp, 'step'), `${ins.text}\n`);
      // Another build with the same cache may have stored this step meanwhile (and may be
      // using it as a lower layer): keep that one and drop ours.
      if (!existsSync(done)) {
        await rm(join(layersDir, stepKey), { recursive: true, force: true });
        await rename(tmp, join(layersDir, stepKey));
        await writeFile(done, '');
      }
    } finally {
      if (mounted) await umount(join(tmp, 'merged')).catch((e: unknown) => log(`[${n}] cleanup: ${errorMessage(e)}`));
      await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    }
    layers.push(stepKey);
    return false;
  };

  try {
    for (let i = 1; i < total; i++) {
      if (opts.signal?.aborted) throw new NorthstarError('EABORT', 'build aborted');
      const n = i + 1;
      const ins = recipe.instructions[i]!;
      const where = `${opts.recipe}:${ins.line}`;
      log(`Step ${n}/${total} : ${ins.text}`);
      switch (ins.op) {
        case 'FROM':
          throw new RecipeError(`${where}: FROM may appear only once`);
        case 'ENV':
          for (const [k, v] of ins.env) env.set(k, v);
          key = h(key, 'ENV', JSON.stringify(ins.env));
          steps.push({ step: n, op: ins.op, cached: false });
          break;
        case 'ENTRYPOINT':
        case 'CMD':
        case 'USER':
          // Manifest only: the image does not change.
          steps.push({ step: n, op: ins.op, cached: false });
          break;
        case 'COPY': {
          const sources: string[] = [];
          for (const s of ins.sources) sources.push(...(await expandSource(recipeDir, s, where)));
          const owner = ins.chown ?? { uid: 0, gid: 0 };
          key = h(key, 'COPY', JSON.stringify({ dest: ins.dest, owner, n: ins.sources }), await sourcesHash(sources));
          const cached = await withLayer(n, ins, key, (merged) => copyInto(merged, sources, ins.dest, owner));
          steps.push({ step: n, op: ins.op, cached });
          break;
        }
        case 'RUN': {
          key = h(key, 'RUN', JSON.stringify(ins.command), ins.network, JSON.stringify([...env]));
          if (!launcher) {
            launcher = new Launcher();
            ownLauncher = true;
          }
          const l = launcher;
          const top = await scaffold(cacheDir);
          const cached = await withLayer(n, ins, key, (merged) => runStep(l, merged, n, ins.command, ins.network, env, log, opts.signal), [top]);
          steps.push({ step: n, op: ins.op, cached });
          break;
        }
      }
    }

    // Nothing that goes into the NPK changed (layers, base, manifest, key, packing options)
    // and the NPK written last time is still there, unmodified: keep it.
    const pathVar = env.get('PATH') ?? DEFAULT_PATH;
    const packKey = h(
      'pack',
      base.key,
      JSON.stringify(layers),
      serializeManifest(manifest),
      bare === null ? '' : `${bare}\0${pathVar}`,
      opts.key ? publicKeyBytes(createPublicKey(opts.key)).toString('hex') : 'unsigned',
      String(opts.compression ?? 'gzip'),
      String(opts.mtime ?? ''),
    );
    const recordPath = join(cacheDir, 'outputs', `${h('out', resolve(out))}.json`);
    const keep = layers.slice();
    const keepBase = base.dir;
    const finish = async (npk: PackResult, final: Manifest, reused: boolean): Promise<BuildResult> => {
      let pruned: CacheUsage | undefined;
      if (opts.prune) {
        pruned = await pruneCache(cacheDir, keep, keepBase);
        log(`Pruned the step cache: removed ${pruned.layers} layers, ${formatBytes(pruned.bytes)}`);
      }
      const cache = await cacheUsage(cacheDir);
      log(`Step cache ${cacheDir}: ${cache.layers} layers, ${formatBytes(cache.bytes)}${opts.prune ? '' : ' (sextant build --prune keeps only the layers of this build)'}`);
      return { npk, manifest: final, steps, layers, reused, cache, pruned };
    };
    if (!opts.noCache) {
      const rec = await readFile(recordPath, 'utf8')
        .then((t) => JSON.parse(t) as OutputRecord)
        .catch(() => null);
      if (rec !== null && rec.packKey === packKey && rec.path === resolve(out) && existsSync(out) && (await sha256File(out)) === rec.sha256) {
        const npkFile = await Npk.open(out).catch(() => null);
        if (npkFile !== null) {
          log(`Nothing changed since the last build: keeping ${out} (not repacked)`);
          const npk: PackResult = { path: out, size: rec.size, fsImg: rec.fsImg, ...(rec.rootHash ? { rootHash: Buffer.from(rec.rootHash, 'hex') } : {}) };
          return await finish(npk, npkFile.manifest, true);
        }
      }
    }

    // Pack a read-only view of all layers.
    const finalDir = join(cacheDir, `final-${randomBytes(6).toString('hex')}`);
    await mkdir(finalDir);
    let mounted = false;
    let npk: PackResult;
    try {
      let root = base.dir;
      if (layers.length > 0) {
        // Without an upper layer overlayfs needs two lowers at least.
        const all = lowers();
        await mountOverlay(finalDir, { lowers: all.length < 2 ? [...all, empty] : all, cwd: layersDir });
        mounted = true;
        root = finalDir;
      }
      if (bare !== null && initIns !== null) {
        const found = await findProgram(root, bare, pathVar);
        if (found === null) {
          throw new RecipeError(`${opts.recipe}:${initIns.line}: ${initIns.op}: ${bare} is not found in the image's PATH (${pathVar}); install it in a RUN step, write its absolute path, or set ENV PATH`);
        }
        log(`${initIns.op}: ${bare} is ${found} in the image`);
        manifest = { ...manifest, init: found } as Manifest;
      }
      const missing = await initProblems(manifest, root);
      if (missing.length > 0) {
        const where = initIns !== null ? `${opts.recipe}:${initIns.line}: ${initIns.op}: ` : `${opts.manifest}: `;
        throw new RecipeError(`${where}init: ${missing[0]!.rule.replace(/^init: /, '')}`);
      }
      await checkStartable(manifest, subject);
      log(`Packing ${manifest.name}:${manifest.version} into ${out}`);
      npk = await packNpk({ manifest, root, key: opts.key, out, compression: opts.compression, mtime: opts.mtime });
    } finally {
      if (mounted) await umount(finalDir).catch((e: unknown) => log(`cleanup: ${errorMessage(e)}`));
      await rm(finalDir, { recursive: true, force: true }).catch(() => undefined);
    }
    const record: OutputRecord = { packKey, path: resolve(out), sha256: await sha256File(out), size: npk.size, fsImg: npk.fsImg, rootHash: npk.rootHash?.toString('hex') };
    await mkdir(join(cacheDir, 'outputs'), { recursive: true });
    await writeFile(`${recordPath}.tmp`, JSON.stringify(record));
    await rename(`${recordPath}.tmp`, recordPath);
    return await finish(npk, manifest, false);
  } finally {
    if (ownLauncher) launcher?.close();
  }
}

/** Every capability this process may pass on (the bounding set of a container host can be smaller than all). */
async function permittedCapabilities(): Promise<number[]> {
  const status = await readFile('/proc/self/status', 'utf8');
  const hex = /^CapPrm:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  const prm = hex === undefined ? 0n : BigInt(`0x${hex}`);
  return [...new Set(Object.values(CAPABILITY_NUMBERS))].filter((c) => (prm >> BigInt(c)) & 1n).sort((a, b) => a - b);
}

async function runStep(
  launcher: Launcher,
  root: string,
  n: number,
  command: CommandForm,
  network: 'host' | 'none',
  env: Map<string, string>,
  log: (l: string) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const argv = 'shell' in command ? ['/bin/sh', '-c', command.shell] : command.exec;
  const path = await findExecutable(root, argv[0]!, env);
  const plan: LaunchPlan = {
    container: `sextant-build-step-${n}:0.0.0`,
    hostname: 'sextant-build',
    root,
    mounts: runMounts(),
    network: network === 'none' ? { mode: 'new' } : { mode: 'host' },
    uid: 0,
    gid: 0,
    groups: [],
    rlimits: [],
    sched: null,
    capabilities: await permittedCapabilities(),
    seccomp: { enabled: false, rules: [] },
    path,
    argv,
    envp: [...env].map(([k, v]) => `${k}=${v}`),
    cgroupProcs: [],
    console: false,
    sockets: [],
  };
  let proc: ContainerProcess;
  try {
    proc = await launcher.start(plan, { stdout: 'pipe', stderr: 'pipe' });
  } catch (e) {
    if (!(e instanceof LaunchError)) throw e;
    const hint = 'shell' in command && e.step === 'exec' && e.errnoName === 'ENOENT' ? ' (the shell form needs /bin/sh in the image; use the JSON form)' : '';
    throw new RecipeError(`step ${n}: ${e.step}: ${e.detail}${e.errnoName ? ` (${e.errnoName})` : ''}${hint}`, { cause: e });
  }
  const abort = () => proc.kill('SIGKILL');
  signal?.addEventListener('abort', abort);
  let status: ExitStatus | null;
  try {
    const out = Promise.all([lines(proc.stdout, (l) => log(`[${n}] ${l}`)), lines(proc.stderr, (l) => log(`[${n}] ${l}`))]);
    status = await proc.exited;
    await out;
  } finally {
    signal?.removeEventListener('abort', abort);
  }
  if (signal?.aborted) throw new NorthstarError('EABORT', `step ${n}: aborted`);
  if (status === null) throw new BuildStepError(n, 1, `step ${n}: the command did not start`);
  if ('signal' in status) throw new BuildStepError(n, 128 + status.signal, `step ${n}: ${argv.join(' ')} was killed by signal ${status.signal}`);
  if (status.code !== 0) throw new BuildStepError(n, status.code, `step ${n}: ${argv.join(' ')} failed with exit code ${status.code}`);
}
