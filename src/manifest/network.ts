import { z } from 'zod';
import { hint } from './decode.js';
import { byteLength, fileName } from './fields.js';

export const MAX_NET_NAMESPACE_LENGTH = 256;

export const networkSchema = hint(
  z.union([
    z.literal('host'),
    z
      .object({
        // A file name in /var/run/netns: `!namespace ../../proc/1/ns/net` must not reach other files.
        namespace: fileName().refine((n) => byteLength(n) <= MAX_NET_NAMESPACE_LENGTH, {
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
