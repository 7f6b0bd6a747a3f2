/**
 * One console connection: handshake, throttle, permission check, FIFO request handling,
 * install streaming, tokens, and notification delivery with a lag limit.
 *
 * Any protocol violation (bad JSON or UTF-8, unknown variant, over-long line, a message that
 * is not a request after the handshake, an oversized or stalled upload) closes this
 * connection silently, as upstream does; nothing is ever thrown out of a session.
 */
import type { Duplex } from 'node:stream';
import { Container } from '../common/container.js';
import type { Name } from '../common/name.js';
import { compareVersions, versionParts, type Version } from '../common/version.js';
import type { ConsolePermission } from '../manifest/console.js';
import { encodeLine } from '../api/codec.js';
import { StreamReader, LineTooLongError, StreamTimeoutError } from '../api/lines.js';
import { parseMessage, ProtocolError } from '../api/codec.js';
import { PROTOCOL_VERSION, requestTag, type ExecRequest, type ExitStatus, type LogEndReason, type LogStream, type LogLine, type Message, type Notification, type Request, type RequestOf, type Response } from '../api/model.js';
import { DEFAULT_NPK_INSTALL_TIMEOUT, type ConsoleOptions, type ExecControl, type Peer, type RuntimeHandle } from './handle.js';
import { isPermitted } from './permissions.js';
import type { TokenAuthority } from './tokens.js';

/** The logging the console needs; a pino logger fits. */
export interface ConsoleLog {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** The identity a global-console peer has in `ident` (upstream: `extern:0.0.0`). */
export const EXTERN_IDENT = new Container('extern' as Name, '0.0.0' as Version);

/** Upload chunks handed to the runtime are at most this big (as upstream). */
const UPLOAD_CHUNK = 1 << 20;

/**
 * Ours (logs): lines of a follow waiting to be written beyond this many bytes end the follow
 * (`log_end` `lagged`): a peer that does not read cannot make the runtime buffer without bound.
 */
const FOLLOW_QUEUE_BYTES = 4 << 20;
/** Lines of a follow are sent in `log` messages of at most this many lines / bytes of text. */
const LOG_MESSAGE_LINES = 256;
const LOG_MESSAGE_BYTES = 64 << 10;

/** This connection's follow (ours, `logs` with `follow`). */
interface Follow {
  container: Container;
  stop: () => void;
  /** The `log` message lines are added to while it is the last one queued. */
  open: { lines: LogLine[]; bytes: number } | undefined;
  ended: boolean;
}

/**
 * Ours (exec): output of the exec waiting to be written beyond this many bytes pauses the
 * command's output (it blocks on its full pipe) until the peer has read down to the low mark.
 */
const EXEC_QUEUE_HIGH = 1 << 20;
const EXEC_QUEUE_LOW = 256 << 10;
/** Exec messages kept while the command is being started (beyond: the connection closes). */
const EXEC_EARLY_MESSAGES = 1024;

/** This connection's exec (ours). */
interface Exec {
  container: Container;
  control: ExecControl | undefined;
  /** Output bytes queued in `pending`. */
  queued: number;
  paused: boolean;
  /** Messages from the peer that arrived before the command ran, applied once it does. */
  early: Message[];
}

/** Why a session ends early: logged at debug level, never sent. `graceful`: end, don't reset. */
class Close extends Error {
  constructor(
    message: string,
    readonly graceful = false,
  ) {
    super(message);
  }
}

interface Upload {
  remaining: number;
  /** performance.now() by which the whole upload must have arrived. */
  deadline: number;
}

export interface SessionConfig {
  stream: Duplex;
  peer: Peer;
  permissions: ReadonlySet<ConsolePermission>;
  options: ConsoleOptions;
  handle: RuntimeHandle;
  tokens: TokenAuthority;
  log: ConsoleLog;
  notificationBufferSize: number;
  /** Connect deadline in ms; undefined for none (container consoles). */
  connectTimeout: number | undefined;
}

/** Whether a client announcing `client` may talk to this server: semver `>= MAJOR.MINOR.0`. */
export function versionAccepted(client: Version, server: Version = PROTOCOL_VERSION): boolean {
  const s = versionParts(server);
  return compareVersions(client, `${s.major}.${s.minor}.0` as Version) >= 0;
}

export class Session {
  readonly closed: Promise<void>;
  private readonly stream: Duplex;
  private readonly reader: StreamReader;
  private readonly cfg: SessionConfig;
  private readonly log: ConsoleLog;
  /** Notifications and (ours) follow messages, in the order they happened. */
  private readonly pending: Message[] = [];
  /** Notifications among `pending`. */
  private pendingNotifications = 0;
  private follow: Follow | undefined;
  private exec: Exec | undefined;
  /** Text bytes of follow lines queued in `pending`. */
  private followQueued = 0;
  private unsubscribe: (() => void) | undefined;
  private acked = false;
  private busy = false;
  private done = false;
  private readonly stamps: number[] = [];
  private resolveClosed!: () => void;

  constructor(cfg: SessionConfig) {
    this.cfg = cfg;
    this.stream = cfg.stream;
    const who = cfg.peer.kind === 'extern' ? 'extern' : cfg.peer.container.toString();
    this.log = { debug: (o, m) => cfg.log.debug({ peer: who, ...o }, m), info: (o, m) => cfg.log.info({ peer: who, ...o }, m), warn: (o, m) => cfg.log.warn({ peer: who, ...o }, m) };
    this.reader = new StreamReader(cfg.stream, cfg.options.maxRequestSize);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.stream.on('close', () => this.finish());
    this.stream.on('drain', () => this.flush());
    // Subscribed at accept (upstream's broadcast receiver), so events during the handshake
    // are delivered right after the ack; dropped if the client does not subscribe.
    this.unsubscribe = cfg.handle.subscribe((n) => this.notify(n));
  }

  run(): void {
    this.main().then(
      () => this.end(),
      (e: unknown) => {
        if (e instanceof Close || e instanceof ProtocolError || e instanceof LineTooLongError || e instanceof StreamTimeoutError || this.done) {
          this.log.debug({ reason: e instanceof Error ? e.message : String(e) }, 'console connection closed');
          if (e instanceof Close && e.graceful) {
            this.end();
            return;
          }
        } else {
          this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'console connection failed');
        }
        this.destroy();
      },
    );
  }

  /** Close now (runtime side, e.g. the container exited). */
  close(): void {
    this.destroy();
  }

  /** Close at runtime shutdown: flush notifications, end the stream, destroy after `grace` ms. */
  shutdown(grace: number): void {
    if (this.done) return;
    this.busy = false;
    this.flush();
    this.dropSubscription();
    // Read no further requests: the main loop sees EOF.
    this.reader.dispose();
    this.stream.end();
    setTimeout(() => this.destroy(), grace).unref();
  }

  // -------------------------------------------------------------------------------------

  private async main(): Promise<void> {
    const { connectTimeout } = this.cfg;
    let timer: NodeJS.Timeout | undefined;
    if (connectTimeout !== undefined) {
      timer = setTimeout(() => {
        this.log.debug({}, 'no connect in time');
        this.destroy();
      }, connectTimeout);
    }
    try {
      const first = await this.next();
      if (first === null) return;
      if (!('connect' in first)) throw new Close('first message is not connect');
      const { version, subscribe_notifications } = first.connect;
      if (!versionAccepted(version)) {
        this.write({ connect_nack: { invalid_protocol_version: { version: PROTOCOL_VERSION } } });
        throw new Close(`client version ${version} is too old`, true);
      }
      if (subscribe_notifications && !this.cfg.permissions.has('notifications')) {
        this.write({ connect_nack: 'permission_denied' });
        throw new Close('notifications not permitted', true);
      }
      if (!subscribe_notifications) this.dropSubscription();
      this.write({ connect_ack: null });
      this.acked = true;
      this.log.debug({ version, subscribe: subscribe_notifications }, 'console connected');
    } finally {
      if (timer) clearTimeout(timer);
    }
    this.flush();

    for (;;) {
      await this.writable();
      const msg = await this.next();
      if (msg === null) return;
      if ('exec_input' in msg || 'exec_resize' in msg || 'exec_signal' in msg) {
        this.execMessage(msg);
        continue;
      }
      if (!('request' in msg)) throw new Close(`unexpected ${Object.keys(msg)[0]} message after the handshake`);
      this.busy = true;
      await this.serve(msg.request);
      this.busy = false;
      this.flush();
    }
  }

  /** The next message, throttled; null at EOF. */
  private async next(): Promise<Message | null> {
    await this.throttle();
    const line = await this.reader.readLine();
    if (line === null || this.done) return null;
    const msg = parseMessage(line);
    this.stamps.push(performance.now());
    return msg;
  }

  /** Delay (never reject) so that at most max_requests_per_sec messages are read in any 1 s window. */
  private async throttle(): Promise<void> {
    const max = this.cfg.options.maxRequestsPerSec;
    while (this.stamps.length > max) this.stamps.shift();
    if (this.stamps.length < max) return;
    const wait = this.stamps[0]! + 1000 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.stamps.shift();
  }

  /**
   * Wait while the peer is not reading our responses (bounded write buffer). A peer that
   * reads nothing for the stream timeout is closed: a client that never reads must not hold
   * a connection (and its buffered responses) forever.
   */
  private async writable(): Promise<void> {
    const limit = this.cfg.options.npkStreamTimeout;
    while (!this.done && this.stream.writableNeedDrain) {
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => done(false), limit);
        const on = (): void => done(true);
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          this.stream.off('drain', on);
          this.stream.off('close', on);
          resolve(ok);
        };
        this.stream.on('drain', on);
        this.stream.on('close', on);
      });
      if (!drained) throw new Close(`the peer read nothing for ${limit} ms`);
    }
    if (this.done) throw new Close('closed');
  }

  private async serve(req: Request): Promise<void> {
    const { peer, options } = this.cfg;
    const tag = requestTag(req);
    if (!isPermitted(req, this.cfg.permissions)) {
      this.respond({ permission_denied: req });
      if (typeof req === 'object' && 'install' in req) {
        // Our fix (spec README 13): never parse the NPK bytes as JSON.
        const { size } = req.install;
        if (size > options.maxNpkInstallSize) throw new Close('denied install over the size limit');
        await this.drain(this.upload(size));
      }
      return;
    }
    const self = peer.kind === 'extern' ? 'extern' : peer.container.name;
    switch (tag) {
      case 'ident':
        this.respond({ ident: peer.kind === 'extern' ? EXTERN_IDENT : peer.container });
        return;
      case 'token_create': {
        const { target, shared } = (req as Extract<Request, { token_create: unknown }>).token_create;
        this.respond({ token: this.cfg.tokens.create(self, target, shared) });
        return;
      }
      case 'token_verify': {
        const { token, user, shared } = (req as Extract<Request, { token_verify: unknown }>).token_verify;
        this.respond({ token_verification: this.cfg.tokens.verify(token, user, self, shared, options.tokenValidity) });
        return;
      }
      case 'logs':
        this.serveLogs((req as RequestOf<'logs'>).logs);
        return;
      case 'exec':
        await this.serveExec((req as RequestOf<'exec'>).exec);
        return;
      case 'install': {
        const { repository, size } = (req as Extract<Request, { install: unknown }>).install;
        if (size > options.maxNpkInstallSize) throw new Close(`install of ${size} bytes exceeds the limit of ${options.maxNpkInstallSize}`);
        const upload = this.upload(size);
        const response = await this.cfg.handle.install(repository, size, this.payload(upload), peer);
        await this.drain(upload);
        this.respond(response);
        return;
      }
      default:
        this.respond(await this.cfg.handle.request(req, peer));
    }
  }

  // --- exec (ours) ----------------------------------------------------------------------

  /**
   * Run a command in a container for this connection: answered once it runs; its output
   * (`exec_output`) and end (`exec_exit`) follow, queued like notifications. One at a time.
   */
  private async serveExec(req: ExecRequest): Promise<void> {
    const { handle, peer } = this.cfg;
    const refuse = (cause: string): void => this.respond({ exec: { error: { container: req.container, error: { invalid_arguments: { cause } } } } });
    if (!handle.exec) return refuse('exec is not served by this runtime');
    if (this.exec) return refuse(`an exec in ${this.exec.container} is running on this connection; use another connection`);
    const x: Exec = { container: req.container, control: undefined, queued: 0, paused: false, early: [] };
    this.exec = x;
    const { response, control } = await handle.exec(req, peer, {
      output: (stream, data) => this.execOutput(x, stream, data),
      exit: (status) => this.execExit(x, status),
    });
    if (!control) {
      if (this.exec === x) this.exec = undefined;
      this.respond(response);
      return;
    }
    if (this.done) {
      control.kill();
      return;
    }
    x.control = control;
    this.respond(response);
    for (const m of x.early.splice(0)) this.execMessage(m);
  }

  /** Input, a resize or a signal for this connection's exec; after its exit they are dropped. */
  private execMessage(m: Message): void {
    const x = this.exec;
    if (!x) return;
    const c = x.control;
    if (!c) {
      // A peer that floods input before its command runs is not buffered without bound.
      if (x.early.length >= EXEC_EARLY_MESSAGES) throw new Close(`more than ${EXEC_EARLY_MESSAGES} exec messages before the command ran`);
      x.early.push(m);
      return;
    }
    if ('exec_input' in m) c.input(m.exec_input.data, m.exec_input.eof);
    else if ('exec_resize' in m) c.resize(m.exec_resize.rows, m.exec_resize.cols);
    else if ('exec_signal' in m) c.signal(m.exec_signal.signal);
  }

  private execOutput(x: Exec, stream: LogStream, data: Buffer): void {
    if (this.done) return;
    this.pending.push({ exec_output: { container: x.container, stream, data } });
    x.queued += data.length;
    if (!x.paused && x.queued > EXEC_QUEUE_HIGH) {
      x.paused = true;
      x.control?.pause();
    }
    this.flush();
  }

  private execExit(x: Exec, status: ExitStatus): void {
    if (this.exec === x) this.exec = undefined;
    if (this.done) return;
    this.pending.push({ exec_exit: { container: x.container, status } });
    this.flush();
  }

  // --- logs (ours) ----------------------------------------------------------------------

  /**
   * A `logs` request ends this connection's follow (its `log_end` `stopped` is written
   * before the answer), then is answered; with `follow`, the lines that come later are queued
   * as `log` messages after the answer, until the runtime ends the follow.
   */
  private serveLogs(req: RequestOf<'logs'>['logs']): void {
    const current = this.follow;
    if (current) {
      this.stopFollow(current);
      this.followEnd(current, 'stopped');
    }
    // Whatever an earlier follow still has queued goes out before this answer.
    this.writeFollowMessages();
    const handle = this.cfg.handle;
    if (!handle.logs) {
      this.respond({ logs: { error: { container: req.container, error: { unexpected: { error: 'logs are not served by this runtime' } } } } });
      return;
    }
    const f: Follow | undefined = req.follow ? { container: req.container, stop: () => undefined, open: undefined, ended: false } : undefined;
    if (f) this.follow = f;
    const { response, stop } = handle.logs(req, this.cfg.peer, f && { line: (l) => this.followLine(f, l), end: (reason) => this.followEnd(f, reason) });
    this.respond(response);
    if (!f) return;
    f.stop = stop;
    // An error answer (no such container, logs off) has no follow: end it so the client knows.
    if (typeof response === 'object' && 'logs' in response && 'error' in response.logs) {
      this.stopFollow(f);
      this.followEnd(f, 'not_running');
    }
  }

  private followLine(f: Follow, l: LogLine): void {
    if (f.ended || this.done) return;
    const bytes = l.line.length;
    this.followQueued += bytes;
    if (this.followQueued > FOLLOW_QUEUE_BYTES) {
      // The peer does not read: its queued lines go, the follow ends.
      this.log.debug({ limit: FOLLOW_QUEUE_BYTES }, 'logs follower lagged');
      this.stopFollow(f);
      const kept = this.pending.filter((m) => !('log' in m));
      this.pending.length = 0;
      this.pending.push(...kept);
      this.followQueued = 0;
      this.followEnd(f, 'lagged');
      return;
    }
    const last = this.pending[this.pending.length - 1];
    if (f.open && last && 'log' in last && last.log.lines === f.open.lines && f.open.lines.length < LOG_MESSAGE_LINES && f.open.bytes + bytes <= LOG_MESSAGE_BYTES) {
      f.open.lines.push(l);
      f.open.bytes += bytes;
    } else {
      f.open = { lines: [l], bytes };
      this.pending.push({ log: { container: f.container, lines: f.open.lines } });
    }
    this.flush();
  }

  /** Our side ends the follow: no more lines from the runtime. */
  private stopFollow(f: Follow): void {
    if (f.ended) return;
    f.stop();
  }

  /** The follow ends: `log_end` after its queued lines. */
  private followEnd(f: Follow, reason: LogEndReason): void {
    if (f.ended) return;
    f.ended = true;
    f.open = undefined;
    if (this.follow === f) this.follow = undefined;
    this.pending.push({ log_end: { container: f.container, reason } });
    this.flush();
  }

  /** Write the queued follow messages now, in order (notifications stay queued). */
  private writeFollowMessages(): void {
    const kept: Message[] = [];
    for (const m of this.pending) {
      if ('notification' in m) kept.push(m);
      else this.writeQueued(m);
    }
    this.pending.length = 0;
    this.pending.push(...kept);
  }

  /** An upload of `size` bytes, with the deadline of the whole upload (ours: npk_install_timeout). */
  private upload(size: number): Upload {
    const limit = this.cfg.options.npkInstallTimeout ?? DEFAULT_NPK_INSTALL_TIMEOUT;
    return { remaining: size, deadline: limit > 0 ? performance.now() + limit : Infinity };
  }

  /** The upload: buffered bytes first, then socket reads, each within the stream timeout. */
  private async *payload(upload: Upload): AsyncGenerator<Buffer> {
    while (upload.remaining > 0) {
      const chunk = await this.chunk(upload);
      if (chunk === null) return;
      yield chunk;
    }
  }

  private async chunk(upload: Upload): Promise<Buffer | null> {
    let chunk: Buffer | null;
    const left = upload.deadline - performance.now();
    try {
      // A client that trickles bytes keeps each read alive; the deadline ends the upload.
      if (left <= 0) throw new Close('install upload deadline passed');
      chunk = await this.reader.readBytes(Math.min(upload.remaining, UPLOAD_CHUNK), Math.min(this.cfg.options.npkStreamTimeout, Math.ceil(left)));
    } catch (e) {
      // A stall closes the connection at once, whatever the runtime does with the error.
      const late = performance.now() >= upload.deadline;
      const reason = late ? `the upload did not complete within npk_install_timeout (${upload.remaining} bytes missing)` : e instanceof Error ? e.message : String(e);
      this.log.warn({ reason, missing: upload.remaining }, late ? 'install upload too slow: connection closed' : 'install upload stalled: connection closed');
      this.destroy();
      throw e;
    }
    if (chunk !== null) upload.remaining -= chunk.length;
    return chunk;
  }

  /** Consume what is left of an upload (exactly `size` bytes are always drained). */
  private async drain(upload: Upload): Promise<void> {
    while (upload.remaining > 0 && !this.done) {
      if ((await this.chunk(upload)) === null) return;
    }
    if (this.done) throw new Close('closed during upload');
  }

  // --- output ----------------------------------------------------------------------------

  private write(m: Message): void {
    if (this.done || this.stream.destroyed || this.stream.writableEnded) return;
    this.stream.write(encodeLine(m));
  }

  private respond(r: Response): void {
    this.write({ response: r });
  }

  private notify(n: Notification): void {
    if (this.done) return;
    this.pending.push({ notification: n });
    this.pendingNotifications += 1;
    if (this.pendingNotifications > this.cfg.notificationBufferSize) {
      this.log.debug({ limit: this.cfg.notificationBufferSize }, 'notification subscriber lagged');
      this.destroy();
      return;
    }
    this.flush();
  }

  /** Write pending notifications (and follow messages) while not handling a request and the peer keeps reading. */
  private flush(): void {
    if (!this.acked || this.busy || this.done) return;
    while (this.pending.length > 0 && !this.stream.writableNeedDrain) this.writeQueued(this.pending.shift()!);
  }

  /** Write one message taken from `pending`, keeping the counts of what is queued. */
  private writeQueued(m: Message): void {
    if ('notification' in m) this.pendingNotifications -= 1;
    else if ('exec_output' in m) this.execWritten(m.exec_output.data.length);
    else if ('log' in m) {
      if (this.follow?.open?.lines === m.log.lines) this.follow.open = undefined;
      this.followQueued -= m.log.lines.reduce((n, l) => n + l.line.length, 0);
    }
    this.write(m);
  }

  /** Output of the exec was written: resume the command below the low mark. */
  private execWritten(bytes: number): void {
    const x = this.exec;
    if (!x) return;
    x.queued -= bytes;
    if (x.paused && x.queued < EXEC_QUEUE_LOW) {
      x.paused = false;
      x.control?.resume();
    }
  }

  private dropSubscription(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const follows = this.pending.filter((m) => !('notification' in m));
    // (the follow, ours, is not a subscription: its messages stay)
    this.pending.length = 0;
    this.pending.push(...follows);
    this.pendingNotifications = 0;
  }

  /** The connection ends: its follow with it (nothing more is sent). */
  private dropFollow(): void {
    const f = this.follow;
    this.follow = undefined;
    if (f && !f.ended) {
      f.ended = true;
      f.stop();
    }
  }

  /** Clean end at EOF: everything was answered; end our side. */
  private end(): void {
    if (this.done) return;
    this.dropSubscription();
    this.stream.end();
    // A peer that half-closed and never reads is cut after a short while.
    setTimeout(() => this.destroy(), 5000).unref();
    if (this.stream.destroyed) this.finish();
  }

  private destroy(): void {
    if (!this.stream.destroyed) this.stream.destroy();
    this.finish();
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.dropSubscription();
    this.dropFollow();
    // The exec ends with its connection.
    this.exec?.control?.kill();
    this.exec = undefined;
    this.pending.length = 0;
    this.followQueued = 0;
    this.reader.dispose();
    this.resolveClosed();
  }
}
