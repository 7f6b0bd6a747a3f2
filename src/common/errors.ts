/**
 * One base error for everything the project raises on purpose. `code` is a stable
 * literal that callers and tests switch on; the message is lowercase and names the
 * subject ("mounts./data.host: must be an absolute path").
 */
export class NorthstarError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'NorthstarError';
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
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'NpkError';
  }
}

export function assertNever(x: never, what = 'value'): never {
  throw new Error(`unexpected ${what}: ${JSON.stringify(x)}`);
}

/** Turn anything thrown into a one-line message for CLI output (never a stack trace). */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) {
    const errno = e as NodeJS.ErrnoException;
    if (errno.code && errno.syscall) {
      return `${errno.syscall}${errno.path ? ` ${errno.path}` : ''}: ${errno.code}`;
    }
    return e.message;
  }
  return String(e);
}
