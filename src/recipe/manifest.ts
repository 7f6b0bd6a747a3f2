/**
 * The manifest of a recipe build: the `-m` file with what the recipe implies (init and args
 * from ENTRYPOINT/CMD, env from ENV merged key by key, uid/gid from USER) put in its place,
 * then validated like any manifest. The merge happens on the parsed document, before
 * validation, so a `-m` file may leave out what the recipe provides (init, uid, gid).
 */
import { ValidationError } from '../common/errors.js';
import { decodeRoot } from '../manifest/decode.js';
import { formatPath, parseManifest, serializeManifest, manifestSchema, type Manifest } from '../manifest/index.js';
import { fromPlain, parseNodes, SyntaxProblem, type Format, type Node } from '../manifest/source.js';
import type { ImpliedManifest } from './parse.js';

function keyOf(n: Node): string | null {
  if (n.kind === 'scalar') return n.text;
  if (n.kind === 'str') return n.value;
  return null;
}

export function formatOf(file: string): Format {
  if (/\.json$/i.test(file)) return 'json';
  if (/\.toml$/i.test(file)) return 'toml';
  return 'yaml';
}

/**
 * With `explicitWins` (sextant import: the image config only fills what the -m file leaves
 * open), a field or env key the text sets is kept; else (recipes) the implied value replaces it.
 */
export function mergeManifest(text: string, format: Format, implied: ImpliedManifest, subject = 'manifest', explicitWins = false): Manifest {
  let root: Node;
  try {
    root = parseNodes(text, format);
  } catch (e) {
    if (e instanceof SyntaxProblem) throw new ValidationError([{ path: '', rule: e.message }], `invalid ${subject}`);
    throw e;
  }
  if (root.kind === 'null') root = { kind: 'map', entries: [] };
  if (root.kind !== 'map') throw new ValidationError([{ path: '', rule: 'must be a map' }], `invalid ${subject}`);
  const entries = [...root.entries];
  const set = (field: string, value: Node): void => {
    const i = entries.findIndex(([k]) => keyOf(k) === field);
    if (i >= 0 && explicitWins && field !== 'env') return;
    if (i >= 0) entries[i] = [entries[i]![0], value];
    else entries.push([{ kind: 'str', value: field }, value]);
  };
  if (implied.init !== undefined && !(explicitWins && entries.some(([k]) => keyOf(k) === 'init'))) {
    set('init', fromPlain(implied.init));
    set('args', fromPlain(implied.args ?? []));
  }
  if (implied.uid !== undefined) set('uid', fromPlain(implied.uid, true));
  if (implied.gid !== undefined) set('gid', fromPlain(implied.gid, true));
  const existingEnv = entries.find(([k]) => keyOf(k) === 'env')?.[1];
  const explicitEnv = explicitWins && existingEnv?.kind === 'map' ? existingEnv.entries.map(([k]) => keyOf(k)) : [];
  const envKeys = Object.keys(implied.env).filter((k) => !explicitEnv.includes(k));
  if (envKeys.length > 0) {
    const existing = entries.find(([k]) => keyOf(k) === 'env')?.[1];
    const kept = existing?.kind === 'map' ? existing.entries.filter(([k]) => !envKeys.includes(keyOf(k) ?? '')) : [];
    set('env', { kind: 'map', entries: [...kept, ...envKeys.map((k): [Node, Node] => [{ kind: 'str', value: k }, { kind: 'str', value: implied.env[k]! }])] });
  }
  const decoded = decodeRoot(manifestSchema, { kind: 'map', entries }, format);
  const issues = decoded.issues.map((i) => ({ path: formatPath(i.path), rule: i.rule }));
  if (issues.length === 0) {
    const r = manifestSchema.safeParse(decoded.value, { reportInput: true });
    if (r.success) {
      // Through text once more: exactly what the NPK will contain must parse.
      return parseManifest(serializeManifest(r.data), 'yaml');
    }
    for (const zi of r.error.issues) {
      issues.push({ path: formatPath(zi.path as PropertyKey[]), rule: zi.code === 'invalid_type' && zi.input === undefined ? 'missing field' : zi.message });
    }
  }
  throw new ValidationError(issues, `invalid ${subject}`);
}
