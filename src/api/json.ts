/**
 * A strict RFC 8259 JSON parser for console lines. Unlike JSON.parse it keeps integers
 * exact (bigint), tells integers from floats (serde rejects `1.0` for an integer field),
 * rejects duplicate object keys and lone surrogate escapes (as serde_json does), and
 * records where each object starts and ends so an embedded manifest can be handed to the
 * manifest parser as text.
 */

export type JNode =
  | { t: 'obj'; entries: Map<string, JNode>; start: number; end: number }
  | { t: 'arr'; items: JNode[] }
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' };

/** A JSON syntax error at a character offset. */
export class JsonSyntaxError extends Error {
  constructor(
    readonly offset: number,
    what: string,
  ) {
    super(`${what} at column ${offset + 1}`);
  }
}

const MAX_DEPTH = 128; // serde_json's recursion limit

const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

export function parseJson(text: string): JNode {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    throw new JsonSyntaxError(i, what);
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
  const value = (depth: number): JNode => {
    if (depth > MAX_DEPTH) fail('recursion limit exceeded');
    ws();
    const c = text[i];
    if (c === '{') {
      const start = i;
      i++;
      const entries = new Map<string, JNode>();
      ws();
      if (text[i] === '}') {
        i++;
        return { t: 'obj', entries, start, end: i };
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a string key');
        const keyAt = i;
        const key = str();
        if (entries.has(key)) {
          i = keyAt;
          fail(`duplicate key ${JSON.stringify(key)}`);
        }
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        entries.set(key, value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return { t: 'obj', entries, start, end: i };
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      const items: JNode[] = [];
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
    i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) return { t: 'int', v: BigInt(m[0]) };
    const f = Number(m[0]);
    if (!Number.isFinite(f)) fail('number out of range');
    return { t: 'num', v: f };
  };
  const v = value(0);
  ws();
  if (i < n) fail('trailing characters');
  return v;
}
