/**
 * With `cgroups.prepare` (the default), a mounted container's cgroup directory is made again
 * after each exit, ready for its next start. "The run's cgroup is gone" therefore means: the
 * directory is absent, or it is another directory (not the inode the run had) with no task.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

/** The inode of a cgroup directory (undefined when absent): taken while a run holds it. */
export function cgroupIno(dir: string): number | undefined {
  return statSync(dir, { throwIfNoEntry: false })?.ino;
}

/** Whether the cgroup `dir` of a run (inode `runIno`, if known) is gone: absent, or a fresh empty one. */
export function runCgroupGone(dir: string, runIno?: number): boolean {
  const ino = cgroupIno(dir);
  if (ino === undefined) return true;
  if (runIno !== undefined && ino === runIno) return false;
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() === '';
  } catch {
    return true; // removed meanwhile
  }
}

/** The pids in a cgroup directory. */
export function procs(dir: string): number[] {
  return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** A live (not zombie) process. */
export function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * A cgroup2 hierarchy mounted in a temp dir for one test, with an undo list run in reverse
 * order after it (the hierarchy is unmounted last). Null when it cannot be mounted here (the
 * test is then skipped with the reason).
 */
export function mountCgroup2(t: TestContext): { mnt: string; own: string; undo: (() => unknown)[] } | null {
  // Not tempDir(): its recursive removal must never run while the hierarchy is mounted.
  const mnt = mkdtempSync(join(tmpdir(), 'ns-cg2-'));
  try {
    execFileSync('mount', ['-t', 'cgroup2', 'none', mnt], { stdio: 'pipe' });
  } catch (e) {
    rmdirSync(mnt);
    t.skip(`cannot mount cgroup2 here: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}`);
    return null;
  }
  const undo: (() => unknown)[] = [];
  t.after(async () => {
    for (const fn of undo.reverse()) await fn();
    execFileSync('umount', [mnt]);
    rmdirSync(mnt);
  });
  const own = /^0::(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  return { mnt, own, undo };
}
