import assert from 'node:assert/strict';
import { ValidationError } from '../../src/common/errors.js';
import { parseManifest, type Format, type Manifest } from '../../src/manifest/index.js';

export const BASE = 'name: hello\nversion: 0.0.1\ninit: /binary\nuid: 1000\ngid: 1001\n';
export const RESOURCE_BASE = 'name: res\nversion: 0.0.1\nuid: 1000\ngid: 1001\n';

/** The issues of an invalid manifest as `path: rule` lines (fails if it parses). */
export function issues(text: string, hint?: Format): string[] {
  try {
    parseManifest(text, hint);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
    assert.ok(!e.message.includes('    at '), 'no stack trace in the message');
    return e.issues.map((i) => (i.path ? `${i.path}: ${i.rule}` : i.rule));
  }
  assert.fail(`expected the manifest to be rejected:\n${text}`);
}

/** Assert that the manifest is rejected with exactly these issues. */
export function rejects(text: string, expected: string[], hint?: Format): void {
  assert.deepEqual(issues(text, hint), expected);
}

export function accepts(text: string, hint?: Format): Manifest {
  return parseManifest(text, hint);
}
