import { z } from 'zod';
import { ValidationError } from '../common/errors.js';
import { decodeRoot, type Issue } from './decode.js';
import { manifestSchema, RESOURCE_RULE, type Manifest } from './schema.js';
import type { JsonNode } from '../common/json.js';
import { fromJson, fromPlain, parseNodes, SyntaxProblem, type Format, type Node } from './source.js';

/** Dotted field path: `mounts./data.host`, `args[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

function isUnder(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.length <= path.length && prefix.every((p, i) => p === path[i]);
}

type ZIssue = z.core.$ZodIssue;

/** One zod issue -> our rule text (custom messages are kept as they are). */
function ruleOf(i: ZIssue): string {
  const missing = 'input' in i && i.input === undefined;
  switch (i.code) {
    case 'invalid_type':
      if (missing) return 'missing field';
      return `expected ${i.expected === 'bigint' ? 'an integer' : i.expected === 'number' ? 'a number' : `a value of type ${i.expected}`}`;
    case 'invalid_value':
      if (missing) return 'missing field';
      return `unknown variant ${JSON.stringify(i.input)}, expected one of ${i.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_union':
      return missing ? 'missing field' : 'does not match any allowed form';
    default:
      return i.message;
  }
}

/**
 * Flatten zod issues to {path, rule}. A union reports the failures of every alternative;
 * the decoder already chose the alternative by its tag or shape, which is the one whose
 * failures lie deepest, so only those are kept.
 */
function flatten(zi: ZIssue, base: (string | number)[], out: Issue[]): void {
  const path = [...base, ...zi.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
  if (zi.code === 'invalid_union' && zi.errors.length > 0 && !('input' in zi && zi.input === undefined)) {
    const depth = (list: ZIssue[]) => Math.min(...list.map((x) => x.path.length));
    const best = zi.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    if (depth(best) > 0) {
      for (const x of best) flatten(x, path, out);
      return;
    }
  }
  // A map key that breaks its rule (socket names, cgroup attrs): the key's own reasons.
  if (zi.code === 'invalid_key' && zi.issues.length > 0) {
    for (const x of zi.issues) out.push({ path, rule: ruleOf(x as ZIssue) });
    return;
  }
  if (zi.code === 'unrecognized_keys') {
    for (const k of zi.keys) out.push({ path: [...path, k], rule: 'unknown field' });
    return;
  }
  out.push({ path, rule: ruleOf(zi) });
}

function validate(value: unknown, decodeIssues: Issue[]): { manifest?: Manifest; issues: Issue[] } {
  const issues = [...decodeIssues];
  const r = manifestSchema.safeParse(value, { reportInput: true });
  if (!r.success) {
    const flat: Issue[] = [];
    for (const zi of r.error.issues) flatten(zi, [], flat);
    for (const i of flat) {
      // Decoder issues already explain anything at or below their path.
      if (decodeIssues.some((d) => isUnder(i.path, d.path))) continue;
      // A value the decoder refused is absent for zod: its "missing field" is no news.
      if (i.rule === 'missing field' && decodeIssues.some((d) => isUnder(d.path, i.path))) continue;
      if (issues.some((x) => x.rule === i.rule && formatPath(x.path) === formatPath(i.path))) continue;
      // An init the decoder refused is not a missing init.
      if (i.rule === RESOURCE_RULE && decodeIssues.some((d) => d.path[0] === 'init')) continue;
      issues.push(i);
    }
  }
  if (issues.length > 0 || !r.success) return { issues };
  return { manifest: r.data, issues: [] };
}

interface Attempt {
  format: Format;
  syntax?: SyntaxProblem;
  node?: Node;
  manifest?: Manifest;
  issues: Issue[];
}

function attempt(text: string, format: Format): Attempt {
  let node: Node;
  try {
    node = parseNodes(text, format);
  } catch (e) {
    if (e instanceof SyntaxProblem) return { format, syntax: e, issues: [] };
    throw e;
  }
  return check(node, format);
}

function check(node: Node, format: Format): Attempt {
  const decoded = decodeRoot(manifestSchema, node, format);
  const { manifest, issues } = validate(decoded.value, decoded.issues);
  return manifest !== undefined ? { format, node, manifest, issues } : { format, node, issues };
}

function toError(a: Attempt): ValidationError {
  if (a.syntax) return new ValidationError([{ path: '', rule: a.syntax.message }], 'invalid manifest');
  const issues = a.issues.map((i) => ({ path: formatPath(i.path), rule: i.rule }));
  return new ValidationError(issues.length > 0 ? issues : [{ path: '', rule: 'invalid manifest' }], 'invalid manifest');
}

/**
 * Parse and validate a manifest. Without `format` it tries YAML, then JSON, then TOML, like
 * upstream, and accepts the first that yields a valid manifest (JSON text is also YAML, so
 * YAML's coercions apply to it unless a map-form enum makes YAML refuse it). When all fail,
 * the error is that of the format the text is written in (the first whose syntax parses
 * into a map). With `format`, only that format is tried (serde_json is strict: no
 * coercion). Throws ValidationError listing every issue as `<field path>: <rule>`.
 */
export function parseManifest(text: string, format?: Format): Manifest {
  if (format !== undefined) {
    const a = attempt(text, format);
    if (a.manifest) return a.manifest;
    throw toError(a);
  }
  const attempts: Attempt[] = [];
  for (const f of ['yaml', 'json', 'toml'] as const) {
    const a = attempt(text, f);
    if (a.manifest) return a.manifest;
    attempts.push(a);
  }
  const report =
    // JSON text also parses as YAML: prefer the JSON verdict for it.
    attempts.find((a) => a.format === 'json' && !a.syntax) ??
    attempts.find((a) => !a.syntax && a.node?.kind === 'map') ??
    pickSyntax(text, attempts);
  throw toError(report);
}

/**
 * A manifest already parsed as JSON (the one inside a console `inspect` response), validated
 * as `parseManifest(text, 'json')` validates its text. Throws ValidationError.
 */
export function manifestFromJson(node: JsonNode): Manifest {
  const a = check(fromJson(node), 'json');
  if (a.manifest) return a.manifest;
  throw toError(a);
}

function pickSyntax(text: string, attempts: Attempt[]): Attempt {
  const t = text.trimStart();
  const want: Format = t.startsWith('{') ? 'json' : /^(\[[^\]]*\]\s*$|[A-Za-z0-9_"'.-]+\s*=)/m.test(t) && !/^[A-Za-z0-9_-]+\s*:/m.test(t) ? 'toml' : 'yaml';
  return attempts.find((a) => a.format === want) ?? attempts[0]!;
}

/**
 * Validate a manifest given as a JS value in its JSON form (e.g. from JSON.parse, or built
 * in code with "10MB" sizes and {"fifo": …} enums); returns the normalised model.
 */
export function validateManifest(value: unknown): Manifest {
  const decoded = decodeRoot(manifestSchema, fromPlain(value, true), 'json');
  const { manifest, issues } = validate(decoded.value, decoded.issues);
  if (manifest) return manifest;
  throw new ValidationError(issues.map((i) => ({ path: formatPath(i.path), rule: i.rule })), 'invalid manifest');
}
