/**
 * The contract between the console (wire, connections, permissions, tokens) and the runtime
 * (what a request does). The console calls a RuntimeHandle; the runtime never sees JSON.
 */
import type { Container } from '../common/container.js';
import type { ExecRequest, ExitStatus, LogEndReason, LogLine, LogStream, Notification, Request, RequestOf, Response } from '../api/model.js';
import type { ConsolePermission } from '../manifest/console.js';

/** Who is on the other end: a client of the global console, or a container's console fd. */
export type Peer = { kind: 'extern' } | { kind: 'container'; container: Container };

export interface RuntimeHandle {
  /**
   * Handle one permitted request (never `install`, `ident`, `token_create`, `token_verify`:
   * the console answers those itself) for `peer`; resolve with the Response (wire model).
   * A rejection is logged and closes that connection only.
   */
  request(req: Request, peer: Peer): Promise<Response>;
  /**
   * Install exactly `size` bytes read from `payload` into `repository`; resolve with the
   * install Response. The handle reads the payload to the end (the console guarantees exactly
   * `size` bytes, or an early end when the client stops sending or stalls, in which case the
   * iterator throws after the bytes it got).
   */
  install(repository: string, size: number, payload: AsyncIterable<Buffer>, peer: Peer): Promise<Response>;
  /** Subscribe to notifications; returns an unsubscribe function. */
  subscribe(listener: (n: Notification) => void): () => void;
  /**
   * Ours: answer a `logs` request at once (no await between the snapshot of the buffer and
   * the start of the follow, so no line is lost or doubled). With `follower`, every later
   * line goes to it until it is told the end, or until `stop` is called. A handle without
   * it answers `logs` with an error.
   */
  logs?(req: RequestOf<'logs'>['logs'], peer: Peer, follower: LogSink | undefined): { response: Response; stop: () => void };
  /**
   * Ours: run a command in a running container. Resolves with the answer and, when the
   * command runs, its control; from then on its output and then its exit go to `sink`.
   * A handle without it answers `exec` with an error.
   */
  exec?(req: ExecRequest, peer: Peer, sink: ExecSink): Promise<{ response: Response; control: ExecControl | undefined }>;
}

/** Ours: where an exec's output and exit go (the console connection that asked). */
export interface ExecSink {
  output(stream: LogStream, data: Buffer): void;
  exit(status: ExitStatus): void;
}

/** Ours: what a connection does with its running exec. */
export interface ExecControl {
  input(data: Buffer, eof: boolean): void;
  resize(rows: number, cols: number): void;
  signal(signo: number): void;
  pause(): void;
  resume(): void;
  kill(): void;
}

/** Ours: where a follow's lines go (the console connection that asked). */
export interface LogSink {
  line(l: LogLine): void;
  end(reason: LogEndReason): void;
}

/** Console options (console.md §10); the same for the global console and container consoles. */
export interface ConsoleOptions {
  /** Token lifetime in ms (default 60 s). */
  tokenValidity: number;
  /** Read throttle: decoded messages per sliding second (default 1000). */
  maxRequestsPerSec: number;
  /** Maximum line length in bytes, the `\n` not counted (default 1 MiB). */
  maxRequestSize: number;
  /** Install size cap in bytes (default 256 MiB). */
  maxNpkInstallSize: number;
  /** Time limit per upload chunk in ms (default 10 s). */
  npkStreamTimeout: number;
  /**
   * Ours: at most this many open connections per listening address (default 128); one more
   * is closed at once. Not for container consoles (one connection each).
   */
  maxConnections?: number;
  /** Ours: the Connect deadline in ms (default 10 s, upstream's fixed value). */
  connectTimeout?: number;
  /** Ours: time limit of one whole install upload in ms (default 10 min; 0 = none). */
  npkInstallTimeout?: number;
}

/** Defaults of our optional console options. */
export const DEFAULT_MAX_CONNECTIONS = 128;
export const DEFAULT_NPK_INSTALL_TIMEOUT = 600_000;

export const DEFAULT_CONSOLE_OPTIONS: Readonly<ConsoleOptions> = Object.freeze({
  tokenValidity: 60_000,
  maxRequestsPerSec: 1000,
  maxRequestSize: 1_048_576,
  maxNpkInstallSize: 268_435_456,
  npkStreamTimeout: 10_000,
});

/** The permissions of one console endpoint: a set of the 17 (`"full"` = all of them in the runtime config). */
export type Permissions = ReadonlySet<ConsolePermission>;
export type { ConsolePermission };
