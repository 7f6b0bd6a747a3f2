/**
 * Console URLs, as upstream writes them: `tcp://host[:port]` (port 4200 when left out) or
 * `unix:///abs/path` (only the path is used). The one parser for the runtime's config, the
 * console server, the client and nstar.
 */
import { NorthstarError } from './errors.js';

/** Upstream's console port. */
export const DEFAULT_CONSOLE_PORT = 4200;
/** Upstream nstar's default console. */
export const DEFAULT_CONSOLE_URL = `tcp://localhost:${DEFAULT_CONSOLE_PORT}`;

/** A parsed console URL. */
export type ConsoleUrl = { scheme: 'tcp'; host: string; port: number } | { scheme: 'unix'; path: string };

/** What is wrong with a console URL: not a URL, another scheme, no host, or no absolute socket path. */
export type ConsoleUrlProblem = 'syntax' | 'scheme' | 'host' | 'path';

export class ConsoleUrlError extends NorthstarError {
  constructor(
    readonly url: string,
    readonly problem: ConsoleUrlProblem,
    message: string,
    /** The scheme found (without `:`), once the text is a URL. */
    readonly scheme?: string,
  ) {
    super('EURL', message);
    this.name = 'ConsoleUrlError';
  }
}

/**
 * Parse a console URL. `what` names it in errors (`invalid console url "x": …`). Throws
 * ConsoleUrlError (code EURL).
 */
export function parseConsoleUrl(text: string, what = 'console url'): ConsoleUrl {
  let u: URL | undefined;
  const fail = (problem: ConsoleUrlProblem, why?: string): never => {
    throw new ConsoleUrlError(text, problem, `invalid ${what} ${JSON.stringify(text)}${why === undefined ? '' : `: ${why}`}`, u?.protocol.replace(/:$/, ''));
  };
  try {
    u = new URL(text);
  } catch {
    return fail('syntax');
  }
  if (u.protocol === 'tcp:') {
    const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host === '') fail('host', 'no host');
    return { scheme: 'tcp', host, port: u.port === '' ? DEFAULT_CONSOLE_PORT : Number(u.port) };
  }
  if (u.protocol === 'unix:') {
    let path = '';
    try {
      path = decodeURIComponent(u.pathname);
    } catch {
      fail('path', 'the socket path has an invalid percent escape');
    }
    if (path === '' || path === '/') fail('path', 'no socket path');
    if (!path.startsWith('/')) fail('path', 'the socket path must be absolute (unix:///path)');
    return { scheme: 'unix', path };
  }
  return fail('scheme', 'the scheme must be tcp or unix');
}

/** The options of `net.connect` for a console URL. */
export function connectOptions(u: ConsoleUrl): { host: string; port: number } | { path: string } {
  return u.scheme === 'tcp' ? { host: u.host, port: u.port } : { path: u.path };
}
