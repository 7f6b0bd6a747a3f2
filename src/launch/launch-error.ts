/** The error of a failed step of the launch core (a container start or an exec). */
import { constants as osConstants } from 'node:os';
import { NorthstarError } from '../common/errors.js';

/** A failed step of a container start, as reported by the C core. */
export class LaunchError extends NorthstarError {
  readonly container: string;
  readonly step: string;
  /** errno number (0 if none) and its name ('ENOENT', ...). */
  readonly errno: number;
  readonly errnoName: string | null;
  /** The path the step was working on, if any. */
  readonly path: string | null;
  readonly detail: string;
  constructor(container: string, step: string, errno: number, path: string | null, detail: string, op: 'start' | 'exec' = 'start') {
    const errnoName = errnoNameOf(errno);
    super(op === 'start' ? 'ESTART' : 'EEXEC', `${op} ${container}: ${step}: ${detail}${errnoName ? ` (${errnoName})` : ''}`);
    this.name = 'LaunchError';
    this.container = container;
    this.step = step;
    this.errno = errno;
    this.errnoName = errnoName;
    this.path = path;
    this.detail = detail;
  }
}

function errnoNameOf(errno: number): string | null {
  if (errno === 0) return null;
  for (const [name, value] of Object.entries(osConstants.errno)) {
    if (value === errno) return name;
  }
  return `errno ${errno}`;
}
