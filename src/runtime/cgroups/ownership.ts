/**
 * Which cgroup directories this runtime made, so it never adopts, kills or removes one it
 * did not create, and so a crashed run's cgroups are removed at the next start.
 *
 * The record is `<run_dir>/cgroups.owned`: the boot id and, per directory made, its path,
 * device and inode number. An entry is written *before* the mkdir (pending: no inode yet)
 * and completed right after it. The file is a journal of JSON lines, appended to through
 * one open file (a start of a container costs two small appends per hierarchy, no rename):
 * a header line `{"version":2,"boot":…}`, then `{"intend":dir}`, `{"made":dir,"dev":…,
 * "ino":…}` and `{"forget":dir}` lines. It is rewritten whole (tmp + rename) at start-up
 * and after every JOURNAL_LIMIT appends, and removed when nothing is recorded. A torn last
 * line (a crash in the middle of an append) is ignored; the entry it would have changed
 * stays pending or complete, which the inode check below makes safe either way. On a cgroup filesystem the inode number is the
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
import { access, lstat, open, readdir, readFile, rename, rmdir, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { errorMessage } from '../../common/errors.js';
import type { Log } from '../logger.js';

export const OWNERSHIP_FILE = 'cgroups.owned';

interface Entry {
  dir: string;
  /** Absent while pending (recorded before the mkdir). */
  dev?: number;
  ino?: number;
}

interface RecordFile {
  boot: string;
  entries: Entry[];
}

/** Appends after which the journal is rewritten whole. */
const JOURNAL_LIMIT = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bootId(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return 'unknown';
  }
}

const isEntry = (e: unknown): e is Entry =>
  typeof e === 'object' && e !== null && typeof (e as Entry).dir === 'string' && (e as Entry).dir.startsWith('/') &&
  ((e as Entry).ino === undefined || (typeof (e as Entry).ino === 'number' && typeof (e as Entry).dev === 'number'));

/** The journal (or a version-1 record, one JSON object); undefined when it is neither. */
function parseRecord(text: string): RecordFile | undefined {
  const lines = text.split('\n');
  let header: unknown;
  try {
    header = JSON.parse(lines[0]!);
  } catch {
    try {
      header = JSON.parse(text);
    } catch {
      return undefined;
    }
  }
  if (typeof header !== 'object' || header === null) return undefined;
  const h = header as { version?: unknown; boot?: unknown; entries?: unknown };
  if (typeof h.boot !== 'string') return undefined;
  if (h.version === 1) return Array.isArray(h.entries) ? { boot: h.boot, entries: h.entries.filter(isEntry) } : undefined;
  if (h.version !== 2) return undefined;
  const entries = new Map<string, Entry>();
  for (const line of lines.slice(1)) {
    if (line === '') continue;
    let op: Record<string, unknown>;
    try {
      op = JSON.parse(line) as Record<string, unknown>;
    } catch {
      break; // a torn append: only the last line can be one
    }
    if (typeof op['intend'] === 'string') {
      if (!entries.has(op['intend'])) entries.set(op['intend'], { dir: op['intend'] });
    } else if (typeof op['made'] === 'string') {
      entries.set(op['made'], { dir: op['made'], dev: op['dev'] as number, ino: op['ino'] as number });
    } else if (typeof op['forget'] === 'string') {
      entries.delete(op['forget']);
    }
  }
  return { boot: h.boot, entries: [...entries.values()].filter(isEntry) };
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
  /** The journal, open for appends; undefined until the first snapshot and when empty. */
  private journal: FileHandle | undefined;
  private appended = 0;

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

  /** Record the intent to create these directories (before their mkdir): one write. */
  async intend(...dirs: string[]): Promise<void> {
    const fresh = dirs.filter((d) => !this.entries.has(d));
    for (const dir of fresh) this.entries.set(dir, { dir });
    if (fresh.length > 0) await this.save(fresh.map((dir) => ({ intend: dir })));
  }

  /** The mkdir of these directories succeeded: record their identity (one write). */
  async made(...dirs: string[]): Promise<void> {
    const changes: Record<string, unknown>[] = [];
    for (const dir of dirs) {
      const st = await lstat(dir);
      this.entries.set(dir, { dir, dev: st.dev, ino: st.ino });
      changes.push({ made: dir, dev: st.dev, ino: st.ino });
    }
    if (changes.length > 0) await this.save(changes);
  }

  /** These directories are gone (or were never made): drop them (one write). */
  async forget(...dirs: string[]): Promise<void> {
    const gone = dirs.filter((d) => this.entries.delete(d));
    if (gone.length > 0) await this.save(gone.map((dir) => ({ forget: dir })));
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

  /**
   * Record a change already made to `entries`: one append to the journal, or a rewrite of
   * the whole record (the first time, every JOURNAL_LIMIT appends, when it becomes empty,
   * and after a failed append). One write at a time, in order.
   */
  private save(changes?: Record<string, unknown>[]): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const next = this.saving.then(async () => {
      try {
        if (changes && this.journal && this.entries.size > 0 && this.appended < JOURNAL_LIMIT) {
          try {
            // One write of whole lines: a crash can only tear the last one.
            await this.journal.write(changes.map((c) => JSON.stringify(c) + '\n').join(''));
            this.appended += changes.length;
            return;
          } catch (e) {
            this.log.warn(`cgroup: cannot append to ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}; rewriting it`);
          }
        }
        await this.rewrite(file);
      } catch (e) {
        this.log.warn(`cgroup: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
      }
    });
    this.saving = next;
    return next;
  }

  /** Close the journal (what is recorded stays on disk for the next start). */
  async close(): Promise<void> {
    await this.saving;
    const j = this.journal;
    this.journal = undefined;
    await j?.close().catch(() => undefined);
  }

  /** The whole record as a fresh journal (tmp + rename), or no file when nothing is recorded. */
  private async rewrite(file: string): Promise<void> {
    const old = this.journal;
    this.journal = undefined;
    this.appended = 0;
    await old?.close().catch(() => undefined);
    if (this.entries.size === 0) {
      await unlink(file).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      return;
    }
    const lines = [JSON.stringify({ version: 2, boot: this.boot })];
    for (const e of this.entries.values()) {
      lines.push(JSON.stringify(e.ino === undefined ? { intend: e.dir } : { made: e.dir, dev: e.dev, ino: e.ino }));
    }
    await writeFile(`${file}.tmp`, lines.join('\n') + '\n', { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    this.journal = await open(file, 'a');
  }
}
