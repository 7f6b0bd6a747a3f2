/**
 * Where the cgroup hierarchies are and where the runtime itself sits in them.
 *
 * Detection (runtime.md §6): v2 when statfs(/sys/fs/cgroup) reports the cgroup2 magic,
 * otherwise v1 with the controller mounts read from /proc/self/mountinfo. The runtime's
 * own cgroup per hierarchy comes from /proc/self/cgroup.
 *
 * Path rule (ours, documented in docs/configuration.md): a relative `cgroup` in the
 * config (and a relative manifest `cgroups.parent`) is taken below the runtime's own
 * cgroup, so the runtime and its containers stay in the slice the service manager gave
 * it; an absolute one is taken from the hierarchy root, like upstream. `.` and `..`
 * components are refused so no path can leave the hierarchy.
 */
import { statfs, readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { NorthstarError } from '../../common/errors.js';
import { parseMountInfo } from '../mount/mountinfo.js';
import type { Controller } from './settings.js';

export const CGROUP2_SUPER_MAGIC = 0x63677270;
/** pids is ours (upstream filters it out): it carries `cgroups.pids_max` of the config. */
export const V1_CONTROLLERS = ['memory', 'cpu', 'cpuacct', 'blkio', 'pids'] as const;
export const V2_CONTROLLERS = ['cpu', 'io', 'memory', 'pids'] as const;

export type CgroupLayout =
  | {
      version: 1;
      /** Mount point per used controller (cpu and cpuacct may share one). */
      mounts: Partial<Record<Controller, string>>;
      /** The runtime's own cgroup per controller, relative to the hierarchy root ("/…"). */
      own: Partial<Record<Controller, string>>;
    }
  | {
      version: 2;
      /** The cgroup2 mount point. */
      root: string;
      /** The runtime's own cgroup, relative to the root ("/…"). */
      own: string;
    };

export interface DetectOptions {
  /** Default /sys/fs/cgroup. */
  root?: string;
  /** Test inputs instead of the live /proc files. */
  mountinfo?: string;
  selfCgroup?: string;
  fsMagic?: number;
}

function parseSelfCgroup(text: string): { v1: Map<string, string>; v2?: string } {
  const v1 = new Map<string, string>();
  let v2: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3]!;
    else for (const c of m[2]!.split(',')) v1.set(c, m[3]!);
  }
  return { v1, v2 };
}

export async function detectCgroupLayout(opts: DetectOptions = {}): Promise<CgroupLayout> {
  const root = opts.root ?? '/sys/fs/cgroup';
  const magic = opts.fsMagic ?? Number((await statfs(root).catch(() => ({ type: 0 }))).type);
  const self = parseSelfCgroup(opts.selfCgroup ?? (await readFile('/proc/self/cgroup', 'utf8')));
  if (magic === CGROUP2_SUPER_MAGIC) return { version: 2, root, own: self.v2 ?? '/' };
  const mounts: Partial<Record<Controller, string>> = {};
  const own: Partial<Record<Controller, string>> = {};
  for (const m of parseMountInfo(opts.mountinfo ?? (await readFile('/proc/self/mountinfo', 'utf8')))) {
    if (m.fsType !== 'cgroup') continue;
    const opts1 = m.superOptions.split(',');
    for (const c of V1_CONTROLLERS) {
      if (!opts1.includes(c) || mounts[c]) continue;
      const path = self.v1.get(c) ?? '/';
      // A mount of a sub-tree (m.root != "/") shows paths relative to the hierarchy root.
      const rel = m.root !== '/' && (path === m.root || path.startsWith(`${m.root}/`)) ? path.slice(m.root.length) || '/' : path;
      mounts[c] = m.mountPoint;
      own[c] = rel;
    }
  }
  if (!mounts.memory && !mounts.cpu && !mounts.blkio) {
    throw new NorthstarError('ECGROUP', `no cgroup v2 at ${root} and no v1 memory, cpu or blkio hierarchy mounted`);
  }
  return { version: 1, mounts, own };
}

/** Split and check a cgroup path from the config or a manifest. */
export function cgroupComponents(path: string, what: string): string[] {
  const parts = path.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '.' || p === '..' || p.includes('\0') || p.includes('\n'))) {
    throw new NorthstarError('ECGROUP', `${what}: ${JSON.stringify(path)} must not contain "." or ".." components`);
  }
  return parts;
}

/**
 * The cgroup path (relative to the hierarchy root, starting with "/") for a configured
 * path: absolute = from the root, relative = below `own`.
 */
export function resolveCgroupPath(own: string, path: string, what: string): string {
  const parts = cgroupComponents(path, what);
  return path.startsWith('/') ? `/${parts.join('/')}` : posix.join(own, ...parts);
}

/** Absolute directory of a cgroup path in a hierarchy mounted at `mount`. */
export function cgroupDir(mount: string, cgPath: string): string {
  return join(mount, cgPath);
}
