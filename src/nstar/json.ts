/**
 * JSON output of nstar: pretty printed as serde_json's `to_string_pretty` (two spaces,
 * `"key": value`, empty containers as `[]`/`{}`), with 64-bit integers kept exact.
 */
import { parseJson } from '../api/json.js';
import { encodeResponse, jsonValue } from '../api/codec.js';
import type { Container } from '../common/container.js';
import type { ContainerData, JsonValue } from '../api/model.js';

export function prettyJson(v: JsonValue, indent = ''): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? JSON.stringify(v) : 'null';
  if (typeof v === 'string' || typeof v === 'boolean') return JSON.stringify(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + prettyJson(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v);
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${prettyJson(v[k]!, inner)}`).join(',\n')}\n${indent}}`;
}

/** Compact JSON with exact integers. */
export function compactJson(v: JsonValue): string {
  if (v === null || typeof v !== 'object') return prettyJson(v);
  if (Array.isArray(v)) return `[${v.map(compactJson).join(',')}]`;
  return `{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${compactJson(v[k]!)}`).join(',')}}`;
}

/** A parsed JSON node as a value (the codec's own conversion): integers beyond 2^53 stay bigint. */
export const fromNode = jsonValue;

/** `ContainerData` exactly as it is on the wire (the manifest in upstream's key order). */
export function containerDataJson(container: Container, data: ContainerData): JsonValue {
  const text = encodeResponse({ inspect: { ok: { container, data } } });
  const v = fromNode(parseJson(text)) as { inspect: { ok: { data: JsonValue } } };
  return v.inspect.ok.data;
}
