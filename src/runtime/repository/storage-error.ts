import { getSystemErrorMap } from 'node:util';
import { NorthstarError, SystemError, errorMessage, isSystemError } from '../../common/errors.js';

/** `no space left on device (ENOSPC)` for a system error, or undefined for any other error. */
export function errnoText(e: unknown): string | undefined {
  const err = e as NodeJS.ErrnoException | undefined;
  if (!(e instanceof Error) || typeof err?.code !== 'string' || typeof err.errno !== 'number') return undefined;
  const desc = getSystemErrorMap().get(err.errno)?.[1];
  return desc ? `${desc} (${err.code})` : err.code;
}

/** `mkdir /x: no space left on device (ENOSPC)` for a system error, the message of any other. */
export function fsErrorText(e: unknown): string {
  const text = errnoText(e);
  if (text === undefined) return errorMessage(e);
  const err = e as NodeJS.ErrnoException;
  return err.syscall ? `${err.syscall}${err.path ? ` ${err.path}` : ''}: ${text}` : text;
}

/** What to do about a storage error, by its code. */
function advice(code: string | undefined, dir: string): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return `: free space (blocks and inodes) on the file system of ${dir}, or install into another repository`;
    case 'EMFILE':
    case 'ENFILE':
      return ': the runtime has too many files open; raise its open file limit (RLIMIT_NOFILE) or retry when fewer operations run';
    case 'EROFS':
      return `: ${dir} is on a read-only file system`;
    default:
      return '';
  }
}

/**
 * An error of the repository's storage (creating, writing, syncing, renaming a package
 * file) as a clear message: the repository, the cause in words, the file and its
 * directory, and what to do, e.g. `repository small: no space left on device (ENOSPC)
 * while writing /repo/.tmp-….npk: free space (blocks and inodes) on the file system of
 * /repo, or install into another repository`. Errors that are not system errors (a
 * refused package, a truncated upload) pass unchanged; a system error keeps Node's shape
 * (SystemError: its errno name as `code`, `errno`, `syscall`, `path`).
 */
export function storageError(id: string, dir: string, action: string, path: string, e: unknown): unknown {
  if (e instanceof NorthstarError) return e;
  const text = errnoText(e);
  if (text === undefined) return e;
  if (!isSystemError(e)) return e;
  return new SystemError(`repository ${id}: ${text} while ${action} ${path}${advice(e.code, dir)}`, e);
}
