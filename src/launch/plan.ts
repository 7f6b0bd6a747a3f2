/**
 * The launch plan: a flat, fully resolved description of one container start, and its
 * encoder to the binary format the C core (`native/`, `northstar-launch`) parses.
 *
 * Every decision is already made when a plan exists: the C side performs the listed
 * mount(2) calls literally, in the given order, sets exactly the listed ids, rlimits,
 * capabilities and seccomp rules, and execs `path` with `argv`/`envp`. Nothing here knows
 * about manifests; `plan-builder.ts` turns a manifest into a plan.
 *
 * Binary format (version 2). Integers are little-endian; `str` is a u32 byte length then
 * the bytes (no NUL allowed, UTF-8); `ostr` is a u8 presence flag (0|1) then a `str` if 1;
 * `list<T>` is a u32 count then the items. The C parser rejects anything else: wrong magic
 * or version, lengths or counts over the limits below, NUL bytes, enum values out of range,
 * non-zero reserved bits and trailing bytes.
 *
 *   magic "NSPL" | u16 version = 2 | u16 reserved = 0
 *   str container            "name:version" (1..255 bytes)
 *   str hostname             1..64 bytes
 *   str root                 absolute host path of the already mounted root
 *   list<mount>              mount = ostr source | str target | ostr fstype | u64 flags
 *                                    | ostr data | u8 options | if bit 1: str source root
 *                            options: bit 0 skip if source missing; bit 1 source in root
 *                            (a relative source resolved inside the source root); bit 2
 *                            create an empty file, bit 3 a directory at the target first;
 *                            bit 4 no mount, a symlink at the target with text `source`
 *                            (a created entry without source, fstype and flags is not
 *                            mounted either); bit 5 no mount, a character device at the
 *                            target with the number and permission bits of the host node
 *                            `source` (a read-only bind of it where mknod is refused)
 *   u8 network               0 = new empty netns, 1 = host, 2 = join: then str path
 *   u32 uid | u32 gid | list<u32> groups
 *   list<rlimit>             rlimit = u32 resource | u64 soft | u64 hard (2^64-1 = infinity)
 *   u8 sched present         if 1: u32 policy | u32 priority | i32 nice
 *   list<u32> capabilities   empty = no capabilities at all
 *   u8 seccomp enabled | list<rule>
 *                            rule = str syscall name | u8 kind: 0 any;
 *                                   1 values: u8 arg index | list<u64> values;
 *                                   2 mask:   u8 arg index | u64 mask
 *   ostr selinux exec context
 *   str path                 executable, a path inside the container
 *   list<str> argv           at least one entry
 *   list<str> envp           each "K=V" with a non-empty K
 *   list<str> cgroup procs   absolute host paths of cgroup.procs files to join
 *   u8 console               1 if a console fd is handed over
 *   list<str> sockets        names of the socket fds handed over, in fd order
 *   u8 discard               bit 0: put /dev/null at stdout, bit 1: at stderr (written by
 *                            the launcher from its fds: a core spawned ahead of time has
 *                            pipes there)
 */
import { ValidationError } from '../common/errors.js';

/** Format version written into every plan; the C side accepts exactly this one. */
export const PLAN_VERSION = 2;
export const PLAN_MAGIC = 'NSPL';

/** Limits enforced identically by the encoder and the C parser (native/plan.c). */
export const PLAN_LIMITS = {
  /** The whole encoded plan. */
  maxPlanBytes: 16 * 1024 * 1024,
  maxString: 65536,
  maxPath: 4095,
  maxContainer: 255,
  maxHostname: 64,
  maxMounts: 1024,
  maxGroups: 65536,
  maxRlimits: 16,
  maxCapabilities: 64,
  maxSeccompRules: 4096,
  maxSeccompValues: 1024,
  maxArgs: 4096,
  maxEnv: 4096,
  maxCgroups: 64,
  maxSockets: 128,
  maxSyscallName: 64,
} as const;

/** mount(2) flag values (linux/mount.h), for building `MountCall.flags`. */
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  SYNCHRONOUS: 0x10,
  REMOUNT: 0x20,
  MANDLOCK: 0x40,
  DIRSYNC: 0x80,
  NOSYMFOLLOW: 0x100,
  NOATIME: 0x400,
  NODIRATIME: 0x800,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  SILENT: 0x8000,
  UNBINDABLE: 0x20000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
  RELATIME: 0x200000,
  STRICTATIME: 0x1000000,
  LAZYTIME: 0x2000000,
} as const;

/**
 * One literal mount(2) call. `target` is relative to the container root (no leading
 * slash; resolved inside the root, symlinks cannot leave it) or an absolute host path.
 * A bind whose `source` does not exist is a step error naming the path, unless
 * `skipIfMissing` is set, in which case the call is silently skipped (mark both calls of
 * a "bind then read-only remount" pair so that they are skipped together).
 */
export interface MountCall {
  source: string | null;
  target: string;
  fstype: string | null;
  flags: number;
  data: string | null;
  skipIfMissing?: boolean;
  /**
   * Absolute host directory: `source` is then relative (`.` for the directory itself) and
   * resolved inside it with openat2(RESOLVE_IN_ROOT), so a symlink in it can never point
   * the mount at a host path (used for resource directories, Cure53 ESR-01-006).
   */
  sourceRoot?: string;
  /**
   * Create the (relative) target inside the root before mounting: an empty `file` or a
   * `dir` (an existing entry is fine), or a `symlink` whose text is `source`; a symlink
   * is not mounted (flags 0, no fstype or data), nor is a created file or directory
   * without source, fstype and flags. A `device` is a character device with the number
   * and permission bits of the host node `source` (absolute), not mounted either; where
   * mknod is refused, the core binds the host node read-only, nosuid and noexec instead.
   */
  create?: 'file' | 'dir' | 'symlink' | 'device';
}

/** The options byte of a mount (native/src/plan.h MOUNT_*). */
export const MOUNT_OPTION = { skipIfMissing: 0x1, sourceInRoot: 0x2, createFile: 0x4, createDir: 0x8, symlink: 0x10, device: 0x20 } as const;

export type NetworkPlan =
  | { mode: 'new' }
  | { mode: 'host' }
  /** setns into this file (e.g. /var/run/netns/<name>); a missing file fails the start. */
  | { mode: 'join'; path: string };

export type U64 = number | bigint;

/** Resource names as in setrlimit(2) (RLIMIT_<NAME> lowercased) and their numbers. */
export const RLIMIT = {
  cpu: 0,
  fsize: 1,
  data: 2,
  stack: 3,
  core: 4,
  rss: 5,
  nproc: 6,
  nofile: 7,
  memlock: 8,
  as: 9,
  locks: 10,
  sigpending: 11,
  msgqueue: 12,
  nice: 13,
  rtprio: 14,
  rttime: 15,
} as const;
export type RlimitResource = keyof typeof RLIMIT;

/** `soft`/`hard` of 'infinity' mean RLIM_INFINITY. */
export interface RlimitPlan {
  resource: RlimitResource;
  soft: U64 | 'infinity';
  hard: U64 | 'infinity';
}

/** Scheduling policies (sched.h numbers). */
export const SCHED = { other: 0, fifo: 1, round_robin: 2, batch: 3, idle: 5 } as const;
export type SchedPolicy = keyof typeof SCHED;

/**
 * Scheduling of the app. `priority` is the static priority (1..99 for fifo/round_robin,
 * 0 otherwise); `nice` (-20..19) is set with setpriority for other/batch (0 otherwise).
 */
export interface SchedPlan {
  policy: SchedPolicy;
  priority: number;
  nice: number;
}

/**
 * One seccomp allow rule. Syscall names are resolved by libseccomp on the C side;
 * names it does not know for the running architecture are skipped.
 * - `any`: the call is allowed with any arguments;
 * - `values`: allowed iff argument `index` equals one of `values` (every value counts);
 * - `mask`: allowed iff `(arg & ~mask) == 0`, i.e. no bit outside `mask` is set.
 */
export type SeccompRule = (
  | { syscall: string; kind: 'any' }
  | { syscall: string; kind: 'values'; index: number; values: readonly U64[] }
  | { syscall: string; kind: 'mask'; index: number; mask: U64 }
  /** Matches iff every bit of `bits` is set in argument `index`. */
  | { syscall: string; kind: 'bits'; index: number; bits: U64 }
) & {
  /** Deny-list only: the errno (1..4095) a matching call fails with. */
  errno?: number;
};

/**
 * Seccomp filter: when `enabled`, everything not allowed by `rules` kills the process
 * (SIGSYS, reported as signal 31); calls of a foreign architecture are killed; `execve` is
 * always allowed. The filter is installed last, right before execve.
 */
export interface SeccompPlan {
  enabled: boolean;
  rules: readonly SeccompRule[];
  /**
   * Ours: a deny-list instead: everything is allowed except calls matching a rule, which
   * fail with the rule's `errno`; calls of a foreign architecture are still killed.
   */
  deny?: boolean;
}

export interface LaunchPlan {
  /** "name:version": used for logging, PR_SET_NAME and error messages. */
  container: string;
  hostname: string;
  /** Absolute host path of the container root, already mounted by the runtime. */
  root: string;
  /** Performed in this order (parents first), before pivot_root. */
  mounts: readonly MountCall[];
  network: NetworkPlan;
  uid: number;
  gid: number;
  /** Supplementary groups; empty = none. */
  groups: readonly number[];
  rlimits: readonly RlimitPlan[];
  /** Absent: the app inherits init's scheduling (SCHED_OTHER, nice 0). */
  sched?: SchedPlan | null;
  /** Capability numbers (CAP_CHOWN = 0 ...). Empty = every capability set empty. */
  capabilities: readonly number[];
  seccomp: SeccompPlan;
  /** SELinux context written to /proc/thread-self/attr/exec before the app's execve. */
  selinuxExec?: string | null;
  /** Executable path inside the container. */
  path: string;
  argv: readonly string[];
  /**
   * Full environment as "K=V". The C side appends NORTHSTAR_CONSOLE=<fd> and
   * NORTHSTAR_SOCKET_<name>=<fd> with the fd numbers the app actually gets.
   */
  envp: readonly string[];
  /**
   * Absolute host paths of cgroup.procs files to join. The launcher process writes its own
   * pid before it creates init, so init and the app are inside from their first instruction.
   */
  cgroupProcs: readonly string[];
  /** Whether a console fd is handed over (the launcher's `fds.console`). */
  console: boolean;
  /** Names of the socket fds handed over (the launcher's `fds.sockets`), in this order. */
  sockets: readonly string[];
}

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffffffff;

/** Collects the problems of a plan, each with its path (`mounts[2].target`). */
class PlanChecker {
  readonly issues: { path: string; rule: string }[] = [];

  bad(path: string, rule: string): void {
    this.issues.push({ path, rule });
  }

  str(path: string, v: unknown, opts: { min?: number; max?: number } = {}): v is string {
    if (typeof v !== 'string') {
      this.bad(path, 'must be a string');
      return false;
    }
    const len = Buffer.byteLength(v);
    if (v.includes('\0')) this.bad(path, 'must not contain NUL');
    if (len < (opts.min ?? 0)) this.bad(path, opts.min === 1 ? 'must not be empty' : `must be at least ${opts.min} bytes`);
    if (len > (opts.max ?? PLAN_LIMITS.maxString)) this.bad(path, `must be at most ${opts.max ?? PLAN_LIMITS.maxString} bytes`);
    return true;
  }

  absPath(path: string, v: unknown): void {
    if (this.str(path, v, { min: 1, max: PLAN_LIMITS.maxPath }) && !v.startsWith('/')) this.bad(path, 'must be an absolute path');
  }

  u32(path: string, v: unknown): void {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > U32_MAX) this.bad(path, 'must be an integer in 0..4294967295');
  }

  u64(path: string, v: unknown): void {
    const ok = (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'bigint' && v >= 0n && v <= U64_MAX);
    if (!ok) this.bad(path, 'must be an unsigned 64-bit integer');
  }

  list(path: string, v: unknown, max: number): v is readonly unknown[] {
    if (!Array.isArray(v)) {
      this.bad(path, 'must be a list');
      return false;
    }
    if (v.length > max) this.bad(path, `must have at most ${max} entries`);
    return true;
  }
}

/** Check a plan; throws a ValidationError listing every problem (paths like `mounts[2].target`). */
export function validatePlan(plan: LaunchPlan): void {
  const c = new PlanChecker();
  c.str('container', plan.container, { min: 1, max: PLAN_LIMITS.maxContainer });
  c.str('hostname', plan.hostname, { min: 1, max: PLAN_LIMITS.maxHostname });
  c.absPath('root', plan.root);
  checkMounts(c, plan);
  checkNetworkAndIds(c, plan);
  checkRlimits(c, plan);
  checkSchedAndCapabilities(c, plan);
  checkSeccomp(c, plan);
  checkExecAndHandover(c, plan);
  if (c.issues.length > 0) throw new ValidationError(c.issues, `invalid launch plan for ${String(plan.container)}`);
}

function checkMounts(c: PlanChecker, plan: LaunchPlan): void {
  if (c.list('mounts', plan.mounts, PLAN_LIMITS.maxMounts)) {
    plan.mounts.forEach((m, i) => {
      const p = `mounts[${i}]`;
      if (m.source !== null) c.str(`${p}.source`, m.source, { max: PLAN_LIMITS.maxPath });
      if (c.str(`${p}.target`, m.target, { min: 1, max: PLAN_LIMITS.maxPath })) {
        if (m.target.split('/').includes('..')) c.bad(`${p}.target`, 'must not contain a .. component');
      }
      if (m.fstype !== null) c.str(`${p}.fstype`, m.fstype, { min: 1, max: 255 });
      if (typeof m.flags !== 'number' || !Number.isSafeInteger(m.flags) || m.flags < 0) c.bad(`${p}.flags`, 'must be a non-negative integer');
      if (m.data !== null) c.str(`${p}.data`, m.data, { max: 4096 });
      if (m.skipIfMissing !== undefined && typeof m.skipIfMissing !== 'boolean') c.bad(`${p}.skipIfMissing`, 'must be a boolean');
      if (m.sourceRoot !== undefined) {
        c.absPath(`${p}.sourceRoot`, m.sourceRoot);
        if (typeof m.source !== 'string' || m.source === '' || m.source.startsWith('/')) c.bad(`${p}.source`, 'must be a relative path when sourceRoot is set');
      }
      if (m.create !== undefined) {
        if (m.create !== 'file' && m.create !== 'dir' && m.create !== 'symlink' && m.create !== 'device') c.bad(`${p}.create`, "must be 'file', 'dir', 'symlink' or 'device'");
        if (typeof m.target === 'string' && m.target.startsWith('/')) c.bad(`${p}.create`, 'only a target inside the root can be created');
      }
      if (m.create === 'symlink' && (m.source === null || m.source === '' || m.fstype !== null || m.data !== null || m.flags !== 0 || m.skipIfMissing || m.sourceRoot !== undefined)) {
        c.bad(p, 'a symlink needs a source (its text) and no fstype, flags, data, skipIfMissing or sourceRoot');
      }
      if (m.create === 'device' && (typeof m.source !== 'string' || !m.source.startsWith('/') || m.fstype !== null || m.data !== null || m.flags !== 0 || m.sourceRoot !== undefined)) {
        c.bad(p, 'a device needs an absolute host source and no fstype, flags, data or sourceRoot');
      }
    });
  }
}

function checkNetworkAndIds(c: PlanChecker, plan: LaunchPlan): void {
  switch (plan.network?.mode) {
    case 'new':
    case 'host':
      break;
    case 'join':
      c.absPath('network.path', plan.network.path);
      break;
    default:
      c.bad('network.mode', "must be 'new', 'host' or 'join'");
  }
  c.u32('uid', plan.uid);
  c.u32('gid', plan.gid);
  if (c.list('groups', plan.groups, PLAN_LIMITS.maxGroups)) plan.groups.forEach((g, i) => c.u32(`groups[${i}]`, g));
}

function checkRlimits(c: PlanChecker, plan: LaunchPlan): void {
  if (c.list('rlimits', plan.rlimits, PLAN_LIMITS.maxRlimits)) {
    const seen = new Set<string>();
    plan.rlimits.forEach((r, i) => {
      const p = `rlimits[${i}]`;
      if (!Object.hasOwn(RLIMIT, r.resource)) c.bad(`${p}.resource`, `unknown resource ${JSON.stringify(r.resource)}`);
      else if (seen.has(r.resource)) c.bad(`${p}.resource`, `duplicate resource ${r.resource}`);
      seen.add(r.resource);
      if (r.soft !== 'infinity') c.u64(`${p}.soft`, r.soft);
      if (r.hard !== 'infinity') c.u64(`${p}.hard`, r.hard);
      const lim = (v: U64 | 'infinity'): bigint | null => {
        if (v === 'infinity') return U64_MAX;
        if (typeof v === 'bigint') return v;
        return typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : null;
      };
      const soft = lim(r.soft);
      const hard = lim(r.hard);
      if (soft !== null && hard !== null && soft > hard) c.bad(p, 'soft limit must not exceed the hard limit');
    });
  }
}

function checkSchedAndCapabilities(c: PlanChecker, plan: LaunchPlan): void {
  if (plan.sched != null) {
    const s = plan.sched;
    if (!Object.hasOwn(SCHED, s.policy)) c.bad('sched.policy', `unknown policy ${JSON.stringify(s.policy)}`);
    const rt = s.policy === 'fifo' || s.policy === 'round_robin';
    if (!Number.isInteger(s.priority) || (rt ? s.priority < 1 || s.priority > 99 : s.priority !== 0)) {
      c.bad('sched.priority', rt ? 'must be in 1..99' : 'must be 0 for a non-realtime policy');
    }
    const niceOk = s.policy === 'other' || s.policy === 'batch';
    if (!Number.isInteger(s.nice) || s.nice < -20 || s.nice > 19 || (!niceOk && s.nice !== 0)) {
      c.bad('sched.nice', niceOk ? 'must be in -20..19' : 'must be 0 for this policy');
    }
  }
  if (c.list('capabilities', plan.capabilities, PLAN_LIMITS.maxCapabilities)) {
    const seen = new Set<number>();
    plan.capabilities.forEach((cap, i) => {
      if (!Number.isInteger(cap) || cap < 0 || cap > 63) c.bad(`capabilities[${i}]`, 'must be a capability number in 0..63');
      else if (seen.has(cap)) c.bad(`capabilities[${i}]`, `duplicate capability ${cap}`);
      seen.add(cap);
    });
  }
}

function checkSeccomp(c: PlanChecker, plan: LaunchPlan): void {
  if (typeof plan.seccomp?.enabled !== 'boolean') c.bad('seccomp.enabled', 'must be a boolean');
  if (plan.seccomp?.deny !== undefined && typeof plan.seccomp.deny !== 'boolean') c.bad('seccomp.deny', 'must be a boolean');
  if (c.list('seccomp.rules', plan.seccomp?.rules, PLAN_LIMITS.maxSeccompRules)) {
    plan.seccomp.rules.forEach((r, i) => {
      const p = `seccomp.rules[${i}]`;
      if (c.str(`${p}.syscall`, r.syscall, { min: 1, max: PLAN_LIMITS.maxSyscallName }) && !/^[a-z0-9_]+$/.test(r.syscall)) {
        c.bad(`${p}.syscall`, 'must consist of a-z, 0-9 and _');
      }
      switch (r.kind) {
        case 'any':
          break;
        case 'values':
          if (!Number.isInteger(r.index) || r.index < 0 || r.index > 5) c.bad(`${p}.index`, 'must be in 0..5');
          if (c.list(`${p}.values`, r.values, PLAN_LIMITS.maxSeccompValues)) {
            if (r.values.length === 0) c.bad(`${p}.values`, 'must not be empty');
            r.values.forEach((v, j) => c.u64(`${p}.values[${j}]`, v));
          }
          break;
        case 'mask':
          if (!Number.isInteger(r.index) || r.index < 0 || r.index > 5) c.bad(`${p}.index`, 'must be in 0..5');
          c.u64(`${p}.mask`, r.mask);
          break;
        case 'bits':
          if (!Number.isInteger(r.index) || r.index < 0 || r.index > 5) c.bad(`${p}.index`, 'must be in 0..5');
          c.u64(`${p}.bits`, r.bits);
          break;
        default:
          c.bad(`${p}.kind`, "must be 'any', 'values', 'mask' or 'bits'");
      }
      if (r.errno !== undefined && (!Number.isInteger(r.errno) || r.errno < 1 || r.errno > 4095)) c.bad(`${p}.errno`, 'must be in 1..4095');
    });
  }
}

/** The executable, its arguments and environment, and what is handed over: cgroups, console, sockets. */
function checkExecAndHandover(c: PlanChecker, plan: LaunchPlan): void {
  if (plan.selinuxExec != null) c.str('selinuxExec', plan.selinuxExec, { min: 1, max: 4096 });
  c.str('path', plan.path, { min: 1, max: PLAN_LIMITS.maxPath });
  if (c.list('argv', plan.argv, PLAN_LIMITS.maxArgs)) {
    if (plan.argv.length === 0) c.bad('argv', 'must not be empty');
    plan.argv.forEach((a, i) => c.str(`argv[${i}]`, a));
  }
  if (c.list('envp', plan.envp, PLAN_LIMITS.maxEnv)) {
    plan.envp.forEach((e, i) => {
      if (c.str(`envp[${i}]`, e) && !(e.indexOf('=') > 0)) c.bad(`envp[${i}]`, 'must have the form K=V with a non-empty K');
    });
  }
  if (c.list('cgroupProcs', plan.cgroupProcs, PLAN_LIMITS.maxCgroups)) plan.cgroupProcs.forEach((procs, i) => c.absPath(`cgroupProcs[${i}]`, procs));
  if (typeof plan.console !== 'boolean') c.bad('console', 'must be a boolean');
  if (c.list('sockets', plan.sockets, PLAN_LIMITS.maxSockets)) {
    const seen = new Set<string>();
    plan.sockets.forEach((s, i) => {
      if (c.str(`sockets[${i}]`, s, { min: 1, max: 255 })) {
        if (s.includes('=')) c.bad(`sockets[${i}]`, 'must not contain =');
        if (seen.has(s)) c.bad(`sockets[${i}]`, `duplicate socket ${s}`);
        seen.add(s);
      }
    });
  }
}

class Writer {
  private chunks: Buffer[] = [];
  private size = 0;
  private push(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  u8(v: number): void {
    const b = Buffer.allocUnsafe(1);
    b.writeUInt8(v);
    this.push(b);
  }
  u16(v: number): void {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(v);
    this.push(b);
  }
  u32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: U64): void {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u32(b.length);
    this.push(b);
  }
  ostr(s: string | null | undefined): void {
    if (s == null) {
      this.u8(0);
    } else {
      this.u8(1);
      this.str(s);
    }
  }
  strs(list: readonly string[]): void {
    this.u32(list.length);
    for (const s of list) this.str(s);
  }
  raw(s: string): void {
    this.push(Buffer.from(s, 'latin1'));
  }
  finish(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

const NETWORK_CODE = { new: 0, host: 1, join: 2 } as const;
const RULE_CODE = { any: 0, values: 1, mask: 2, bits: 3 } as const;

const CREATE_OPTION = { file: MOUNT_OPTION.createFile, dir: MOUNT_OPTION.createDir, symlink: MOUNT_OPTION.symlink, device: MOUNT_OPTION.device } as const;

/**
 * Validate and encode a plan to the binary format of the C core. This is the one check of
 * a plan on the start path: the boundary to the core (buildPlan does not validate).
 */
/** How the launcher hands stdio over; not part of LaunchPlan because the fds decide it. */
export interface EncodeStdio {
  /** The core puts the host's /dev/null at stdout / stderr (it was given a pipe there). */
  discardStdout?: boolean;
  discardStderr?: boolean;
}

export function encodePlan(plan: LaunchPlan, stdio: EncodeStdio = {}): Buffer {
  validatePlan(plan);
  const w = new Writer();
  w.raw(PLAN_MAGIC);
  w.u16(PLAN_VERSION);
  w.u16(0);
  w.str(plan.container);
  w.str(plan.hostname);
  w.str(plan.root);
  w.u32(plan.mounts.length);
  for (const m of plan.mounts) {
    w.ostr(m.source);
    w.str(m.target);
    w.ostr(m.fstype);
    w.u64(m.flags);
    w.ostr(m.data);
    const create = m.create === undefined ? 0 : CREATE_OPTION[m.create];
    w.u8((m.skipIfMissing ? MOUNT_OPTION.skipIfMissing : 0) | (m.sourceRoot !== undefined ? MOUNT_OPTION.sourceInRoot : 0) | create);
    if (m.sourceRoot !== undefined) w.str(m.sourceRoot);
  }
  w.u8(NETWORK_CODE[plan.network.mode]);
  if (plan.network.mode === 'join') w.str(plan.network.path);
  w.u32(plan.uid);
  w.u32(plan.gid);
  w.u32(plan.groups.length);
  for (const g of plan.groups) w.u32(g);
  w.u32(plan.rlimits.length);
  for (const r of plan.rlimits) {
    w.u32(RLIMIT[r.resource]);
    w.u64(r.soft === 'infinity' ? U64_MAX : r.soft);
    w.u64(r.hard === 'infinity' ? U64_MAX : r.hard);
  }
  if (plan.sched != null) {
    w.u8(1);
    w.u32(SCHED[plan.sched.policy]);
    w.u32(plan.sched.priority);
    w.i32(plan.sched.nice);
  } else {
    w.u8(0);
  }
  w.u32(plan.capabilities.length);
  for (const c of plan.capabilities) w.u32(c);
  const deny = plan.seccomp.enabled && plan.seccomp.deny === true;
  w.u8(plan.seccomp.enabled ? (deny ? 2 : 1) : 0);
  w.u32(plan.seccomp.rules.length);
  for (const r of plan.seccomp.rules) {
    w.str(r.syscall);
    w.u8(RULE_CODE[r.kind]);
    if (deny) w.u32(r.errno ?? 1);
    if (r.kind === 'values') {
      w.u8(r.index);
      w.u32(r.values.length);
      for (const v of r.values) w.u64(v);
    } else if (r.kind === 'mask') {
      w.u8(r.index);
      w.u64(r.mask);
    } else if (r.kind === 'bits') {
      w.u8(r.index);
      w.u64(r.bits);
    }
  }
  w.ostr(plan.selinuxExec);
  w.str(plan.path);
  w.strs(plan.argv);
  w.strs(plan.envp);
  w.strs(plan.cgroupProcs);
  w.u8(plan.console ? 1 : 0);
  w.strs(plan.sockets);
  w.u8((stdio.discardStdout ? 1 : 0) | (stdio.discardStderr ? 2 : 0));
  const out = w.finish();
  if (out.length > PLAN_LIMITS.maxPlanBytes) {
    throw new ValidationError([{ path: '', rule: `encoded plan is ${out.length} bytes, more than ${PLAN_LIMITS.maxPlanBytes}` }]);
  }
  return out;
}
