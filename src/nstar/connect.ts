/** Opening nstar's console connection: `tcp://` or `unix://` only, a fixed 5 s connect limit (as upstream). */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { NorthstarError } from '../common/errors.js';

export const DEFAULT_URL = 'tcp://localhost:4200';
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
