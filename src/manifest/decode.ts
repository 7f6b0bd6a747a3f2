/**
 * Schema-directed decoding of a node tree into the canonical (JSON-form) value that the
 * zod schemas validate. This is where serde's behaviour per format lives: which scalars a
 * field accepts, YAML tags for externally tagged enums, internally tagged mounts without
 * coercion, duplicate keys, unknown fields. The zod schemas stay the one description of
 * the manifest; a few of them carry hints (below) for the serde attributes zod lacks.
 */
import type { z } from 'zod';
import type { Format, Node } from './source.js';

export interface Issue {
  path: (string | number)[];
  rule: string;
}

export interface DecodeHint {
  /** An externally tagged enum: YAML `!variant value` or a plain unit variant; JSON/TOML `{variant: value}`. */
  externalEnum?: boolean;
  /** Duplicate keys of this map: an error, or the later one wins (serde's HashMap default). */
  duplicateKeys?: 'error' | 'last';
}

/**
 * Attach serde-specific decoding hints to a schema (returns it for chaining). They live in
 * the schema's def, which zod copies into every derived schema (.refine, .describe, …).
 */
export function hint<T extends z.ZodType>(schema: T, h: DecodeHint): T {
  const d = def(schema) as AnyDef & { serdeHint?: DecodeHint };
  d.serdeHint = { ...d.serdeHint, ...h };
  return schema;
}

export function hintOf(s: z.ZodType): DecodeHint {
  return (def(s) as AnyDef & { serdeHint?: DecodeHint }).serdeHint ?? {};
}

interface Ctx {
  format: Format;
  issues: Issue[];
  /** Inside an internally tagged enum (mount entries): serde buffers, so no scalar coercion. */
  buffered: boolean;
}

/** Whatever a decoder returns when it already reported an issue. */
export const INVALID: unique symbol = Symbol('invalid');

// --- zod introspection -------------------------------------------------------------------

interface AnyDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  element?: z.ZodType;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  values?: unknown[];
  entries?: Record<string, unknown>;
}

function def(s: z.ZodType): AnyDef {
  return (s as unknown as { _zod: { def: AnyDef } })._zod.def;
}

/** Strip wrappers that do not change the input shape; report whether it is an Option (null = None). */
export function unwrap(s: z.ZodType): { schema: z.ZodType; optional: boolean } {
  let optional = false;
  for (;;) {
    const d = def(s);
    if (d.type === 'optional' || d.type === 'nullable') {
      optional = true;
      s = d.innerType!;
    } else if (d.type === 'default' || d.type === 'prefault') {
      // serde(default): absent means the default, but null is not absent.
      s = d.innerType!;
    } else if (d.type === 'pipe') {
      const inner = d.in!;
      s = def(inner).type === 'transform' ? d.out! : inner;
    } else if (d.type === 'readonly' || d.type === 'catch' || d.type === 'nonoptional') {
      s = d.innerType!;
    } else if (d.type === 'lazy') {
      s = (s as unknown as { _zod: { innerType: z.ZodType } })._zod.innerType;
    } else {
      return { schema: s, optional };
    }
  }
}

function literalValues(s: z.ZodType): string[] | undefined {
  const d = def(unwrap(s).schema);
  if (d.type === 'literal') return d.values!.filter((v): v is string => typeof v === 'string');
  if (d.type === 'enum') return Object.values(d.entries!).filter((v): v is string => typeof v === 'string');
  return undefined;
}

// --- scalar resolution (serde_yaml 0.9) ----------------------------------------------------

export function yamlIsNull(text: string): boolean {
  return text === '' || text === '~' || text === 'null' || text === 'Null' || text === 'NULL';
}

export function yamlBool(text: string): boolean | undefined {
  if (text === 'true' || text === 'True' || text === 'TRUE') return true;
  if (text === 'false' || text === 'False' || text === 'FALSE') return false;
  return undefined;
}

/** serde_yaml's integers: optional sign, then 0x/0o/0b or decimal without a leading zero. */
export function yamlInt(text: string): bigint | undefined {
  const m = /^([-+]?)(0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+|[0-9]+)$/.exec(text);
  if (!m) return undefined;
  const body = m[2]!;
  if (/^[0-9]+$/.test(body) && body.length > 1 && body.startsWith('0')) return undefined;
  const v = BigInt(body);
  return m[1] === '-' ? -v : v;
}

/** Leading zero(s) followed by digits only: a string in YAML 1.2 (serde_yaml digits_but_not_number). */
export function digitsButNotNumber(text: string): boolean {
  const t = text.replace(/^[-+]/, '');
  return t.length > 1 && t.startsWith('0') && /^[0-9]+$/.test(t.slice(1));
}

/** serde_yaml's floats: Rust's f64 syntax (finite values) plus .inf/.nan; never digitsButNotNumber. */
export function yamlFloat(text: string): number | undefined {
  if (digitsButNotNumber(text)) return undefined;
  if (/^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(text)) {
    const v = Number(text);
    return Number.isFinite(v) ? v : undefined;
  }
  if (/^\+?\.(inf|Inf|INF)$/.test(text)) return Infinity;
  if (/^-\.(inf|Inf|INF)$/.test(text)) return -Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(text)) return NaN;
  return undefined;
}

/** What serde_yaml's deserialize_any makes of a YAML scalar. */
type Resolved =
  | { kind: 'str'; value: string }
  | { kind: 'int'; value: bigint }
  | { kind: 'float'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' };

function resolveScalar(node: Node): Resolved | undefined {
  switch (node.kind) {
    case 'scalar': {
      if (!node.plain) return { kind: 'str', value: node.text };
      if (yamlIsNull(node.text)) return { kind: 'null' };
      const b = yamlBool(node.text);
      if (b !== undefined) return { kind: 'bool', value: b };
      const i = yamlInt(node.text);
      if (i !== undefined) return { kind: 'int', value: i };
      const f = yamlFloat(node.text);
      if (f !== undefined) return { kind: 'float', value: f };
      return { kind: 'str', value: node.text };
    }
    case 'str':
    case 'int':
    case 'float':
    case 'bool':
    case 'null':
      return node;
    default:
      return undefined;
  }
}

function describe(node: Node): string {
  const r = resolveScalar(node);
  if (r === undefined) return node.kind === 'map' ? 'a map' : 'a sequence';
  switch (r.kind) {
    case 'str':
      return `the string ${JSON.stringify(r.value)}`;
    case 'int':
      return `the integer ${r.value}`;
    case 'float':
      return `the number ${node.kind === 'scalar' ? node.text : String(r.value)}`;
    case 'bool':
      return `the boolean ${r.value}`;
    case 'null':
      return 'null';
  }
}

function isNullNode(node: Node): boolean {
  if (node.kind === 'null') return true;
  return node.kind === 'scalar' && node.plain && node.tag === undefined && yamlIsNull(node.text);
}

// --- the decoder ----------------------------------------------------------------------------

export function decodeRoot(schema: z.ZodType, node: Node, format: Format): { value: unknown; issues: Issue[] } {
  const ctx: Ctx = { format, issues: [], buffered: false };
  const value = decode(schema, node, [], ctx);
  return { value: value === INVALID ? undefined : value, issues: ctx.issues };
}

function issue(ctx: Ctx, path: (string | number)[], rule: string): typeof INVALID {
  ctx.issues.push({ path: [...path], rule });
  return INVALID;
}

function decode(schema: z.ZodType, node: Node, path: (string | number)[], ctx: Ctx): unknown {
  const { schema: s, optional } = unwrap(schema);
  // Option<T>: a plain empty or null scalar (JSON null) is None.
  if (optional && isNullNode(node)) return undefined;
  const h = hintOf(s);
  const d = def(s);
  if (h.externalEnum) return decodeExternalEnum(s, node, path, ctx);
  // serde_yaml ignores tags except on enums, but serde's buffering (mount entries) refuses them.
  if (ctx.buffered && (node.kind === 'scalar' || node.kind === 'map' || node.kind === 'seq') && node.tag !== undefined) {
    return issue(ctx, path, `unexpected tag !${node.tag}`);
  }
  switch (d.type) {
    case 'string':
      return decodeString(node, path, ctx);
    case 'number':
    case 'bigint': {
      const v = decodeInt(node, path, ctx);
      if (v === INVALID) return v;
      return d.type === 'number' ? Number(v) : v;
    }
    case 'boolean':
      return decodeBool(node, path, ctx);
    case 'literal':
    case 'enum':
      return decodeUnit(literalValues(s)!, node, path, ctx);
    case 'object':
      return decodeObject(s, node, path, ctx);
    case 'record':
      return decodeRecord(s, node, path, ctx, h);
    case 'array':
      return decodeArray(d.element!, node, path, ctx);
    case 'union':
      return d.discriminator !== undefined ? decodeInternalEnum(s, node, path, ctx) : decodeUnion(d.options!, node, path, ctx);
    case 'any':
    case 'unknown':
      return decodeJsonValue(node, path, ctx, 0);
    default:
      throw new Error(`manifest decoder: unsupported schema type ${d.type}`);
  }
}

function decodeString(node: Node, path: (string | number)[], ctx: Ctx): unknown {
  if (node.kind === 'scalar') {
    if (node.plain && ctx.buffered) {
      const r = resolveScalar(node)!;
      if (r.kind !== 'str') return issue(ctx, path, `expected a string, found ${describe(node)} (quote it)`);
    }
    return node.text;
  }
  if (node.kind === 'str') return node.value;
  return issue(ctx, path, `expected a string, found ${describe(node)}`);
}

function decodeInt(node: Node, path: (string | number)[], ctx: Ctx): bigint | typeof INVALID {
  const r = resolveScalar(node);
  if (r?.kind === 'int') return r.value;
  if (node.kind === 'scalar' && node.plain && /^[-+]?0[0-7]+$/.test(node.text)) {
    return issue(ctx, path, `expected an integer, found the string ${JSON.stringify(node.text)} (write octal as 0o${node.text.replace(/^[-+]?0+/, '')})`);
  }
  return issue(ctx, path, `expected an integer, found ${describe(node)}`);
}

function decodeBool(node: Node, path: (string | number)[], ctx: Ctx): unknown {
  const r = resolveScalar(node);
  if (r?.kind === 'bool') return r.value;
  return issue(ctx, path, `expected a boolean, found ${describe(node)}`);
}

function decodeUnit(values: string[], node: Node, path: (string | number)[], ctx: Ctx): unknown {
  let text: string | undefined;
  if (node.kind === 'scalar') {
    // `!variant` with an empty value is serde_yaml's tagged form of a unit variant.
    if (node.tag !== undefined) {
      if (!values.includes(node.tag)) return issue(ctx, path, `unknown variant ${JSON.stringify(node.tag)}, expected one of ${values.join(', ')}`);
      if (!isNullNodeIgnoringTag(node)) return issue(ctx, path, `unit variant !${node.tag} takes no value`);
      text = node.tag;
    } else text = node.text;
  } else if (node.kind === 'str') text = node.value;
  if (text === undefined) return issue(ctx, path, `expected one of ${values.join(', ')}, found ${describe(node)}`);
  if (!values.includes(text)) return issue(ctx, path, `unknown variant ${JSON.stringify(text)}, expected one of ${values.join(', ')}`);
  return text;
}

function isNullNodeIgnoringTag(node: Node): boolean {
  return node.kind === 'scalar' && node.plain && yamlIsNull(node.text);
}

/** serde_yaml reads a plain empty scalar as an empty sequence or map. */
function isEmptyPlain(node: Node): boolean {
  return node.kind === 'scalar' && node.plain && node.text === '';
}

function keyText(node: Node, path: (string | number)[], ctx: Ctx): string | typeof INVALID {
  if (node.kind === 'scalar' && node.tag === undefined) return node.text;
  if (node.kind === 'str') return node.value;
  return issue(ctx, path, `map keys must be strings, found ${describe(node)}`);
}

/** A struct: known fields decoded, unknown ones refused (deny_unknown_fields) or ignored. */
function decodeObject(s: z.ZodType, node: Node, path: (string | number)[], ctx: Ctx, skip?: string): unknown {
  if (isEmptyPlain(node) && !ctx.buffered) return {};
  if (node.kind !== 'map') return issue(ctx, path, `expected a map, found ${describe(node)}`);
  const d = def(s);
  const shape = d.shape!;
  const strict = d.catchall !== undefined && def(d.catchall).type === 'never';
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const [k, v] of node.entries) {
    const key = keyText(k, path, ctx);
    if (key === INVALID || key === skip) continue;
    const field = Object.hasOwn(shape, key) ? shape[key] : undefined;
    if (field === undefined) {
      if (strict) issue(ctx, [...path, key], `unknown field, expected one of ${Object.keys(shape).join(', ')}`);
      continue;
    }
    if (seen.has(key)) {
      issue(ctx, [...path, key], 'duplicate field');
      continue;
    }
    seen.add(key);
    const value = decode(field, v, [...path, key], ctx);
    if (value !== INVALID && value !== undefined) out[key] = value;
  }
  // Missing required fields are reported by the schema ("missing field").
  return out;
}

function decodeRecord(s: z.ZodType, node: Node, path: (string | number)[], ctx: Ctx, h: DecodeHint): unknown {
  if (isEmptyPlain(node) && !ctx.buffered) return {};
  if (node.kind !== 'map') return issue(ctx, path, `expected a map, found ${describe(node)}`);
  const d = def(s);
  const keys = literalValues(d.keyType!);
  const out: Record<string, unknown> = {};
  for (const [k, v] of node.entries) {
    const key = keyText(k, path, ctx);
    if (key === INVALID) continue;
    if (key === '__proto__') {
      issue(ctx, [...path, key], 'reserved key');
      continue;
    }
    if (keys !== undefined && !keys.includes(key)) {
      issue(ctx, [...path, key], `unknown key, expected one of ${keys.join(', ')}`);
      continue;
    }
    if (Object.hasOwn(out, key) && h.duplicateKeys === 'error') {
      issue(ctx, [...path, key], 'duplicate key');
      continue;
    }
    const value = decode(d.valueType!, v, [...path, key], ctx);
    if (value !== INVALID) out[key] = value;
    else delete out[key];
  }
  return out;
}

function decodeArray(element: z.ZodType, node: Node, path: (string | number)[], ctx: Ctx): unknown {
  if (isEmptyPlain(node) && !ctx.buffered) return [];
  if (node.kind !== 'seq') return issue(ctx, path, `expected a sequence, found ${describe(node)}`);
  const out: unknown[] = [];
  let bad = false;
  node.items.forEach((item, i) => {
    const v = decode(element, item, [...path, i], ctx);
    if (v === INVALID) bad = true;
    out.push(v);
  });
  return bad ? INVALID : out;
}

/** Untagged unions of different shapes (a string or a list, an integer or a string): pick by the node. */
function decodeUnion(options: z.ZodType[], node: Node, path: (string | number)[], ctx: Ctx): unknown {
  const kinds = options.map((o) => def(unwrap(o).schema).type);
  const pick = (t: string[]): z.ZodType | undefined => options[kinds.findIndex((k) => t.includes(k))];
  let chosen: z.ZodType | undefined;
  if (node.kind === 'map') chosen = pick(['object', 'record']);
  else if (node.kind === 'seq') chosen = pick(['array']);
  else {
    const r = resolveScalar(node)!;
    if (r.kind === 'int') chosen = pick(['number', 'bigint']);
    if (r.kind === 'bool') chosen = pick(['boolean']);
    const numberOrString = pick(['number', 'bigint']) !== undefined && pick(['string']) !== undefined;
    if (chosen === undefined && numberOrString && r.kind !== 'str' && (ctx.buffered || node.kind !== 'scalar')) {
      return issue(ctx, path, `expected an integer or a string, found ${describe(node)}`);
    }
    chosen ??= pick(['string', 'literal', 'enum']);
  }
  if (chosen === undefined) return issue(ctx, path, `unexpected ${describe(node)}`);
  return decode(chosen, node, path, ctx);
}

/** serde's externally tagged enum: unit variants as plain strings, others as `!tag value` (YAML) or `{tag: value}`. */
function decodeExternalEnum(s: z.ZodType, node: Node, path: (string | number)[], ctx: Ctx): unknown {
  const units: string[] = [];
  const tagged = new Map<string, z.ZodType>();
  for (const o of def(s).options!) {
    const lv = literalValues(o);
    if (lv !== undefined) units.push(...lv);
    else {
      const od = def(unwrap(o).schema);
      for (const [k, v] of Object.entries(od.shape ?? {})) tagged.set(k, v);
    }
  }
  const all = [...units, ...tagged.keys()];
  const expected = `expected one of ${all.join(', ')}`;
  const tag = node.kind === 'scalar' || node.kind === 'map' || node.kind === 'seq' ? node.tag : undefined;
  if (tag !== undefined) {
    if (units.includes(tag)) {
      const bare = node.kind === 'scalar' ? { ...node, tag: undefined } : node;
      if (bare.kind !== 'scalar' || !isNullNodeIgnoringTag(bare)) {
        return issue(ctx, path, `unit variant !${tag} takes no value`);
      }
      return tag;
    }
    const inner = tagged.get(tag);
    if (inner === undefined) return issue(ctx, path, `unknown variant !${tag}, ${expected}`);
    const untagged = { ...node, tag: undefined } as Node;
    const v = decode(inner, untagged, [...path, tag], ctx);
    return v === INVALID ? v : { [tag]: v };
  }
  if (node.kind === 'map') {
    if (ctx.format === 'yaml') {
      const first = node.entries[0]?.[0];
      const name = first && first.kind === 'scalar' ? first.text : 'variant';
      return issue(ctx, path, `the map form is not supported in yaml: write a tag, e.g. !${name} …`);
    }
    if (node.entries.length !== 1) return issue(ctx, path, `expected a map with exactly one key, ${expected}`);
    const [k, v] = node.entries[0]!;
    const key = keyText(k, path, ctx);
    if (key === INVALID) return key;
    const inner = tagged.get(key);
    if (inner === undefined) {
      if (units.includes(key)) return issue(ctx, path, `unit variant ${key} is written as the string ${JSON.stringify(key)}`);
      return issue(ctx, path, `unknown variant ${JSON.stringify(key)}, ${expected}`);
    }
    const value = decode(inner, v, [...path, key], ctx);
    return value === INVALID ? value : { [key]: value };
  }
  const text = node.kind === 'scalar' ? node.text : node.kind === 'str' ? node.value : undefined;
  if (text === undefined) return issue(ctx, path, `${expected}, found ${describe(node)}`);
  if (units.includes(text)) return text;
  if (tagged.has(text)) {
    return issue(ctx, path, ctx.format === 'yaml' ? `variant ${text} needs a value: write !${text} …` : `variant ${text} needs a value: write {${JSON.stringify(text)}: …}`);
  }
  return issue(ctx, path, `unknown variant ${JSON.stringify(text)}, ${expected}`);
}

/** serde's internally tagged enum (`type: bind`): serde buffers the entry, so scalars are not coerced. */
function decodeInternalEnum(s: z.ZodType, node: Node, path: (string | number)[], ctx: Ctx): unknown {
  const d = def(s);
  const tagKey = d.discriminator!;
  if (node.kind !== 'map') return issue(ctx, path, `expected a map, found ${describe(node)}`);
  const variants = new Map<string, z.ZodType>();
  for (const o of d.options!) {
    const od = def(unwrap(o).schema);
    for (const v of literalValues(od.shape![tagKey]!) ?? []) variants.set(v, o);
  }
  const tagEntries = node.entries.filter(([k]) => (k.kind === 'scalar' ? k.text : k.kind === 'str' ? k.value : undefined) === tagKey);
  if (tagEntries.length === 0) return issue(ctx, [...path, tagKey], `missing field, expected one of ${[...variants.keys()].join(', ')}`);
  if (tagEntries.length > 1) return issue(ctx, [...path, tagKey], 'duplicate field');
  const tagNode = tagEntries[0]![1];
  const saved = ctx.buffered;
  ctx.buffered = true;
  try {
    const tag = decodeString(tagNode, [...path, tagKey], ctx);
    if (tag === INVALID) return tag;
    const variant = variants.get(tag as string);
    if (variant === undefined) {
      return issue(ctx, [...path, tagKey], `unknown variant ${JSON.stringify(tag)}, expected one of ${[...variants.keys()].join(', ')}`);
    }
    const value = decodeObject(unwrap(variant).schema, node, path, ctx, tagKey);
    if (value === INVALID) return value;
    return { [tagKey]: tag, ...(value as object) };
  } finally {
    ctx.buffered = saved;
  }
}

/** `custom`: any JSON value (upstream holds a serde_json::Value). */
function decodeJsonValue(node: Node, path: (string | number)[], ctx: Ctx, depth: number): unknown {
  if (depth > 128) return issue(ctx, path, 'nesting is too deep');
  if ((node.kind === 'scalar' || node.kind === 'map' || node.kind === 'seq') && node.tag !== undefined) {
    return issue(ctx, path, `tagged values (!${node.tag}) are not supported here`);
  }
  if (node.kind === 'map') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of node.entries) {
      const key = keyText(k, path, ctx);
      if (key === INVALID) continue;
      if (key === '__proto__') {
        issue(ctx, [...path, key], 'reserved key');
        continue;
      }
      // serde_json::Value maps keep the later of duplicate keys.
      out[key] = decodeJsonValue(v, [...path, key], ctx, depth + 1);
    }
    return out;
  }
  if (node.kind === 'seq') return node.items.map((x, i) => decodeJsonValue(x, [...path, i], ctx, depth + 1));
  const r = resolveScalar(node)!;
  switch (r.kind) {
    case 'str':
    case 'bool':
      return r.value;
    case 'null':
      return null;
    case 'int':
      return Number(r.value);
    case 'float':
      if (!Number.isFinite(r.value)) return issue(ctx, path, 'infinite and NaN numbers are not supported here');
      return r.value;
  }
}
