/**
 * The one JSON module: a strict RFC 8259 parser that reads as serde_json does, and the
 * compact and pretty writers. Used by the console codec, the manifest reader and nstar.
 *
 * Unlike JSON.parse the parser keeps integers exact (bigint) and tells them from floats
 * (serde rejects `1.0` for an integer field), rejects lone surrogate escapes, numbers out of
 * a double's range and nesting beyond serde_json's recursion limit, and lets the caller
 * choose what a repeated object key means (`duplicates`): an error (the console protocol),
 * or kept in order for the caller to judge (the manifest, where a repeated struct field is
 * an error but a repeated map key is not). Errors name the line and column.
 */

/** A free-form JSON value: integers beyond 2^53 are bigint. */
export type JsonValue = null | boolean | number | bigint | string | JsonValue[] | { [key: string]: JsonValue };

/** A parsed JSON text. Object entries are in text order; `int` is an integer literal, `num` any other number. */
export type JsonNode =
  | { t: 'obj'; entries: [string, JsonNode][] }
  | { t: 'arr'; items: JsonNode[] }
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

export type JsonObject = Extract<JsonNode, { t: 'obj' }>;

export interface ParseJsonOptions {
  /** A repeated object key: `'error'` (default) or `'keep'` (every entry stays in `entries`). */
  duplicates?: 'error' | 'keep';
}

/** A JSON syntax error at a character offset of the text. */
export class JsonSyntaxError extends Error {
  /** 1-based line and column of `offset`. */
  readonly line: number;
  readonly column: number;
  constructor(
    text: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    let line = 1;
    let lineStart = 0;
    for (let k = text.indexOf('\n'); k >= 0 && k < offset; k = text.indexOf('\n', k + 1)) {
      line++;
      lineStart = k + 1;
    }
    const column = offset - lineStart + 1;
    super(`invalid json at line ${line}, column ${column}: ${reason}`);
    this.name = 'JsonSyntaxError';
    this.line = line;
    this.column = column;
  }
}

/**
 * serde_json's recursion limit: it counts down from 128 on each `[` or `{` and fails at 0,
 * so at most 127 arrays and objects nest.
 */
export const MAX_JSON_DEPTH = 127;

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
/** Objects with more entries than this check for a repeated key with a set, not a scan. */
const SCAN_KEYS = 8;

/** Parse one JSON text. Throws JsonSyntaxError. */
export function parseJson(text: string, options: ParseJsonOptions = {}): JsonNode {
  const rejectDuplicates = options.duplicates !== 'keep';
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(text, i, what);
  };
  const ws = (): void => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else return;
    }
  };
  const hex4 = (at: number): number => {
    const h = text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) {
      i = at;
      fail('invalid \\u escape');
    }
    return parseInt(h, 16);
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    for (;;) {
      // Fast path: copy up to the next quote or backslash.
      let j = i;
      while (j < n) {
        const c = text.charCodeAt(j);
        if (c === 0x22 || c === 0x5c) break;
        if (c < 0x20) {
          i = j;
          fail('control character in string');
        }
        j++;
      }
      out += text.slice(i, j);
      i = j;
      if (i >= n) fail('unterminated string');
      if (text.charCodeAt(i) === 0x22) {
        i++;
        return out;
      }
      const e = text[i + 1];
      if (e !== undefined && e in ESCAPES) {
        out += ESCAPES[e];
        i += 2;
        continue;
      }
      if (e !== 'u') fail('invalid escape');
      const u = hex4(i + 2);
      if (u >= 0xd800 && u <= 0xdbff) {
        if (text[i + 6] !== '\\' || text[i + 7] !== 'u') fail('lone leading surrogate in hex escape');
        const low = hex4(i + 8);
        if (low < 0xdc00 || low > 0xdfff) fail('lone leading surrogate in hex escape');
        out += String.fromCharCode(u, low);
        i += 12;
        continue;
      }
      if (u >= 0xdc00 && u <= 0xdfff) fail('lone trailing surrogate in hex escape');
      out += String.fromCharCode(u);
      i += 6;
    }
  };
  const isDuplicate = (entries: [string, JsonNode][], seen: Set<string> | undefined, key: string): boolean => {
    if (seen !== undefined) return seen.has(key);
    for (const [k] of entries) if (k === key) return true;
    return false;
  };
  /** `depth`: the arrays and objects around this value. */
  const value = (depth: number): JsonNode => {
    ws();
    const c = text[i];
    if ((c === '{' || c === '[') && depth >= MAX_JSON_DEPTH) fail('recursion limit exceeded');
    if (c === '{') {
      i++;
      const entries: [string, JsonNode][] = [];
      let seen: Set<string> | undefined;
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', entries };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const keyAt = i;
        const key = str();
        if (rejectDuplicates) {
          if (isDuplicate(entries, seen, key)) {
            i = keyAt;
            fail(`duplicate key ${JSON.stringify(key)}`);
          }
          if (seen !== undefined) seen.add(key);
          else if (entries.length === SCAN_KEYS) seen = new Set([...entries.map(([k]) => k), key]);
        }
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        entries.push([key, value(depth + 1)]);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'obj', entries };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items: JsonNode[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return { t: 'arr', items };
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return { t: 'arr', items };
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return { t: 'str', v: str() };
    if (text.startsWith('true', i)) {
      i += 4;
      return { t: 'bool', v: true };
    }
    if (text.startsWith('false', i)) {
      i += 5;
      return { t: 'bool', v: false };
    }
    if (text.startsWith('null', i)) {
      i += 4;
      return { t: 'null' };
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (m === null) return fail(c === undefined ? 'unexpected end of input' : `unexpected character ${JSON.stringify(c)}`);
    if (m[1] === undefined && m[2] === undefined) {
      i += m[0].length;
      return { t: 'int', v: BigInt(m[0]) };
    }
    const f = Number(m[0]);
    if (!Number.isFinite(f)) fail('number out of range');
    i += m[0].length;
    return { t: 'num', v: f };
  };
  const v = value(0);
  ws();
  if (i < n) fail('trailing characters');
  return v;
}

/** The value of `key` in an object node (the last, should the key repeat), or undefined. */
export function member(o: JsonObject, key: string): JsonNode | undefined {
  const e = o.entries;
  for (let k = e.length - 1; k >= 0; k--) if (e[k]![0] === key) return e[k]![1];
  return undefined;
}

/** Own, enumerable, writable, even for keys like `__proto__`. */
export function setKey<T>(o: Record<string, T>, k: string, v: T): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** A node as a value: integers within 2^53 become numbers, larger ones stay bigint; key order kept, a repeated key's last value wins. */
export function toJsonValue(n: JsonNode): JsonValue {
  switch (n.t) {
    case 'obj': {
      const out: Record<string, JsonValue> = {};
      for (const [k, v] of n.entries) setKey(out, k, toJsonValue(v));
      return out;
    }
    case 'arr':
      return n.items.map(toJsonValue);
    case 'int':
      return n.v >= BigInt(Number.MIN_SAFE_INTEGER) && n.v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n.v) : n.v;
    case 'null':
      return null;
    default:
      return n.v;
  }
}

/** A string as a JSON string literal (as serde_json writes it: raw UTF-8, control characters escaped). */
export const jsonString = (s: string): string => JSON.stringify(s);

function scalar(v: null | boolean | number | bigint | string): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  return JSON.stringify(v);
}

/** Compact JSON (serde_json's `to_string`): no whitespace, integers exact. */
export function compactJson(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return scalar(v);
  if (Array.isArray(v)) return `[${v.map(compactJson).join(',')}]`;
  return `{${Object.keys(v).map((k) => `${jsonString(k)}:${compactJson(v[k]!)}`).join(',')}}`;
}

/**
 * Pretty JSON as serde_json's `to_string_pretty`: two spaces, `"key": value`, empty
 * containers as `[]`/`{}`, integers exact.
 */
export function prettyJson(v: JsonValue, indent = ''): string {
  if (v === null || typeof v !== 'object') return scalar(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + prettyJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${jsonString(k)}: ${prettyJson(v[k]!, inner)}`).join(',\n')}\n${indent}}`;
}
