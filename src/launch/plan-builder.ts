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
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { NorthstarError, ValidationError } from '../common/errors.js';
import { within } from '../common/paths.js';
import {
  CAPABILITY_NUMBERS,
  RESERVED_ENV_VARIABLES,
  RLIMIT_RESOURCES,
  mountOptionFlags,
  type Manifest,
  type Mount,
  type Network,
  type ResourceMount,
} from '../manifest/index.js';
import { MS, RLIMIT } from './plan.js';
import type { LaunchPlan, MountCall, NetworkPlan, RlimitPlan, SchedPlan, U64 } from './plan.js';
import { buildSeccompPlan, type SeccompDefault } from './seccomp-profile.js';

// ------------------------------------------------------------------------------------------
// Input: a manifest from the manifest parser (src/manifest), and the runtime's settings
// ------------------------------------------------------------------------------------------

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
  readonly resources?: Readonly<Record<string, string>>;
  /** A console fd is handed to the container (needs a `console` section). */
  readonly console?: boolean;
  /** Names of the socket fds handed over, in fd order; default: the manifest's, sorted. */
  readonly sockets?: readonly string[];
  /** Start request `init`: replaces the manifest init, `<INIT>` is the manifest init. */
  readonly init?: string | null;
  /** Start request arguments: when non-empty they replace the manifest args. */
  readonly args?: readonly string[] | null;
  /** Start request environment: when non-empty it replaces the manifest env. */
  readonly env?: Readonly<Record<string, string>> | null;
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

/** The console error variant (api/model.ts `ModelError`) a refused start is reported as. */
export type StartErrorVariant = 'start_container_missing_resource' | 'start_container_resource' | 'invalid_arguments';

/** A start that cannot proceed (code EPLAN); `variant` is the console error variant it becomes. */
export class StartError extends NorthstarError {
  readonly variant: StartErrorVariant;
  readonly details: Readonly<Record<string, string>>;
  constructor(variant: StartErrorVariant, message: string, details: Record<string, string> = {}) {
    super('EPLAN', message);
    this.name = 'StartError';
    this.variant = variant;
    this.details = details;
  }
}

// ------------------------------------------------------------------------------------------
// Tables
// ------------------------------------------------------------------------------------------

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

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

function invalid(path: string, rule: string): never {
  throw new ValidationError([{ path, rule }]);
}

/**
 * Path components of an absolute mount point; rejects a relative one and the root itself.
 * The manifest parser refuses `..` and nul in every mount point and relative bind mount
 * points, but not these for the other mount types.
 */
export function mountComponents(mountPoint: string): string[] {
  const path = `mounts.${mountPoint}`;
  if (!mountPoint.startsWith('/')) invalid(path, 'mount points must be absolute');
  const parts = mountPoint.split('/').filter((p) => p !== '' && p !== '.');
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
function resourceSource(ctx: MountContext, mountPoint: string, m: ResourceMount): { root: string; dir: string } {
  const resources = ctx.settings.resources ?? {};
  const resolved = Object.hasOwn(resources, m.name) ? resources[m.name] : undefined;
  const missing = (): never => {
    throw new StartError(
      'start_container_missing_resource',
      `mount ${mountPoint}: resource ${m.name} ${String(m.version)} is not available`,
      { resource: m.name, version: String(m.version) },
    );
  };
  if (resolved === undefined) return missing();
  const base = isAbsolute(resolved) ? resolved : ctx.settings.runDir ? join(ctx.settings.runDir, resolved) : missing();
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

function mountCalls(ctx: MountContext, mountPoint: string, target: string, m: Mount): MountCall[] {
  switch (m.type) {
    case 'bind': {
      const flags = mountOptionFlags(m.options);
      const rw = m.options.includes('rw');
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
    case 'tmpfs':
      return [{ source: 'tmpfs', target, fstype: 'tmpfs', flags: TMPFS_FLAGS, data: `size=${m.size},mode=1777` }];
    case 'resource': {
      // The manifest parser refuses `rec` here; `rw` sets no flag.
      const flags = mountOptionFlags(m.options);
      const src = resourceSource(ctx, mountPoint, m);
      // forced read-only, nodev and nosuid whatever the options say (rw is ignored)
      return [
        { source: src.dir, sourceRoot: src.root, target, fstype: null, flags: MS.BIND | RESOURCE_FLAGS | flags, data: null },
        { source: src.dir, sourceRoot: src.root, target, fstype: null, flags: MS.BIND | MS.REMOUNT | RESOURCE_FLAGS | flags, data: null },
      ];
    }
    case 'dev':
      return devCalls(target, ctx.procMounted, ctx.below(mountPoint));
  }
}

function isBelow(parts: readonly string[], parent: readonly string[]): boolean {
  return parts.length > parent.length && parent.every((p, i) => parts[i] === p);
}

function buildMounts(base: Omit<MountContext, 'procMounted' | 'below'>, mounts: Manifest['mounts']): MountCall[] {
  const sorted = Object.entries(mounts)
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

function buildNetwork(network: Network | undefined, netnsDir: string): NetworkPlan {
  if (network === undefined) return { mode: 'new' };
  if (network === 'host') return { mode: 'host' };
  // The manifest parser keeps the name a file name; `within` keeps the path below netnsDir.
  return { mode: 'join', path: within(netnsDir, network.namespace, 'network.namespace') };
}

function buildSched(sched: Manifest['sched']): SchedPlan | null {
  if (sched === undefined) return null;
  const policy = sched.policy;
  // deadline is refused by the manifest parser (and so absent from the type).
  if (policy === 'idle') return { policy: 'idle', priority: 0, nice: 0 };
  if ('other' in policy) return { policy: 'other', priority: 0, nice: policy.other.nice };
  if ('batch' in policy) return { policy: 'batch', priority: 0, nice: policy.batch.nice };
  if ('fifo' in policy) return { policy: 'fifo', priority: policy.fifo.priority, nice: 0 };
  return { policy: 'round_robin', priority: policy.round_robin.priority, nice: 0 };
}

/** The manifest's rlimits in kernel order; a missing value is infinity. */
function buildRlimits(rlimits: Manifest['rlimits']): RlimitPlan[] {
  const out: RlimitPlan[] = [];
  for (const resource of RLIMIT_RESOURCES) {
    const limit = rlimits[resource];
    if (limit === undefined) continue;
    const soft = limit.soft ?? null;
    const hard = limit.hard ?? null;
    // The manifest parser does not check this; setrlimit(2) would fail with EINVAL.
    if (hard !== null && (soft === null || soft > hard)) invalid(`rlimits.${resource}`, 'the soft limit must not exceed the hard limit');
    out.push({
      resource,
      soft: soft === null ? 'infinity' : planU64(soft),
      hard: hard === null ? 'infinity' : planU64(hard),
    });
  }
  return out.sort((a, b) => RLIMIT[a.resource] - RLIMIT[b.resource]);
}

/** Capability numbers, sorted (the manifest parser refuses unknown and repeated names). */
function buildCapabilities(caps: Manifest['capabilities']): number[] {
  return caps.map((name) => CAPABILITY_NUMBERS[name]).sort((a, b) => a - b);
}

function buildGroups(groups: Manifest['suppl_groups'], settings: PlanSettings, log: (m: string) => void): number[] {
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
  readonly env?: Readonly<Record<string, string>> | null;
}

/**
 * The command and environment of a start: the one place for `<INIT>`, the start request's
 * overrides and the reserved-environment rule (RESERVED_ENV_VARIABLES). Throws StartError
 * `start_container_resource` (no init: a resource container) or `invalid_arguments` (a
 * reserved variable in the request), and ValidationError for an env name or value the
 * kernel cannot take. Cheap and without side effects: a start calls it before it creates
 * anything.
 */
export function startCommand(manifest: Manifest, request: StartOverrides): { path: string; argv: string[]; envp: string[] } {
  const container = `${manifest.name}:${String(manifest.version)}`;
  let init = manifest.init ?? null;
  if (request.init != null) {
    init = init === null ? request.init : request.init.split('<INIT>').join(init);
  }
  if (init === null || init === '') {
    throw new StartError('start_container_resource', `${container} has no init (a resource container) and the start request gives none`);
  }
  const args = request.args != null && request.args.length > 0 ? request.args : manifest.args;
  return { path: init, argv: [init, ...args], envp: startEnv(manifest, request) };
}

function startEnv(manifest: Manifest, request: StartOverrides): string[] {
  const requested = Object.entries(request.env ?? {});
  for (const [key] of requested) {
    if ((RESERVED_ENV_VARIABLES as readonly string[]).includes(key)) {
      throw new StartError('invalid_arguments', `env contains reserved key ${RESERVED_ENV_VARIABLES.join(' or ')}`, { key });
    }
  }
  // The manifest parser refuses reserved names in the manifest env.
  const env = requested.length > 0 ? requested : Object.entries(manifest.env);
  const out: string[] = [];
  for (const [key, value] of env) {
    if (key === '' || key.includes('=') || key.includes('\0')) invalid(`env.${key}`, 'names must be non-empty without = or nul');
    if (value.includes('\0')) invalid(`env.${key}`, 'values must be strings without nul');
    out.push(`${key}=${value}`);
  }
  const version = String(manifest.version);
  out.push(`NORTHSTAR_CONTAINER=${manifest.name}:${version}`, `NORTHSTAR_NAME=${manifest.name}`, `NORTHSTAR_VERSION=${version}`);
  return out;
}

function buildSockets(manifest: Manifest, settings: PlanSettings): string[] {
  const declared = Object.keys(manifest.sockets);
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
 * Turn a manifest (from the manifest parser, which has checked it) and the runtime's
 * settings for this start into a launch plan. Throws ValidationError (a manifest value the
 * launch cannot honour or a setting that does not fit, with its path) or StartError
 * (`start_container_resource`, `start_container_missing_resource`, `invalid_arguments`).
 * The plan itself is checked once, by encodePlan, at the boundary to the C core.
 */
export function buildPlan(manifest: Manifest, settings: PlanSettings): LaunchPlan {
  const name = manifest.name;
  const container = `${name}:${String(manifest.version)}`;
  const log = settings.log ?? (() => undefined);
  const exists = settings.exists ?? existsSync;
  for (const [key, value] of [['root', settings.root], ['dataDir', settings.dataDir], ['socketDir', settings.socketDir]] as const) {
    if (typeof value !== 'string' || !value.startsWith('/')) invalid(`settings.${key}`, 'must be an absolute path');
  }

  const { path, argv, envp } = startCommand(manifest, settings);
  const mounts = buildMounts({ name, settings, exists, log: (m) => log(`${container}: ${m}`) }, manifest.mounts);
  const console = settings.console === true;
  if (console && manifest.console === undefined) invalid('console', 'a console fd is handed over but the manifest has no console section');

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
    capabilities: buildCapabilities(manifest.capabilities),
    seccomp: buildSeccompPlan(manifest.seccomp, manifest.capabilities, settings.arch, settings.seccompDefault),
    selinuxExec: settings.selinux === true ? (manifest.selinux?.exec ?? null) : null,
    path,
    argv,
    envp,
    cgroupProcs: [...(settings.cgroupProcs ?? [])],
    console,
    sockets: buildSockets(manifest, settings),
  };
  return plan;
}
