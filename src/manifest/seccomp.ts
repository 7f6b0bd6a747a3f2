import { z } from 'zod';
import { hint } from './decode.js';
import { nonNul, u64, usize } from './fields.js';

/** Highest syscall argument index (seccomp_data.args has six entries). */
export const MAX_ARG_INDEX = 5;
/** Maximum number of `values` in one manifest `!args` rule (upstream validation). */
export const MAX_ARG_VALUES = 50;

export const argsRuleSchema = z
  .object({
    index: usize().max(MAX_ARG_INDEX, { error: `must be at most ${MAX_ARG_INDEX}` }),
    values: z.array(u64()).max(MAX_ARG_VALUES, { error: `must have at most ${MAX_ARG_VALUES} values` }).optional(),
    mask: u64().optional(),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.values === undefined && a.mask === undefined) ctx.addIssue({ code: 'custom', message: 'needs values or mask' });
  })
  .describe('Allowed if the argument equals one of `values` (every value counts) or has no bits outside `mask`.');

export const syscallRuleSchema = hint(z.union([z.literal('any'), z.object({ args: argsRuleSchema }).strict()]), {
  externalEnum: true,
}).describe('YAML: `any` or `!args {index, values?, mask?}`; JSON/TOML: "any" or {"args": {...}}.');

export const seccompSchema = z
  .object({
    profile: z.enum(['default']).optional().describe('"default": a docker-like allow list'),
    allow: hint(z.record(nonNul(), syscallRuleSchema), { duplicateKeys: 'last' }).optional(),
  })
  .strict()
  .describe('Seccomp allow list; anything else kills the process.');

export type Seccomp = z.output<typeof seccompSchema>;
export type SyscallRule = z.output<typeof syscallRuleSchema>;
export type SyscallArgRule = z.output<typeof argsRuleSchema>;
