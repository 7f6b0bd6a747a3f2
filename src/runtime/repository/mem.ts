/**
 * The mem repository (runtime.md §8): packages live only in memory and are gone when the
 * runtime stops.
 *
 * Like upstream, each NPK lives in a sealed memfd (no write, grow or shrink; no further
 * seals). Node has no memfd_create(2), so the upload is first streamed into a private
 * file (created 0600 in a 0700 directory made with mkdtemp), then copied by
 * native/build/northstar-memfd into a memfd it seals; the runtime opens that memfd
 * read-only through /proc/<helper>/fd/<n> and the tmpfs file is unlinked. From then on the
 * only reference is the runtime's read-only fd; verification, the NPK reader and the loop
 * device reach it through `/proc/<pid>/fd/<n>`, and not even root can change its bytes.
 * The private directory is removed at close. A crashed runtime leaves at most its directory
 * (with the file of an install that was under way); the directory name carries the pid,
 * and the next start removes directories whose process is gone.
 *
 * The private directories live in a directory only root can write (the runtime passes
 * `<run_dir>/mem`), never in a world-writable one like /dev/shm: there a local user could
 * plant a `northstar-mem-<pid>-…` tree for the start-up cleanup to delete as root. The
 * cleanup only takes real directories (lstat) owned by root with mode 0700 and removes them
 * with the no-follow helper (../fs-safe.ts).
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { lstat, mkdir, mkdtemp, open, readdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { compareContainers, type Container } from '../../common/container.js';
import { NorthstarError, SystemError, errorMessage, isSystemError } from '../../common/errors.js';
import { fdExhaustion } from '../../common/exec.js';
import { manifestContainer } from '../../manifest/index.js';
import { removeTree } from '../fs-safe.js';
import { capacityError, duplicateError, verifiedOpen } from './fs.js';
import { consumeExactly, Serial } from './stream.js';
import { storageError } from './storage-error.js';
import type { Log } from '../logger.js';
import type { ByteSource, Repository, RepositoryCapacity, RepositoryEntry } from './types.js';
import { failpoint } from '../../common/failpoint.js';

const DIR_PREFIX = 'northstar-mem-';

/** Root (or the runtime's own uid when it is not root: tests). */
const OWNER = process.geteuid?.() ?? 0;

/**
 * Directories of mem repositories whose runtime is gone (a crash in the middle of an
 * install leaves its file there): `northstar-mem-<pid>-…` with no process <pid>. Only real
 * directories (not symlinks) owned by root with mode 0700, as this module creates them,
 * are taken; anything else is left alone with a warning.
 */
async function removeStaleDirs(base: string, log: Log): Promise<void> {
  let names: string[];
  try {
    names = await readdir(base);
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    if (await alive(Number(m[1]))) continue; // another runtime's
    const path = join(base, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st) continue;
    if (!st.isDirectory() || st.uid !== OWNER || (st.mode & 0o7777) !== 0o700) {
      log.warn(`not removing ${path}: not a directory owned by uid ${OWNER} with mode 0700, so not one of ours`);
      continue;
    }
    log.warn(`removing ${path}, left over by a mem repository of a runtime that is gone`);
    await removeTree(path).catch((e: unknown) => log.error(`cannot remove ${path}: ${errorMessage(e)}`));
  }
}

/**
 * Whether process `pid` runs. A zombie does not: a runtime killed after its parent (the
 * process that waits for it, see mount/namespace.ts) is a zombie until its new parent reaps
 * it (for good where no reaping init runs), and its directory must still be taken.
 */
async function alive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  // pid (comm) STATE …: comm may hold spaces and parentheses, so the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/**
 * `base` must be a real directory owned by root and writable by no one else; it is
 * created (0700) if missing.
 */
async function checkBase(base: string, id: string): Promise<void> {
  try {
    await mkdir(base, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new NorthstarError('EREPOSITORY', `repository ${id}: cannot create ${base}: ${errorMessage(e)}`, { cause: e });
  }
  const st = await lstat(base);
  if (!st.isDirectory() || st.uid !== OWNER || (st.mode & 0o022) !== 0) {
    throw new NorthstarError(
      'EREPOSITORY',
      `repository ${id}: ${base} must be a directory owned by uid ${OWNER} and writable only by it ` +
        `(found ${st.isDirectory() ? `uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}` : 'no directory'})`,
    );
  }
}

/** The memfd helper could not be run: the system error (EMFILE, ENOENT, …) as it is, or EMEMFD. */
function helperError(e: unknown): NorthstarError {
  const fds = fdExhaustion((e as NodeJS.ErrnoException | undefined)?.code);
  const message = `cannot run ${MEMFD_HELPER}: ${fds ?? errorMessage(e)}`;
  return isSystemError(e) ? new SystemError(message, e) : new NorthstarError('EMEMFD', message, { cause: e });
}

/** native/build/northstar-memfd of this checkout. */
const MEMFD_HELPER = fileURLToPath(new URL('../../../../native/build/northstar-memfd', import.meta.url));

/**
 * Copy the upload into a sealed memfd (no write, grow or shrink, ever) through the C helper
 * and return a read-only handle on it: the package that is verified and later mounted can
 * then not be changed by anyone, root included.
 */
async function sealedCopy(file: string, size: number, name: string): Promise<FileHandle> {
  const input = await open(file, 'r');
  try {
    const child = spawn(MEMFD_HELPER, [name, String(size)], { stdio: [input.fd, 'pipe', 'pipe', 'pipe'] });
    // The error handler first: a spawn that fails for want of fds (EMFILE) has no stdio
    // streams and emits 'error' on the next tick, which unhandled would end the runtime.
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code));
    });
    if (!child.stdout || !child.stderr) {
      const e = await exited.then(
        () => new Error('no stdio'),
        (e: unknown) => e,
      );
      throw helperError(e);
    }
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const fdNumber = await new Promise<number>((resolve, reject) => {
        child.stdout!.on('data', () => {
          const m = /^(\d+)\n/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        void exited.then(
          (code) => reject(new NorthstarError('EMEMFD', `storing the package in a sealed memfd failed (${code}): ${err.trim() || 'no output'}`)),
          (e: unknown) => reject(helperError(e)),
        );
      });
      return await open(`/proc/${child.pid}/fd/${fdNumber}`, 'r');
    } finally {
      (child.stdio[3] as NodeJS.WritableStream | null)?.end();
      await exited.catch(() => undefined);
    }
  } finally {
    await input.close();
  }
}

export interface MemRepositoryOptions {
  id: string;
  key?: KeyObject | undefined;
  /** The key's file, for messages (`repositories.<id>.key`). */
  keyPath?: string | undefined;
  mountOnStart?: boolean | undefined;
  capacityNum?: number | undefined;
  capacitySize?: number | undefined;
  /**
   * The directory to create the private package directory in: one only root can write
   * (the runtime uses `<run_dir>/mem`); created 0700 if missing.
   */
  dir: string;
  log: Log;
}

interface MemEntry extends RepositoryEntry {
  /** The read-only handle that keeps the unlinked file alive. */
  handle: FileHandle;
  /** The fd number, for passing to a child process. */
  fd: number;
}

export class MemRepository implements Repository {
  readonly kind = 'mem' as const;
  private readonly entries = new Map<string, MemEntry>();
  private readonly serial = new Serial();
  private closed = false;

  private constructor(private readonly opts: MemRepositoryOptions, private readonly dir: string) {}

  static async open(opts: MemRepositoryOptions): Promise<MemRepository> {
    const base = opts.dir;
    await checkBase(base, opts.id);
    await removeStaleDirs(base, opts.log);
    let dir: string;
    try {
      dir = await mkdtemp(join(base, `${DIR_PREFIX}${process.pid}-${opts.id.replace(/[^A-Za-z0-9_-]/g, '_')}-`));
    } catch (e) {
      throw new NorthstarError('EREPOSITORY', `repository ${opts.id}: cannot create a private directory in ${base}: ${errorMessage(e)}`, { cause: e });
    }
    return new MemRepository(opts, dir);
  }

  get id(): string {
    return this.opts.id;
  }
  get verified(): boolean {
    return this.opts.key !== undefined;
  }
  get mountOnStart(): boolean {
    return this.opts.mountOnStart ?? false;
  }
  /** The private directory (empty except during an install). */
  get storageDir(): string {
    return this.dir;
  }

  list(): RepositoryEntry[] {
    return [...this.entries.values()].sort((a, b) => compareContainers(a.container, b.container));
  }

  get(container: Container): RepositoryEntry | undefined {
    return this.entries.get(container.toString());
  }

  /** The open fd holding a package, e.g. to hand to the C core. */
  fdOf(container: Container): number | undefined {
    return this.entries.get(container.toString())?.fd;
  }

  capacity(): RepositoryCapacity {
    let size = 0;
    for (const e of this.entries.values()) size += e.size;
    return { count: this.entries.size, size, capacityNum: this.opts.capacityNum, capacitySize: this.opts.capacitySize };
  }

  install(source: ByteSource, size: number): Promise<RepositoryEntry> {
    return this.serial.run(() => this.installSerial(source, size));
  }

  private async installSerial(source: ByteSource, size: number): Promise<RepositoryEntry> {
    const id = this.opts.id;
    if (this.closed) throw new NorthstarError('EREPOSITORY', `repository ${id} is closed`);
    if (!Number.isSafeInteger(size) || size < 0) throw new NorthstarError('EINSTALL', `install: invalid size ${size}`);
    const cap = this.capacity();
    let refusal: NorthstarError | undefined;
    if (cap.capacityNum !== undefined && cap.count >= cap.capacityNum) refusal = capacityError('max number of container reached');
    // Upstream: Σ + size >= capacity_size is refused (note: >=).
    else if (cap.capacitySize !== undefined && cap.size + size >= cap.capacitySize) refusal = capacityError('repository capacity limit reached');
    if (refusal) throw (await consumeExactly(source, size, undefined, refusal)).error;

    const file = join(this.dir, `${randomBytes(12).toString('hex')}.npk`);
    let writer: FileHandle | undefined;
    let reader: FileHandle | undefined;
    let linked = false;
    try {
      try {
        writer = await open(file, 'wx', 0o600);
        linked = true;
      } catch (e) {
        throw (await consumeExactly(source, size, undefined, storageError(id, this.dir, 'creating', file, e))).error;
      }
      const out = writer;
      const { error } = await consumeExactly(source, size, async (chunk) => {
        let off = 0;
        try {
          while (off < chunk.length) off += (await out.write(chunk, off, chunk.length - off)).bytesWritten;
        } catch (e) {
          throw storageError(id, this.dir, 'writing', file, e);
        }
        failpoint('install.mid-upload');
      });
      if (error) throw error;
      await writer.close();
      writer = undefined;
      failpoint('install.after-write');
      reader = await sealedCopy(file, size, `northstar-${id}`).catch((e: unknown) => {
        throw storageError(id, this.dir, 'sealing a copy of', file, e);
      });
      failpoint('install.after-seal');
      await unlink(file);
      linked = false;
      const path = `/proc/${process.pid}/fd/${reader.fd}`;
      // With a key: signature, hashes and the whole verity hash tree of the sealed copy.
      const npk = await verifiedOpen(path, this.opts.key, id, this.opts.keyPath).catch((e: unknown) => {
        throw storageError(id, this.dir, 'reading', file, e);
      });
      const container = manifestContainer(npk.manifest);
      if (this.entries.has(container.toString())) {
        throw duplicateError(id, container);
      }
      const entry: MemEntry = { container, npk, path, size, repository: id, handle: reader, fd: reader.fd };
      this.entries.set(container.toString(), entry);
      reader = undefined;
      return entry;
    } finally {
      if (writer) await writer.close().catch(() => undefined);
      if (reader) await reader.close().catch(() => undefined);
      if (linked) await unlink(file).catch(() => undefined);
    }
  }

  remove(container: Container): Promise<void> {
    return this.serial.run(async () => {
      const entry = this.entries.get(container.toString());
      if (!entry) throw new NorthstarError('ENOTINSTALLED', `repository ${this.id}: ${container} is not installed`);
      this.entries.delete(container.toString());
      await entry.handle.close();
    });
  }

  async close(): Promise<void> {
    await this.serial.run(async () => {
      this.closed = true;
      for (const e of this.entries.values()) await e.handle.close().catch(() => undefined);
      this.entries.clear();
      await removeTree(this.dir);
    });
  }
}
