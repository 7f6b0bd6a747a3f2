import { z } from 'zod';
import { hint } from './decode.js';
import { byteLength, nonNul } from './fields.js';

export const MAX_NET_NAMESPACE_LENGTH = 256;

export const networkSchema = hint(
  z.union([
    z.literal('host'),
    z
      .object({
        namespace: nonNul().refine((n) => byteLength(n) <= MAX_NET_NAMESPACE_LENGTH, {
          error: `network namespace must be at most ${MAX_NET_NAMESPACE_LENGTH} bytes`,
        }),
      })
      .strict(),
  ]),
  { externalEnum: true },
).describe(
  'Absent: a new network namespace. YAML: `host` or `!namespace <name>` (joins /var/run/netns/<name>); JSON/TOML: "host" or {"namespace": "<name>"}.',
);

export type Network = z.output<typeof networkSchema>;
