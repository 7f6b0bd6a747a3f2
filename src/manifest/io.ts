import { z } from 'zod';

export const OUTPUTS = ['discard', 'pipe', 'inherit'] as const;
export type Output = (typeof OUTPUTS)[number];

export const outputSchema = z
  .enum(OUTPUTS)
  .describe('discard: /dev/null; pipe: each line logged at debug level; inherit: copied to the runtime\'s own stream');

export const ioSchema = z
  .object({ stdout: outputSchema, stderr: outputSchema })
  .strict()
  .describe('Where stdout and stderr go (both required when io is present; absent means both discard). stdin is /dev/null.');

export type Io = z.output<typeof ioSchema>;
