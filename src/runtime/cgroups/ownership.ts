/**
 * Which cgroup directories this runtime made, so it never adopts, kills or removes one it
 * did not create, and so a crashed run's cgroups are removed at the next start.
 *
 * The record is `<run_dir>/cgroups.owned` (JSON): the boot id and, per directory made,
 * its path, device and inode number. An entry is written *before* the mkdir (pending: no
 * inode yet) and completed right after it. On a cgroup filesystem the inode number is the
 * kernfs node id, which is never reused within a boot, so path + device + inode + boot id
 * prove that a directory found later is the one we made and not one someone else made
 * under the same name since. Extended attributes would be nicer, but v1 cgroupfs supports
 * them only when mounted with `xattr`, so a record in the run directory works everywhere.
 *
 * Start-up cleanup (`cleanLeftovers`): for each entry of an earlier run in this boot,
 * deepest first:
 * - proven ours (inode matches): its tasks are SIGKILLed (they are the old run's
 *   containers) and the directory is removed;
 * - pending (the runtime died between record and mkdir, or right after the mkdir):
 *   removed only if empty (rmdir fails on a cgroup with tasks or children), never killed;
 * - gone or replaced (another inode): left alone and forgotten.
 * A record from another boot is dropped whole (the cgroups died with that boot).
 */
import { access, lstat, readdir, readFile, rename, rmdir, unlink, writeFile } from 'node:fs/promises';
import { errorMessage } from '../../common/errors.js';
import type { Log } from '../repository/types.js';

export const OWNERSHIP_FILE = 'cgroups.owned';

interface Entry {
  dir: string;
  /** Absent while pending (recorded before the mkdir). */
  dev?: number;
  ino?: number;
}

interface RecordFile {
  version: 1;
  boot: string;
  entries: Entry[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bootId(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return 'unknown';
  }
}

function parseRecord(text: string): RecordFile | undefined {
  try {
    const v = JSON.parse(text) as Partial<RecordFile>;
    if (v.version !== 1 || typeof v.boot !== 'string' || !Array.isArray(v.entries)) return undefined;
    const entries = v.entries.filter(
      (e): e is Entry =>
        typeof e === 'object' && e !== null && typeof e.dir === 'string' && e.dir.startsWith('/') &&
        (e.ino === undefined || (typeof e.ino === 'number' && typeof e.dev === 'number')),
    );
    return { version: 1, boot: v.boot, entries };
  } catch {
    return undefined;
  }
}

const depth = (dir: string) => dir.split('/').length;

/** Pids in a cgroup directory (cgroup.procs), empty when unreadable. */
async function tasks(dir: string): Promise<number[]> {
  const text = await readFile(`${dir}/cgroup.procs`, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim() !== '').map(Number);
}

/**
 * SIGKILL every task of a cgroup until it is empty; false on timeout. v2 `cgroup.kill`
 * kills the whole subtree, so it is used only when the cgroup has no child cgroups (a
 * child may be someone else's); otherwise each pid of `cgroup.procs` gets SIGKILL.
 */
export async function killCgroupTasks(dir: string, timeoutMs: number): Promise<boolean> {
  const killFile = `${dir}/cgroup.kill`;
  const children = (await readdir(dir, { withFileTypes: true }).catch(() => [])).some((e) => e.isDirectory());
  const hasKill = !children && (await access(killFile).then(() => true, () => false));
  const deadline = Date.now() + timeoutMs;
  let pids = await tasks(dir);
  while (pids.length > 0) {
    if (Date.now() > deadline) return false;
    if (hasKill) await writeFile(killFile, '1').catch(() => undefined);
    else {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    await sleep(10);
    pids = await tasks(dir);
  }
  return true;
}

/** rmdir, retrying EBUSY for a moment (a cgroup is busy briefly after its last task died). */
async function rmdirRetry(dir: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EBUSY' && i < 100) {
        await sleep(10);
        continue;
      }
      throw e;
    }
  }
}

export class CgroupOwnership {
  private readonly entries = new Map<string, Entry>();
  private saving: Promise<void> = Promise.resolve();

  private constructor(private readonly file: string | undefined, private readonly boot: string, private readonly log: Log) {}

  /**
   * The record of `runDir` (none: in memory only, no crash cleanup). Returns the record
   * and the entries an earlier run of this boot left.
   */
  static async open(runDir: string | undefined, log: Log): Promise<{ ownership: CgroupOwnership; leftovers: Entry[] }> {
    const boot = await bootId();
    const file = runDir === undefined ? undefined : `${runDir}/${OWNERSHIP_FILE}`;
    const o = new CgroupOwnership(file, boot, log);
    if (!file) return { ownership: o, leftovers: [] };
    const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') log.warn(`cgroup: cannot read ${file}: ${e.code ?? errorMessage(e)}`);
      return undefined;
    });
    if (text === undefined) return { ownership: o, leftovers: [] };
    const rec = parseRecord(text);
    if (!rec) {
      log.warn(`cgroup: ${file} is not a valid record; cgroups of an earlier run are not cleaned up`);
      return { ownership: o, leftovers: [] };
    }
    if (rec.boot !== boot) return { ownership: o, leftovers: [] };
    return { ownership: o, leftovers: rec.entries };
  }

  /** Whether `dir` is a directory this runtime made (path, device and inode match). */
  async owns(dir: string): Promise<boolean> {
    const e = this.entries.get(dir);
    if (!e || e.ino === undefined) return false;
    const st = await lstat(dir).catch(() => undefined);
    return st !== undefined && st.isDirectory() && st.ino === e.ino && st.dev === e.dev;
  }

  /** Record the intent to create `dir` (before the mkdir). */
  async intend(dir: string): Promise<void> {
    if (!this.entries.has(dir)) this.entries.set(dir, { dir });
    await this.save();
  }

  /** The mkdir of `dir` succeeded: record its identity. */
  async made(dir: string): Promise<void> {
    const st = await lstat(dir);
    this.entries.set(dir, { dir, dev: st.dev, ino: st.ino });
    await this.save();
  }

  /** `dir` is gone (or was never made): drop it. */
  async forget(dir: string): Promise<void> {
    if (!this.entries.delete(dir)) return;
    await this.save();
  }

  /**
   * Remove what an earlier run of this boot left (see the file comment). Entries that are
   * ours but cannot be removed yet stay recorded, so the next start tries again.
   */
  async cleanLeftovers(leftovers: Entry[], killTimeout: number): Promise<void> {
    if (leftovers.length === 0) {
      await this.save();
      return;
    }
    for (const e of [...leftovers].sort((a, b) => depth(b.dir) - depth(a.dir))) {
      const st = await lstat(e.dir).catch(() => undefined);
      if (!st) continue;
      if (e.ino === undefined) {
        // Not provably ours: only an empty directory is removed, nothing is killed.
        await rmdir(e.dir).then(
          () => this.log.info(`cgroup: removed empty ${e.dir} left by an earlier run`),
          (err: NodeJS.ErrnoException) => this.log.warn(`cgroup: ${e.dir} (recorded before it was made by an earlier run) is left alone: ${err.code ?? errorMessage(err)}`),
        );
        continue;
      }
      if (!st.isDirectory() || st.ino !== e.ino || st.dev !== e.dev) {
        this.log.warn(`cgroup: ${e.dir} was made again by someone else since an earlier run; it is left alone`);
        continue;
      }
      const pids = await tasks(e.dir);
      if (pids.length > 0) this.log.warn(`cgroup: killing ${pids.length} task(s) left by an earlier run in ${e.dir}`);
      const empty = await killCgroupTasks(e.dir, killTimeout);
      try {
        if (!empty) throw new Error(`tasks ${(await tasks(e.dir)).join(' ')} survived SIGKILL`);
        await rmdirRetry(e.dir);
        this.log.info(`cgroup: removed ${e.dir} left by an earlier run`);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        this.log.warn(`cgroup: cannot remove ${e.dir} left by an earlier run: ${code ?? errorMessage(err)}`);
        this.entries.set(e.dir, e);
      }
    }
    await this.save();
  }

  /** Write the record (tmp + rename), one write at a time; the file is removed when empty. */
  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const next = this.saving.then(async () => {
      const entries = [...this.entries.values()];
      try {
        if (entries.length === 0) {
          await unlink(file).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== 'ENOENT') throw e;
          });
          return;
        }
        const body: RecordFile = { version: 1, boot: this.boot, entries };
        await writeFile(`${file}.tmp`, JSON.stringify(body) + '\n', { mode: 0o600 });
        await rename(`${file}.tmp`, file);
      } catch (e) {
        this.log.warn(`cgroup: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
      }
    });
    this.saving = next;
    return next;
  }
}
