import { z } from 'zod';
import { manifestSchema } from './schema.js';
import { hintOf } from './decode.js';

const RANGES: Record<string, [number, number]> = {
  // JSON numbers: the nearest doubles to 2^64-1, -2^63 and 2^63-1.
  u64: [0, 2 ** 64],
  i64: [-(2 ** 63), 2 ** 63],
};

const YAML_NOTE =
  'This schema describes the JSON/TOML form. In YAML (serde_yaml) enum variants with data are written as tags: ' +
  '`network: !namespace <name>`, `sched: {policy: !fifo {priority: 11}}`, `seccomp.allow.<syscall>: !args {index: 1, values: [1]}`; ' +
  'unit variants are plain scalars (`host`, `idle`, `any`). Integers may be written 0x.., 0o.., 0b..; `0777` is a string, write `0o777`.';

type Json = Record<string, unknown>;

/**
 * In YAML an enum variant with data is a tag on its content (`!fifo {priority: 11}`), and
 * editors validate the content without the tag: accept each variant's content as well.
 */
function addTagContents(json: Json): void {
  const options = json.anyOf;
  if (!Array.isArray(options)) return;
  const contents: Json[] = [];
  for (const o of options as Json[]) {
    const props = o.properties as Json | undefined;
    const keys = props ? Object.keys(props) : [];
    if (o.type === 'object' && keys.length === 1) {
      const inner = { ...(props![keys[0]!] as Json) };
      inner.description = `content of the !${keys[0]} tag${inner.description ? `: ${String(inner.description)}` : ''}`;
      contents.push(inner);
    }
  }
  json.anyOf = [...options, ...contents];
}

/**
 * JSON Schema (draft 2020-12) of the manifest, for editors and tools, derived from the zod
 * schema; 64-bit integer fields are `integer`s with their range. By default it describes the
 * JSON/TOML form (enums with data as `{"variant": …}`); with `yaml: true` it also accepts
 * the content of YAML tags (`!fifo {priority: 11}` is seen by editors as `{priority: 11}`).
 */
export function manifestJsonSchema(opts: { yaml?: boolean } = {}): Record<string, unknown> {
  const schema = z.toJSONSchema(manifestSchema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const json = ctx.jsonSchema as Record<string, unknown>;
      if (opts.yaml && hintOf(ctx.zodSchema as unknown as z.ZodType).externalEnum) addTagContents(json);
      // serde_yaml reads any plain scalar into a string field (`THREADS: 4` is "4").
      if (opts.yaml && json.type === 'string' && json.const === undefined && json.enum === undefined && json.pattern === undefined) {
        json.type = ['string', 'number', 'boolean'];
      }
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
