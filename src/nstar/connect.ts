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
  return chooseConsoleUrl(undefined, env, socketAt).url;
}

/** Where the console URL came from: `-u`, `$NORTHSTAR_URL`, a console socket found, or upstream's default. */
export type UrlSource = 'option' | 'env' | 'socket' | 'default';

/** The console URL nstar uses and where it came from (for the hint when it is unreachable). */
export function chooseConsoleUrl(
  option: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  socketAt: (path: string) => boolean = isSocket,
): { url: string; source: UrlSource } {
  if (option !== undefined) return { url: option, source: 'option' };
  const fromEnv = env['NORTHSTAR_URL'];
  if (fromEnv) return { url: fromEnv, source: 'env' };
  for (const path of [DEVICE_SOCKET, QUICKSTART_SOCKET]) if (socketAt(path)) return { url: `unix://${path}`, source: 'socket' };
  return { url: DEFAULT_URL, source: 'default' };
}

/**
 * What to check when the console at `url` cannot be reached (`code`: the errno of the
 * connect, or ETIMEOUT): whether the runtime runs, which address was tried and why, and how
 * to give another one.
 */
export function unreachableHint(url: string, source: UrlSource, code: string): string {
  const why = {
    option: 'given with -u',
    env: 'from $NORTHSTAR_URL',
    socket: 'the console socket found there',
    default: `the default: neither ${DEVICE_SOCKET} (a device) nor ${QUICKSTART_SOCKET} (the Quickstart) is a socket`,
  }[source];
  if (code === 'EACCES' || code === 'EPERM') {
    return `hint: ${url} (${why}) is the runtime's console with full permissions, a socket only root may open: run nstar as root (sudo nstar ...)`;
  }
  return (
    `hint: is the runtime running? nstar tried ${url} (${why}); ` +
    'start it (./scripts/quickstart.sh in the checkout), or give its console with -u URL or NORTHSTAR_URL=URL ' +
    `(unix:///path/to/console.sock or tcp://host:port; the Quickstart's is unix://${QUICKSTART_SOCKET})`
  );
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
      reject(new NorthstarError('ECONNECT', `failed to connect to ${url}: ${code}`, { cause: e.code === undefined && inner ? inner : e }));
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
