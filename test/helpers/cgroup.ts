/**
 * With `cgroups.prepare` (the default), a mounted container's cgroup directory is made again
 * after each exit, ready for its next start. "The run's cgroup is gone" therefore means: the
 * directory is absent, or it is another directory (not the inode the run had) with no task.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

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
