/**
 * The runtime configuration (`northstar -c northstar.toml`), runtime.md §1.
 *
 * `parseConfig` is pure: it decodes the TOML text and validates every key, collecting
 * all problems into one ValidationError whose issues name the key path
 * (`repositories.default.capacity_size: …`). `prepareConfigDirs` then does the
 * filesystem part like upstream: `mkdir -p` the three directories and check that each
 * is readable and writable by its mode bits.
 *
 * Our additions to upstream's keys: `shutdown_grace_period` (humantime, default 5s; the
 * time between SIGTERM and SIGKILL at shutdown, spec README item 9) and `verity`
 * ("kernel" | "user" | "auto", spec README item 16; auto = kernel when the kernel has
 * device-mapper, see hasDeviceMapper in mount/), `[cgroups] pids_max` (integer 1..=4194304
 * or "max", default 1024: `pids.max` of every container cgroup), `[cgroups] prepare`
 * (boolean, default true: cgroups made ahead of starts) and `oom_score_adj`
 * (integer -1000..=1000, default -900: the runtime's own OOM score adjustment; containers
 * are reset to 0 by the launch core).
 */
import { DEFAULT_CONSOLE_OPTIONS, type ConsoleOptions } from '../console/handle.js';
import { access, mkdir, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { NorthstarError, ValidationError } from '../common/errors.js';
import { ConsoleUrlError, parseConsoleUrl, type ConsoleUrl } from '../common/console-url.js';
import { CONSOLE_PERMISSIONS, normalizePermissions, type ConsolePermission } from '../manifest/index.js';
import { SECCOMP_DEFAULTS, type SeccompDefault } from '../launch/seccomp-profile.js';
import { parseDurationMsExact } from '../common/humantime.js';

export type VerityMode = 'kernel' | 'user' | 'auto';

export type BindUrl = ConsoleUrl & { url: string };

/** The console limits (console.md §10): one definition, shared with the console server. */
export type { ConsoleOptions } from '../console/handle.js';

/** One address of the global console and the permissions of connections made to it. */
export interface ConsoleListener {
  bind: BindUrl;
  permissions: ConsolePermission[];
}

export interface GlobalConsoleConfig {
  bind: BindUrl;
  /**
   * Every address to listen on: `bind` with `permissions`, then each `also_bind` entry (our
   * extension) with its own permissions, or those of `bind` where it names none.
   */
  listeners: ConsoleListener[];
  permissions: ConsolePermission[];
  options: ConsoleOptions;
}

export type RepositoryType = { kind: 'mem' } | { kind: 'fs'; dir: string };

export interface RepositoryConfig {
  id: string;
  type: RepositoryType;
  /** Path of the raw 32-byte ed25519 public key; absent = trusted, no verification. */
  key?: string | undefined;
  mountOnStart: boolean;
  capacityNum?: number | undefined;
  capacitySize?: number | undefined;
}

export interface Config {
  runDir: string;
  dataDir: string;
  socketDir: string;
  cgroup: string;
  /** Ours: `[cgroups]`. */
  cgroups: { pidsMax: number | 'max'; prepare: boolean };
  /** Ours: written to /proc/self/oom_score_adj at start. */
  oomScoreAdj: number;
  eventBufferSize: number;
  notificationBufferSize: number;
  /** Milliseconds. */
  loopDeviceTimeout: number;
  /** Milliseconds between SIGTERM and SIGKILL at shutdown. */
  shutdownGracePeriod: number;
  verity: VerityMode;
  console: { global?: GlobalConsoleConfig | undefined; options: ConsoleOptions };
  /** In file order. */
  repositories: Map<string, RepositoryConfig>;
  debug: { commands: string[] };
  /** Ours: `[seccomp]`; absent = the defaults (`default = "deny-dangerous"`). */
  seccomp?: { default: SeccompDefault };
  /** Ours: `[launch]`: launch cores spawned ahead of time. */
  launch: { pool: number };
  /** Ours: `[logs]`: bytes of `io: pipe` output kept per container (0: none); absent = 1 MiB. */
  logs?: { bufferSize: number };
}

export { DEFAULT_CONSOLE_OPTIONS };

export const DEFAULTS = Object.freeze({
  eventBufferSize: 256,
  notificationBufferSize: 128,
  loopDeviceTimeout: 10_000,
  shutdownGracePeriod: 5_000,
  verity: 'auto' as VerityMode,
  pidsMax: 1024,
  oomScoreAdj: -900,
  launchPool: 2,
  logBufferSize: 1 << 20,
});

/** `logs.buffer_size` bounds (besides 0): one longest line and its overhead .. 1 GiB. */
export const LOG_BUFFER_MIN = 8192 + 64;
export const LOG_BUFFER_MAX = 1 << 30;

/** The largest `launch.pool`: each pooled core is a process waiting on the host. */
export const LAUNCH_POOL_MAX = 64;

/** The kernel's PID_MAX_LIMIT: the largest value `pids.max` takes besides "max". */
export const PIDS_MAX_LIMIT = 4_194_304;

// ---------------------------------------------------------------------------------------
// humantime and bytesize

/**
 * Parse a humantime duration ("10s", "1m 30s", "1h30m", "500ms") into milliseconds
 * (fractional for ns/us), with the one parser of src/common/humantime.ts. Throws an Error
 * whose message says what is wrong (the caller prefixes the key path).
 */
export function parseHumantime(text: string): number {
  return parseDurationMsExact(text);
}

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, ki: 2 ** 10, kib: 2 ** 10,
  m: 1e6, mb: 1e6, mi: 2 ** 20, mib: 2 ** 20,
  g: 1e9, gb: 1e9, gi: 2 ** 30, gib: 2 ** 30,
  t: 1e12, tb: 1e12, ti: 2 ** 40, tib: 2 ** 40,
  p: 1e15, pb: 1e15, pi: 2 ** 50, pib: 2 ** 50,
};

/**
 * Parse a byte size like the bytesize crate: a (possibly fractional) number, optional
 * spaces, an optional case-insensitive unit. Decimal for K/KB/M/MB/…, binary for
 * Ki/KiB/Mi/MiB/…: "100MB" = 10^8, "1MiB" = 2^20, "1.5 KiB" = 1536.
 */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) throw new Error(`invalid byte size ${JSON.stringify(text)}: expected a number followed by an optional unit`);
  const factor = BYTE_UNITS[m[2]!.toLowerCase()];
  if (factor === undefined) throw new Error(`invalid byte size ${JSON.stringify(text)}: unknown unit ${JSON.stringify(m[2])}`);
  const value = Math.floor(Number(m[1]) * factor);
  if (!Number.isSafeInteger(value)) throw new Error(`invalid byte size ${JSON.stringify(text)}: too large`);
  return value;
}

// ---------------------------------------------------------------------------------------
// Decoding with key paths

type Table = Record<string, unknown>;
type Issue = { path: string; rule: string };

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function tomlType(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (isTable(v)) return 'a table';
  if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) return 'an integer';
  if (typeof v === 'number') return 'a float';
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  if (v instanceof Date) return 'a date';
  return typeof v;
}

function join(path: string, key: string): string {
  const k = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${k}` : k;
}

class Reader {
  readonly issues: Issue[] = [];

  fail(path: string, rule: string): undefined {
    this.issues.push({ path, rule });
    return undefined;
  }

  /** Report keys of `t` not in `known`. */
  unknownKeys(t: Table, path: string, known: readonly string[]): void {
    for (const k of Object.keys(t)) {
      if (!known.includes(k)) this.fail(join(path, k), `unknown key, expected one of ${known.map((x) => `\`${x}\``).join(', ')}`);
    }
  }

  table(t: Table, key: string, path: string): Table | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (!isTable(v)) return this.fail(join(path, key), `expected a table, found ${tomlType(v)}`);
    return v;
  }

  string(t: Table, key: string, path: string, required: boolean): string | undefined {
    const v = t[key];
    if (v === undefined) return required ? this.fail(join(path, key), 'missing required key') : undefined;
    if (typeof v !== 'string') return this.fail(join(path, key), `expected a string, found ${tomlType(v)}`);
    return v;
  }

  path(t: Table, key: string, path: string, required: boolean): string | undefined {
    const v = this.string(t, key, path, required);
    if (v === undefined) return undefined;
    if (v === '') return this.fail(join(path, key), 'must not be empty');
    if (v.includes('\0')) return this.fail(join(path, key), 'must not contain a NUL byte');
    return v;
  }

  bool(t: Table, key: string, path: string, dflt: boolean): boolean {
    const v = t[key];
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') return this.fail(join(path, key), `expected a boolean, found ${tomlType(v)}`) ?? dflt;
    return v;
  }

  uint(t: Table, key: string, path: string, max: number): number | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) return this.fail(join(path, key), `expected an unsigned integer, found ${tomlType(v)}`);
    if (n < 0 || n > max) return this.fail(join(path, key), `${String(v)} is out of range 0..=${max}`);
    return n;
  }

  duration(t: Table, key: string, path: string): number | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.fail(join(path, key), `expected a duration string like "10s", found ${tomlType(v)}`);
    try {
      return parseHumantime(v);
    } catch (e) {
      return this.fail(join(path, key), (e as Error).message);
    }
  }

  bytes(t: Table, key: string, path: string): number | undefined {
    const v = t[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.fail(join(path, key), `expected a byte size string like "100MB", found ${tomlType(v)}`);
    try {
      return parseByteSize(v);
    } catch (e) {
      return this.fail(join(path, key), (e as Error).message);
    }
  }
}

const USIZE_MAX = Number.MAX_SAFE_INTEGER;
const U32_MAX = 0xffff_ffff;

const TOP_KEYS = [
  'run_dir', 'data_dir', 'socket_dir', 'cgroup', 'event_buffer_size', 'notification_buffer_size',
  'loop_device_timeout', 'console', 'repositories', 'debug', 'shutdown_grace_period', 'verity',
  'cgroups', 'oom_score_adj', 'seccomp', 'launch', 'logs',
] as const;
const CONSOLE_OPTION_KEYS = [
  'token_validity', 'max_requests_per_sec', 'max_request_size', 'max_npk_install_size', 'npk_stream_timeout',
  // ours
  'max_connections', 'connect_timeout', 'npk_install_timeout',
] as const;
const REPOSITORY_KEYS = ['type', 'key', 'mount_on_start', 'capacity_num', 'capacity_size'] as const;

function readConsoleOptions(r: Reader, parent: Table, path: string): ConsoleOptions {
  const t = r.table(parent, 'options', path);
  const p = join(path, 'options');
  if (!t) return { ...DEFAULT_CONSOLE_OPTIONS };
  r.unknownKeys(t, p, CONSOLE_OPTION_KEYS);
  return {
    tokenValidity: r.duration(t, 'token_validity', p) ?? DEFAULT_CONSOLE_OPTIONS.tokenValidity,
    maxRequestsPerSec: r.uint(t, 'max_requests_per_sec', p, USIZE_MAX) ?? DEFAULT_CONSOLE_OPTIONS.maxRequestsPerSec,
    maxRequestSize: r.bytes(t, 'max_request_size', p) ?? DEFAULT_CONSOLE_OPTIONS.maxRequestSize,
    maxNpkInstallSize: r.bytes(t, 'max_npk_install_size', p) ?? DEFAULT_CONSOLE_OPTIONS.maxNpkInstallSize,
    npkStreamTimeout: r.duration(t, 'npk_stream_timeout', p) ?? DEFAULT_CONSOLE_OPTIONS.npkStreamTimeout,
    ...ours(r, t, p),
  };
}

/** Our console options (absent = the defaults of handle.ts); only the keys that are set. */
function ours(r: Reader, t: Table, p: string): Partial<ConsoleOptions> {
  const out: Partial<ConsoleOptions> = {};
  const maxConnections = r.uint(t, 'max_connections', p, U32_MAX);
  if (maxConnections === 0) r.fail(join(p, 'max_connections'), 'must be at least 1');
  else if (maxConnections !== undefined) out.maxConnections = maxConnections;
  const connectTimeout = r.duration(t, 'connect_timeout', p);
  if (connectTimeout === 0) r.fail(join(p, 'connect_timeout'), 'must be longer than 0s');
  else if (connectTimeout !== undefined) out.connectTimeout = connectTimeout;
  const installTimeout = r.duration(t, 'npk_install_timeout', p);
  if (installTimeout !== undefined) out.npkInstallTimeout = installTimeout;
  return out;
}

/** Parse a console bind URL (common/console-url.ts): `tcp://host[:port]` (default port 4200) or `unix:///abs/path`. */
export function parseBindUrl(text: string): BindUrl {
  try {
    return { ...parseConsoleUrl(text, 'url'), url: text };
  } catch (e) {
    // The config's own wording names the scheme found.
    if (e instanceof ConsoleUrlError && e.problem === 'scheme') {
      throw new Error(`invalid url ${JSON.stringify(text)}: unsupported scheme ${JSON.stringify(e.scheme)}, expected tcp or unix`);
    }
    throw e;
  }
}

function readGlobalConsole(r: Reader, t: Table, path: string): GlobalConsoleConfig | undefined {
  // Unknown keys are tolerated in console.global, like upstream (no deny_unknown_fields).
  const bindText = r.string(t, 'bind', path, true);
  let bind: BindUrl | undefined;
  if (bindText !== undefined) {
    try {
      bind = parseBindUrl(bindText);
    } catch (e) {
      r.fail(join(path, 'bind'), (e as Error).message);
    }
  }
  const pp = join(path, 'permissions');
  let permissions: ConsolePermission[] | undefined;
  if (t['permissions'] === undefined) r.fail(pp, 'missing required key');
  else permissions = readPermissions(r, t['permissions'], pp);
  // Our extension: more addresses for the same console (e.g. a unix socket besides TCP), each
  // a url, or a table { url, permissions } with permissions of its own (e.g. a read-only TCP
  // listener beside a unix socket with full permissions).
  const also: { bind: BindUrl; permissions: ConsolePermission[] | undefined }[] = [];
  const av = t['also_bind'];
  const ap = join(path, 'also_bind');
  if (av !== undefined) {
    if (!Array.isArray(av)) r.fail(ap, `expected a list of urls or { url, permissions } tables, found ${tomlType(av)}`);
    else {
      av.forEach((u, i) => {
        const at = `${ap}[${i}]`;
        let text: unknown = u;
        let own: ConsolePermission[] | undefined;
        if (isTable(u)) {
          r.unknownKeys(u, at, ['url', 'permissions']);
          text = u['url'];
          if (text === undefined) return r.fail(`${at}.url`, 'missing required key');
          if (u['permissions'] !== undefined) own = readPermissions(r, u['permissions'], `${at}.permissions`);
        }
        if (typeof text !== 'string') return r.fail(isTable(u) ? `${at}.url` : at, `expected a url string, found ${tomlType(text)}`);
        try {
          also.push({ bind: parseBindUrl(text), permissions: own });
        } catch (e) {
          r.fail(isTable(u) ? `${at}.url` : at, (e as Error).message);
        }
      });
    }
  }
  const options = readConsoleOptions(r, t, path);
  if (!bind || !permissions) return undefined;
  const listeners = [{ bind, permissions }, ...also.map((a) => ({ bind: a.bind, permissions: a.permissions ?? permissions }))];
  return { bind, listeners, permissions, options };
}

/** `"full"` or a list of permission names. */
function readPermissions(r: Reader, pv: unknown, pp: string): ConsolePermission[] | undefined {
  if (pv === 'full') return [...CONSOLE_PERMISSIONS];
  if (Array.isArray(pv)) {
    const list: ConsolePermission[] = [];
    pv.forEach((p, i) => {
      if (typeof p === 'string' && (CONSOLE_PERMISSIONS as readonly string[]).includes(p)) list.push(p as ConsolePermission);
      else r.fail(`${pp}[${i}]`, `unknown permission ${typeof p === 'string' ? JSON.stringify(p) : tomlType(p)}, expected one of ${CONSOLE_PERMISSIONS.join(', ')}`);
    });
    return normalizePermissions(list);
  }
  r.fail(pp, `expected "full" or a list of permissions, found ${typeof pv === 'string' ? JSON.stringify(pv) : tomlType(pv)}`);
  return undefined;
}

function readRepository(r: Reader, id: string, t: Table, path: string): RepositoryConfig | undefined {
  r.unknownKeys(t, path, REPOSITORY_KEYS);
  const tv = t['type'];
  const tp = join(path, 'type');
  let type: RepositoryType | undefined;
  if (tv === undefined) r.fail(tp, 'missing required key');
  else if (tv === 'mem') type = { kind: 'mem' };
  else if (isTable(tv)) {
    const keys = Object.keys(tv);
    if (keys.length !== 1 || keys[0] !== 'fs') r.fail(tp, 'expected "mem" or { fs = { dir = "…" } }');
    else {
      const fs = r.table(tv, 'fs', tp);
      if (fs) {
        const fp = join(tp, 'fs');
        r.unknownKeys(fs, fp, ['dir']);
        const dir = r.path(fs, 'dir', fp, true);
        if (dir !== undefined) type = { kind: 'fs', dir };
      }
    }
  } else r.fail(tp, `expected "mem" or { fs = { dir = "…" } }, found ${typeof tv === 'string' ? JSON.stringify(tv) : tomlType(tv)}`);
  const key = r.path(t, 'key', path, false);
  const mountOnStart = r.bool(t, 'mount_on_start', path, false);
  const capacityNum = r.uint(t, 'capacity_num', path, U32_MAX);
  const capacitySize = r.bytes(t, 'capacity_size', path);
  if (!type) return undefined;
  return { id, type, key, mountOnStart, capacityNum, capacitySize };
}

/**
 * Parse and validate the TOML configuration. Throws a ValidationError (code EINVALID)
 * listing every problem with its key path; never anything else for bad input.
 */
export function parseConfig(tomlText: string): Config {
  let doc: Table;
  try {
    doc = parseToml(tomlText) as Table;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0] ?? 'syntax error';
    const line = (e as { line?: number }).line;
    const col = (e as { column?: number }).column;
    const where = line !== undefined ? `line ${line}${col !== undefined ? `, column ${col}` : ''}` : '';
    throw new ValidationError([{ path: where, rule: `invalid toml: ${msg.replace(/^Invalid TOML document: /i, '').toLowerCase()}` }], 'invalid configuration');
  }
  const r = new Reader();
  r.unknownKeys(doc, '', TOP_KEYS);
  const runDir = r.path(doc, 'run_dir', '', true);
  const dataDir = r.path(doc, 'data_dir', '', true);
  const socketDir = r.path(doc, 'socket_dir', '', true);
  const cgroup = r.string(doc, 'cgroup', '', true);
  if (cgroup !== undefined) {
    const parts = cgroup.split('/').filter((p) => p !== '');
    if (parts.length === 0) r.fail('cgroup', 'must name a cgroup, not the hierarchy root');
    else if (parts.some((p) => p === '.' || p === '..')) r.fail('cgroup', 'must not contain `.` or `..` components');
    else if (cgroup.includes('\0') || cgroup.includes('\n')) r.fail('cgroup', 'must not contain NUL or newline');
  }
  const eventBufferSize = r.uint(doc, 'event_buffer_size', '', USIZE_MAX) ?? DEFAULTS.eventBufferSize;
  const notificationBufferSize = r.uint(doc, 'notification_buffer_size', '', USIZE_MAX) ?? DEFAULTS.notificationBufferSize;
  if (eventBufferSize === 0) r.fail('event_buffer_size', 'must be at least 1');
  if (notificationBufferSize === 0) r.fail('notification_buffer_size', 'must be at least 1');
  const loopDeviceTimeout = r.duration(doc, 'loop_device_timeout', '') ?? DEFAULTS.loopDeviceTimeout;
  const shutdownGracePeriod = r.duration(doc, 'shutdown_grace_period', '') ?? DEFAULTS.shutdownGracePeriod;
  let verity: VerityMode = DEFAULTS.verity;
  const vv = doc['verity'];
  if (vv !== undefined) {
    if (vv === 'kernel' || vv === 'user' || vv === 'auto') verity = vv;
    else r.fail('verity', `expected "kernel", "user" or "auto", found ${typeof vv === 'string' ? JSON.stringify(vv) : tomlType(vv)}`);
  }

  let pidsMax: number | 'max' = DEFAULTS.pidsMax;
  let prepare = true;
  const cgroupsT = r.table(doc, 'cgroups', '');
  if (cgroupsT) {
    r.unknownKeys(cgroupsT, 'cgroups', ['pids_max', 'prepare']);
    const pp = cgroupsT['prepare'];
    if (pp !== undefined) {
      if (typeof pp !== 'boolean') r.fail('cgroups.prepare', `expected true or false, found ${tomlType(pp)}`);
      else prepare = pp;
    }
    const pv = cgroupsT['pids_max'];
    if (pv === 'max') pidsMax = 'max';
    else if (typeof pv === 'string') r.fail('cgroups.pids_max', `expected an integer 1..=${PIDS_MAX_LIMIT} or "max", found ${JSON.stringify(pv)}`);
    else if (pv !== undefined) {
      const n = typeof pv === 'bigint' ? Number(pv) : pv;
      if (typeof n !== 'number' || !Number.isInteger(n)) r.fail('cgroups.pids_max', `expected an integer 1..=${PIDS_MAX_LIMIT} or "max", found ${tomlType(pv)}`);
      else if (n < 1) r.fail('cgroups.pids_max', `${String(pv)} is too small: a container needs at least its launcher, init and app; use "max" for no limit`);
      else if (n > PIDS_MAX_LIMIT) r.fail('cgroups.pids_max', `${String(pv)} is above the kernel's limit ${PIDS_MAX_LIMIT}; use "max" for no limit`);
      else pidsMax = n;
    }
  }
  let oomScoreAdj: number = DEFAULTS.oomScoreAdj;
  const ov = doc['oom_score_adj'];
  if (ov !== undefined) {
    const n = typeof ov === 'bigint' ? Number(ov) : ov;
    if (typeof n !== 'number' || !Number.isInteger(n)) r.fail('oom_score_adj', `expected an integer -1000..=1000, found ${tomlType(ov)}`);
    else if (n < -1000 || n > 1000) r.fail('oom_score_adj', `${String(ov)} is out of range -1000..=1000`);
    else oomScoreAdj = n;
  }

  const consoleT = r.table(doc, 'console', '');
  let global: GlobalConsoleConfig | undefined;
  let consoleOptions: ConsoleOptions = { ...DEFAULT_CONSOLE_OPTIONS };
  if (consoleT) {
    r.unknownKeys(consoleT, 'console', ['global', 'options']);
    const g = r.table(consoleT, 'global', 'console');
    if (g) global = readGlobalConsole(r, g, 'console.global');
    consoleOptions = readConsoleOptions(r, consoleT, 'console');
  }

  const repositories = new Map<string, RepositoryConfig>();
  const repoT = r.table(doc, 'repositories', '');
  if (repoT) {
    for (const [id, v] of Object.entries(repoT)) {
      const p = join('repositories', id);
      if (!isTable(v)) {
        r.fail(p, `expected a table, found ${tomlType(v)}`);
        continue;
      }
      const repo = readRepository(r, id, v, p);
      if (repo) repositories.set(id, repo);
    }
  }
  const seenDirs = new Map<string, string>();
  for (const repo of repositories.values()) {
    if (repo.type.kind !== 'fs') continue;
    const other = seenDirs.get(repo.type.dir);
    if (other !== undefined) r.fail(`repositories.${repo.id}.type.fs.dir`, `${repo.type.dir} is also the directory of repository ${JSON.stringify(other)}`);
    seenDirs.set(repo.type.dir, repo.id);
  }

  const commands: string[] = [];
  const debugT = r.table(doc, 'debug', '');
  if (debugT) {
    r.unknownKeys(debugT, 'debug', ['commands']);
    const c = debugT['commands'];
    if (c !== undefined) {
      if (!Array.isArray(c)) r.fail('debug.commands', `expected an array of strings, found ${tomlType(c)}`);
      else
        c.forEach((cmd, i) => {
          if (typeof cmd !== 'string') r.fail(`debug.commands[${i}]`, `expected a string, found ${tomlType(cmd)}`);
          else if (cmd.trim() === '') r.fail(`debug.commands[${i}]`, 'must not be empty');
          else commands.push(cmd);
        });
    }
  }

  // Ours: what a container without a manifest `seccomp` section gets.
  let seccompDefault: SeccompDefault = 'deny-dangerous';
  const seccompT = r.table(doc, 'seccomp', '');
  if (seccompT) {
    r.unknownKeys(seccompT, 'seccomp', ['default']);
    const d = seccompT['default'];
    if (d !== undefined) {
      if ((SECCOMP_DEFAULTS as readonly unknown[]).includes(d)) seccompDefault = d as SeccompDefault;
      else r.fail('seccomp.default', `expected ${SECCOMP_DEFAULTS.map((x) => JSON.stringify(x)).join(' or ')}, found ${typeof d === 'string' ? JSON.stringify(d) : tomlType(d)}`);
    }
  }

  // Ours: launch cores spawned ahead of time (docs/configuration.md, [launch]).
  let launchPool: number = DEFAULTS.launchPool;
  const launchT = r.table(doc, 'launch', '');
  if (launchT) {
    r.unknownKeys(launchT, 'launch', ['pool']);
    const pv = launchT['pool'];
    if (pv !== undefined) {
      const n = typeof pv === 'bigint' ? Number(pv) : pv;
      if (typeof n !== 'number' || !Number.isInteger(n)) r.fail('launch.pool', `expected an integer 0..=${LAUNCH_POOL_MAX}, found ${tomlType(pv)}`);
      else if (n < 0 || n > LAUNCH_POOL_MAX) r.fail('launch.pool', `${String(pv)} is out of range 0..=${LAUNCH_POOL_MAX} (0 spawns every launch core at its start)`);
      else launchPool = n;
    }
  }

  // Ours: the output kept per container for `logs` (docs/configuration.md, [logs]).
  let logBufferSize: number = DEFAULTS.logBufferSize;
  const logsT = r.table(doc, 'logs', '');
  if (logsT) {
    r.unknownKeys(logsT, 'logs', ['buffer_size']);
    const size = r.bytes(logsT, 'buffer_size', 'logs');
    if (size !== undefined) {
      const given = JSON.stringify(logsT['buffer_size']);
      if (size > LOG_BUFFER_MAX) r.fail('logs.buffer_size', `${given} is too large: at most "1GiB" per container`);
      else if (size !== 0 && size < LOG_BUFFER_MIN) r.fail('logs.buffer_size', `${given} is too small: at least ${LOG_BUFFER_MIN} bytes (one line of 8 KiB and its overhead), or "0" to keep no output`);
      else logBufferSize = size;
    }
  }

  if (r.issues.length > 0) throw new ValidationError(r.issues, 'invalid configuration');
  return {
    runDir: runDir!,
    dataDir: dataDir!,
    socketDir: socketDir!,
    cgroup: cgroup!,
    cgroups: { pidsMax, prepare },
    oomScoreAdj,
    eventBufferSize,
    notificationBufferSize,
    loopDeviceTimeout,
    shutdownGracePeriod,
    verity,
    console: { global, options: consoleOptions },
    repositories,
    debug: { commands },
    seccomp: { default: seccompDefault },
    launch: { pool: launchPool },
    logs: { bufferSize: logBufferSize },
  };
}

// ---------------------------------------------------------------------------------------
// Filesystem checks

/**
 * Read+write by mode bits only, like upstream: the owner bits when the uid matches, the
 * group bits when the gid matches, otherwise the other bits. Root is not special-cased.
 */
export function modeAllowsReadWrite(st: { mode: number; uid: number; gid: number }, uid: number, gid: number): boolean {
  const bits = st.uid === uid ? (st.mode >> 6) & 7 : st.gid === gid ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & 6) === 6;
}

/**
 * Upstream startup step 2 plus validation: `mkdir -p` run_dir, data_dir and socket_dir,
 * then require each to be a directory that is readable and writable by its mode bits.
 * Relative paths are taken relative to the working directory.
 */
export async function prepareConfigDirs(config: Config): Promise<void> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const issues: Issue[] = [];
  for (const [key, dir] of [['run_dir', config.runDir], ['data_dir', config.dataDir], ['socket_dir', config.socketDir]] as const) {
    try {
      await mkdir(dir, { recursive: true });
      const st = await stat(dir);
      if (!st.isDirectory()) issues.push({ path: key, rule: `${dir} is not a directory` });
      else if (!modeAllowsReadWrite(st, uid, gid)) {
        issues.push({ path: key, rule: `${dir} is not read and writeable (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})` });
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      issues.push({ path: key, rule: `${dir}: ${err.code ?? err.message}` });
    }
  }
  for (const repo of config.repositories.values()) {
    if (!repo.key) continue;
    try {
      await access(repo.key, fsConstants.R_OK);
    } catch (e) {
      issues.push({ path: `repositories.${repo.id}.key`, rule: `${repo.key}: ${(e as NodeJS.ErrnoException).code ?? 'not readable'}` });
    }
  }
  if (issues.length > 0) throw new ValidationError(issues, 'invalid configuration');
}

/** The verity mode actually used: `auto` = kernel when device-mapper is there. */
export function resolveVerityMode(mode: VerityMode, hasDeviceMapper: boolean): 'kernel' | 'user' {
  if (mode === 'auto') return hasDeviceMapper ? 'kernel' : 'user';
  if (mode === 'kernel' && !hasDeviceMapper) {
    throw new NorthstarError('ENODM', 'verity = "kernel" needs device-mapper, but the kernel has none');
  }
  return mode;
}

