import { constants as osConstants } from 'node:os';

/**
 * The codes of the errors the project raises on purpose (docs/design/errors.md). Each is
 * ours: none is spelled like an errno name (EINVAL, EIO, EBUSY, …), so a reader never
 * mistakes a refusal of ours for a system call's failure. A system error passed on keeps
 * Node's shape instead (`SystemError`: errno name, `errno`, `syscall`, `path`).
 */
export type ErrorCode =
  // arguments and configuration
  | 'EARGS' // a command-line argument (nstar, sextant, npk tools)
  | 'EARGUMENT' // an API argument that cannot be right (a signal number, an fd set)
  | 'EINVALID' // ValidationError: a value failed validation (config, manifest, request)
  | 'EDURATION'
  | 'EURL' // ConsoleUrlError
  | 'EPATH'
  | 'EPERMISSIONS' // console permission names
  | 'EPRIVILEGE' // the operation needs root
  | 'EDUPLICATE'
  | 'EAMBIGUOUS'
  // keys, packages, images
  | 'EKEY'
  | 'ETOKEN'
  | 'EMANIFEST'
  | 'ESIGNATURE'
  | 'EVERITY'
  | 'ENPKLAYOUT'
  | 'ENPKMETA'
  | 'ENPKVERSION'
  | 'ENPKZIP'
  | 'ETOOBIG'
  | 'ETRUNCATED'
  | 'EOVERSIZE'
  | 'ESQUASHFS_ARG'
  | 'ESQUASHFS_COMPRESSION'
  | 'ESQUASHFS_CORRUPT'
  | 'ESQUASHFS_EXTRACT'
  | 'ESQUASHFS_LIMIT'
  | 'ESQUASHFS_OPEN'
  | 'ESQUASHFS_OUTPUT'
  | 'ESQUASHFS_PATH' // a path inside an image is missing or not what was asked for
  | 'ESQUASHFS_SOURCE'
  // repositories and installation
  | 'EREPOSITORY'
  | 'EINSTALL'
  | 'ECAPACITY'
  | 'ENOTINSTALLED'
  | 'EMEMFD' // the sealed-memfd helper failed
  // mounts
  | 'EMOUNT'
  | 'EUMOUNT'
  | 'EMOUNTBUSY' // the mount point is in use (a mount under way, mounted, or busy)
  | 'ENOTMOUNTED'
  | 'ENOLOOP' // no loop device to be had
  | 'ENODM' // no device-mapper
  | 'EOVERLAY'
  | 'EMOUNTNS'
  | 'EUNSAFE' // fs-safe refused to cross a link or mount
  | 'ERMTREE' // the tree-removal helper failed
  // cgroups and containers
  | 'ECGROUP'
  | 'ESTATE'
  | 'ENOCONTAINER'
  | 'ECRITICAL'
  | 'ESIGNAL'
  | 'EPLAN' // StartError: the launch plan cannot be built
  | 'ESTART' // LaunchError: a step of the C core failed
  | 'EEXEC' // LaunchError of an exec into a running container (ours)
  | 'ELAUNCH'
  | 'ESTRACE'
  | 'EOP' // OpError: a console error variant raised inside the runtime
  // console, protocol and client
  | 'ENOCONSOLE'
  | 'EPROTOCOL'
  | 'EPROTOVERSION'
  | 'ELINETOOLONG'
  | 'ETIMEOUT' // a limit of ours ran out (connect, handshake, request, read)
  | 'ECONNECT'
  | 'ECONNCLOSED'
  | 'ECLOSED'
  | 'ELAGGED'
  | 'EUNEXPECTED'
  | 'ERUNTIME' // RuntimeError: the runtime answered with an error variant
  | 'EPERMISSION'
  | 'EABORT'
  | 'ENOLOGS' // nstar logs: the container's manifest keeps no output (io not pipe)
  // sextant build
  | 'ERECIPE'
  | 'ESTEP'
  // sextant import (OCI images)
  | 'EOCI'
  | 'ETAR';

/** An errno name as Node spells it in `code` of its system errors ('ENOENT', 'ENOSPC', …). */
export type ErrnoName = keyof typeof osConstants.errno;

/**
 * One base error for everything the project raises on purpose. `code` is a stable
 * literal that callers and tests switch on; the message is lowercase and names the
 * subject ("mounts./data.host: must be an absolute path").
 */
export class NorthstarError extends Error {
  readonly code: ErrorCode | ErrnoName;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'NorthstarError';
  }
}

/** A Node system error: an errno name in `code` and a negative `errno`. */
export function isSystemError(e: unknown): e is NodeJS.ErrnoException & { code: ErrnoName; errno: number } {
  const err = e as NodeJS.ErrnoException | undefined;
  return e instanceof Error && typeof err?.errno === 'number' && typeof err.code === 'string' && Object.hasOwn(osConstants.errno, err.code);
}

/**
 * A system error passed on with a message of ours. It keeps the shape of Node's system
 * errors: `code` is the errno name, `errno` the (negative) number, `syscall` and `path`
 * what failed on what; the original is the `cause`.
 */
export class SystemError extends NorthstarError {
  declare readonly code: ErrnoName;
  readonly errno: number;
  readonly syscall: string | undefined;
  readonly path: string | undefined;
  constructor(message: string, cause: NodeJS.ErrnoException & { code: ErrnoName; errno: number }) {
    // The base needs one of our codes; it is replaced by the errno name at once.
    super('ERUNTIME', message, { cause });
    this.code = cause.code;
    this.errno = cause.errno;
    this.syscall = cause.syscall;
    this.path = cause.path;
    this.name = 'SystemError';
  }
}

/** A value failed validation: `path` is the dotted field path, `rule` what was broken. */
export class ValidationError extends NorthstarError {
  readonly issues: readonly { path: string; rule: string }[];
  constructor(issues: readonly { path: string; rule: string }[], subject = 'invalid value') {
    const lines = issues.map((i) => (i.path ? `${i.path}: ${i.rule}` : i.rule));
    super('EINVALID', lines.length === 1 ? lines[0]! : `${subject}:\n  ${lines.join('\n  ')}`);
    this.issues = issues;
    this.name = 'ValidationError';
  }
}

/** Raised by the NPK reader/verifier: what did not match. */
export class NpkError extends NorthstarError {
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'NpkError';
  }
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

/** Turn anything thrown into a one-line message for CLI output (never a stack trace). */
export function errorMessage(e: unknown): string {
  // Ours first: a SystemError has Node's fields but a message that says more.
  if (e instanceof NorthstarError) return e.message;
  if (e instanceof Error) {
    const errno = e as NodeJS.ErrnoException;
    if (errno.code && errno.syscall) {
      return `${errno.syscall}${errno.path ? ` ${errno.path}` : ''}: ${errno.code}`;
    }
    return e.message;
  }
  return String(e);
}
