/**
 * The plan builder: manifest + runtime settings → a flat launch plan for the C core.
 * Every launch policy lives here (shared/spec/runtime.md §5, README items 1, 2, 4, 6, 7,
 * 10, 15): the mount list and its exact flags, the network, ids and groups, rlimits,
 * scheduling, capabilities, seccomp, SELinux and the environment. It performs no side
 * effects besides the probes in `settings` (host path existence, group lookup), which
 * tests replace.
 *
 * Mounts (targets relative to the container root, sorted parents first by path components):
 *
 * | type       | calls                                                                          |
 * |------------|--------------------------------------------------------------------------------|
 * | bind       | BIND|opts from host; then BIND|REMOUNT|opts(|RDONLY unless `rw`). A missing     |
 * |            | host path is skipped and logged (upstream); both calls carry skipIfMissing.    |
 * | persist    | BIND of <data_dir>/<name>; then BIND|REMOUNT|NODEV|NOSUID|NOEXEC (rw).          |
 * | proc/sysfs | mount(proc|sysfs) RDONLY|NOSUID|NOEXEC|NODEV                                   |
 * | sockets    | BIND of the socket dir (rw)                                                    |
 * | tmpfs      | tmpfs NODEV|NOSUID|NOEXEC "size=<bytes>,mode=1777"                             |
 * | resource   | BIND|RDONLY|NODEV|NOSUID|opts of <dir> resolved inside the resource root (a    |
 * |            | symlink cannot leave it); then BIND|REMOUNT|RDONLY|NODEV|NOSUID|opts           |
 * | dev        | tmpfs NOSUID|NOEXEC "size=65536,mode=0755"; in it the host's full, null,       |
 * |            | random, tty, urandom, zero made as character devices with the host numbers     |
 * |            | (mknod by the core; a read-only bind of the host node where mknod is refused), |
 * |            | the fd/stdin/stdout/stderr links when /proc is mounted, the directories of     |
 * |            | mount points below it; the tmpfs is remounted BIND|REMOUNT|RDONLY|NOSUID|NOEXEC|
 * |            | after every other mount, so no node can be added                               |
 *
 * The kernel ignores every flag but MS_REC on the first call of a bind mount, so the flags
 * only take effect through the remount. Upstream remounts only read-only binds; we also
 * remount rw binds that carry options and the persist bind, so that nodev/nosuid/noexec
 * really hold (the flags of the first call are kept for parity with upstream).
 *
 * Deliberate differences (hostile images): every mount of an image or a tmpfs is nodev and
 * nosuid (the manifest has no option to ask otherwise), so device nodes and setuid files
 * inside a signed image are inert. Upstream mounts images without nodev because its `dev`
 * mount relies on the device nodes the packer bakes into the image; ours gives the container
 * a fresh, read-only /dev holding exactly the six nodes above instead (upstream: no runtime
 * action).
 */
import { CAPABILITIES } from '../manifest/capabilities.js';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { NorthstarError, ValidationError } from '../common/errors.js';
import { within } from '../common/paths.js';
import { MS, RLIMIT, validatePlan } from './plan.js';
import type { LaunchPlan, MountCall, NetworkPlan, RlimitPlan, RlimitResource, SchedPlan, U64 } from './plan.js';
import { buildSeccompPlan, type SeccompDefault, type SeccompSection } from './seccomp-profile.js';

// ------------------------------------------------------------------------------------------
// Input: the parts of a manifest the builder reads
// ------------------------------------------------------------------------------------------

/** Mount options: the manifest's comma-separated string, or its parsed tokens. */
export type MountOptions = string | Iterable<string> | null | undefined;

export type ManifestMount =
  | { readonly type: 'bind'; readonly host: string; readonly options?: MountOptions }
  | { readonly type: 'dev' }
  | { readonly type: 'persist' }
  | { readonly type: 'proc' }
  | { readonly type: 'sysfs' }
  | { readonly type: 'sockets' }
  | { readonly type: 'tmpfs'; readonly size: U64 }
  | {
      readonly type: 'resource';
      readonly name: string;
      /** The version requirement (text or a parsed VersionReq; only shown in errors). */
      readonly version: string | { toString(): string };
      readonly dir: string;
      readonly options?: MountOptions;
    };

/** `sched.policy`, one key per policy as in the manifest's tagged form. */
export type SchedPolicyInput =
  | { readonly other: { readonly nice: number } }
  | { readonly batch: { readonly nice: number } }
  | { readonly fifo: { readonly priority: number } }
  | { readonly round_robin: { readonly priority: number } }
  | 'idle'
  | 'deadline'
  | { readonly idle: unknown }
  | { readonly deadline: unknown };

export type NetworkInput = 'host' | { readonly namespace: string } | null | undefined;

type MapLike<V> = Readonly<Record<string, V>> | ReadonlyMap<string, V>;

export interface RlimitInput {
  readonly soft?: U64 | null;
  readonly hard?: U64 | null;
}

/** What the builder reads from a validated manifest (field names as in manifest.yaml). */
export interface PlanManifest {
  readonly name: string;
  readonly version: string | { toString(): string };
  readonly init?: string | null;
  readonly args?: readonly string[] | null;
  readonly env?: MapLike<string> | null;
  readonly uid: number;
  readonly gid: number;
  readonly sched?: { readonly policy: SchedPolicyInput } | null;
  readonly mounts?: MapLike<ManifestMount> | null;
  readonly network?: NetworkInput;
  readonly seccomp?: SeccompSection | null;
  readonly selinux?: { readonly mount_context?: string | null; readonly exec?: string | null } | null;
  readonly capabilities?: Iterable<string> | null;
  readonly suppl_groups?: Iterable<string> | null;
  readonly rlimits?: MapLike<RlimitInput> | null;
  readonly sockets?: MapLike<unknown> | null;
  readonly console?: unknown;
}

/** Runtime facts for one start. */
export interface PlanSettings {
  /** Host path of the container's mounted image (the new root). */
  readonly root: string;
  /** `data_dir`: persist mounts bind `<dataDir>/<name>`. */
  readonly dataDir: string;
  /** `socket_dir`: bound whole by `sockets` mounts. */
  readonly socketDir: string;
  /** `run_dir`: relative resource paths are taken relative to it. */
  readonly runDir?: string;
  /**
   * Resolved resources: resource name → where the chosen version is mounted (absolute, or
   * relative to `runDir`, e.g. `message:0.0.2`). A resource mount whose name is missing
   * here fails with `start_container_missing_resource`.
   */
  readonly resources?: MapLike<string>;
  /** A console fd is handed to the container (needs a `console` section). */
  readonly console?: boolean;
  /** Names of the socket fds handed over, in fd order; default: the manifest's, sorted. */
  readonly sockets?: readonly string[];
  /** Start request `init`: replaces the manifest init, `<INIT>` is the manifest init. */
  readonly init?: string | null;
  /** Start request arguments: when non-empty they replace the manifest args. */
  readonly args?: readonly string[] | null;
  /** Start request environment: when non-empty it replaces the manifest env. */
  readonly env?: MapLike<string> | null;
  /** cgroup.procs files init joins. */
  readonly cgroupProcs?: readonly string[];
  /** Whether the host has SELinux (then `selinux.exec` is applied). */
  readonly selinux?: boolean;
  /** Group name → gid; default: the host's /etc/group. Unknown names are skipped. */
  readonly resolveGroup?: (name: string) => number | undefined;
  /** Directory of named network namespaces (default /var/run/netns). */
  readonly netnsDir?: string;
  /** Host path probe (default fs.existsSync). */
  readonly exists?: (path: string) => boolean;
  /** Resolves a resource dir inside its root for the existence probe (default: resolveInRoot). */
  readonly resolveInRoot?: (root: string, rel: string) => string;
  /** Host directory probe for bind sources below a dev mount (default: stat, true when missing). */
  readonly isDirectory?: (path: string) => boolean;
  /** Receives warnings (skipped binds, unknown groups). */
  readonly log?: (message: string) => void;
  /** Without a manifest `seccomp` section: no filter (default here) or the deny-list (runtime config `[seccomp] default`). */
  readonly seccompDefault?: SeccompDefault;
  /** Architecture for the seccomp profile (default process.arch). */
  readonly arch?: string;
}

/** A start that cannot proceed; `code` is the console error variant. */
export class StartError extends NorthstarError {
  readonly details: Readonly<Record<string, string>>;
  constructor(code: string, message: string, details: Record<string, string> = {}) {
    super(code, message);
    this.name = 'StartError';
    this.details = details;
  }
}

// ------------------------------------------------------------------------------------------
// Tables
// ------------------------------------------------------------------------------------------

/** Capability names in kernel order (CAP_CHOWN = 0 …): the manifest's table. */
export { CAPABILITIES };

const OPTION_FLAGS: Readonly<Record<string, number>> = { rw: 0, noexec: MS.NOEXEC, nosuid: MS.NOSUID, nodev: MS.NODEV, rec: MS.REC };

const PSEUDO_FS = MS.RDONLY | MS.NOSUID | MS.NOEXEC | MS.NODEV;
const TMPFS_FLAGS = MS.NODEV | MS.NOSUID | MS.NOEXEC;
const PERSIST_FLAGS = MS.NODEV | MS.NOSUID | MS.NOEXEC;
/** Resources come from images: never devices or setuid, whatever the options say. */
const RESOURCE_FLAGS = MS.RDONLY | MS.NODEV | MS.NOSUID;
/**
 * The /dev tmpfs of a `dev` mount: the host's six harmless character devices (made by the
 * core with mknod, not bound: two mount calls less per node) and a few links. It is not
 * nodev, so those nodes work; it is made read-only once set up, so no other node can be
 * added, and every image and other tmpfs stays nodev.
 */
const DEV_TMPFS_FLAGS = MS.NOSUID | MS.NOEXEC;
const DEV_TMPFS_DATA = 'size=65536,mode=0755';
/** Host device nodes a `dev` mount binds (the set upstream's packer bakes into images). */
export const DEV_NODES = ['full', 'null', 'random', 'tty', 'urandom', 'zero'] as const;
/** Links of a `dev` mount when /proc is mounted (as upstream's packer writes them). */
export const DEV_LINKS: readonly (readonly [string, string])[] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
];

/** Variables the runtime sets; a start request may not set them (upstream's list). */
export const RESERVED_ENV = ['NORTHSTAR_NAME', 'NORTHSTAR_VERSION', 'NORTHSTAR_CONTAINER', 'NORTHSTAR_CONSOLE'] as const;

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

function entries<V>(m: MapLike<V> | null | undefined): [string, V][] {
  if (m == null) return [];
  if (m instanceof Map) return [...(m as ReadonlyMap<string, V>).entries()];
  return Object.entries(m as Readonly<Record<string, V>>);
}

function invalid(path: string, rule: string): never {
  throw new ValidationError([{ path, rule }]);
}

/** Path components of an absolute mount point; rejects `..` and the root itself. */
export function mountComponents(mountPoint: string): string[] {
  const path = `mounts.${mountPoint}`;
  if (!mountPoint.startsWith('/')) invalid(path, 'mount points must be absolute');
  if (mountPoint.includes('\0')) invalid(path, 'must not contain a nul byte');
  const parts = mountPoint.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) invalid(path, 'mount points must not contain ..');
  if (parts.length === 0) invalid(path, 'cannot mount over the container root');
  return parts;
}

/** Parents first: component-wise order puts every path before the paths below it. */
export function compareComponents(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** Option tokens → mount flags; `rw` is reported separately. */
export function parseMountOptions(options: MountOptions, path: string): { flags: number; rw: boolean; rec: boolean } {
  const tokens =
    options == null ? [] : typeof options === 'string' ? options.split(',') : [...options];
  let flags = 0;
  let rw = false;
  for (const raw of tokens) {
    const t = raw.trim();
    if (t === '') continue;
    const f = OPTION_FLAGS[t];
    if (f === undefined) invalid(`${path}.options`, `unknown mount option ${JSON.stringify(t)} (rw, noexec, nosuid, nodev, rec)`);
    if (t === 'rw') rw = true;
    flags |= f;
  }
  return { flags, rw, rec: (flags & MS.REC) !== 0 };
}

function u64(v: U64, path: string): bigint {
  let b: bigint;
  try {
    b = BigInt(v);
  } catch {
    return invalid(path, 'must be an unsigned 64-bit integer');
  }
  if ((typeof v === 'number' && !Number.isSafeInteger(v)) || b < 0n || b >= 1n << 64n) invalid(path, 'must be an unsigned 64-bit integer');
  return b;
}

function planU64(b: bigint): U64 {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/** Reads /etc/group-style text into name → gid. */
export function parseGroupFile(text: string): Map<string, number> {
  const groups = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('#')) continue;
    const [name, , gid] = line.split(':');
    if (name === undefined || gid === undefined || !/^\d+$/.test(gid)) continue;
    if (!groups.has(name)) groups.set(name, Number(gid));
  }
  return groups;
}

/** A resolver over the host's group database file (read once per resolver). */
export function hostGroupResolver(file = '/etc/group'): (name: string) => number | undefined {
  let groups: Map<string, number> | undefined;
  return (name) => {
    if (groups === undefined) {
      try {
        groups = parseGroupFile(readFileSync(file, 'utf8'));
      } catch {
        groups = new Map();
      }
    }
    return groups.get(name);
  };
}

// ------------------------------------------------------------------------------------------
// Sections
// ------------------------------------------------------------------------------------------

interface MountContext {
  name: string;
  settings: PlanSettings;
  exists: (path: string) => boolean;
  log: (message: string) => void;
  /** A `proc` mount at /proc exists (the dev links point into it). */
  procMounted: boolean;
  /** Components of the mount points strictly below a mount point. */
  below: (mountPoint: string) => string[][];
}

/** Where a resource directory comes from: `dir` (relative, `.` for `/`) inside `root`. */
function resourceSource(ctx: MountContext, mountPoint: string, m: Extract<ManifestMount, { type: 'resource' }>): { root: string; dir: string } {
  const resolved = entries(ctx.settings.resources).find(([name]) => name === m.name)?.[1];
  const missing = (): never => {
    throw new StartError(
      'start_container_missing_resource',
      `mount ${mountPoint}: resource ${m.name} ${String(m.version)} is not available`,
      { resource: m.name, version: String(m.version) },
    );
  };
  if (resolved === undefined) return missing();
  const base = isAbsolute(resolved) ? resolved : ctx.settings.runDir ? join(ctx.settings.runDir, resolved) : missing();
  if (!m.dir.startsWith('/')) invalid(`mounts.${mountPoint}.dir`, 'must be an absolute path');
  if (m.dir.split('/').includes('..')) invalid(`mounts.${mountPoint}.dir`, 'must not contain ..');
  if (m.dir.includes('\0')) invalid(`mounts.${mountPoint}.dir`, 'must not contain a nul byte');
  const dir = m.dir.split('/').filter((p) => p !== '' && p !== '.').join('/');
  // A probe for the common error only, with symlinks followed inside `base` as the C core
  // does it (openat2 RESOLVE_IN_ROOT), which is what keeps a resource's symlinks from
  // ever reaching the host.
  const src = (ctx.settings.resolveInRoot ?? resolveInRoot)(base, dir);
  if (!ctx.exists(src)) {
    throw new StartError(
      'start_container_missing_resource',
      `mount ${mountPoint}: directory ${m.dir} of resource ${m.name} does not exist (${src})`,
      { resource: m.name, version: String(m.version) },
    );
  }
  return { root: base, dir: dir === '' ? '.' : dir };
}

/**
 * `rel` inside the host directory `root` with symlinks resolved as if `root` were `/`
 * (`..` stops at `root`), like openat2(RESOLVE_IN_ROOT): a host path below `root`. The
 * walk stops at the first missing component and appends the rest literally.
 */
export function resolveInRoot(root: string, rel: string): string {
  const todo = rel.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const here = join(root, ...done, part);
    let target: string | null = null;
    try {
      if (lstatSync(here).isSymbolicLink()) target = readlinkSync(here);
    } catch {
      return join(root, ...done, part, ...todo);
    }
    if (target === null) {
      done.push(part);
      continue;
    }
    if (++links > 40) return join(root, ...done, part, ...todo); // ELOOP: let the core report it
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return join(root, ...done);
}

/** The calls of a `dev` mount at `target`, except the final read-only remount. */
function devCalls(target: string, withLinks: boolean, below: readonly string[][]): MountCall[] {
  const calls: MountCall[] = [{ source: 'tmpfs', target, fstype: 'tmpfs', flags: DEV_TMPFS_FLAGS, data: DEV_TMPFS_DATA }];
  for (const name of DEV_NODES) {
    calls.push({ source: `/dev/${name}`, target: `${target}/${name}`, fstype: null, flags: 0, data: null, skipIfMissing: true, create: 'device' });
  }
  if (withLinks) {
    for (const [name, text] of DEV_LINKS) calls.push({ source: text, target: `${target}/${name}`, fstype: null, flags: 0, data: null, create: 'symlink' });
  }
  // Mount points below the dev mount: the tmpfs hides the image's directories, so every
  // level above the leaf is made here (the leaf is created by its own mount's first call).
  const depth = target.split('/').length;
  const made = new Set<string>();
  for (const parts of below) {
    for (let i = depth + 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (made.has(dir)) continue;
      made.add(dir);
      calls.push({ source: null, target: dir, fstype: null, flags: 0, data: null, create: 'dir' });
    }
  }
  return calls;
}

function mountCalls(ctx: MountContext, mountPoint: string, target: string, m: ManifestMount): MountCall[] {
  const path = `mounts.${mountPoint}`;
  switch (m.type) {
    case 'bind': {
      if (typeof m.host !== 'string' || !m.host.startsWith('/')) invalid(`${path}.host`, 'must be an absolute path');
      const { flags, rw } = parseMountOptions(m.options, path);
      if (!ctx.exists(m.host)) {
        ctx.log(`mount ${mountPoint}: host path ${m.host} does not exist, skipped`);
        return [];
      }
      const calls: MountCall[] = [{ source: m.host, target, fstype: null, flags: MS.BIND | flags, data: null, skipIfMissing: true }];
      const remount = MS.BIND | MS.REMOUNT | flags | (rw ? 0 : MS.RDONLY);
      if (!rw || (flags & ~MS.REC) !== 0) calls.push({ source: m.host, target, fstype: null, flags: remount, data: null, skipIfMissing: true });
      return calls;
    }
    case 'persist': {
      const src = join(ctx.settings.dataDir, ctx.name);
      return [
        { source: src, target, fstype: null, flags: MS.BIND | PERSIST_FLAGS, data: null },
        { source: src, target, fstype: null, flags: MS.BIND | MS.REMOUNT | PERSIST_FLAGS, data: null },
      ];
    }
    case 'proc':
      return [{ source: 'proc', target, fstype: 'proc', flags: PSEUDO_FS, data: null }];
    case 'sysfs':
      return [{ source: 'sysfs', target, fstype: 'sysfs', flags: PSEUDO_FS, data: null }];
    case 'sockets':
      return [{ source: ctx.settings.socketDir, target, fstype: null, flags: MS.BIND, data: null }];
    case 'tmpfs': {
      const size = u64(m.size, `${path}.size`);
      return [{ source: 'tmpfs', target, fstype: 'tmpfs', flags: TMPFS_FLAGS, data: `size=${size},mode=1777` }];
    }
    case 'resource': {
      const { flags, rec } = parseMountOptions(m.options, path);
      if (rec) invalid(`${path}.options`, 'rec is not allowed on resource mounts');
      const src = resourceSource(ctx, mountPoint, m);
      // forced read-only, nodev and nosuid whatever the options say (rw is ignored)
      return [
        { source: src.dir, sourceRoot: src.root, target, fstype: null, flags: MS.BIND | RESOURCE_FLAGS | flags, data: null },
        { source: src.dir, sourceRoot: src.root, target, fstype: null, flags: MS.BIND | MS.REMOUNT | RESOURCE_FLAGS | flags, data: null },
      ];
    }
    case 'dev':
      return devCalls(target, ctx.procMounted, ctx.below(mountPoint));
    default: {
      const t = (m as { type?: unknown }).type;
      return invalid(`${path}.type`, `unknown mount type ${JSON.stringify(t)}`);
    }
  }
}

function isBelow(parts: readonly string[], parent: readonly string[]): boolean {
  return parts.length > parent.length && parent.every((p, i) => parts[i] === p);
}

function buildMounts(base: Omit<MountContext, 'procMounted' | 'below'>, mounts: PlanManifest['mounts']): MountCall[] {
  const sorted = entries(mounts)
    .map(([mountPoint, m]) => ({ mountPoint, m, parts: mountComponents(mountPoint) }))
    .sort((a, b) => compareComponents(a.parts, b.parts));
  const ctx: MountContext = {
    ...base,
    procMounted: sorted.some((e) => e.m.type === 'proc' && e.parts.length === 1 && e.parts[0] === 'proc'),
    below: (mountPoint) => {
      const parent = mountComponents(mountPoint);
      return sorted.filter((e) => isBelow(e.parts, parent)).map((e) => e.parts);
    },
  };
  const devs = sorted.filter((e) => e.m.type === 'dev').map((e) => e.parts);
  const calls: MountCall[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const { mountPoint, m, parts } = sorted[i]!;
    if (i > 0 && compareComponents(sorted[i - 1]!.parts, parts) === 0) {
      invalid(`mounts.${mountPoint}`, `duplicate mount point (same as ${sorted[i - 1]!.mountPoint})`);
    }
    const own = mountCalls(ctx, mountPoint, parts.join('/'), m);
    // Below a dev mount the tmpfs hides the image's mount point: the first call creates it
    // (a file for a bind of a host path that is not a directory, e.g. a device node).
    if (own.length > 0 && own[0]!.create === undefined && devs.some((d) => isBelow(parts, d))) {
      const fileBind = m.type === 'bind' && !(ctx.settings.isDirectory ?? isDirectory)(m.host);
      own[0] = { ...own[0]!, create: fileBind ? 'file' : 'dir' };
    }
    calls.push(...own);
  }
  // The dev tmpfs becomes read-only after everything below it is mounted.
  for (const d of devs) {
    calls.push({ source: null, target: d.join('/'), fstype: null, flags: MS.BIND | MS.REMOUNT | MS.RDONLY | DEV_TMPFS_FLAGS, data: null });
  }
  return calls;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return true;
  }
}

function buildNetwork(network: NetworkInput, netnsDir: string): NetworkPlan {
  if (network == null) return { mode: 'new' };
  if (network === 'host') return { mode: 'host' };
  if (typeof network === 'object' && typeof network.namespace === 'string') {
    const ns = network.namespace;
    if (ns === '' || ns === '.' || ns === '..' || ns.includes('/') || ns.includes('\0') || Buffer.byteLength(ns) > 256) {
      invalid('network.namespace', 'must be a file name of at most 256 bytes (no /, not . or ..)');
    }
    return { mode: 'join', path: within(netnsDir, ns, 'network.namespace') };
  }
  return invalid('network', "must be 'host' or !namespace <name>");
}

function policyOf(policy: SchedPolicyInput): [string, unknown] {
  if (typeof policy === 'string') return [policy, undefined];
  const keys = policy && typeof policy === 'object' ? Object.keys(policy) : [];
  if (keys.length !== 1) return invalid('sched.policy', 'must name exactly one policy');
  return [keys[0]!, (policy as Record<string, unknown>)[keys[0]!]];
}

function buildSched(sched: PlanManifest['sched']): SchedPlan | null {
  if (sched == null) return null;
  const [policy, params] = policyOf(sched.policy);
  const field = (name: string): number => {
    const v = params && typeof params === 'object' ? (params as Record<string, unknown>)[name] : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) invalid(`sched.policy.${policy}.${name}`, 'must be an integer');
    return v as number;
  };
  switch (policy) {
    case 'other':
    case 'batch': {
      const nice = field('nice');
      if (nice < -20 || nice > 19) invalid(`sched.policy.${policy}.nice`, 'must be in -20..19');
      return { policy, priority: 0, nice };
    }
    case 'fifo':
    case 'round_robin': {
      const priority = field('priority');
      if (priority < 1 || priority > 99) invalid(`sched.policy.${policy}.priority`, 'must be in 1..99');
      return { policy, priority, nice: 0 };
    }
    case 'idle':
      return { policy: 'idle', priority: 0, nice: 0 };
    case 'deadline':
      return invalid('sched.policy', 'deadline scheduling is not supported (it needs runtime, deadline and period parameters)');
    default:
      return invalid('sched.policy', `unknown policy ${JSON.stringify(policy)}`);
  }
}

function buildRlimits(rlimits: PlanManifest['rlimits']): RlimitPlan[] {
  const out: RlimitPlan[] = [];
  for (const [resource, limit] of entries(rlimits)) {
    const path = `rlimits.${resource}`;
    if (!Object.hasOwn(RLIMIT, resource)) invalid(path, `unknown resource (${Object.keys(RLIMIT).sort().join(', ')})`);
    const soft = limit?.soft == null ? null : u64(limit.soft, `${path}.soft`);
    const hard = limit?.hard == null ? null : u64(limit.hard, `${path}.hard`);
    if (hard !== null && (soft === null || soft > hard)) invalid(path, 'the soft limit must not exceed the hard limit');
    out.push({
      resource: resource as RlimitResource,
      soft: soft === null ? 'infinity' : planU64(soft),
      hard: hard === null ? 'infinity' : planU64(hard),
    });
  }
  return out.sort((a, b) => RLIMIT[a.resource] - RLIMIT[b.resource]);
}

function buildCapabilities(caps: PlanManifest['capabilities']): { names: string[]; numbers: number[] } {
  const names = caps == null ? [] : [...caps];
  const numbers: number[] = [];
  names.forEach((name, i) => {
    const n = (CAPABILITIES as readonly string[]).indexOf(name);
    if (n < 0) invalid(`capabilities[${i}]`, `unknown capability ${JSON.stringify(name)}`);
    if (numbers.includes(n)) invalid(`capabilities[${i}]`, `duplicate capability ${name}`);
    numbers.push(n);
  });
  return { names, numbers: numbers.sort((a, b) => a - b) };
}

function buildGroups(groups: PlanManifest['suppl_groups'], settings: PlanSettings, log: (m: string) => void): number[] {
  if (groups == null) return [];
  const resolve = settings.resolveGroup ?? hostGroupResolver();
  const out: number[] = [];
  for (const name of groups) {
    const gid = resolve(name);
    if (gid === undefined) {
      log(`supplementary group ${name} does not exist on the host, skipped`);
      continue;
    }
    if (!out.includes(gid)) out.push(gid);
  }
  return out;
}

/** What a start request may change: the command (`<INIT>` = the manifest init) and the env. */
export interface StartOverrides {
  /** Replaces the manifest init; `<INIT>` inside it is the manifest init. */
  readonly init?: string | null;
  /** When non-empty: replaces the manifest args. */
  readonly args?: readonly string[] | null;
  /** When non-empty: replaces the manifest env. */
  readonly env?: MapLike<string> | null;
}

/**
 * The command and environment of a start: the one place for `<INIT>`, the start request's
 * overrides and the reserved-environment rule (RESERVED_ENV). Throws StartError
 * `start_container_resource` (no init: a resource container) or `invalid_arguments` (a
 * reserved variable in the request), and ValidationError for an env name or value the
 * kernel cannot take. Cheap and without side effects: a start calls it before it creates
 * anything.
 */
export function startCommand(manifest: PlanManifest, request: StartOverrides): { path: string; argv: string[]; envp: string[] } {
  const container = `${manifest.name}:${String(manifest.version)}`;
  let init = manifest.init ?? null;
  if (request.init != null) {
    init = init === null ? request.init : request.init.split('<INIT>').join(init);
  }
  if (init === null || init === '') {
    throw new StartError('start_container_resource', `${container} has no init (a resource container) and the start request gives none`);
  }
  const args = request.args != null && request.args.length > 0 ? request.args : (manifest.args ?? []);
  return { path: init, argv: [init, ...args], envp: startEnv(manifest, request) };
}

function startEnv(manifest: PlanManifest, request: StartOverrides): string[] {
  const requested = entries(request.env);
  for (const [key] of requested) {
    if ((RESERVED_ENV as readonly string[]).includes(key)) {
      throw new StartError('invalid_arguments', `env contains reserved key ${RESERVED_ENV.join(' or ')}`, { key });
    }
  }
  const env = requested.length > 0 ? requested : entries(manifest.env);
  const out: string[] = [];
  for (const [key, value] of env) {
    if (key === '' || key.includes('=') || key.includes('\0')) invalid(`env.${key}`, 'names must be non-empty without = or nul');
    if (typeof value !== 'string' || value.includes('\0')) invalid(`env.${key}`, 'values must be strings without nul');
    if (!(RESERVED_ENV as readonly string[]).includes(key)) out.push(`${key}=${value}`);
  }
  const version = String(manifest.version);
  out.push(`NORTHSTAR_CONTAINER=${manifest.name}:${version}`, `NORTHSTAR_NAME=${manifest.name}`, `NORTHSTAR_VERSION=${version}`);
  return out;
}

function buildSockets(manifest: PlanManifest, settings: PlanSettings): string[] {
  const declared = entries(manifest.sockets).map(([name]) => name);
  if (settings.sockets === undefined) return [...declared].sort();
  for (const s of settings.sockets) {
    if (!declared.includes(s)) invalid(`sockets.${s}`, 'a socket fd is handed over that the manifest does not declare');
  }
  for (const d of declared) {
    if (!settings.sockets.includes(d)) invalid(`sockets.${d}`, 'declared in the manifest but no fd is handed over');
  }
  return [...settings.sockets];
}

/** Container hostname: its name, cut to the kernel's 64 bytes. */
export function hostnameOf(name: string): string {
  return Buffer.from(name, 'utf8').subarray(0, 64).toString('utf8').replace(/\uFFFD+$/, '');
}

// ------------------------------------------------------------------------------------------
// The builder
// ------------------------------------------------------------------------------------------

/**
 * Turn a validated manifest and the runtime's settings for this start into a launch plan.
 * Throws ValidationError (a manifest value the launch cannot honour, with its path) or
 * StartError (`start_container_resource`, `start_container_missing_resource`,
 * `invalid_arguments`).
 */
export function buildPlan(manifest: PlanManifest, settings: PlanSettings): LaunchPlan {
  const name = manifest.name;
  const container = `${name}:${String(manifest.version)}`;
  const log = settings.log ?? (() => undefined);
  const exists = settings.exists ?? existsSync;
  for (const [key, value] of [['root', settings.root], ['dataDir', settings.dataDir], ['socketDir', settings.socketDir]] as const) {
    if (typeof value !== 'string' || !value.startsWith('/')) invalid(`settings.${key}`, 'must be an absolute path');
  }
  if (!Number.isInteger(manifest.uid) || manifest.uid < 1 || manifest.uid > 65535) invalid('uid', 'must be in 1..65535');
  if (!Number.isInteger(manifest.gid) || manifest.gid < 1 || manifest.gid > 65535) invalid('gid', 'must be in 1..65535');

  const { path, argv, envp } = startCommand(manifest, settings);
  const mounts = buildMounts({ name, settings, exists, log: (m) => log(`${container}: ${m}`) }, manifest.mounts);
  const caps = buildCapabilities(manifest.capabilities);
  const console = settings.console === true;
  if (console && manifest.console == null) invalid('console', 'a console fd is handed over but the manifest has no console section');

  const plan: LaunchPlan = {
    container,
    hostname: hostnameOf(name),
    root: settings.root,
    mounts,
    network: buildNetwork(manifest.network, settings.netnsDir ?? '/var/run/netns'),
    uid: manifest.uid,
    gid: manifest.gid,
    groups: buildGroups(manifest.suppl_groups, settings, (m) => log(`${container}: ${m}`)),
    rlimits: buildRlimits(manifest.rlimits),
    sched: buildSched(manifest.sched),
    capabilities: caps.numbers,
    seccomp: buildSeccompPlan(manifest.seccomp, caps.names, settings.arch, settings.seccompDefault),
    selinuxExec: settings.selinux === true && manifest.selinux?.exec ? manifest.selinux.exec : null,
    path,
    argv,
    envp,
    cgroupProcs: [...(settings.cgroupProcs ?? [])],
    console,
    sockets: buildSockets(manifest, settings),
  };
  validatePlan(plan);
  return plan;
}
