/**
 * The image a recipe starts FROM: an empty directory (scratch), a host directory (used
 * read-only as the lowest overlay layer), the image of an NPK (extracted once with our
 * squashfs reader into the build cache), an OCI image (its layers applied once into the
 * build cache, by digest) or a Debian root made by debootstrap once per suite and
 * architecture and reused from then on.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile, mkdtemp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { errorMessage } from '../common/errors.js';
import { Npk } from '../npk/reader.js';
import { SquashfsImage } from '../npk/squashfs/reader.js';
import { FROM_FORMS, RecipeError, type FromSource } from './parse.js';
import { checkOverlayPath } from '../runtime/mount/overlay.js';
import { openImage, parseImageRef } from '../oci/image.js';
import { extractImage } from '../oci/extract.js';

export interface Base {
  /** Absolute directory: the lowest layer. */
  dir: string;
  /** Identifies the content for the step cache. */
  key: string;
  describe: string;
}

export const DEFAULT_DEBOOTSTRAP_CACHE = '/var/cache/northstar/debootstrap';

async function fileHash(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}

/** A directory's identity: every entry's path, type, mode, owner, size and mtime (not contents). */
async function treeHash(dir: string): Promise<string> {
  const h = createHash('sha256');
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(dir, rel))).sort();
    for (const n of names) {
      const p = rel === '' ? n : `${rel}/${n}`;
      const s = await lstat(join(dir, p));
      h.update(`${p}\0${s.mode}\0${s.uid}\0${s.gid}\0${s.size}\0${s.mtimeMs}\0`);
      if (s.isSymbolicLink()) h.update(await readlink(join(dir, p)));
      else if (s.isDirectory()) await walk(p);
    }
  };
  await walk('');
  return h.digest('hex');
}

export interface BaseOptions {
  recipeDir: string;
  cacheDir: string;
  debootstrapCache: string;
  log: (line: string) => void;
  /** Mirror for debootstrap; default: the first Debian URI of apt's sources. */
  mirror?: string | undefined;
}

export async function resolveBase(source: FromSource, o: BaseOptions): Promise<Base> {
  switch (source.kind) {
    case 'scratch': {
      const dir = join(o.cacheDir, 'empty');
      await mkdir(dir, { recursive: true });
      return { dir, key: 'scratch', describe: 'scratch' };
    }
    case 'debian':
      return debianBase(source.suite, o);
    case 'oci':
      return ociBase(source.image, o);
    case 'path': {
      const p = resolve(o.recipeDir, source.path);
      const s = await stat(p).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') {
          throw new RecipeError(`FROM ${source.path}: no such file or directory (FROM accepts ${FROM_FORMS})`);
        }
        throw new RecipeError(`FROM ${source.path}: ${errorMessage(e)}`);
      });
      if (s.isDirectory()) {
        checkOverlayPath(p, 'FROM directory');
        return { dir: p, key: `dir:${p}:${await treeHash(p)}`, describe: `directory ${p}` };
      }
      if (!s.isFile()) throw new RecipeError(`FROM ${source.path}: neither a directory nor an NPK file`);
      return npkBase(p, o);
    }
  }
}

async function npkBase(path: string, o: BaseOptions): Promise<Base> {
  const hash = await fileHash(path);
  const dir = join(o.cacheDir, 'bases', `npk-${hash.slice(0, 32)}`);
  if (!existsSync(`${dir}.complete`)) {
    let npk: Npk;
    try {
      npk = await Npk.open(path);
    } catch (e) {
      throw new RecipeError(`FROM ${path}: not a readable NPK: ${errorMessage(e)}`, { cause: e });
    }
    await mkdir(join(o.cacheDir, 'bases'), { recursive: true });
    const tmp = await mkdtemp(join(o.cacheDir, 'bases', 'tmp-'));
    try {
      const size = npk.verity ? npk.verity.dataSize : npk.fsImg.size;
      const img = await SquashfsImage.open(path, { offset: npk.fsImg.offset, size });
      try {
        const { warnings } = await img.extract(join(tmp, 'root'));
        for (const w of warnings) o.log(`warning: ${w}`);
      } finally {
        await img.close();
      }
      await rm(dir, { recursive: true, force: true });
      await rename(join(tmp, 'root'), dir);
      await writeFile(`${dir}.complete`, '');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return { dir, key: `npk:${hash}`, describe: `NPK ${path}` };
}

/**
 * An OCI image (oci:, oci-archive:, docker-archive:; a relative path is relative to the
 * recipe): its layers applied once into the build cache under the image's digest (the
 * manifest's; docker-archive: the config's), so every build of the same image reuses it.
 * Only the root is taken: the image config (Entrypoint, Env, User) is not inherited.
 */
async function ociBase(text: string, o: BaseOptions): Promise<Base> {
  let image;
  try {
    const ref = parseImageRef(text);
    if (!ref) throw new RecipeError(`FROM ${text}: expected ${FROM_FORMS}`);
    image = await openImage({ ...ref, path: resolve(o.recipeDir, ref.path) });
  } catch (e) {
    if (e instanceof RecipeError) throw e;
    throw new RecipeError(`FROM ${text}: ${errorMessage(e)}`, { cause: e });
  }
  try {
    const id = image.digest.replace(':', '-').slice(0, 7 + 64);
    const dir = join(o.cacheDir, 'bases', `oci-${id}`);
    if (!existsSync(`${dir}.complete`)) {
      o.log(`FROM ${text}: applying ${image.layers.length} layers of ${image.digest} (${image.platform.os}/${image.platform.architecture}); cached in ${dir}`);
      await mkdir(join(o.cacheDir, 'bases'), { recursive: true });
      const tmp = await mkdtemp(join(o.cacheDir, 'bases', 'tmp-'));
      try {
        await extractImage(image, join(tmp, 'root'), (w) => o.log(`warning: ${w}`)).catch((e: unknown) => {
          throw new RecipeError(`FROM ${text}: ${errorMessage(e)}`, { cause: e });
        });
        await rm(dir, { recursive: true, force: true });
        await rename(join(tmp, 'root'), dir);
        await writeFile(`${dir}.complete`, '');
      } finally {
        await rm(tmp, { recursive: true, force: true });
      }
    } else {
      o.log(`FROM ${text}: using the cached root of ${image.digest}`);
    }
    checkOverlayPath(dir, 'FROM image');
    return { dir, key: `oci:${image.digest}`, describe: `OCI image ${text} (${image.digest})` };
  } finally {
    await image.close();
  }
}

/** The first Debian mirror of apt's configuration (deb822 .sources or sources.list). */
export async function aptMirror(): Promise<string> {
  const texts: string[] = [];
  for (const d of ['/etc/apt/sources.list.d']) {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const n of names.sort()) if (n.endsWith('.sources') || n.endsWith('.list')) texts.push(await readFile(join(d, n), 'utf8').catch(() => ''));
  }
  texts.push(await readFile('/etc/apt/sources.list', 'utf8').catch(() => ''));
  for (const t of texts) {
    for (const m of t.matchAll(/^\s*URIs:\s*(\S+)/gm)) if (!m[1]!.includes('security')) return m[1]!;
    for (const m of t.matchAll(/^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/gm)) if (!m[1]!.includes('security')) return m[1]!;
  }
  return 'http://deb.debian.org/debian';
}

function debArch(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'armhf', ia32: 'i386', riscv64: 'riscv64', ppc64: 'ppc64el', s390x: 's390x' };
  return map[process.arch] ?? process.arch;
}

function runLogged(cmd: string, args: string[], log: (l: string) => void): Promise<number> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    const onData = (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        log(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (e) => reject(new RecipeError(`${cmd}: ${errorMessage(e)}`, { cause: e })));
    child.once('close', (code, signal) => {
      if (buf) log(buf);
      resolveRun(code ?? (signal ? 128 : 1));
    });
  });
}

/** The cached Debian root of `suite` for this architecture; made with debootstrap when missing. */
export async function debianBase(suite: string, o: BaseOptions): Promise<Base> {
  const arch = debArch();
  const dir = join(o.debootstrapCache, `${suite}-${arch}`);
  const marker = `${dir}.complete`;
  if (!existsSync(marker)) {
    await mkdir(o.debootstrapCache, { recursive: true });
    const tmp = await mkdtemp(join(o.debootstrapCache, `.${suite}-${arch}-`));
    try {
      const mirror = o.mirror ?? (await aptMirror());
      o.log(`debian:${suite}: debootstrap --variant=minbase ${suite} (${arch}) from ${mirror}; this runs once, the result is cached in ${dir}`);
      const code = await runLogged('debootstrap', ['--variant=minbase', `--arch=${arch}`, suite, tmp, mirror], o.log);
      if (code !== 0) throw new RecipeError(`debian:${suite}: debootstrap failed with exit code ${code}`);
      await rm(dir, { recursive: true, force: true });
      await rename(tmp, dir);
      await writeFile(marker, `${new Date().toISOString()} ${suite} ${arch}\n`);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  } else {
    o.log(`debian:${suite}: using the cached root ${dir}`);
  }
  checkOverlayPath(dir, 'debian base');
  return { dir, key: `debian:${suite}:${arch}:${(await readFile(marker, 'utf8')).trim()}`, describe: `debian:${suite} (${dir})` };
}
