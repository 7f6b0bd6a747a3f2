/**
 * The console protocol model: every message exactly as it is on the wire (console.md §3-§8),
 * as TypeScript tagged unions. Unit variants are string literals (`'list'`), every other
 * variant is an object with exactly one key (`{ kill: { container, signal } }`), and field
 * names are the wire's snake_case names. Values are already parsed: containers are
 * Container objects, names and versions branded strings, tokens and `shared` bytes Buffers,
 * and unsigned 64-bit counters (uptime, cgroup memory events) bigints so no precision is
 * lost (console.md §13.8; see docs/console.md).
 *
 * Field order in these declarations is upstream's declaration order; `encode` writes them
 * in that order.
 */
import type { Container } from '../common/container.js';
import type { JsonValue } from '../common/json.js';
import type { Name } from '../common/name.js';
import type { Version } from '../common/version.js';
import type { Manifest } from '../manifest/index.js';

/** The protocol version we announce and serve (upstream's crate version, 0.9.3). */
export const PROTOCOL_VERSION = '0.9.3' as Version;

/** Free-form JSON (inspect statistics). Integers beyond 2^53 are bigint, others numbers. */
export type { JsonValue };

/** A token: exactly TOKEN_LENGTH bytes, base64 on the wire. */
export const TOKEN_LENGTH = 40;

// ---------------------------------------------------------------------------------------
// Handshake

export interface Connect {
  version: Version;
  subscribe_notifications: boolean;
}

export type ConnectNack = { invalid_protocol_version: { version: Version } } | 'permission_denied';

// ---------------------------------------------------------------------------------------
// Requests (upstream declaration order)

export type Request =
  | { inspect: { container: Container } }
  | 'ident'
  | { install: { repository: string; size: number } }
  | { kill: { container: Container; signal: number } }
  | 'list'
  | { mount: { containers: Container[] } }
  | 'repositories'
  | 'shutdown'
  | {
      start: {
        container: Container;
        init: string | null;
        arguments: string[];
        environment: Record<string, string>;
      };
    }
  | { token_create: { target: Name; shared: Buffer } }
  | { token_verify: { token: Buffer; user: Name; shared: Buffer } }
  | { umount: { containers: Container[] } }
  | { uninstall: { container: Container; wipe: boolean } }
  /**
   * Ours (docs/console.md, extensions): SIGTERM, SIGKILL after `timeout` ms if it has not
   * exited, then the start request it last ran with. A stopped container is just started.
   */
  | { restart: { container: Container; timeout: number } }
  /**
   * Ours (docs/console.md, extensions): the last `tail` lines of the container's `io: pipe`
   * output (all for null); with `follow`, `log` messages with new lines follow on this
   * connection until a `log_end`.
   */
  | { logs: { container: Container; tail: number | null; follow: boolean } }
  /**
   * Ours (docs/console.md, extensions): run `command` inside the running container. Answered
   * once it runs (or could not be run); then `exec_output` messages and one `exec_exit`
   * follow on this connection, and the client may send `exec_input`, `exec_resize` and
   * `exec_signal` messages until the exit. One exec per connection at a time.
   */
  | { exec: ExecRequest };

/** Ours: the `exec` request. */
export interface ExecRequest {
  container: Container;
  /** Program and arguments; a program without `/` is looked up in the container's PATH. */
  command: string[];
  /** Added to (or replacing in) the container's environment. */
  environment: Record<string, string>;
  /** A pseudo terminal for stdin, stdout and stderr (all output is `stdout`). */
  tty: boolean;
  /** Whether `exec_input` feeds the command's stdin (else it reads /dev/null; with tty always on). */
  stdin: boolean;
  /** The terminal's initial size (tty only). */
  size: { rows: number; cols: number } | null;
}

/** Every request variant's tag, in declaration order (upstream's, then ours). */
export const REQUEST_TAGS = [
  'inspect', 'ident', 'install', 'kill', 'list', 'mount', 'repositories', 'shutdown', 'start',
  'token_create', 'token_verify', 'umount', 'uninstall', 'restart', 'logs', 'exec',
] as const;
export type RequestTag = (typeof REQUEST_TAGS)[number];

/** The tag of a request (its string for unit variants, its only key otherwise). */
export function requestTag(r: Request): RequestTag {
  return (typeof r === 'string' ? r : Object.keys(r)[0]) as RequestTag;
}

/** The request variant with tag T. */
export type RequestOf<T extends RequestTag> = Extract<Request, T | { [K in T]: unknown }>;

// ---------------------------------------------------------------------------------------
// Errors and results

export type ExitStatus = { exit: { code: number } } | { signalled: { signal: number } };

export type ModelError =
  | { configuration: { context: string } }
  | { duplicate_container: { container: Container } }
  | { invalid_container: { container: Container } }
  | { invalid_arguments: { cause: string } }
  | { mount_busy: { container: Container } }
  | { umount_busy: { container: Container } }
  | { start_container_started: { container: Container } }
  | { start_container_resource: { container: Container } }
  | { start_container_missing_resource: { container: Container; resource: Name; version: string } }
  | { start_container_failed: { container: Container; error: string } }
  | { stop_container_not_started: { container: Container } }
  | { invalid_repository: { repository: string } }
  | { install_duplicate: { container: Container } }
  | { critical_container: { container: Container; status: ExitStatus } }
  | { unexpected: { error: string } };

export const ERROR_TAGS = [
  'configuration', 'duplicate_container', 'invalid_container', 'invalid_arguments', 'mount_busy',
  'umount_busy', 'start_container_started', 'start_container_resource',
  'start_container_missing_resource', 'start_container_failed', 'stop_container_not_started',
  'invalid_repository', 'install_duplicate', 'critical_container', 'unexpected',
] as const;
export type ErrorTag = (typeof ERROR_TAGS)[number];

/** Result of start, kill, mount, umount, uninstall: ok or error, both naming the container. */
export type ContainerResult = { ok: { container: Container } } | { error: { container: Container; error: ModelError } };

export type InstallResult = { ok: { container: Container } } | { error: { error: ModelError } };

export interface Process {
  pid: number;
  /** Nanoseconds since the start (u64). */
  uptime: bigint;
  /** Free-form (upstream: cgroup `blkio`, `cpu`, `memory`); key order unspecified. */
  statistics: Record<string, JsonValue>;
}

/** Ours (docs/console.md, extensions): how a container last ended. */
export interface LastExit {
  status: ExitStatus;
  /** When it ended: milliseconds since the Unix epoch (u64). */
  time: bigint;
  /** How long it ran: nanoseconds (u64). */
  duration: bigint;
}

export interface ContainerData {
  manifest: Manifest;
  repository: string;
  mounted: boolean;
  process: Process | null;
  /**
   * Ours: present once the container has ended since the runtime started (upstream clients
   * ignore unknown fields; a container that never ran reads exactly as upstream's).
   */
  last_exit?: LastExit;
  /** Ours: restarts made by the manifest's restart policy since the runtime started; present when not 0. */
  restarts?: number;
}

/** Ours: one line of a container's output. */
export type LogStream = 'stdout' | 'stderr';
export interface LogLine {
  /** When the runtime read it: milliseconds since the Unix epoch (u64). */
  time: bigint;
  stream: LogStream;
  /** The text without its newline (invalid UTF-8 as U+FFFD; at most 8 KiB, longer lines are cut). */
  line: string;
}

/** Ours: a manifest `io` output mode. */
export type OutputMode = 'pipe' | 'inherit' | 'discard';

/** Ours: the answer to `logs`. */
export type LogsResult =
  | {
      ok: {
        container: Container;
        /** The manifest's io: only `pipe` output is kept. */
        io: { stdout: OutputMode; stderr: OutputMode };
        lines: LogLine[];
        /** The container's buffer now: lines and bytes held, its bound, lines dropped (u64s). */
        buffer: { lines: bigint; bytes: bigint; capacity: bigint; dropped: bigint };
      };
    }
  | { error: { container: Container; error: ModelError } };

/** Ours: why a follow ended. */
export type LogEndReason = 'exit' | 'not_running' | 'stopped' | 'lagged' | 'uninstall';
export const LOG_END_REASONS = ['exit', 'not_running', 'stopped', 'lagged', 'uninstall'] as const satisfies readonly LogEndReason[];

export type InspectResult =
  | { ok: { container: Container; data: ContainerData } }
  | { error: { container: Container; error: ModelError } };

export type VerificationResult = 'Ok' | 'Invalid' | 'Expired' | 'Future';
export const VERIFICATION_RESULTS = ['Ok', 'Invalid', 'Expired', 'Future'] as const;

// ---------------------------------------------------------------------------------------
// Responses (upstream declaration order)

export type Response =
  | { ident: Container }
  | { inspect: InspectResult }
  | { install: InstallResult }
  | { kill: ContainerResult }
  | { list: Container[] }
  | { mount: ContainerResult[] }
  | { permission_denied: Request }
  | { repositories: string[] }
  | 'shutdown'
  | { start: ContainerResult }
  | { token: Buffer }
  | { token_verification: VerificationResult }
  | { umount: ContainerResult[] }
  | { uninstall: ContainerResult }
  /** Ours: the answer to a `restart` request. */
  | { restart: ContainerResult }
  /** Ours: the answer to a `logs` request. */
  | { logs: LogsResult }
  /** Ours: the answer to an `exec` request: `ok` once the command runs. */
  | { exec: ContainerResult };

export const RESPONSE_TAGS = [
  'ident', 'inspect', 'install', 'kill', 'list', 'mount', 'permission_denied', 'repositories',
  'shutdown', 'start', 'token', 'token_verification', 'umount', 'uninstall', 'restart', 'logs', 'exec',
] as const;
export type ResponseTag = (typeof RESPONSE_TAGS)[number];

export function responseTag(r: Response): ResponseTag {
  return (typeof r === 'string' ? r : Object.keys(r)[0]) as ResponseTag;
}

// ---------------------------------------------------------------------------------------
// Notifications

/** cgroup v2 `memory.events` counters (u64 or null); upstream's oom_group_kill is not on the wire. */
export interface MemoryNotification {
  low: bigint | null;
  high: bigint | null;
  max: bigint | null;
  oom: bigint | null;
  oom_kill: bigint | null;
}

export type CgroupNotification = { memory: MemoryNotification };

export type Notification =
  | { c_group: [Container, CgroupNotification] }
  | { exit: [Container, ExitStatus] }
  | { install: Container }
  | 'shutdown'
  | { started: Container }
  | { uninstall: Container };

// ---------------------------------------------------------------------------------------
// Envelope

export type Message =
  | { connect: Connect }
  | { connect_ack: null }
  | { connect_nack: ConnectNack }
  | { request: Request }
  | { response: Response }
  | { notification: Notification }
  /** Ours: new lines of the `logs` follow of this connection (only after such a request). */
  | { log: { container: Container; lines: LogLine[] } }
  /** Ours: the end of this connection's follow; the last message of it. */
  | { log_end: { container: Container; reason: LogEndReason } }
  /** Ours, runtime to client: output of this connection's exec (bytes, base64 on the wire). */
  | { exec_output: { container: Container; stream: LogStream; data: Buffer } }
  /** Ours, runtime to client: the exec's command ended; the last message of the exec. */
  | { exec_exit: { container: Container; status: ExitStatus } }
  /** Ours, client to runtime: bytes for the exec's stdin; `eof` closes it after them. */
  | { exec_input: { data: Buffer; eof: boolean } }
  /** Ours, client to runtime: the exec's terminal size (tty only). */
  | { exec_resize: { rows: number; cols: number } }
  /** Ours, client to runtime: a signal for the exec's command (with tty: the terminal's foreground group). */
  | { exec_signal: { signal: number } };
