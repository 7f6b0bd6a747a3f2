/** Opening nstar's console connection: `tcp://` or `unix://` only, a fixed 5 s connect limit (as upstream). */
import net from 'node:net';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { NorthstarError } from '../common/errors.js';

/** Upstream's default console address. */
export const DEFAULT_URL = 'tcp://localhost:4200';
/** The console socket of a device installation (packaging/northstar.toml). */
export const DEVICE_SOCKET = '/run/northstar/console';
/** The console socket of the Quickstart's runtime in this checkout (scripts/quickstart.sh). */
export const QUICKSTART_SOCKET = fileURLToPath(new URL('../../../target/northstar/console.sock', import.meta.url));

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/**
 * The console nstar uses when no `--url` is given: `$NORTHSTAR_URL`; else the device's unix
 * socket, else the Quickstart's (the consoles with full permissions are unix sockets only
 * root can open); else upstream's `tcp://localhost:4200`.
 */
export function defaultConsoleUrl(env: NodeJS.ProcessEnv = process.env, socketAt: (path: string) => boolean = isSocket): string {
  const fromEnv = env['NORTHSTAR_URL'];
  if (fromEnv) return fromEnv;
  for (const path of [DEVICE_SOCKET, QUICKSTART_SOCKET]) if (socketAt(path)) return `unix://${path}`;
  return DEFAULT_URL;
}
/** Upstream's fixed limit for the socket connect; `-t` limits the handshake only. */
export const CONNECT_TIMEOUT_MS = 5000;

export type Target = { host: string; port: number } | { path: string };

/** Check a console URL: a parseable URL with the scheme tcp (default port 4200) or unix. */
export function parseConsoleUrl(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new NorthstarError('EURL', `invalid url ${JSON.stringify(url)}`);
  }
  if (u.protocol === 'tcp:') {
    if (u.hostname === '') throw new NorthstarError('EURL', `invalid url ${JSON.stringify(url)}: no host`);
    return { host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port === '' ? 4200 : Number(u.port) };
  }
  if (u.protocol === 'unix:') {
    const path = decodeURIComponent(u.pathname);
    if (path === '' || path === '/') throw new NorthstarError('EURL', `invalid url ${JSON.stringify(url)}: no socket path`);
    return { path };
  }
  throw new NorthstarError('EURL', `invalid url ${JSON.stringify(url)}: the scheme must be tcp or unix`);
}

/** Connect the socket (not the handshake). */
export function openConsole(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Duplex> {
  const target = parseConsoleUrl(url);
  return new Promise<Duplex>((resolve, reject) => {
    const socket = net.connect(target);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NorthstarError('ETIMEDOUT', `failed to connect to ${url}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    const onError = (e: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      // A tcp connect that tried several addresses fails with an AggregateError.
      const inner = e instanceof AggregateError ? (e.errors[0] as NodeJS.ErrnoException | undefined) : undefined;
      const code = e.code ?? inner?.code ?? e.message;
      reject(new NorthstarError('ECONNECT', `failed to connect to ${url}: ${code}`, { cause: e }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
