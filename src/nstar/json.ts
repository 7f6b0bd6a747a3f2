/**
 * JSON output of nstar: the writers of common/json.ts (pretty as serde_json's
 * `to_string_pretty`, compact; 64-bit integers exact), and the wire forms as values.
 */
import { encodeResponse } from '../api/codec.js';
import { parseJson, toJsonValue, type JsonValue } from '../common/json.js';
import type { Container } from '../common/container.js';
import type { ContainerData } from '../api/model.js';

export { compactJson, prettyJson } from '../common/json.js';

/** A wire encoding (text the codec wrote) as a value: integers beyond 2^53 stay bigint. */
export function wireValue(text: string): JsonValue {
  return toJsonValue(parseJson(text));
}

/** `ContainerData` exactly as it is on the wire (the manifest in upstream's key order). */
export function containerDataJson(container: Container, data: ContainerData): JsonValue {
  const v = wireValue(encodeResponse({ inspect: { ok: { container, data } } })) as { inspect: { ok: { data: JsonValue } } };
  return v.inspect.ok.data;
}
