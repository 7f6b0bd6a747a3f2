/**
 * Test helpers: a fake RuntimeHandle that records what the console hands it, and a raw
 * socket client that speaks bytes, for the wire-level tests.
 */
import net from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Container } from '../../src/common/container.js';
import type { Notification, Request, Response } from '../../src/api/model.js';
import { StreamReader } from '../../src/api/lines.js';
import type { ConsoleOptions, Peer, RuntimeHandle } from '../../src/console/handle.js';
import { ConsoleServer, type ConsoleServerConfig, type PermissionsInput } from '../../src/console/server.js';
import { tempDir } from '../helpers/tmp.js';

export const HELLO = Container.parse('hello-world:0.0.1');

export interface InstallCall {
  repository: string;
  size: number;
  bytes: Buffer;
  peer: Peer;
  /** The payload iterator threw (stall). */
  failed?: Error;
}

/** A RuntimeHandle that answers from `reply` and records every call. */
export class FakeHandle implements RuntimeHandle {
  readonly requests: { req: Request; peer: Peer }[] = [];
  readonly installs: InstallCall[] = [];
  private readonly listeners = new Set<(n: Notification) => void>();
  /** Answer a request; default: a plausible response per variant. */
  reply: (req: Request, peer: Peer) => Response | Promise<Response> = defaultReply;
  /** Read at most this many payload bytes before answering (default all). */
  installReadLimit = Infinity;
  installReply: (call: InstallCall) => Response = (c) =>
    c.bytes.length === c.size ? { install: { ok: { container: HELLO } } } : { install: { error: { error: { unexpected: { error: 'failed to read npk' } } } } };

  async request(req: Request, peer: Peer): Promise<Response> {
    this.requests.push({ req, peer });
    return this.reply(req, peer);
  }

  async install(repository: string, size: number, payload: AsyncIterable<Buffer>, peer: Peer): Promise<Response> {
    const call: InstallCall = { repository, size, bytes: Buffer.alloc(0), peer };
    this.installs.push(call);
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const chunk of payload) {
        parts.push(chunk);
        n += chunk.length;
        if (n >= this.installReadLimit) break;
      }
    } catch (e) {
      call.failed = e as Error;
    }
    call.bytes = Buffer.concat(parts);
    return this.installReply(call);
  }

  subscribe(listener: (n: Notification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  emit(n: Notification): void {
    for (const l of [...this.listeners]) l(n);
  }
}

function defaultReply(req: Request): Response {
  if (req === 'list') return { list: [HELLO] };
  if (req === 'repositories') return { repositories: ['default', 'memory'] };
  if (req === 'shutdown') return 'shutdown';
  if (req === 'ident') throw new Error('ident must be answered by the console');
  if ('start' in req) return { start: { ok: { container: req.start.container } } };
  if ('kill' in req) return { kill: { ok: { container: req.kill.container } } };
  if ('uninstall' in req) return { uninstall: { ok: { container: req.uninstall.container } } };
  if ('mount' in req) return { mount: req.mount.containers.map((c) => ({ ok: { container: c } })) };
  if ('umount' in req) return { umount: req.umount.containers.map((c) => ({ ok: { container: c } })) };
  if ('inspect' in req) return { inspect: { error: { container: req.inspect.container, error: { invalid_container: { container: req.inspect.container } } } } };
  throw new Error(`unexpected request ${JSON.stringify(req)}`);
}

export interface Harness {
  server: ConsoleServer;
  handle: FakeHandle;
  /** The bound URL. */
  url: string;
  port: number;
}

/** A console server with a fake handle listening on 127.0.0.1 (port 0) or a unix socket; closed after the test. */
export async function startServer(
  t: TestContext,
  opts: { permissions?: PermissionsInput; options?: Partial<ConsoleOptions>; unix?: boolean; config?: Partial<ConsoleServerConfig> } = {},
): Promise<Harness> {
  const handle = new FakeHandle();
  const server = new ConsoleServer({ handle, ...opts.config });
  const target = opts.unix ? `unix://${join(tempDir(t, 'ns-console-'), 'console.sock')}` : 'tcp://127.0.0.1:0';
  const url = await server.listen(target, opts.permissions ?? 'full', opts.options ?? {});
  t.after(() => server.close(100));
  const port = url.startsWith('tcp://') ? Number(url.slice(url.lastIndexOf(':') + 1)) : 0;
  return { server, handle, url, port };
}

/** A raw byte-level client. */
export class Raw {
  readonly socket: net.Socket;
  readonly reader: StreamReader;
  readonly closed: Promise<void>;
  private constructor(socket: net.Socket) {
    this.socket = socket;
    this.reader = new StreamReader(socket);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(t: TestContext, url: string): Promise<Raw> {
    const socket = url.startsWith('unix://')
      ? net.connect({ path: url.slice('unix://'.length) })
      : net.connect({ host: '127.0.0.1', port: Number(url.slice(url.lastIndexOf(':') + 1)) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    const raw = new Raw(socket);
    t.after(() => socket.destroy());
    return raw;
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next line as text, or null at EOF; fails the test after `ms` (a hang guard). */
  async line(ms = 10_000): Promise<string | null> {
    const b = await this.reader.readLine(ms);
    return b === null ? null : b.toString('utf8');
  }

  /** Handshake: connect (optionally subscribing) and expect the ack. */
  async connect(subscribe = false): Promise<void> {
    this.send(`{"connect":{"version":"0.9.3","subscribe_notifications":${subscribe}}}\n`);
    const l = await this.line();
    if (l !== '{"connect_ack":null}') throw new Error(`expected connect_ack, got ${l}`);
  }

  /** Send one line and return the answer line. */
  async ask(line: string): Promise<string | null> {
    this.send(line + '\n');
    return this.line();
  }

  /** Resolves true once the server closed the connection (EOF and nothing else). */
  async eof(ms = 10_000): Promise<boolean> {
    for (;;) {
      try {
        const b = await this.reader.readBytes(1 << 20, ms);
        if (b === null) return true;
      } catch (e) {
        // A close with unread data is a reset: closed all the same.
        if ((e as NodeJS.ErrnoException).code === 'ECONNRESET' || (e as NodeJS.ErrnoException).code === 'EPIPE') return true;
        throw e;
      }
    }
  }
}
