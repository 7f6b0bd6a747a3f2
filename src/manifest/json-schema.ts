import { z } from 'zod';
import { manifestSchema } from './schema.js';

const RANGES: Record<string, [number, number]> = {
  // JSON numbers: the nearest doubles to 2^64-1, -2^63 and 2^63-1.
  u64: [0, 2 ** 64],
  i64: [-(2 ** 63), 2 ** 63],
};

const YAML_NOTE =
  'This schema describes the JSON/TOML form. In YAML (serde_yaml) enum variants with data are written as tags: ' +
  '`network: !namespace <name>`, `sched: {policy: !fifo {priority: 11}}`, `seccomp.allow.<syscall>: !args {index: 1, values: [1]}`; ' +
  'unit variants are plain scalars (`host`, `idle`, `any`). Integers may be written 0x.., 0o.., 0b..; `0777` is a string, write `0o777`.';

/**
 * JSON Schema (draft 2020-12) of the manifest's JSON/TOML form, for editors and tools. It
 * is derived from the zod schema; 64-bit integer fields are `integer`s with their range.
 */
export function manifestJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(manifestSchema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const json = ctx.jsonSchema as Record<string, unknown>;
      const range = json['x-integer-range'];
      if (typeof range === 'string') {
        delete json['x-integer-range'];
        json.type = 'integer';
        const r = RANGES[range];
        if (r) {
          json.minimum = r[0];
          json.maximum = r[1];
        }
      }
    },
  }) as Record<string, unknown>;
  schema.$id = 'https://github.com/esrlabs/northstar/manifest.schema.json';
  schema.title = 'Northstar container manifest';
  schema.description = `${String(schema.description ?? '')}. ${YAML_NOTE}`;
  return schema;
}
