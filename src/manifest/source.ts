/**
 * Manifest text -> a format-neutral node tree. YAML keeps each scalar's raw text and
 * whether it was plain, because serde_yaml decides what a plain scalar means from the
 * field it lands in (`THREADS: 4` is the string "4"); JSON and TOML scalars are typed.
 */
import { parseDocument, isAlias, isMap, isNode, isScalar, isSeq, visit, Scalar, type Alias, type Node as YamlNode, type Document } from 'yaml';
import { parse as parseToml, TomlError } from 'smol-toml';
import { parseJson, JsonSyntaxError, type JsonNode } from '../common/json.js';

export type Format = 'yaml' | 'json' | 'toml';

export type Node =
  /** A YAML scalar: `plain` scalars are resolved by the decoder, others are strings. */
  | { kind: 'scalar'; text: string; plain: boolean; tag?: string }
  | { kind: 'str'; value: string }
  | { kind: 'int'; value: bigint }
  | { kind: 'float'; value: number }
  | { kind: 'bool'; value: boolean }
  | { kind: 'null' }
  | { kind: 'map'; entries: [Node, Node][]; tag?: string }
  | { kind: 'seq'; items: Node[]; tag?: string };

/** A syntax error of one format, with a one-line message. */
export class SyntaxProblem extends Error {}

const CORE_TAG = 'tag:yaml.org,2002:';

/**
 * Nodes produced from one YAML text, aliases expanded: a manifest has a few hundred, one
 * of 64 KiB (the NPK bound) without aliases at most ~32k. The bound stops alias bombs
 * ("billion laughs"), which expanded without limit before.
 */
export const MAX_YAML_NODES = 100_000;

interface YamlCtx {
  doc: Document;
  /** Each alias's target, resolved once in document order (Alias.resolve scans the document). */
  targets: Map<Alias, YamlNode>;
  nodes: number;
}

export function parseYamlNodes(text: string): Node {
  // prettyErrors formats every error with its context, which is quadratic in the number
  // of errors; only the first error is reported, located here. Without stack traces the
  // library's error objects (one per bad token) are cheap.
  const stackTraceLimit = Error.stackTraceLimit;
  let doc: Document;
  try {
    Error.stackTraceLimit = 0;
    doc = parseDocument(text, { schema: 'failsafe', uniqueKeys: false, prettyErrors: false });
  } catch (e) {
    // The library recurses per nesting level: deep nesting ends in a RangeError.
    throw new SyntaxProblem(`invalid yaml: ${e instanceof RangeError ? 'nesting is too deep' : firstLine((e as Error).message)}`);
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    if (e.code === 'MULTIPLE_DOCS') throw new SyntaxProblem('invalid yaml: more than one document');
    throw new SyntaxProblem(`invalid yaml${where(text, e.pos[0])}: ${firstLine(e.message)}`);
  }
  if (doc.contents === null) return { kind: 'null' };
  const targets = new Map<Alias, YamlNode>();
  const anchors = new Map<string, YamlNode>();
  visit(doc, (_key, node) => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target) targets.set(node, target);
    } else if (isNode(node) && node.anchor) anchors.set(node.anchor, node);
  });
  return fromYaml({ doc, targets, nodes: 0 }, doc.contents as YamlNode, 0);
}

function where(text: string, pos: number | undefined): string {
  if (pos === undefined || pos < 0) return '';
  let line = 1;
  let start = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) {
    line++;
    start = i + 1;
  }
  return ` at line ${line}, column ${pos - start + 1}`;
}

function firstLine(s: string): string {
  const line = s.split('\n')[0] ?? s;
  return line.replace(/ at line \d+, column \d+:?$/, '').replace(/^./, (c) => c.toLowerCase());
}

function fromYaml(ctx: YamlCtx, node: YamlNode | null, depth: number): Node {
  if (depth > 256) throw new SyntaxProblem('invalid yaml: nesting is too deep');
  if (++ctx.nodes > MAX_YAML_NODES) throw new SyntaxProblem(`invalid yaml: more than ${MAX_YAML_NODES} nodes with aliases expanded`);
  if (node === null || node === undefined) return { kind: 'scalar', text: '', plain: true };
  if (isAlias(node)) {
    const target = ctx.targets.get(node);
    if (!target) throw new SyntaxProblem(`invalid yaml: unknown anchor ${node.source}`);
    return fromYaml(ctx, target, depth + 1);
  }
  const tag = userTag(node.tag);
  if (isMap(node)) {
    const entries: [Node, Node][] = node.items.map((p) => [
      fromYaml(ctx, p.key as YamlNode | null, depth + 1),
      fromYaml(ctx, p.value as YamlNode | null, depth + 1),
    ]);
    return tag === undefined ? { kind: 'map', entries } : { kind: 'map', entries, tag };
  }
  if (isSeq(node)) {
    const items = node.items.map((i) => fromYaml(ctx, i as YamlNode | null, depth + 1));
    return tag === undefined ? { kind: 'seq', items } : { kind: 'seq', items, tag };
  }
  if (isScalar(node)) {
    const plainStyle = node.type === Scalar.PLAIN || node.type === undefined;
    const explicitStr = node.tag === `${CORE_TAG}str`;
    const text = node.value === null || node.value === undefined ? '' : String(node.value);
    const plain = plainStyle && !explicitStr;
    return tag === undefined ? { kind: 'scalar', text, plain } : { kind: 'scalar', text, plain, tag };
  }
  throw new SyntaxProblem('invalid yaml: unsupported node');
}

/** Local tags (`!fifo`) are kept without the `!`; standard `!!` tags are not user tags. */
function userTag(tag: string | undefined): string | undefined {
  if (tag === undefined || tag.startsWith(CORE_TAG)) return undefined;
  return tag.startsWith('!') ? tag.slice(1) : tag;
}

/**
 * JSON text as nodes (common/json.ts: integers exact, serde_json's syntax rules). Repeated
 * keys stay visible: the decoder tells a repeated struct field (an error) from a repeated
 * map key (the later wins, as in serde's maps).
 */
export function parseJsonNodes(text: string): Node {
  try {
    return fromJson(parseJson(text, { duplicates: 'keep' }));
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new SyntaxProblem(e.message);
    throw e;
  }
}

/** A parsed JSON node as a manifest node. */
export function fromJson(n: JsonNode): Node {
  switch (n.t) {
    case 'obj':
      return { kind: 'map', entries: n.entries.map(([k, v]): [Node, Node] => [{ kind: 'str', value: k }, fromJson(v)]) };
    case 'arr':
      return { kind: 'seq', items: n.items.map(fromJson) };
    case 'str':
      return { kind: 'str', value: n.v };
    case 'int':
      return { kind: 'int', value: n.v };
    case 'num':
      return { kind: 'float', value: n.v };
    case 'bool':
      return { kind: 'bool', value: n.v };
    case 'null':
      return { kind: 'null' };
  }
}

export function parseTomlNodes(text: string): Node {
  let table: unknown;
  try {
    table = parseToml(text, { integersAsBigInt: true });
  } catch (e) {
    if (e instanceof TomlError) {
      throw new SyntaxProblem(`invalid toml at line ${e.line}, column ${e.column}: ${firstLine(e.message).replace(/^invalid toml document: /i, '')}`);
    }
    throw e;
  }
  return fromPlain(table);
}

/**
 * A JS value as nodes. bigints are integers; numbers are floats, unless `integralNumbers`
 * (a JSON.parse result, where 1 and 1.0 look alike) makes integral numbers integers.
 */
export function fromPlain(v: unknown, integralNumbers = false): Node {
  const rec = (x: unknown) => fromPlain(x, integralNumbers);
  if (typeof v === 'string') return { kind: 'str', value: v };
  if (typeof v === 'bigint') return { kind: 'int', value: v };
  if (typeof v === 'number') return integralNumbers && Number.isInteger(v) ? { kind: 'int', value: BigInt(v) } : { kind: 'float', value: v };
  if (typeof v === 'boolean') return { kind: 'bool', value: v };
  if (Array.isArray(v)) return { kind: 'seq', items: v.map(rec) };
  if (v instanceof Date) return { kind: 'str', value: v.toString() };
  if (v !== null && typeof v === 'object') {
    return { kind: 'map', entries: Object.entries(v).map(([k, x]) => [{ kind: 'str', value: k }, rec(x)]) };
  }
  return { kind: 'null' };
}

export function parseNodes(text: string, format: Format): Node {
  switch (format) {
    case 'yaml':
      return parseYamlNodes(text);
    case 'json':
      return parseJsonNodes(text);
    case 'toml':
      return parseTomlNodes(text);
  }
}
