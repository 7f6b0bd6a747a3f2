/** Opening nstar's console connection: `tcp://` or `unix://` only, a fixed 5 s connect limit (as upstream). */
import net from 'node:net';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Duplex } from 'node:stream';
import { NorthstarError } from '../common/errors.js';
import { connectOptions, parseConsoleUrl as parseUrl, DEFAULT_CONSOLE_URL } from '../common/console-url.js';

/** Upstream's default console address. */
export const DEFAULT_URL = DEFAULT_CONSOLE_URL;
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
 * root can open); else upstream's `tcp://localhost:4200` (DEFAULT_CONSOLE_URL).
 */
export function defaultConsoleUrl(env: NodeJS.ProcessEnv = process.env, socketAt: (path: string) => boolean = isSocket): string {
  const fromEnv = env['NORTHSTAR_URL'];
  if (fromEnv) return fromEnv;
  for (const path of [DEVICE_SOCKET, QUICKSTART_SOCKET]) if (socketAt(path)) return `unix://${path}`;
  return DEFAULT_URL;
}
/** Upstream's fixed limit for the socket connect; `-t` limits the handshake only. */
export const CONNECT_TIMEOUT_MS = 5000;

export type Target = ReturnType<typeof connectOptions>;

/** Check a console URL (common/console-url.ts): tcp (default port 4200) or unix; the connect options. */
export function parseConsoleUrl(url: string): Target {
  return connectOptions(parseUrl(url, 'url'));
}

/** Connect the socket (not the handshake). */
export function openConsole(url: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<Duplex> {
  const target = parseConsoleUrl(url);
  return new Promise<Duplex>((resolve, reject) => {
    const socket = net.connect(target);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new NorthstarError('ETIMEOUT', `failed to connect to ${url}: timed out after ${timeoutMs} ms`));
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
