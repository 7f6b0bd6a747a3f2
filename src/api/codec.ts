/**
 * Console message codec: one line of UTF-8 JSON <-> Message (console.md §2-§7).
 *
 * parseMessage validates strictly, like upstream's serde model: an enum given as an object
 * has exactly one key, unit variants are `"x"` or `{"x":null}`, required fields must be
 * present and Option fields may be left out, unknown extra fields are ignored (except
 * inside `manifest`, which the manifest parser validates strictly), containers, names and
 * versions go through the common parsers, `init`/`arguments`/`environment` must not contain
 * NUL, tokens are exactly 40 bytes of canonical base64, integers must be integer literals
 * within their Rust type's range. Failure throws ProtocolError naming the field.
 *
 * encode writes compact JSON with fields in upstream's declaration order and raw UTF-8.
 */
import { Container } from '../common/container.js';
import { NorthstarError, ValidationError, assertNever } from '../common/errors.js';
import { nameProblem, type Name } from '../common/name.js';
import { parseVersion, type Version } from '../common/version.js';
import { compactJson, jsonString, member, parseJson, setKey, toJsonValue, JsonSyntaxError, type JsonNode, type JsonObject } from '../common/json.js';
import { serializeManifest, type Manifest } from '../manifest/index.js';
import { manifestFromJson } from '../manifest/parse.js';
import {
  TOKEN_LENGTH,
  VERIFICATION_RESULTS,
  type CgroupNotification,
  type ConnectNack,
  type ContainerData,
  type ContainerResult,
  type ExitStatus,
  type LastExit,
  type InspectResult,
  type InstallResult,
  type JsonValue,
  type MemoryNotification,
  type Message,
  LOG_END_REASONS,
  type LogEndReason,
  type LogLine,
  type LogsResult,
  type OutputMode,
  type ModelError,
  type Notification,
  type Process,
  type Request,
  type Response,
  type VerificationResult,
} from './model.js';

/** A console line that is not a valid message. `path` is the field (`request.kill.signal`). */
export class ProtocolError extends NorthstarError {
  constructor(
    readonly path: string,
    readonly rule: string,
  ) {
    super('EPROTOCOL', path ? `invalid message: ${path}: ${rule}` : `invalid message: ${rule}`);
    this.name = 'ProtocolError';
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// =======================================================================================
// Decoding

type Obj = JsonObject;

function describe(n: JsonNode): string {
  switch (n.t) {
    case 'obj':
      return 'a map';
    case 'arr':
      return 'a sequence';
    case 'str':
      return `string ${JSON.stringify(n.v.length > 40 ? n.v.slice(0, 40) + '…' : n.v)}`;
    case 'int':
      return `integer ${n.v}`;
    case 'num':
      return `floating point ${n.v}`;
    case 'bool':
      return `boolean ${n.v}`;
    case 'null':
      return 'null';
  }
}

const bad = (path: string, rule: string): never => {
  throw new ProtocolError(path, rule);
};

function obj(n: JsonNode, path: string, what = 'a map'): Obj {
  if (n.t !== 'obj') bad(path, `expected ${what}, found ${describe(n)}`);
  return n as Obj;
}

/** A required struct field. */
function field(o: Obj, key: string, path: string): JsonNode {
  const v = member(o, key);
  if (v === undefined) bad(path, `missing field \`${key}\``);
  return v!;
}

function str(n: JsonNode, path: string): string {
  if (n.t !== 'str') bad(path, `expected a string, found ${describe(n)}`);
  return (n as { v: string }).v;
}

function nonNul(n: JsonNode, path: string): string {
  const s = str(n, path);
  if (s.includes('\0')) bad(path, 'must not contain a nul byte');
  return s;
}

function bool(n: JsonNode, path: string): boolean {
  if (n.t !== 'bool') bad(path, `expected a boolean, found ${describe(n)}`);
  return (n as { v: boolean }).v;
}

const U64_MAX = (1n << 64n) - 1n;

function integer(n: JsonNode, path: string, min: bigint, max: bigint, type: string): bigint {
  if (n.t !== 'int') bad(path, `expected ${type}, found ${describe(n)}`);
  const v = (n as { v: bigint }).v;
  if (v < min || v > max) bad(path, `${v} is out of range for ${type}`);
  return v;
}

const u64 = (n: JsonNode, path: string): bigint => integer(n, path, 0n, U64_MAX, 'u64');
const u32 = (n: JsonNode, path: string): number => Number(integer(n, path, 0n, 0xffff_ffffn, 'u32'));
const u16 = (n: JsonNode, path: string): number => Number(integer(n, path, 0n, 0xffffn, 'u16'));
const i32 = (n: JsonNode, path: string): number => Number(integer(n, path, -0x8000_0000n, 0x7fff_ffffn, 'i32'));

function optional<T>(o: Obj, key: string, path: string, f: (n: JsonNode, path: string) => T): T | null {
  const v = member(o, key);
  return v === undefined || v.t === 'null' ? null : f(v, path);
}

function arr(n: JsonNode, path: string): JsonNode[] {
  if (n.t !== 'arr') bad(path, `expected a sequence, found ${describe(n)}`);
  return (n as { items: JsonNode[] }).items;
}

function tuple2(n: JsonNode, path: string): [JsonNode, JsonNode] {
  const items = arr(n, path);
  if (items.length !== 2) bad(path, `expected a tuple of 2 elements, found ${items.length}`);
  return [items[0]!, items[1]!];
}

function validation(path: string, e: unknown): never {
  if (e instanceof ValidationError) {
    const rule = e.issues.map((i) => i.rule).join('; ');
    bad(path, rule);
  }
  throw e;
}

/** Recently parsed containers (Container is immutable): lists repeat the same few ids. */
const containerCache = new Map<string, Container>();
const CONTAINER_CACHE_SIZE = 4096;

function container(n: JsonNode, path: string): Container {
  const s = str(n, path);
  const hit = containerCache.get(s);
  if (hit) return hit;
  let c: Container;
  try {
    c = Container.parse(s, path);
  } catch (e) {
    return validation(path, e);
  }
  if (containerCache.size >= CONTAINER_CACHE_SIZE) containerCache.clear();
  containerCache.set(s, c);
  return c;
}

function name(n: JsonNode, path: string): Name {
  const s = str(n, path);
  const p = nameProblem(s);
  if (p !== undefined) bad(path, `invalid name ${JSON.stringify(s.length > 40 ? s.slice(0, 40) + '…' : s)}: ${p}`);
  return s as Name;
}

function version(n: JsonNode, path: string): Version {
  const s = str(n, path);
  try {
    return parseVersion(s, path);
  } catch (e) {
    return validation(path, e);
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Standard, padded, canonical base64 (the base64 crate's STANDARD engine). */
function base64(n: JsonNode, path: string): Buffer {
  const s = str(n, path);
  if (!BASE64.test(s)) bad(path, 'invalid base64');
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) bad(path, 'invalid base64: non-zero trailing bits');
  return b;
}

function token(n: JsonNode, path: string): Buffer {
  const b = base64(n, path);
  if (b.length !== TOKEN_LENGTH) bad(path, `invalid length: a token has ${TOKEN_LENGTH} bytes, found ${b.length}`);
  return b;
}

/**
 * An externally tagged enum: `"tag"` (unit) or `{"tag": value}` with exactly one key.
 * Returns the tag and its value (null for the string form).
 */
function variant(n: JsonNode, path: string, what: string): [string, JsonNode] {
  if (n.t === 'str') return [n.v, { t: 'null' }];
  if (n.t !== 'obj') return bad(path, `expected ${what}, found ${describe(n)}`);
  if (n.entries.length !== 1) return bad(path, `expected ${what} as a map with exactly one key, found ${n.entries.length} keys`);
  return n.entries[0]!;
}

function unit(v: JsonNode, path: string, tag: string): void {
  if (v.t !== 'null') bad(`${path}.${tag}`, `expected unit variant \`${tag}\` (null), found ${describe(v)}`);
}

function unknownVariant(path: string, tag: string, tags: readonly string[]): never {
  return bad(path, `unknown variant \`${tag.length > 40 ? tag.slice(0, 40) + '…' : tag}\`, expected one of ${tags.map((t) => `\`${t}\``).join(', ')}`);
}

/** A unit variant given as a string where a struct/newtype variant was expected, or vice versa. */
function needsData(n: JsonNode, path: string, tag: string): void {
  if (n.t === 'null') bad(`${path}.${tag}`, `invalid type: unit variant, expected a variant with data`);
}

// --- requests --------------------------------------------------------------------------

const REQUEST_TAGS_TEXT = [
  'inspect', 'ident', 'install', 'kill', 'list', 'mount', 'repositories', 'shutdown', 'start',
  'token_create', 'token_verify', 'umount', 'uninstall',
];

export function decodeRequest(n: JsonNode, path = 'request'): Request {
  const [tag, v] = variant(n, path, 'a request');
  const p = `${path}.${tag}`;
  switch (tag) {
    case 'ident':
    case 'list':
    case 'repositories':
    case 'shutdown':
      unit(v, path, tag);
      return tag;
    case 'inspect': {
      needsData(v, path, tag);
      const o = obj(v, p);
      return { inspect: { container: container(field(o, 'container', p), `${p}.container`) } };
    }
    case 'install': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const repository = str(field(o, 'repository', p), `${p}.repository`);
      const size = u64(field(o, 'size', p), `${p}.size`);
      // Sizes beyond 2^53 are far over any install cap: the console closes on them anyway.
      return { install: { repository, size: Number(size) } };
    }
    case 'kill': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const c = container(field(o, 'container', p), `${p}.container`);
      return { kill: { container: c, signal: i32(field(o, 'signal', p), `${p}.signal`) } };
    }
    case 'mount':
    case 'umount': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const containers = arr(field(o, 'containers', p), `${p}.containers`).map((x, k) => container(x, `${p}.containers[${k}]`));
      return tag === 'mount' ? { mount: { containers } } : { umount: { containers } };
    }
    case 'start': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const c = container(field(o, 'container', p), `${p}.container`);
      const init = optional(o, 'init', `${p}.init`, nonNul);
      const args = arr(field(o, 'arguments', p), `${p}.arguments`).map((x, k) => nonNul(x, `${p}.arguments[${k}]`));
      const envNode = obj(field(o, 'environment', p), `${p}.environment`);
      const environment: Record<string, string> = {};
      for (const [k, x] of envNode.entries) {
        if (k.includes('\0')) bad(`${p}.environment`, 'a key must not contain a nul byte');
        setKey(environment, k, nonNul(x, `${p}.environment.${k}`));
      }
      return { start: { container: c, init, arguments: args, environment } };
    }
    case 'token_create': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const target = name(field(o, 'target', p), `${p}.target`);
      return { token_create: { target, shared: base64(field(o, 'shared', p), `${p}.shared`) } };
    }
    case 'token_verify': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const t = token(field(o, 'token', p), `${p}.token`);
      const user = name(field(o, 'user', p), `${p}.user`);
      return { token_verify: { token: t, user, shared: base64(field(o, 'shared', p), `${p}.shared`) } };
    }
    case 'uninstall': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const c = container(field(o, 'container', p), `${p}.container`);
      return { uninstall: { container: c, wipe: bool(field(o, 'wipe', p), `${p}.wipe`) } };
    }
    // Ours; left out of the "expected one of" lists, which stay upstream's.
    case 'restart': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const c = container(field(o, 'container', p), `${p}.container`);
      return { restart: { container: c, timeout: u32(field(o, 'timeout', p), `${p}.timeout`) } };
    }
    case 'logs': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const c = container(field(o, 'container', p), `${p}.container`);
      const tail = field(o, 'tail', p).t === 'null' ? null : u32(field(o, 'tail', p), `${p}.tail`);
      return { logs: { container: c, tail, follow: bool(field(o, 'follow', p), `${p}.follow`) } };
    }
    case 'exec': {
      needsData(v, path, tag);
      const o = obj(v, p);
      const c = container(field(o, 'container', p), `${p}.container`);
      const command = arr(field(o, 'command', p), `${p}.command`).map((x, k) => nonNul(x, `${p}.command[${k}]`));
      if (command.length === 0 || command[0] === '') bad(`${p}.command`, 'must name a program');
      const envNode = obj(field(o, 'environment', p), `${p}.environment`);
      const environment: Record<string, string> = {};
      for (const [k, x] of envNode.entries) {
        if (k === '' || k.includes('\0') || k.includes('=')) bad(`${p}.environment`, `invalid variable name ${JSON.stringify(k)}`);
        setKey(environment, k, nonNul(x, `${p}.environment.${k}`));
      }
      const size = optional(o, 'size', `${p}.size`, (n, sp) => {
        const so = obj(n, sp);
        return { rows: u16(field(so, 'rows', sp), `${sp}.rows`), cols: u16(field(so, 'cols', sp), `${sp}.cols`) };
      });
      return { exec: { container: c, command, environment, tty: bool(field(o, 'tty', p), `${p}.tty`), stdin: bool(field(o, 'stdin', p), `${p}.stdin`), size } };
    }
    default:
      return unknownVariant(path, tag, REQUEST_TAGS_TEXT);
  }
}

// --- errors and results ----------------------------------------------------------------

const ERROR_TAGS_TEXT = [
  'configuration', 'duplicate_container', 'invalid_container', 'invalid_arguments', 'mount_busy',
  'umount_busy', 'start_container_started', 'start_container_resource',
  'start_container_missing_resource', 'start_container_failed', 'stop_container_not_started',
  'invalid_repository', 'install_duplicate', 'critical_container', 'unexpected',
];

export function decodeExitStatus(n: JsonNode, path: string): ExitStatus {
  const [tag, v] = variant(n, path, 'an exit status');
  const p = `${path}.${tag}`;
  switch (tag) {
    case 'exit':
      needsData(v, path, tag);
      return { exit: { code: i32(field(obj(v, p), 'code', p), `${p}.code`) } };
    case 'signalled':
      needsData(v, path, tag);
      return { signalled: { signal: u32(field(obj(v, p), 'signal', p), `${p}.signal`) } };
    default:
      return unknownVariant(path, tag, ['exit', 'signalled']);
  }
}

export function decodeError(n: JsonNode, path: string): ModelError {
  const [tag, v] = variant(n, path, 'an error');
  const p = `${path}.${tag}`;
  if (!ERROR_TAGS_TEXT.includes(tag)) unknownVariant(path, tag, ERROR_TAGS_TEXT);
  needsData(v, path, tag);
  const o = obj(v, p);
  const c = (): Container => container(field(o, 'container', p), `${p}.container`);
  const s = (k: string): string => str(field(o, k, p), `${p}.${k}`);
  switch (tag) {
    case 'configuration':
      return { configuration: { context: s('context') } };
    case 'duplicate_container':
      return { duplicate_container: { container: c() } };
    case 'invalid_container':
      return { invalid_container: { container: c() } };
    case 'invalid_arguments':
      return { invalid_arguments: { cause: s('cause') } };
    case 'mount_busy':
      return { mount_busy: { container: c() } };
    case 'umount_busy':
      return { umount_busy: { container: c() } };
    case 'start_container_started':
      return { start_container_started: { container: c() } };
    case 'start_container_resource':
      return { start_container_resource: { container: c() } };
    case 'start_container_missing_resource': {
      const cc = c();
      return { start_container_missing_resource: { container: cc, resource: name(field(o, 'resource', p), `${p}.resource`), version: s('version') } };
    }
    case 'start_container_failed': {
      const cc = c();
      return { start_container_failed: { container: cc, error: s('error') } };
    }
    case 'stop_container_not_started':
      return { stop_container_not_started: { container: c() } };
    case 'invalid_repository':
      return { invalid_repository: { repository: s('repository') } };
    case 'install_duplicate':
      return { install_duplicate: { container: c() } };
    case 'critical_container': {
      const cc = c();
      return { critical_container: { container: cc, status: decodeExitStatus(field(o, 'status', p), `${p}.status`) } };
    }
    default: // 'unexpected'
      return { unexpected: { error: s('error') } };
  }
}

/**
 * An `ok`/`error` result whose both arms name the container (start, kill, inspect, logs, …):
 * `ok` reads the rest of the ok object; the error arm is the same for all.
 */
function resultFor<T>(n: JsonNode, path: string, ok: (o: Obj, p: string, c: Container) => T): T | { error: { container: Container; error: ModelError } } {
  const [tag, v] = variant(n, path, 'a result');
  const p = `${path}.${tag}`;
  if (tag !== 'ok' && tag !== 'error') return unknownVariant(path, tag, ['ok', 'error']);
  needsData(v, path, tag);
  const o = obj(v, p);
  const c = container(field(o, 'container', p), `${p}.container`);
  if (tag === 'ok') return ok(o, p, c);
  return { error: { container: c, error: decodeError(field(o, 'error', p), `${p}.error`) } };
}

function containerResult(n: JsonNode, path: string): ContainerResult {
  return resultFor(n, path, (_o, _p, c) => ({ ok: { container: c } }));
}

function installResult(n: JsonNode, path: string): InstallResult {
  const [tag, v] = variant(n, path, 'a result');
  const p = `${path}.${tag}`;
  if (tag !== 'ok' && tag !== 'error') return unknownVariant(path, tag, ['ok', 'error']);
  needsData(v, path, tag);
  const o = obj(v, p);
  if (tag === 'ok') return { ok: { container: container(field(o, 'container', p), `${p}.container`) } };
  return { error: { error: decodeError(field(o, 'error', p), `${p}.error`) } };
}

/** The manifest inside `inspect`, decoded from the nodes already parsed (never re-parsed from text). */
function manifest(n: JsonNode, path: string): Manifest {
  const o = obj(n, path);
  try {
    return manifestFromJson(o);
  } catch (e) {
    return validation(path, e);
  }
}

function containerData(n: JsonNode, path: string): ContainerData {
  const o = obj(n, path);
  const m = manifest(field(o, 'manifest', path), `${path}.manifest`);
  const repository = str(field(o, 'repository', path), `${path}.repository`);
  const mounted = bool(field(o, 'mounted', path), `${path}.mounted`);
  const process = optional(o, 'process', `${path}.process`, (x, pp): Process => {
    const po = obj(x, pp);
    const pid = u32(field(po, 'pid', pp), `${pp}.pid`);
    const uptime = u64(field(po, 'uptime', pp), `${pp}.uptime`);
    const st = obj(field(po, 'statistics', pp), `${pp}.statistics`);
    return { pid, uptime, statistics: toJsonValue(st) as Record<string, JsonValue> };
  });
  const data: ContainerData = { manifest: m, repository, mounted, process };
  // Ours (absent from upstream's runtime, which never sends them).
  const lastExit = optional(o, 'last_exit', `${path}.last_exit`, (x, pp): LastExit => {
    const lo = obj(x, pp);
    return {
      status: decodeExitStatus(field(lo, 'status', pp), `${pp}.status`),
      time: u64(field(lo, 'time', pp), `${pp}.time`),
      duration: u64(field(lo, 'duration', pp), `${pp}.duration`),
    };
  });
  if (lastExit !== null) data.last_exit = lastExit;
  const restarts = optional(o, 'restarts', `${path}.restarts`, u32);
  if (restarts !== null && restarts > 0) data.restarts = restarts;
  return data;
}

const OUTPUT_MODES = ['pipe', 'inherit', 'discard'] as const;

function outputMode(n: JsonNode, path: string): OutputMode {
  const s = str(n, path);
  if (!(OUTPUT_MODES as readonly string[]).includes(s)) return unknownVariant(path, s, OUTPUT_MODES);
  return s as OutputMode;
}

function logLines(n: JsonNode, path: string): LogLine[] {
  return arr(n, path).map((x, i) => {
    const pp = `${path}[${i}]`;
    const o = obj(x, pp);
    const stream = str(field(o, 'stream', pp), `${pp}.stream`);
    if (stream !== 'stdout' && stream !== 'stderr') return unknownVariant(`${pp}.stream`, stream, ['stdout', 'stderr']);
    return { time: u64(field(o, 'time', pp), `${pp}.time`), stream, line: str(field(o, 'line', pp), `${pp}.line`) };
  });
}

/** Ours: the answer to `logs`. */
function logsResult(n: JsonNode, path: string): LogsResult {
  return resultFor(n, path, (o, p, c) => {
    const io = obj(field(o, 'io', p), `${p}.io`);
    const b = obj(field(o, 'buffer', p), `${p}.buffer`);
    const bp = `${p}.buffer`;
    return {
      ok: {
        container: c,
        io: { stdout: outputMode(field(io, 'stdout', `${p}.io`), `${p}.io.stdout`), stderr: outputMode(field(io, 'stderr', `${p}.io`), `${p}.io.stderr`) },
        lines: logLines(field(o, 'lines', p), `${p}.lines`),
        buffer: {
          lines: u64(field(b, 'lines', bp), `${bp}.lines`),
          bytes: u64(field(b, 'bytes', bp), `${bp}.bytes`),
          capacity: u64(field(b, 'capacity', bp), `${bp}.capacity`),
          dropped: u64(field(b, 'dropped', bp), `${bp}.dropped`),
        },
      },
    };
  });
}

function inspectResult(n: JsonNode, path: string): InspectResult {
  return resultFor(n, path, (o, p, c) => ({ ok: { container: c, data: containerData(field(o, 'data', p), `${p}.data`) } }));
}

const RESPONSE_TAGS_TEXT = [
  'ident', 'inspect', 'install', 'kill', 'list', 'mount', 'permission_denied', 'repositories',
  'shutdown', 'start', 'token', 'token_verification', 'umount', 'uninstall',
];

export function decodeResponse(n: JsonNode, path = 'response'): Response {
  const [tag, v] = variant(n, path, 'a response');
  const p = `${path}.${tag}`;
  if (tag === 'shutdown') {
    unit(v, path, tag);
    return 'shutdown';
  }
  if (!RESPONSE_TAGS_TEXT.includes(tag) && tag !== 'restart' && tag !== 'logs' && tag !== 'exec') return unknownVariant(path, tag, RESPONSE_TAGS_TEXT);
  needsData(v, path, tag);
  switch (tag) {
    case 'ident':
      return { ident: container(v, p) };
    case 'inspect':
      return { inspect: inspectResult(v, p) };
    case 'install':
      return { install: installResult(v, p) };
    case 'kill':
      return { kill: containerResult(v, p) };
    case 'restart':
      return { restart: containerResult(v, p) };
    case 'logs':
      return { logs: logsResult(v, p) };
    case 'exec':
      return { exec: containerResult(v, p) };
    case 'start':
      return { start: containerResult(v, p) };
    case 'uninstall':
      return { uninstall: containerResult(v, p) };
    case 'list':
      return { list: arr(v, p).map((x, k) => container(x, `${p}[${k}]`)) };
    case 'mount':
      return { mount: arr(v, p).map((x, k) => containerResult(x, `${p}[${k}]`)) };
    case 'umount':
      return { umount: arr(v, p).map((x, k) => containerResult(x, `${p}[${k}]`)) };
    case 'permission_denied':
      return { permission_denied: decodeRequest(v, p) };
    case 'repositories': {
      const set = new Set<string>();
      for (const [k, x] of arr(v, p).entries()) set.add(str(x, `${p}[${k}]`));
      return { repositories: [...set] };
    }
    case 'token':
      return { token: token(v, p) };
    default: {
      // token_verification: PascalCase unit variants
      const [r, rv] = variant(v, p, 'a verification result');
      if (!(VERIFICATION_RESULTS as readonly string[]).includes(r)) return unknownVariant(p, r, VERIFICATION_RESULTS);
      unit(rv, p, r);
      return { token_verification: r as VerificationResult };
    }
  }
}

// --- notifications ---------------------------------------------------------------------

function memoryNotification(n: JsonNode, path: string): MemoryNotification {
  const o = obj(n, path);
  const c = (k: string): bigint | null => optional(o, k, `${path}.${k}`, u64);
  return { low: c('low'), high: c('high'), max: c('max'), oom: c('oom'), oom_kill: c('oom_kill') };
}

function cgroupNotification(n: JsonNode, path: string): CgroupNotification {
  const [tag, v] = variant(n, path, 'a cgroup notification');
  if (tag !== 'memory') return unknownVariant(path, tag, ['memory']);
  needsData(v, path, tag);
  return { memory: memoryNotification(v, `${path}.memory`) };
}

const NOTIFICATION_TAGS_TEXT = ['c_group', 'exit', 'install', 'shutdown', 'started', 'uninstall'];

export function decodeNotification(n: JsonNode, path = 'notification'): Notification {
  const [tag, v] = variant(n, path, 'a notification');
  const p = `${path}.${tag}`;
  switch (tag) {
    case 'shutdown':
      unit(v, path, tag);
      return 'shutdown';
    case 'c_group': {
      needsData(v, path, tag);
      const [c, g] = tuple2(v, p);
      return { c_group: [container(c, `${p}[0]`), cgroupNotification(g, `${p}[1]`)] };
    }
    case 'exit': {
      needsData(v, path, tag);
      const [c, s] = tuple2(v, p);
      return { exit: [container(c, `${p}[0]`), decodeExitStatus(s, `${p}[1]`)] };
    }
    case 'install':
      needsData(v, path, tag);
      return { install: container(v, p) };
    case 'started':
      needsData(v, path, tag);
      return { started: container(v, p) };
    case 'uninstall':
      needsData(v, path, tag);
      return { uninstall: container(v, p) };
    default:
      return unknownVariant(path, tag, NOTIFICATION_TAGS_TEXT);
  }
}

// --- envelope --------------------------------------------------------------------------

function connectNack(n: JsonNode, path: string): ConnectNack {
  const [tag, v] = variant(n, path, 'a connect nack');
  if (tag === 'permission_denied') {
    unit(v, path, tag);
    return 'permission_denied';
  }
  if (tag !== 'invalid_protocol_version') return unknownVariant(path, tag, ['invalid_protocol_version', 'permission_denied']);
  needsData(v, path, tag);
  const p = `${path}.${tag}`;
  return { invalid_protocol_version: { version: version(field(obj(v, p), 'version', p), `${p}.version`) } };
}

const ENVELOPE = ['connect', 'connect_ack', 'connect_nack', 'request', 'response', 'notification', 'log', 'log_end', 'exec_output', 'exec_exit', 'exec_input', 'exec_resize', 'exec_signal'] as const;

function decodeEnvelope(key: (typeof ENVELOPE)[number], v: JsonNode): Message {
  switch (key) {
    case 'connect': {
      const o = obj(v, key);
      const ver = version(field(o, 'version', key), 'connect.version');
      return { connect: { version: ver, subscribe_notifications: bool(field(o, 'subscribe_notifications', key), 'connect.subscribe_notifications') } };
    }
    case 'connect_ack':
      if (v.t !== 'null') bad(key, `expected null, found ${describe(v)}`);
      return { connect_ack: null };
    case 'connect_nack':
      return { connect_nack: connectNack(v, key) };
    case 'request':
      return { request: decodeRequest(v, key) };
    case 'response':
      return { response: decodeResponse(v, key) };
    case 'notification':
      return { notification: decodeNotification(v, key) };
    // Ours: a `logs` follow (sent only to a connection that asked for one).
    case 'log': {
      const o = obj(v, key);
      return { log: { container: container(field(o, 'container', key), 'log.container'), lines: logLines(field(o, 'lines', key), 'log.lines') } };
    }
    case 'log_end': {
      const o = obj(v, key);
      const c = container(field(o, 'container', key), 'log_end.container');
      const reason = str(field(o, 'reason', key), 'log_end.reason');
      if (!(LOG_END_REASONS as readonly string[]).includes(reason)) return unknownVariant('log_end.reason', reason, LOG_END_REASONS);
      return { log_end: { container: c, reason: reason as LogEndReason } };
    }
    // Ours: an exec's messages (see the `exec` request).
    case 'exec_output': {
      const o = obj(v, key);
      const stream = str(field(o, 'stream', key), 'exec_output.stream');
      if (stream !== 'stdout' && stream !== 'stderr') return unknownVariant('exec_output.stream', stream, ['stdout', 'stderr']);
      return { exec_output: { container: container(field(o, 'container', key), 'exec_output.container'), stream, data: base64(field(o, 'data', key), 'exec_output.data') } };
    }
    case 'exec_exit': {
      const o = obj(v, key);
      return { exec_exit: { container: container(field(o, 'container', key), 'exec_exit.container'), status: decodeExitStatus(field(o, 'status', key), 'exec_exit.status') } };
    }
    case 'exec_input': {
      const o = obj(v, key);
      return { exec_input: { data: base64(field(o, 'data', key), 'exec_input.data'), eof: bool(field(o, 'eof', key), 'exec_input.eof') } };
    }
    case 'exec_resize': {
      const o = obj(v, key);
      return { exec_resize: { rows: u16(field(o, 'rows', key), 'exec_resize.rows'), cols: u16(field(o, 'cols', key), 'exec_resize.cols') } };
    }
    case 'exec_signal': {
      const o = obj(v, key);
      const signal = u32(field(o, 'signal', key), 'exec_signal.signal');
      if (signal < 1 || signal > 64) bad('exec_signal.signal', `${signal} is not a signal number (1..64)`);
      return { exec_signal: { signal } };
    }
    default:
      return assertNever(key, 'message kind');
  }
}

/** Decode one JSON text (no framing). */
export function decodeMessageText(text: string): Message {
  let root: JsonNode;
  try {
    root = parseJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new ProtocolError('', e.message);
    throw e;
  }
  if (root.t !== 'obj') return bad('', `expected a map, found ${describe(root)}`);
  // Untagged: the first variant that decodes wins, other top-level keys are ignored.
  let first: ProtocolError | undefined;
  for (const key of ENVELOPE) {
    const v = member(root, key);
    if (v === undefined) continue;
    try {
      return decodeEnvelope(key, v);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      first ??= e;
    }
  }
  throw first ?? new ProtocolError('', `expected one of ${ENVELOPE.map((k) => `\`${k}\``).join(', ')}`);
}

/**
 * Decode one console line: bytes (UTF-8 validated) or text, without its `\n`; one trailing
 * `\r` is stripped. An empty line is an error. Throws ProtocolError.
 */
export function parseMessage(line: Buffer | Uint8Array | string): Message {
  let text: string;
  if (typeof line === 'string') text = line;
  else {
    try {
      text = utf8.decode(line);
    } catch {
      return bad('', 'invalid utf-8');
    }
  }
  if (text.endsWith('\r')) text = text.slice(0, -1);
  if (text.length === 0) return bad('', 'empty line');
  return decodeMessageText(text);
}

// =======================================================================================
// Encoding

const q = jsonString;

function encContainer(c: Container): string {
  return q(c.toString());
}

function encStruct(tag: string, fields: [string, string][]): string {
  return `{${q(tag)}:{${fields.map(([k, v]) => `${q(k)}:${v}`).join(',')}}}`;
}

export function encodeRequest(r: Request): string {
  if (typeof r === 'string') return q(r);
  if ('inspect' in r) return encStruct('inspect', [['container', encContainer(r.inspect.container)]]);
  if ('install' in r) return encStruct('install', [['repository', q(r.install.repository)], ['size', String(r.install.size)]]);
  if ('kill' in r) return encStruct('kill', [['container', encContainer(r.kill.container)], ['signal', String(r.kill.signal)]]);
  if ('restart' in r) return encStruct('restart', [['container', encContainer(r.restart.container)], ['timeout', String(r.restart.timeout)]]);
  if ('logs' in r) {
    const l = r.logs;
    return encStruct('logs', [['container', encContainer(l.container)], ['tail', l.tail === null ? 'null' : String(l.tail)], ['follow', String(l.follow)]]);
  }
  if ('exec' in r) {
    const x = r.exec;
    const env = Object.keys(x.environment).map((k) => `${q(k)}:${q(x.environment[k]!)}`);
    return encStruct('exec', [
      ['container', encContainer(x.container)],
      ['command', `[${x.command.map(q).join(',')}]`],
      ['environment', `{${env.join(',')}}`],
      ['tty', String(x.tty)],
      ['stdin', String(x.stdin)],
      ['size', x.size === null ? 'null' : `{"rows":${x.size.rows},"cols":${x.size.cols}}`],
    ]);
  }
  if ('mount' in r) return encStruct('mount', [['containers', `[${r.mount.containers.map(encContainer).join(',')}]`]]);
  if ('umount' in r) return encStruct('umount', [['containers', `[${r.umount.containers.map(encContainer).join(',')}]`]]);
  if ('start' in r) {
    const s = r.start;
    const env = Object.keys(s.environment).map((k) => `${q(k)}:${q(s.environment[k]!)}`);
    return encStruct('start', [
      ['container', encContainer(s.container)],
      ['init', s.init === null ? 'null' : q(s.init)],
      ['arguments', `[${s.arguments.map(q).join(',')}]`],
      ['environment', `{${env.join(',')}}`],
    ]);
  }
  if ('token_create' in r) return encStruct('token_create', [['target', q(r.token_create.target)], ['shared', q(r.token_create.shared.toString('base64'))]]);
  if ('token_verify' in r) {
    const t = r.token_verify;
    return encStruct('token_verify', [['token', q(t.token.toString('base64'))], ['user', q(t.user)], ['shared', q(t.shared.toString('base64'))]]);
  }
  if ('uninstall' in r) return encStruct('uninstall', [['container', encContainer(r.uninstall.container)], ['wipe', String(r.uninstall.wipe)]]);
  return assertNever(r, 'request');
}

export function encodeExitStatus(s: ExitStatus): string {
  if ('exit' in s) return encStruct('exit', [['code', String(s.exit.code)]]);
  return encStruct('signalled', [['signal', String(s.signalled.signal)]]);
}

export function encodeError(e: ModelError): string {
  const [tag, body] = Object.entries(e)[0] as [string, Record<string, unknown>];
  const fields: [string, string][] = [];
  // Every body's keys are declared in upstream order in ModelError; write them in that order.
  for (const k of ERROR_FIELDS[tag] ?? []) {
    const v = body[k];
    if (v instanceof Object && 'exit' in v) fields.push([k, encodeExitStatus(v as ExitStatus)]);
    else if (v instanceof Object && 'signalled' in v) fields.push([k, encodeExitStatus(v as ExitStatus)]);
    else if (v instanceof Container) fields.push([k, encContainer(v)]);
    else fields.push([k, q(String(v))]);
  }
  return encStruct(tag, fields);
}

const ERROR_FIELDS: Record<string, readonly string[]> = {
  configuration: ['context'],
  duplicate_container: ['container'],
  invalid_container: ['container'],
  invalid_arguments: ['cause'],
  mount_busy: ['container'],
  umount_busy: ['container'],
  start_container_started: ['container'],
  start_container_resource: ['container'],
  start_container_missing_resource: ['container', 'resource', 'version'],
  start_container_failed: ['container', 'error'],
  stop_container_not_started: ['container'],
  invalid_repository: ['repository'],
  install_duplicate: ['container'],
  critical_container: ['container', 'status'],
  unexpected: ['error'],
};

function encContainerResult(r: ContainerResult): string {
  if ('ok' in r) return encStruct('ok', [['container', encContainer(r.ok.container)]]);
  return encStruct('error', [['container', encContainer(r.error.container)], ['error', encodeError(r.error.error)]]);
}

/** The manifest as upstream's serde_json writes it inside `inspect` (compact, exact integers). */
export function encodeManifest(m: Manifest): string {
  return serializeManifest(m, 'json', { pretty: false }).replace(/\n$/, '');
}

function encContainerData(d: ContainerData): string {
  const p = d.process;
  const process =
    p === null
      ? 'null'
      : `{"pid":${p.pid},"uptime":${p.uptime.toString()},"statistics":${compactJson(p.statistics)}}`;
  const ours =
    (d.last_exit ? `,"last_exit":{"status":${encodeExitStatus(d.last_exit.status)},"time":${d.last_exit.time.toString()},"duration":${d.last_exit.duration.toString()}}` : '') +
    (d.restarts ? `,"restarts":${d.restarts}` : '');
  return `{"manifest":${encodeManifest(d.manifest)},"repository":${q(d.repository)},"mounted":${d.mounted},"process":${process}${ours}}`;
}

function encLogLines(lines: readonly LogLine[]): string {
  return `[${lines.map((l) => `{"time":${l.time.toString()},"stream":${q(l.stream)},"line":${q(l.line)}}`).join(',')}]`;
}

function encLogsResult(r: LogsResult): string {
  if ('error' in r) return encStruct('error', [['container', encContainer(r.error.container)], ['error', encodeError(r.error.error)]]);
  const o = r.ok;
  const b = o.buffer;
  return encStruct('ok', [
    ['container', encContainer(o.container)],
    ['io', `{"stdout":${q(o.io.stdout)},"stderr":${q(o.io.stderr)}}`],
    ['lines', encLogLines(o.lines)],
    ['buffer', `{"lines":${b.lines},"bytes":${b.bytes},"capacity":${b.capacity},"dropped":${b.dropped}}`],
  ]);
}

export function encodeResponse(r: Response): string {
  if (typeof r === 'string') return q(r);
  if ('ident' in r) return `{"ident":${encContainer(r.ident)}}`;
  if ('inspect' in r) {
    const i = r.inspect;
    const body =
      'ok' in i
        ? encStruct('ok', [['container', encContainer(i.ok.container)], ['data', encContainerData(i.ok.data)]])
        : encStruct('error', [['container', encContainer(i.error.container)], ['error', encodeError(i.error.error)]]);
    return `{"inspect":${body}}`;
  }
  if ('install' in r) {
    const i = r.install;
    const body = 'ok' in i ? encStruct('ok', [['container', encContainer(i.ok.container)]]) : encStruct('error', [['error', encodeError(i.error.error)]]);
    return `{"install":${body}}`;
  }
  if ('kill' in r) return `{"kill":${encContainerResult(r.kill)}}`;
  if ('restart' in r) return `{"restart":${encContainerResult(r.restart)}}`;
  if ('logs' in r) return `{"logs":${encLogsResult(r.logs)}}`;
  if ('exec' in r) return `{"exec":${encContainerResult(r.exec)}}`;
  if ('start' in r) return `{"start":${encContainerResult(r.start)}}`;
  if ('uninstall' in r) return `{"uninstall":${encContainerResult(r.uninstall)}}`;
  if ('list' in r) return `{"list":[${r.list.map(encContainer).join(',')}]}`;
  if ('mount' in r) return `{"mount":[${r.mount.map(encContainerResult).join(',')}]}`;
  if ('umount' in r) return `{"umount":[${r.umount.map(encContainerResult).join(',')}]}`;
  if ('permission_denied' in r) return `{"permission_denied":${encodeRequest(r.permission_denied)}}`;
  if ('repositories' in r) return `{"repositories":[${r.repositories.map(q).join(',')}]}`;
  if ('token' in r) return `{"token":${q(r.token.toString('base64'))}}`;
  if ('token_verification' in r) return `{"token_verification":${q(r.token_verification)}}`;
  return assertNever(r, 'response');
}

const optU64 = (v: bigint | null): string => (v === null ? 'null' : v.toString());

export function encodeNotification(n: Notification): string {
  if (typeof n === 'string') return q(n);
  if ('c_group' in n) {
    const [c, g] = n.c_group;
    const m = g.memory;
    return `{"c_group":[${encContainer(c)},{"memory":{"low":${optU64(m.low)},"high":${optU64(m.high)},"max":${optU64(m.max)},"oom":${optU64(m.oom)},"oom_kill":${optU64(m.oom_kill)}}}]}`;
  }
  if ('exit' in n) return `{"exit":[${encContainer(n.exit[0])},${encodeExitStatus(n.exit[1])}]}`;
  if ('install' in n) return `{"install":${encContainer(n.install)}}`;
  if ('started' in n) return `{"started":${encContainer(n.started)}}`;
  if ('uninstall' in n) return `{"uninstall":${encContainer(n.uninstall)}}`;
  return assertNever(n, 'notification');
}

/** One message as compact JSON, without the line's `\n`. */
export function encode(m: Message): string {
  if ('connect' in m) return `{"connect":{"version":${q(m.connect.version)},"subscribe_notifications":${m.connect.subscribe_notifications}}}`;
  if ('connect_ack' in m) return '{"connect_ack":null}';
  if ('connect_nack' in m) {
    const n = m.connect_nack;
    return `{"connect_nack":${typeof n === 'string' ? q(n) : `{"invalid_protocol_version":{"version":${q(n.invalid_protocol_version.version)}}}`}}`;
  }
  if ('request' in m) return `{"request":${encodeRequest(m.request)}}`;
  if ('response' in m) return `{"response":${encodeResponse(m.response)}}`;
  if ('notification' in m) return `{"notification":${encodeNotification(m.notification)}}`;
  if ('log' in m) return `{"log":{"container":${encContainer(m.log.container)},"lines":${encLogLines(m.log.lines)}}}`;
  if ('log_end' in m) return `{"log_end":{"container":${encContainer(m.log_end.container)},"reason":${q(m.log_end.reason)}}}`;
  if ('exec_output' in m) {
    const o = m.exec_output;
    return `{"exec_output":{"container":${encContainer(o.container)},"stream":${q(o.stream)},"data":${q(o.data.toString('base64'))}}}`;
  }
  if ('exec_exit' in m) return `{"exec_exit":{"container":${encContainer(m.exec_exit.container)},"status":${encodeExitStatus(m.exec_exit.status)}}}`;
  if ('exec_input' in m) return `{"exec_input":{"data":${q(m.exec_input.data.toString('base64'))},"eof":${m.exec_input.eof}}}`;
  if ('exec_resize' in m) return `{"exec_resize":{"rows":${m.exec_resize.rows},"cols":${m.exec_resize.cols}}}`;
  if ('exec_signal' in m) return `{"exec_signal":{"signal":${m.exec_signal.signal}}}`;
  return assertNever(m, 'message');
}

/** One message as a line: compact JSON and `\n`. */
export function encodeLine(m: Message): string {
  return encode(m) + '\n';
}
