/**
 * The console server (console.md §1, §4-§10): listeners for `tcp://` and `unix://` URLs,
 * container console ends, and one Session per connection. Everything about the wire and the
 * connection lives here; what a request does is the RuntimeHandle's business.
 */
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { chmod, unlink } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import type { Container } from '../common/container.js';
import { NorthstarError } from '../common/errors.js';
import { parseConsoleUrl } from '../common/console-url.js';
import type { ConsolePermission } from '../manifest/console.js';
import { TokenAuthority } from './tokens.js';
import { DEFAULT_CONSOLE_OPTIONS, DEFAULT_MAX_CONNECTIONS, type ConsoleOptions, type Peer, type RuntimeHandle } from './handle.js';
import { Session, type ConsoleLog } from './session.js';
import { permissionSet } from './permissions.js';

/** The Connect deadline of the global console (hard-coded upstream). */
export const CONNECT_TIMEOUT = 10_000;
export const DEFAULT_NOTIFICATION_BUFFER_SIZE = 128;

export type PermissionsInput = 'full' | Iterable<ConsolePermission | string>;

export interface ConsoleServerConfig {
  handle: RuntimeHandle;
  /** A pino logger (or anything with debug/info/warn); no-op by default. */
  logger?: ConsoleLog;
  /** A subscriber lagging by more than this many notifications is disconnected (default 128). */
  notificationBufferSize?: number;
  /** The Connect deadline of the global console in ms (default 10 s). */
  connectTimeout?: number;
  /** Token key and epoch; one per runtime process (default: a new one). */
  tokens?: TokenAuthority;
}

export { parseConsoleUrl, DEFAULT_CONSOLE_PORT, type ConsoleUrl } from '../common/console-url.js';

const noop = (): void => {};
const NOOP_LOG: ConsoleLog = { debug: noop, info: noop, warn: noop };

export interface ContainerConsole {
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>;
  /** Close the connection now. */
  close(): void;
}

export class ConsoleServer {
  readonly tokens: TokenAuthority;
  private readonly handle: RuntimeHandle;
  private readonly log: ConsoleLog;
  private readonly bufferSize: number;
  private readonly connectTimeout: number;
  private readonly servers = new Set<net.Server>();
  private readonly sessions = new Set<Session>();
  private closing = false;

  constructor(config: ConsoleServerConfig) {
    this.handle = config.handle;
    this.log = config.logger ?? NOOP_LOG;
    this.bufferSize = config.notificationBufferSize ?? DEFAULT_NOTIFICATION_BUFFER_SIZE;
    this.connectTimeout = config.connectTimeout ?? CONNECT_TIMEOUT;
    this.tokens = config.tokens ?? new TokenAuthority();
  }

  /** Number of open connections (global and container). */
  get connections(): number {
    return this.sessions.size;
  }

  /**
   * Listen on a console URL with the global console's permissions and options. Resolves with
   * the bound address as a URL (`tcp://127.0.0.1:4200`, `unix:///run/northstar/console`).
   */
  async listen(url: string, permissions: PermissionsInput, options: Partial<ConsoleOptions> = {}): Promise<string> {
    if (this.closing) throw new NorthstarError('ECLOSED', 'console server is closed');
    const target = parseConsoleUrl(url);
    const perms = permissionSet(permissions);
    const opts = { ...DEFAULT_CONSOLE_OPTIONS, ...options };
    // Ours: a bound on the connections of this address, so that no client can take every
    // fd or session from the others; one more is closed at once (logged at most once a second).
    const max = opts.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    let open = 0;
    let refused = 0;
    let loggedAt = -Infinity;
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => {
      if (this.closing) {
        socket.destroy();
        return;
      }
      if (open >= max) {
        socket.destroy();
        refused++;
        if (performance.now() - loggedAt >= 1000) {
          this.log.warn({ url: bound, max_connections: max, refused }, `console connection refused: ${max} connections are open (console.options.max_connections)`);
          loggedAt = performance.now();
          refused = 0;
        }
        return;
      }
      open++;
      const session = this.start(socket, { kind: 'extern' }, perms, opts, opts.connectTimeout ?? this.connectTimeout);
      void session.closed.then(() => open--);
    });
    let bound: string;
    if (target.scheme === 'tcp') {
      // Like upstream: bind only the first resolved address.
      const first = await lookup(target.host, { all: true }).then((a) => a[0]);
      if (!first) throw new NorthstarError('EURL', `console url ${url}: ${target.host} does not resolve`);
      await listenOn(server, { host: first.address, port: target.port });
      const a = server.address() as net.AddressInfo;
      bound = `tcp://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    } else {
      await unlink(target.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      await listenOn(server, { path: target.path });
      // Only root may connect: the socket grants the console's permissions to whoever can.
      await chmod(target.path, 0o600);
      bound = `unix://${target.path}`;
    }
    // Errors after listening (e.g. EMFILE on accept) are logged, never thrown out of the runtime.
    server.on('error', (e: Error) => this.log.warn({ url: bound, err: e.message }, 'console listener error'));
    this.servers.add(server);
    return bound;
  }

  /**
   * Serve a container's console end (a socketpair end, e.g. a child's extra 'pipe' stdio).
   * No Connect deadline; the peer is the container.
   */
  serveContainer(stream: Duplex, container: Container, permissions: PermissionsInput, options: Partial<ConsoleOptions> = {}): ContainerConsole {
    const perms = permissionSet(permissions);
    const opts = { ...DEFAULT_CONSOLE_OPTIONS, ...options };
    if (this.closing) {
      stream.destroy();
      return { closed: Promise.resolve(), close: noop };
    }
    const session = this.start(stream, { kind: 'container', container }, perms, opts, undefined);
    return { closed: session.closed, close: () => session.close() };
  }

  private start(stream: Duplex, peer: Peer, perms: ReadonlySet<ConsolePermission>, opts: ConsoleOptions, connectTimeout: number | undefined): Session {
    const session = new Session({
      stream,
      peer,
      permissions: perms,
      options: opts,
      handle: this.handle,
      tokens: this.tokens,
      log: this.log,
      notificationBufferSize: this.bufferSize,
      connectTimeout,
    });
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
    session.run();
    return session;
  }

  /**
   * Stop listening and close every connection: pending notifications are flushed, then
   * each stream is ended (destroyed after `grace` ms if the peer does not read).
   */
  async close(grace = 1000): Promise<void> {
    this.closing = true;
    const servers = [...this.servers];
    this.servers.clear();
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of [...this.sessions]) s.shutdown(grace);
    await Promise.all([...closed, ...[...this.sessions].map((s) => s.closed)]);
  }
}

function listenOn(server: net.Server, opts: net.ListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(opts, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
