/**
 * A failed runtime operation, carrying the console error variant the client receives.
 */
import type { ModelError } from '../api/model.js';
import { describeModelError } from '../api/describe.js';
import { NorthstarError, errorMessage } from '../common/errors.js';

export class OpError extends NorthstarError {
  constructor(readonly error: ModelError) {
    super('EOP', describeModelError(error));
    this.name = 'OpError';
  }
}

/** Anything else that went wrong, as the `unexpected` variant. */
export const unexpected = (e: unknown): OpError => new OpError({ unexpected: { error: errorMessage(e) } });

export function toModelError(e: unknown): ModelError {
  if (e instanceof OpError) return e.error;
  return { unexpected: { error: errorMessage(e) } };
}

/** Seconds with millisecond precision, as upstream logs durations (`1.234s`). */
export function formatDuration(ns: bigint): string {
  return `${(Number(ns) / 1e9).toFixed(3)}s`;
}
