import { z } from 'zod';
import { hint } from './decode.js';

const nice = z.number().int().min(-20, { error: 'nice must be between -20 and 19' }).max(19, { error: 'nice must be between -20 and 19' });
const priority = z.number().int().min(1, { error: 'priority must be between 1 and 99' }).max(99, { error: 'priority must be between 1 and 99' });

export const policySchema = hint(
  z.union([
    z.literal('idle'),
    z.literal('deadline'),
    z.object({ other: z.object({ nice }) }).strict(),
    z.object({ fifo: z.object({ priority }) }).strict(),
    z.object({ round_robin: z.object({ priority }) }).strict(),
    z.object({ batch: z.object({ nice }) }).strict(),
  ]),
  { externalEnum: true },
)
  // Our difference (spec README 2): deadline is refused here, not at exec.
  .refine((p) => p !== 'deadline', { error: 'deadline scheduling is not supported (it needs sched_setattr parameters the manifest cannot express)' })
  .describe(
    'YAML: `!other {nice: -20..19}`, `!fifo {priority: 1..99}`, `!round_robin {priority: 1..99}`, `!batch {nice: -20..19}`, `idle`. JSON/TOML: {"fifo": {"priority": 11}} or "idle". `deadline` is rejected.',
  );

export const schedSchema = z.object({ policy: policySchema }).describe('Scheduling policy of the container process.');

export type Policy = z.output<typeof policySchema>;
export type Sched = z.output<typeof schedSchema>;
