/**
 * A failed runtime operation, carrying the console error variant the client receives.
 */
import type { ModelError } from '../api/model.js';
import type { Container } from '../common/container.js';
import { describeModelError } from '../api/describe.js';
import { NorthstarError, errorMessage } from '../common/errors.js';

export class OpError extends NorthstarError {
  /** `subject`: the container the request named, for the message (the variant may name another). */
  constructor(readonly error: ModelError, subject?: Container) {
    super('EOP', describeModelError(error, subject));
    this.name = 'OpError';
  }
}

/** Anything else that went wrong, as the `unexpected` variant. */
export const unexpected = (e: unknown): OpError => new OpError({ unexpected: { error: errorMessage(e) } });

/**
 * A kill with a signal number Linux does not have. Upstream answers `unexpected` (with the
 * errno text); the variant stays, the text says what was wrong and what is valid.
 */
export const invalidSignal = (c: Container, signal: number): OpError =>
  new OpError({ unexpected: { error: `kill ${c}: ${signal} is not a signal number; give one from 1 to 64 (15 is SIGTERM, 9 is SIGKILL)` } });

export function toModelError(e: unknown): ModelError {
  if (e instanceof OpError) return e.error;
  return { unexpected: { error: errorMessage(e) } };
}

/** Seconds with millisecond precision, as upstream logs durations (`1.234s`). */
export function formatDuration(ns: bigint): string {
  return `${(Number(ns) / 1e9).toFixed(3)}s`;
}
