/**
 * The typed console client (console.md §11): connect over `tcp://`, `unix://`, an inherited
 * fd (`NORTHSTAR_CONSOLE` inside a container) or any duplex stream; the handshake; one typed
 * method per request; notifications as an async iterator that also yields the ones that
 * arrived while a request waited for its response.
 *
 * Requests are sent one at a time; one reader reads every message the runtime sends, hands
 * responses to the waiting request and queues notifications for the iterator.
 */
import net from 'node:net';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import type { Duplex, Readable } from 'node:stream';
import { Container } from '../common/container.js';
import { connectOptions, parseConsoleUrl } from '../common/console-url.js';
import { NorthstarError } from '../common/errors.js';
import { parseName, type Name } from '../common/name.js';
import type { Version } from '../common/version.js';
import { encodeLine, parseMessage } from '../api/codec.js';
import { StreamReader } from '../api/lines.js';
import {
  PROTOCOL_VERSION,
  TOKEN_LENGTH,
  requestTag,
  responseTag,
  type ContainerData,
  type ExitStatus,
  type ContainerResult,
  type InspectResult,
  type InstallResult,
  type LogEndReason,
  type LogLine,
  type LogStream,
  type LogsResult,
  type Message,
  type Notification,
  type Request,
  type Response,
  type VerificationResult,
} from '../api/model.js';
import {
  ConnectionClosedError,
  LaggedNotificationsError,
  PermissionDeniedError,
  ProtocolVersionError,
  RuntimeError,
  TimeoutError,
  UnexpectedMessageError,
} from './errors.js';

/** Where to connect: a console URL, an inherited fd, `'env'` (NORTHSTAR_CONSOLE) or a stream. */
export type Endpoint = string | { fd: number } | 'env' | Duplex;

export interface ConnectOptions {
  /** Subscribe to notifications (needs the `notifications` permission). */
  subscribe?: boolean;
  /** Limit for connecting and the handshake in ms (default 10 s, as nstar). */
  timeout?: number;
  /** Limit for each request in ms (default none, as upstream). A timeout closes the connection. */
  requestTimeout?: number;
  /** Queued, unread notifications beyond this close the connection with LaggedNotificationsError (default 4096). */
  notificationQueue?: number;
  /** Protocol version to announce (default 0.9.3). */
  version?: Version;
  /**
   * Called with every byte read from and written to the connection, in order (nstar's `-j`
   * transcript): the handshake, requests, install payloads, responses and notifications.
   */
  transcript?: (bytes: Buffer, direction: 'read' | 'write') => void;
}

export interface StartOptions {
  /** Replaces the manifest init; `<INIT>` inside it is the manifest's init. */
  init?: string | null;
  /** Non-empty: replaces the manifest args. */
  args?: readonly string[];
  /** Non-empty: replaces the whole manifest env. */
  env?: Readonly<Record<string, string>>;
}

export interface InstallOptions {
  /** Payload size; required for streams, taken from the file for a path. */
  size?: number;
  /** Called after each chunk written with the bytes sent so far and the total. */
  onProgress?: (sent: number, total: number) => void;
}

export type ContainerArg = Container | string;

interface Waiter {
  resolve: (r: Response) => void;
  reject: (e: Error) => void;
  /** Run by the reader as the response arrives, before any later message is read. */
  onResponse?: (r: Response) => void;
}

/** Ours: what `logs` returns (the `logs.ok` of the wire). */
export type Logs = Extract<LogsResult, { ok: unknown }>['ok'];

export interface LogsOptions {
  /** The last this many lines (default all that are kept). */
  tail?: number;
  /** Follow new lines until the container's exit has been delivered (or `stop()`). */
  follow?: boolean;
}

/** Lines a follow keeps for a reader that does not read, before it ends with an error. */
const FOLLOW_QUEUE_LINES = 65_536;

/**
 * What the connection's reader hands to one async iterator: items in order, then the end,
 * or an error thrown once the items before it have been taken.
 */
class Feed<T> {
  private readonly queue: T[] = [];
  private wake: (() => void) | undefined;
  private error: Error | undefined;
  closed = false;

  get length(): number {
    return this.queue.length;
  }

  push(items: readonly T[]): void {
    this.queue.push(...items);
    this.notify();
  }

  /** The reader lagged: what is queued goes, the iterator throws `e` next. */
  fail(e: Error): void {
    this.error = e;
    this.queue.length = 0;
    this.notify();
  }

  /** No more items; with `e`, the iterator throws it after the queued ones. */
  close(e?: Error): void {
    this.closed = true;
    this.error ??= e;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  async *items(): AsyncGenerator<T> {
    for (;;) {
      const item = this.queue.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.error) throw this.error;
      if (this.closed) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/**
 * Ours: a `logs` follow. Iterating yields the lines of the answer (`logs.lines`), then every
 * new line, and ends once the runtime ends the follow (`endReason` says why: `exit`,
 * `not_running`, `stopped`, `lagged`, `uninstall`) or the connection closes. Breaking out
 * of the loop (or `stop()`) stops the follow.
 */
export class LogFollow implements AsyncIterable<LogLine> {
  /** Why the follow ended; undefined while it runs (or when the connection closed first). */
  endReason: LogEndReason | undefined;
  private readonly feed = new Feed<LogLine>();

  /** @internal */
  constructor(
    /** The answer: io, buffer figures and the tail of lines. */
    readonly info: Logs,
    private readonly stopper: () => Promise<void>,
  ) {
    this.feed.push(info.lines);
  }

  /** @internal */
  push(lines: readonly LogLine[]): void {
    if (this.feed.closed) return;
    this.feed.push(lines);
    if (this.feed.length > FOLLOW_QUEUE_LINES) {
      this.feed.fail(new NorthstarError('ELAGGED', `logs of ${this.info.container}: more than ${FOLLOW_QUEUE_LINES} lines were not read`));
      void this.stop().catch(() => undefined);
    }
  }

  /** @internal The runtime ended it (reason), or the connection closed (undefined). */
  finish(reason: LogEndReason | undefined): void {
    if (this.feed.closed) return;
    this.endReason = reason;
    this.feed.close();
  }

  /** Stop following (a `logs` request with tail 0 on the same connection); resolves once it ended. */
  async stop(): Promise<void> {
    if (this.feed.closed) return;
    await this.stopper();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LogLine> {
    try {
      yield* this.feed.items();
    } finally {
      if (!this.feed.closed) await this.stop().catch(() => undefined);
    }
  }
}

/** Ours: options of `exec`. */
export interface ExecOptions {
  /** Added to (or replacing in) the container's environment. */
  env?: Readonly<Record<string, string>>;
  /** A pseudo terminal (all output comes as `stdout`); stdin is then always open. */
  tty?: boolean;
  /** Whether `write`/`end` feed the command's stdin (else it reads /dev/null). */
  stdin?: boolean;
  /** The terminal's initial size (tty only). */
  size?: { rows: number; cols: number };
}

/** Ours: a piece of an exec's output. */
export interface ExecChunk {
  stream: LogStream;
  data: Buffer;
}

/**
 * Ours: a command running inside a container (`Client.exec`). Iterating yields its output
 * as it comes and ends once it exited; `exit` resolves with how it ended (and rejects if
 * the connection closed first). Output nobody reads is kept.
 */
export class ExecSession implements AsyncIterable<ExecChunk> {
  /** How the command ended. */
  readonly exit: Promise<ExitStatus>;
  private readonly feed = new Feed<ExecChunk>();
  private resolveExit!: (s: ExitStatus) => void;
  private rejectExit!: (e: Error) => void;

  /** @internal */
  constructor(
    readonly container: Container,
    private readonly send: (m: Message) => Promise<void>,
  ) {
    this.exit = new Promise((resolve, reject) => {
      this.resolveExit = resolve;
      this.rejectExit = reject;
    });
    this.exit.catch(() => undefined);
  }

  /** Bytes for the command's stdin. */
  write(data: string | Uint8Array): Promise<void> {
    return this.send({ exec_input: { data: Buffer.from(data), eof: false } });
  }

  /** Close the command's stdin (after `data`, if given). */
  end(data: string | Uint8Array = Buffer.alloc(0)): Promise<void> {
    return this.send({ exec_input: { data: Buffer.from(data), eof: true } });
  }

  /** The terminal's size (tty only). */
  resize(rows: number, cols: number): Promise<void> {
    return this.send({ exec_resize: { rows, cols } });
  }

  /** A signal (number or name) for the command's process group (with a tty: the foreground group). */
  signal(signal: number | string): Promise<void> {
    return this.send({ exec_signal: { signal: signalNumber(signal) } });
  }

  /** @internal */
  push(chunk: ExecChunk): void {
    if (!this.feed.closed) this.feed.push([chunk]);
  }

  /** @internal the exit (status), or the connection closed (error). */
  finish(status: ExitStatus | Error): void {
    if (this.feed.closed) return;
    if (status instanceof Error) {
      this.feed.close(status);
      this.rejectExit(status);
    } else {
      this.feed.close();
      this.resolveExit(status);
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<ExecChunk> {
    return this.feed.items();
  }
}

const DEFAULT_TIMEOUT = 10_000;
const DEFAULT_QUEUE = 4096;

function toContainer(c: ContainerArg, what = 'container'): Container {
  return c instanceof Container ? c : Container.parse(c, what);
}

/** A signal number, or a name such as `SIGTERM` / `TERM` / `term`. */
export function signalNumber(signal: number | string): number {
  if (typeof signal === 'number') return signal;
  if (/^-?\d+$/.test(signal)) return Number(signal);
  const upper = signal.toUpperCase();
  const key = (upper.startsWith('SIG') ? upper : `SIG${upper}`) as keyof typeof osConstants.signals;
  const n = osConstants.signals[key];
  if (n === undefined) throw new NorthstarError('ESIGNAL', `unknown signal ${JSON.stringify(signal)}`);
  return n;
}

async function openStream(endpoint: Endpoint, timeout: number): Promise<Duplex> {
  if (typeof endpoint === 'object') {
    if (typeof (endpoint as Partial<Duplex>).pipe === 'function') return endpoint as Duplex;
    return new net.Socket({ fd: (endpoint as { fd: number }).fd, readable: true, writable: true });
  }
  if (endpoint === 'env') {
    const v = process.env.NORTHSTAR_CONSOLE;
    if (v === undefined) throw new NorthstarError('ENOCONSOLE', 'NORTHSTAR_CONSOLE is not set');
    if (!/^\d+$/.test(v)) throw new NorthstarError('ENOCONSOLE', `NORTHSTAR_CONSOLE is not a file descriptor: ${JSON.stringify(v)}`);
    return new net.Socket({ fd: Number(v), readable: true, writable: true });
  }
  const opts = connectOptions(parseConsoleUrl(endpoint, 'url'));
  return new Promise<Duplex>((resolve, reject) => {
    const socket = net.connect(opts);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TimeoutError(`connect to ${endpoint}`, timeout));
    }, timeout);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(new NorthstarError('ECONNECT', `connect to ${endpoint}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
    };
    socket.once('error', onError);
  });
}

export class Client implements AsyncIterable<Notification> {
  /** Whether this connection receives notifications. */
  readonly subscribed: boolean;
  private readonly stream: Duplex;
  private readonly reader: StreamReader;
  private readonly waiters: Waiter[] = [];
  private readonly queue: Notification[] = [];
  private readonly queueLimit: number;
  private readonly requestTimeout: number | undefined;
  private readonly transcript: ((bytes: Buffer, direction: 'read' | 'write') => void) | undefined;
  private noteWaiters: (() => void)[] = [];
  /** Ours: the follow of this connection, from its answer until its `log_end`. */
  private following: LogFollow | undefined;
  /** Ours: the exec of this connection, from its answer until its `exec_exit`. */
  private execing: ExecSession | undefined;
  private failure: Error | undefined;
  private eof = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly closedPromise: Promise<void>;

  private constructor(stream: Duplex, reader: StreamReader, subscribed: boolean, opts: ConnectOptions) {
    this.stream = stream;
    this.reader = reader;
    this.subscribed = subscribed;
    this.queueLimit = opts.notificationQueue ?? DEFAULT_QUEUE;
    this.requestTimeout = opts.requestTimeout;
    this.transcript = opts.transcript;
    this.closedPromise = new Promise((resolve) => {
      if (stream.destroyed) resolve();
      else stream.once('close', () => resolve());
    });
    void this.pump();
  }

  /** Connect and complete the handshake. */
  static async connect(endpoint: Endpoint, opts: ConnectOptions = {}): Promise<Client> {
    const timeout = opts.timeout ?? DEFAULT_TIMEOUT;
    const stream = await openStream(endpoint, timeout);
    const transcript = opts.transcript;
    if (transcript) stream.on('data', (d: Buffer) => transcript(d, 'read'));
    const reader = new StreamReader(stream);
    const subscribe = opts.subscribe ?? false;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        (async (): Promise<Message | null> => {
          const hello = Buffer.from(encodeLine({ connect: { version: opts.version ?? PROTOCOL_VERSION, subscribe_notifications: subscribe } }));
          transcript?.(hello, 'write');
          stream.write(hello);
          const line = await reader.readLine();
          return line === null ? null : parseMessage(line);
        })(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TimeoutError('console handshake', timeout)), timeout);
        }),
      ]);
      if (answer === null) throw new ConnectionClosedError('during the handshake');
      if ('connect_nack' in answer) {
        const n = answer.connect_nack;
        throw n === 'permission_denied' ? new PermissionDeniedError() : new ProtocolVersionError(n.invalid_protocol_version.version);
      }
      if (!('connect_ack' in answer)) throw new UnexpectedMessageError(`expected connect_ack, got ${Object.keys(answer)[0]}`);
    } catch (e) {
      stream.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return new Client(stream, reader, subscribe, opts);
  }

  // --- the reader ----------------------------------------------------------------------

  private async pump(): Promise<void> {
    try {
      for (;;) {
        const line = await this.reader.readLine();
        if (line === null) break;
        const msg = parseMessage(line);
        if ('response' in msg) {
          const w = this.waiters.shift();
          if (!w) throw new UnexpectedMessageError('a response arrived without a request');
          w.onResponse?.(msg.response);
          w.resolve(msg.response);
        } else if ('log' in msg) {
          // Lines of a follow that already ended (a stop crossing them) are dropped.
          this.following?.push(msg.log.lines);
        } else if ('log_end' in msg) {
          const f = this.following;
          this.following = undefined;
          f?.finish(msg.log_end.reason);
        } else if ('exec_output' in msg) {
          this.execing?.push({ stream: msg.exec_output.stream, data: msg.exec_output.data });
        } else if ('exec_exit' in msg) {
          const x = this.execing;
          this.execing = undefined;
          x?.finish(msg.exec_exit.status);
        } else if ('notification' in msg) {
          if (this.queue.length >= this.queueLimit) throw new LaggedNotificationsError(this.queueLimit);
          this.queue.push(msg.notification);
          this.wakeNotes();
        } else {
          throw new UnexpectedMessageError(`unexpected ${Object.keys(msg)[0]} message`);
        }
      }
      this.eof = true;
      this.failAll(new ConnectionClosedError());
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.failure ??= err;
      this.failAll(err);
      this.stream.destroy();
    }
  }

  private failAll(e: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(e);
    const f = this.following;
    this.following = undefined;
    f?.finish(undefined);
    const x = this.execing;
    this.execing = undefined;
    x?.finish(e);
    this.wakeNotes();
  }

  private wakeNotes(): void {
    for (const w of this.noteWaiters.splice(0)) w();
  }

  private get broken(): Error | undefined {
    if (this.failure) return this.failure;
    if (this.eof || this.stream.destroyed) return new ConnectionClosedError();
    return undefined;
  }

  // --- requests ------------------------------------------------------------------------

  /**
   * Run `f` (which writes one request, and an install its payload) after every earlier
   * request was written. Requests are pipelined: the answers are awaited outside this order,
   * and the runtime answers in FIFO order. `f` returns its answer wrapped, so that the write
   * order does not wait for it.
   */
  private serialize<T>(f: () => Promise<{ answer: Promise<T> }>): Promise<T> {
    const run = this.chain.then(f);
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run.then((r) => r.answer);
  }

  private awaitResponse(what: string, onResponse?: (r: Response) => void): Promise<Response> {
    return new Promise<Response>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const t = this.requestTimeout;
      this.waiters.push({
        ...(onResponse ? { onResponse } : {}),
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (t !== undefined) {
        timer = setTimeout(() => {
          const err = new TimeoutError(what, t);
          this.failure ??= err;
          this.failAll(err);
          this.stream.destroy();
        }, t);
      }
    });
  }

  /** Bytes about to be written, shown to the transcript. */
  private out(data: string | Buffer | Uint8Array): Buffer | Uint8Array | string {
    if (this.transcript) {
      const b = typeof data === 'string' ? Buffer.from(data) : Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.transcript(b, 'write');
      return b;
    }
    return data;
  }

  private writeLine(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.stream.write(this.out(text), (e) => (e ? reject(new ConnectionClosedError(e.message)) : resolve()));
    });
  }

  /** Send any request and return the raw response (permission_denied included). */
  request(req: Request, onResponse?: (r: Response) => void): Promise<Response> {
    return this.serialize(async () => {
      const broken = this.broken;
      if (broken) throw broken;
      const answer = this.awaitResponse(`request ${requestTag(req)}`, onResponse);
      this.stream.write(this.out(encodeLine({ request: req })));
      return { answer };
    });
  }

  /** Send a request and check the answer's variant; permission_denied throws. */
  private async call<T extends Exclude<Response, string>, K extends keyof T & string>(req: Request, tag: K): Promise<T[K]> {
    const r = await this.request(req);
    return this.expect<T, K>(r, tag);
  }

  private expect<T extends Exclude<Response, string>, K extends keyof T & string>(r: Response, tag: K): T[K] {
    if (typeof r === 'object' && 'permission_denied' in r) throw new PermissionDeniedError(r.permission_denied);
    if (typeof r !== 'object' || !(tag in r)) throw new UnexpectedMessageError(`expected a ${tag} response, got ${responseTag(r)}`);
    return (r as T)[tag];
  }

  private static result(r: ContainerResult): Container {
    if ('error' in r) throw new RuntimeError(r.error.error, r.error.container);
    return r.ok.container;
  }

  /** The identity of this console's peer (`extern:0.0.0` on the global console). */
  async ident(): Promise<Container> {
    return this.call<{ ident: Container }, 'ident'>('ident', 'ident');
  }

  /** Every installed container. */
  async list(): Promise<Container[]> {
    return this.call<{ list: Container[] }, 'list'>('list', 'list');
  }

  /** The repository ids. */
  async repositories(): Promise<string[]> {
    return this.call<{ repositories: string[] }, 'repositories'>('repositories', 'repositories');
  }

  /** Start a container, optionally with init, args and env overrides (needs `start_command`). */
  async start(container: ContainerArg, opts: StartOptions = {}): Promise<Container> {
    const c = toContainer(container);
    const environment: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env ?? {})) environment[k] = v;
    const r = await this.call<{ start: ContainerResult }, 'start'>(
      { start: { container: c, init: opts.init ?? null, arguments: [...(opts.args ?? [])], environment } },
      'start',
    );
    return Client.result(r);
  }

  /** Send a signal (number or name, default SIGTERM) to a container's process group. */
  async kill(container: ContainerArg, signal: number | string = 15): Promise<Container> {
    const c = toContainer(container);
    const r = await this.call<{ kill: ContainerResult }, 'kill'>({ kill: { container: c, signal: signalNumber(signal) } }, 'kill');
    return Client.result(r);
  }

  /**
   * Ours (a runtime of this project only): stop the container (SIGTERM, SIGKILL after
   * `timeoutMs`, default 10 s) and start it again with the request it last ran with; a
   * stopped container is just started. Resolves once it runs again.
   */
  async restart(container: ContainerArg, opts: { timeoutMs?: number } = {}): Promise<Container> {
    const c = toContainer(container);
    const timeout = opts.timeoutMs ?? 10_000;
    if (!Number.isInteger(timeout) || timeout < 0 || timeout > 0xffff_ffff) throw new NorthstarError('EARGUMENT', `restart ${c}: timeoutMs must be an integer 0..4294967295, got ${timeout}`);
    const r = await this.call<{ restart: ContainerResult }, 'restart'>({ restart: { container: c, timeout } }, 'restart');
    return Client.result(r);
  }

  /**
   * Ours (a runtime of this project only; needs the `logs` permission): the container's
   * recent `io: pipe` output, oldest first: the last `tail` lines (default all kept). With
   * `follow`, a LogFollow: an async iterable of those lines and every new one until the
   * container's exit has been delivered; one follow per connection (a later `logs` call
   * stops the earlier follow).
   */
  logs(container: ContainerArg, opts: LogsOptions & { follow: true }): Promise<LogFollow>;
  logs(container: ContainerArg, opts?: LogsOptions & { follow?: false }): Promise<Logs>;
  async logs(container: ContainerArg, opts: LogsOptions = {}): Promise<Logs | LogFollow> {
    const c = toContainer(container);
    const tail = opts.tail ?? null;
    if (tail !== null && (!Number.isInteger(tail) || tail < 0 || tail > 0xffff_ffff)) throw new NorthstarError('EARGUMENT', `logs ${c}: tail must be an integer 0..4294967295, got ${tail}`);
    const follow = opts.follow === true;
    let f: LogFollow | undefined;
    const r = await this.request({ logs: { container: c, tail, follow } }, (resp) => {
      // Set as the answer is read, so the `log` messages right after it find it.
      if (follow && typeof resp === 'object' && 'logs' in resp && 'ok' in resp.logs) {
        f = new LogFollow(resp.logs.ok, () => this.stopFollow(c));
        this.following = f;
      }
    });
    const result = this.expect<{ logs: LogsResult }, 'logs'>(r, 'logs');
    if ('error' in result) throw new RuntimeError(result.error.error);
    return f ?? result.ok;
  }

  /**
   * Ours (a runtime of this project only; needs the `exec` permission): run `command` inside
   * the running container with the container's own ids, capabilities and seccomp filter. A
   * program without `/` is looked up in the container's PATH. Resolves once it runs; one exec
   * per connection at a time.
   */
  async exec(container: ContainerArg, command: readonly string[], opts: ExecOptions = {}): Promise<ExecSession> {
    const c = toContainer(container);
    if (command.length === 0 || !command[0]) throw new NorthstarError('EARGUMENT', `exec ${c}: the command must name a program`);
    if (this.execing) throw new NorthstarError('ESTATE', `exec ${c}: an exec is running on this connection; use another connection`);
    const environment: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env ?? {})) environment[k] = v;
    const size = opts.size ?? null;
    let x: ExecSession | undefined;
    const r = await this.request({ exec: { container: c, command: [...command], environment, tty: opts.tty === true, stdin: opts.stdin === true, size } }, (resp) => {
      // Set as the answer is read, so the output right after it finds it.
      if (typeof resp === 'object' && 'exec' in resp && 'ok' in resp.exec) {
        x = new ExecSession(c, (m) => this.sendMessage(m));
        this.execing = x;
      }
    });
    const result = this.expect<{ exec: ContainerResult }, 'exec'>(r, 'exec');
    Client.result(result);
    return x!;
  }

  /**
   * Ours: run `command` in the container to its end and return its output and exit status
   * (`input`, if given, is its stdin).
   */
  async execCapture(container: ContainerArg, command: readonly string[], opts: Omit<ExecOptions, 'stdin' | 'tty'> & { input?: string | Uint8Array } = {}): Promise<{ status: ExitStatus; stdout: Buffer; stderr: Buffer }> {
    const x = await this.exec(container, command, { ...opts, stdin: opts.input !== undefined });
    if (opts.input !== undefined) await x.end(opts.input);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    for await (const c of x) (c.stream === 'stdout' ? out : err).push(c.data);
    return { status: await x.exit, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  }

  private async sendMessage(m: Message): Promise<void> {
    const broken = this.broken;
    if (broken) throw broken;
    await this.writeLine(encodeLine(m));
  }

  /** End this connection's follow: a `logs` request for no lines ends it before its answer. */
  private async stopFollow(c: Container): Promise<void> {
    if (this.broken) return;
    await this.request({ logs: { container: c, tail: 0, follow: false } });
  }

  /** Mount containers; one result per container (errors included, as upstream). */
  async mount(containers: readonly ContainerArg[]): Promise<ContainerResult[]> {
    const cs = containers.map((c) => toContainer(c));
    return this.call<{ mount: ContainerResult[] }, 'mount'>({ mount: { containers: cs } }, 'mount');
  }

  /** Unmount containers; one result per container. */
  async umount(containers: readonly ContainerArg[]): Promise<ContainerResult[]> {
    const cs = containers.map((c) => toContainer(c));
    return this.call<{ umount: ContainerResult[] }, 'umount'>({ umount: { containers: cs } }, 'umount');
  }

  /** Uninstall a container (`wipe` also removes its persist dir). */
  async uninstall(container: ContainerArg, opts: { wipe?: boolean } = {}): Promise<Container> {
    const c = toContainer(container);
    const r = await this.call<{ uninstall: ContainerResult }, 'uninstall'>({ uninstall: { container: c, wipe: opts.wipe ?? false } }, 'uninstall');
    return Client.result(r);
  }

  /** Manifest, repository, mount state and process of a container. */
  async inspect(container: ContainerArg): Promise<ContainerData> {
    const c = toContainer(container);
    const r = await this.call<{ inspect: InspectResult }, 'inspect'>({ inspect: { container: c } }, 'inspect');
    if ('error' in r) throw new RuntimeError(r.error.error);
    return r.ok.data;
  }

  /** Ask the runtime to shut down. EOF instead of the reply counts as success (console.md §13.2). */
  async shutdown(): Promise<void> {
    let r: Response;
    try {
      r = await this.request('shutdown');
    } catch (e) {
      if (e instanceof ConnectionClosedError) return;
      throw e;
    }
    if (r === 'shutdown') return;
    if (typeof r === 'object' && 'permission_denied' in r) throw new PermissionDeniedError(r.permission_denied);
    throw new UnexpectedMessageError(`expected a shutdown response, got ${responseTag(r)}`);
  }

  /** A token for `target` (a container name) tied to `shared` (bytes, or a UTF-8 string). */
  async createToken(target: string, shared: Buffer | string = Buffer.alloc(0)): Promise<Buffer> {
    const t = parseName(target, 'target');
    const s = typeof shared === 'string' ? Buffer.from(shared, 'utf8') : shared;
    return this.call<{ token: Buffer }, 'token'>({ token_create: { target: t, shared: s } }, 'token');
  }

  /** Verify a token that `user` presented to us. */
  async verifyToken(token: Buffer | string, user: string, shared: Buffer | string = Buffer.alloc(0)): Promise<VerificationResult> {
    const tok = typeof token === 'string' ? Buffer.from(token, 'base64') : token;
    if (tok.length !== TOKEN_LENGTH) throw new NorthstarError('ETOKEN', `invalid token: expected ${TOKEN_LENGTH} bytes, got ${tok.length}`);
    const u: Name = parseName(user, 'user');
    const s = typeof shared === 'string' ? Buffer.from(shared, 'utf8') : shared;
    return this.call<{ token_verification: VerificationResult }, 'token_verification'>({ token_verify: { token: tok, user: u, shared: s } }, 'token_verification');
  }

  /**
   * Install an NPK from a file path, a Buffer, or a stream of `size` bytes into `repository`.
   * Exactly `size` bytes are sent; a source that is shorter or longer closes the connection.
   */
  async install(source: string | Buffer | Readable | AsyncIterable<Buffer | Uint8Array>, repository: string, opts: InstallOptions = {}): Promise<Container> {
    let size = opts.size;
    let body: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer>;
    if (typeof source === 'string') {
      const st = await stat(source);
      if (!st.isFile()) throw new NorthstarError('EINSTALL', `install ${source}: not a regular file`);
      size ??= st.size;
      body = createReadStream(source, { highWaterMark: 1 << 20 });
    } else if (Buffer.isBuffer(source)) {
      size ??= source.length;
      body = [source];
    } else {
      if (size === undefined) throw new NorthstarError('EINSTALL', 'install from a stream needs a size');
      body = source;
    }
    if (!Number.isSafeInteger(size) || size < 0) throw new NorthstarError('EINSTALL', `invalid install size ${size}`);
    const total = size;
    const r = await this.serialize(async () => {
      const broken = this.broken;
      if (broken) throw broken;
      const answer = this.awaitResponse('request install');
      answer.catch(() => undefined);
      await this.writeLine(encodeLine({ request: { install: { repository, size: total } } }));
      let sent = 0;
      try {
        for await (const chunk of body) {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          if (sent + b.length > total) throw new NorthstarError('EINSTALL', `install source is longer than ${total} bytes`);
          if (this.broken) break;
          if (!this.stream.write(this.out(b))) await this.drained();
          sent += b.length;
          opts.onProgress?.(sent, total);
        }
        if (sent < total && !this.broken) throw new NorthstarError('EINSTALL', `install source ended after ${sent} of ${total} bytes`);
      } catch (e) {
        if (typeof (body as Partial<Readable>).destroy === 'function') (body as Readable).destroy();
        this.stream.destroy();
        throw e;
      }
      return { answer };
    });
    const res = this.expect<{ install: InstallResult }, 'install'>(r, 'install');
    if ('error' in res) throw new RuntimeError(res.error.error);
    return res.ok.container;
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const on = (): void => {
        this.stream.off('drain', on);
        this.stream.off('close', on);
        resolve();
      };
      this.stream.on('drain', on);
      this.stream.on('close', on);
    });
  }

  // --- notifications -------------------------------------------------------------------

  /**
   * Notifications in arrival order, including those that arrived while a request waited for
   * its response. Ends at EOF or close; throws LaggedNotificationsError if the queue overflowed.
   */
  notifications(): AsyncIterableIterator<Notification> {
    let finished = false;
    let wake: (() => void) | undefined;
    const next = async (): Promise<IteratorResult<Notification>> => {
      for (;;) {
        if (finished) return { value: undefined, done: true };
        const n = this.queue.shift();
        if (n !== undefined) return { value: n, done: false };
        if (this.failure instanceof LaggedNotificationsError) throw this.failure;
        if (!this.subscribed || this.failure || this.eof || this.stream.destroyed) return { value: undefined, done: true };
        await new Promise<void>((resolve) => {
          wake = resolve;
          this.noteWaiters.push(resolve);
        });
        wake = undefined;
      }
    };
    const it: AsyncIterableIterator<Notification> = {
      next,
      // Ends this iterator; a next() that is waiting resolves as done.
      return: async () => {
        finished = true;
        wake?.();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** The next notification, or null at EOF. */
  async nextNotification(): Promise<Notification | null> {
    const r = await this.notifications().next();
    return r.done ? null : r.value;
  }

  [Symbol.asyncIterator](): AsyncIterator<Notification> {
    return this.notifications();
  }

  /** Resolves when the connection has closed. */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /** Close the connection: end our side and wait until it is closed (destroyed after `grace` ms). */
  async close(grace = 1000): Promise<void> {
    if (!this.stream.destroyed) {
      this.stream.end();
      const t = setTimeout(() => this.stream.destroy(), grace);
      t.unref();
      // Our side is done: stop reading so the stream can close.
      this.stream.resume();
      await this.closedPromise;
      clearTimeout(t);
    }
    this.eof = true;
    this.failAll(new ConnectionClosedError());
  }
}
