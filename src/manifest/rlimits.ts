import { z } from 'zod';
import { hint } from './decode.js';
import { u64 } from './fields.js';

/** rlimit resource keys (lowercase RLIMIT_* names). */
export const RLIMIT_RESOURCES = [
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc',
  'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
] as const;

export type RLimitResource = (typeof RLIMIT_RESOURCES)[number];

/** RLIMIT_* numbers on Linux (asm-generic/resource.h; x86_64 and aarch64). */
export const RLIMIT_NUMBERS: Readonly<Record<RLimitResource, number>> = {
  cpu: 0, fsize: 1, data: 2, stack: 3, core: 4, rss: 5, nproc: 6, nofile: 7, memlock: 8, as: 9,
  locks: 10, sigpending: 11, msgqueue: 12, nice: 13, rtprio: 14, rttime: 15,
};

export const rlimitValueSchema = z
  .object({
    soft: u64().optional().describe('soft limit; null or absent = unlimited'),
    hard: u64().optional().describe('hard limit; null or absent = unlimited'),
  })
  .describe('{soft, hard}; a missing or null value means unlimited');

export const rlimitsSchema = hint(z.partialRecord(z.enum(RLIMIT_RESOURCES), rlimitValueSchema), { duplicateKeys: 'error' });

export type RLimitValue = z.output<typeof rlimitValueSchema>;
export type RLimits = z.output<typeof rlimitsSchema>;
