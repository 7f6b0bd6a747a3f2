import { z } from 'zod';
import { parseDurationMs } from '../common/humantime.js';

/** The cap of the doubling backoff between restarts. */
export const RESTART_BACKOFF_CAP_MS = 30_000;
/** A container that ran this long before exiting starts its retry count (and backoff) afresh. */
export const RESTART_RESET_AFTER_MS = 10_000;
export const DEFAULT_RESTART_BACKOFF_MS = 100;

const backoffSchema = z
  .string()
  .superRefine((s, ctx) => {
    try {
      const ms = parseDurationMs(s);
      if (ms < 1 || ms > RESTART_BACKOFF_CAP_MS) ctx.addIssue({ code: 'custom', message: `must be 1ms..30s, got ${s}` });
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  })
  .describe('First delay before a restart, a humantime duration (100ms, 2s); doubled per retry, at most 30s');

/**
 * OUR EXTENSION (not in upstream Northstar): restart the container when it exits by itself.
 * `never` (default), `on-failure` (exit code not 0, or killed by a signal it did not get from
 * the console) or `always`. A kill through the console, an uninstall and the runtime's
 * shutdown never restart it.
 */
export const restartSchema = z
  .object({
    policy: z.enum(['never', 'on-failure', 'always']).describe('never (default) | on-failure (exit code != 0 or a signal) | always'),
    max_retries: z
      .number()
      .int()
      .min(0, { error: 'must be at least 0' })
      .max(1_000_000, { error: 'must be at most 1000000' })
      .optional()
      .describe('Restarts in a row before it stays stopped; absent = unlimited'),
    backoff: backoffSchema.optional(),
  })
  .strict()
  .describe('Northstar for TypeScript extension: restart policy (backoff doubled per retry up to 30s, reset after 10s of running)');

export type Restart = z.output<typeof restartSchema>;

/** The delay before restart number `retry` (1-based): backoff * 2^(retry-1), capped. */
export function restartDelayMs(restart: Restart, retry: number): number {
  const first = restart.backoff === undefined ? DEFAULT_RESTART_BACKOFF_MS : parseDurationMs(restart.backoff);
  return Math.min(RESTART_BACKOFF_CAP_MS, first * 2 ** Math.min(retry - 1, 20));
}
