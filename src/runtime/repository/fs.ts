/**
 * The fs repository: a directory of `<name>:<version>.npk` files (runtime.md §8, with
 * the fixes of spec README item 11).
 *
 * - At open, every `*.npk` is loaded in parallel (with the repository key, or trusted).
 *   A package that fails is logged and skipped, never fatal. Temp files of an
 *   interrupted install (`.tmp-*.npk`) are removed. Other files are ignored.
 * - Install streams into `.tmp-<random>.npk` in the same directory, verifies it with
 *   `Npk.open` (with a key: signature, hashes and the whole verity hash tree of fs.img,
 *   see `verifiedOpen`), refuses a same-repository duplicate and renames it atomically to
 *   `<name>:<version>.npk`. A reader of the directory never sees a partial package: the
 *   temp name is not a package name, and rename(2) within one directory is atomic.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { open, readdir, rename, stat, unlink, mkdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { compareContainers, type Container } from '../../common/container.js';
import { NorthstarError, NpkError, SystemError, errorMessage, isSystemError } from '../../common/errors.js';
import { within } from '../../common/paths.js';
import { manifestContainer } from '../../manifest/index.js';
import { Npk } from '../../npk/reader.js';
import { consumeExactly, Serial } from './stream.js';
import { storageError } from './storage-error.js';
import type { Log } from '../logger.js';
import type { ByteSource, Repository, RepositoryCapacity, RepositoryEntry } from './types.js';
import { failpoint } from '../../common/failpoint.js';

export const TEMP_PREFIX = '.tmp-';
const LOAD_PARALLELISM = 8;

export interface FsRepositoryOptions {
  id: string;
  dir: string;
  key?: KeyObject | undefined;
  /** The key's file, for messages (`repositories.<id>.key`). */
  keyPath?: string | undefined;
  mountOnStart?: boolean | undefined;
  capacityNum?: number | undefined;
  capacitySize?: number | undefined;
  log: Log;
}

/** Run `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function capacityError(message: string): NorthstarError {
  return new NorthstarError('ECAPACITY', message);
}

export class FsRepository implements Repository {
  readonly kind = 'fs' as const;
  private readonly entries = new Map<string, RepositoryEntry>();
  private readonly serial = new Serial();

  private constructor(private readonly opts: FsRepositoryOptions) {}

  get id(): string {
    return this.opts.id;
  }
  get verified(): boolean {
    return this.opts.key !== undefined;
  }
  get mountOnStart(): boolean {
    return this.opts.mountOnStart ?? false;
  }
  get dir(): string {
    return this.opts.dir;
  }

  /** Create the directory if needed, clean temp files and load every package. */
  static async open(opts: FsRepositoryOptions): Promise<FsRepository> {
    const repo = new FsRepository(opts);
    await repo.load();
    return repo;
  }

  private async load(): Promise<void> {
    const { dir, log, id } = this.opts;
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new NorthstarError('EREPOSITORY', `repository ${id}: cannot create ${dir}: ${errorMessage(e)}`, { cause: e });
    }
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch (e) {
      throw new NorthstarError('EREPOSITORY', `repository ${id}: cannot read ${dir}: ${errorMessage(e)}`, { cause: e });
    }
    const candidates: string[] = [];
    for (const name of names) {
      const path = join(dir, name);
      if (name.startsWith(TEMP_PREFIX)) {
        log.warn(`repository ${id}: removing ${path}, left over by an interrupted install`);
        await unlink(path).catch((e: unknown) => log.error(`repository ${id}: cannot remove ${path}: ${errorMessage(e)}`));
      } else if (name.endsWith('.npk')) candidates.push(name);
      else log.debug(`repository ${id}: ignoring ${path} (not an .npk file)`);
    }
    const loaded = await mapLimit(candidates, LOAD_PARALLELISM, async (name) => {
      const path = join(dir, name);
      try {
        const st = await stat(path);
        if (!st.isFile()) {
          log.warn(`repository ${id}: skipping ${path}: not a regular file`);
          return undefined;
        }
        const npk = await Npk.open(path, { key: this.opts.key, keyName: keyName(id, this.opts.keyPath) });
        return { container: manifestContainer(npk.manifest), npk, path, size: st.size, repository: id } satisfies RepositoryEntry;
      } catch (e) {
        log.error(`repository ${id}: skipping ${path}: ${errorMessage(e)}`);
        return undefined;
      }
    });
    for (const entry of loaded) {
      if (!entry) continue;
      const key = entry.container.toString();
      const have = this.entries.get(key);
      if (have) {
        log.warn(`repository ${id}: skipping ${entry.path}: ${key} is already loaded from ${have.path}`);
        continue;
      }
      this.entries.set(key, entry);
    }
    log.info(`repository ${id}: loaded ${this.entries.size} package(s) from ${dir}`);
  }

  list(): RepositoryEntry[] {
    return [...this.entries.values()].sort((a, b) => compareContainers(a.container, b.container));
  }

  get(container: Container): RepositoryEntry | undefined {
    return this.entries.get(container.toString());
  }

  capacity(): RepositoryCapacity {
    let size = 0;
    for (const e of this.entries.values()) size += e.size;
    return { count: this.entries.size, size, capacityNum: this.opts.capacityNum, capacitySize: this.opts.capacitySize };
  }

  /** The refusal due before any byte is stored, or undefined. */
  private capacityRefusal(size: number): NorthstarError | undefined {
    const cap = this.capacity();
    if (cap.capacityNum !== undefined && cap.count >= cap.capacityNum) return capacityError('max number of container reached');
    if (cap.capacitySize !== undefined && (cap.size >= cap.capacitySize || cap.size + size > cap.capacitySize)) {
      return capacityError('size limit reached');
    }
    return undefined;
  }

  install(source: ByteSource, size: number): Promise<RepositoryEntry> {
    return this.serial.run(() => this.installSerial(source, size));
  }

  private async installSerial(source: ByteSource, size: number): Promise<RepositoryEntry> {
    const { dir, id } = this.opts;
    if (!Number.isSafeInteger(size) || size < 0) throw new NorthstarError('EINSTALL', `install: invalid size ${size}`);
    const refusal = this.capacityRefusal(size);
    if (refusal) {
      const { error } = await consumeExactly(source, size, undefined, refusal);
      throw error;
    }
    const tmp = join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}.npk`);
    let fh: FileHandle | undefined;
    let keep = false;
    try {
      try {
        fh = await open(tmp, 'wx', 0o644);
      } catch (e) {
        const { error } = await consumeExactly(source, size, undefined, storageError(id, dir, 'creating', tmp, e));
        throw error;
      }
      const out = fh;
      const { error } = await consumeExactly(source, size, async (chunk) => {
        let off = 0;
        try {
          while (off < chunk.length) off += (await out.write(chunk, off, chunk.length - off)).bytesWritten;
        } catch (e) {
          throw storageError(id, dir, 'writing', tmp, e);
        }
        failpoint('install.mid-upload');
      });
      if (error) throw error;
      // The fsync (disk) runs while the package is checked (CPU, reading the page cache).
      const synced = fh.sync().then(
        () => undefined,
        (e: unknown) => e,
      );
      const opened = await verifiedOpen(tmp, this.opts.key, id, this.opts.keyPath).then(
        (npk) => ({ npk }),
        (e: unknown) => ({ error: e }),
      );
      const syncError = await synced;
      if ('error' in opened) throw storageError(id, dir, 'reading', tmp, opened.error);
      if (syncError !== undefined) throw storageError(id, dir, 'syncing', tmp, syncError);
      const npk = opened.npk;
      await fh.close();
      fh = undefined;
      const container = manifestContainer(npk.manifest);
      if (this.entries.has(container.toString())) {
        throw duplicateError(id, container);
      }
      const path = within(dir, `${container}.npk`, 'name');
      failpoint('install.after-write');
      await rename(tmp, path).catch((e: unknown) => {
        throw storageError(id, dir, 'renaming', tmp, e);
      });
      keep = true;
      failpoint('install.after-rename');
      // Re-open from the final path so the Npk (and its verifyImage) reads where it lives.
      let final: Npk;
      try {
        final = await Npk.open(path, { key: this.opts.key });
      } catch (e) {
        await unlink(path).catch(() => undefined);
        throw storageError(id, dir, 'reading', path, e);
      }
      await syncDir(dir);
      const entry: RepositoryEntry = { container, npk: final, path, size, repository: id };
      this.entries.set(container.toString(), entry);
      return entry;
    } finally {
      if (fh) await fh.close().catch(() => undefined);
      if (!keep) await unlink(tmp).catch(() => undefined);
    }
  }

  remove(container: Container): Promise<void> {
    return this.serial.run(async () => {
      const entry = this.entries.get(container.toString());
      if (!entry) throw new NorthstarError('ENOTINSTALLED', `repository ${this.id}: ${container} is not installed`);
      try {
        await unlink(entry.path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          const message = `repository ${this.id}: cannot remove ${entry.path}: ${errorMessage(e)}`;
          throw isSystemError(e) ? new SystemError(message, e) : new NorthstarError('EREPOSITORY', message, { cause: e });
        }
      }
      this.entries.delete(container.toString());
      await syncDir(this.opts.dir);
    });
  }

  async close(): Promise<void> {
    await this.serial.run(async () => {
      this.entries.clear();
    });
  }
}

/**
 * Open an uploaded package with the repository key and, with a key, verify the whole
 * verity hash tree of fs.img against the signed root hash, so a package with a corrupt or
 * tampered image is refused at install instead of failing at its first mount. The mount
 * checks again (the file could change on disk in between). Without a key (a trusted
 * repository) only the layout and the manifest are checked, like upstream.
 */
export async function verifiedOpen(path: string, key: KeyObject | undefined, repository: string, keyPath?: string): Promise<Npk> {
  // Messages name the upload and the key the repository trusts, never the temporary file
  // (a path in the repository, or /proc/<pid>/fd/<n> of a mem repository's sealed copy).
  let npk: Npk;
  try {
    npk = await Npk.open(path, { key, name: 'the uploaded package', keyName: keyName(repository, keyPath) });
  } catch (e) {
    if (e instanceof NpkError) throw new NpkError(e.code, `repository ${repository}: package refused: ${e.message}`, { cause: e });
    throw e;
  }
  if (npk.verity) {
    try {
      await npk.verifyImage();
    } catch (e) {
      if (e instanceof NpkError) throw new NpkError(e.code, `repository ${repository}: package ${manifestContainer(npk.manifest)} refused: ${e.message}`, { cause: e });
      throw e;
    }
  }
  return npk;
}

/** How messages name a repository's key: its file and the config key that names it. */
function keyName(repository: string, keyPath: string | undefined): string | undefined {
  return keyPath === undefined ? undefined : `${keyPath} (repositories.${repository}.key)`;
}

/** A package already in this repository (upstream answers `unexpected`; the text is ours). */
export function duplicateError(repository: string, container: Container): NorthstarError {
  return new NorthstarError('EDUPLICATE', `repository ${repository}: ${container} is already installed: uninstall it first, or give the new package another version`);
}

/** fsync a directory so a rename or unlink survives a power cut. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; durability is then best effort.
  } finally {
    await fh.close();
  }
}
