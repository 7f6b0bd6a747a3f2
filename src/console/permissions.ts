/**
 * Which permission each request needs (console.md §8). One table, checked by the compiler:
 * adding a request variant without a permission does not build.
 */
import type { Request, RequestTag } from '../api/model.js';
import { CONSOLE_PERMISSIONS, type ConsolePermission } from '../manifest/console.js';
import { NorthstarError } from '../common/errors.js';

export const REQUEST_PERMISSION = {
  inspect: 'inspect',
  ident: 'ident',
  install: 'install',
  kill: 'kill',
  list: 'list',
  mount: 'mount',
  repositories: 'repositories',
  shutdown: 'shutdown',
  start: 'start',
  token_create: 'token_create',
  token_verify: 'token_verification',
  umount: 'umount',
  uninstall: 'uninstall',
  // Ours: a restart stops the container, so it needs `kill`, and starts it, so also `start`
  // (checked in isPermitted).
  restart: 'kill',
  // Ours: reading a container's output.
  logs: 'logs',
  // Ours: a command inside a running container.
  exec: 'exec',
} as const satisfies Record<RequestTag, ConsolePermission>;

/** `"full"`, a list, or a set of permissions, as a set. Unknown names throw. */
export function permissionSet(p: 'full' | Iterable<string>): ReadonlySet<ConsolePermission> {
  if (p === 'full') return new Set(CONSOLE_PERMISSIONS);
  if (typeof p === 'string') throw new NorthstarError('EPERMISSIONS', `invalid permissions ${JSON.stringify(p)}: expected "full" or a list`);
  const out = new Set<ConsolePermission>();
  for (const x of p) {
    if (!(CONSOLE_PERMISSIONS as readonly string[]).includes(x)) {
      throw new NorthstarError('EPERMISSIONS', `unknown console permission ${JSON.stringify(x)}`);
    }
    out.add(x as ConsolePermission);
  }
  return out;
}

/**
 * Whether `perms` allow `req`. `start` with no init, no arguments and no environment needs
 * `start`; any other start needs `start_command` (which `start` does not imply, nor the reverse).
 */
export function isPermitted(req: Request, perms: ReadonlySet<ConsolePermission>): boolean {
  if (typeof req === 'string') return perms.has(REQUEST_PERMISSION[req]);
  if ('start' in req) {
    const s = req.start;
    const plain = s.init === null && s.arguments.length === 0 && Object.keys(s.environment).length === 0;
    return perms.has(plain ? 'start' : 'start_command');
  }
  if ('restart' in req) return perms.has('kill') && perms.has('start');
  const tag = Object.keys(req)[0] as RequestTag;
  return perms.has(REQUEST_PERMISSION[tag]);
}
