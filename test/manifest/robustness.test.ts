import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../../src/common/errors.js';
import { UPSTREAM_EXAMPLES } from '../helpers/fixtures.js';
import { parseManifest, serializeManifest, type Format } from '../../src/manifest/index.js';

/** A small deterministic PRNG (mulberry32), so that a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = [
  '!fifo', '!args', '!namespace', '!idle', '~', 'null', '0777', '0o777', '0x', '-1', '18446744073709551616', '{}', '[]', '"',
  "'", ':', '- ', '\n', '  ', '#', '&a', '*a', '<<: *a', 'type: bind', 'type: resource', 'version: 1', '..', '/', '\0', 'é',
  '{"fifo": {"priority": 1}}', '= 1', '[x]', ',', 'true', '1.5', '10MB', 'NORTHSTAR_NAME',
];

function mutate(text: string, r: () => number): string {
  let t = text;
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const pos = Math.floor(r() * (t.length + 1));
    const op = r();
    if (op < 0.35) t = t.slice(0, pos) + TOKENS[Math.floor(r() * TOKENS.length)]! + t.slice(pos);
    else if (op < 0.7) t = t.slice(0, pos) + t.slice(pos + 1 + Math.floor(r() * 8));
    else {
      const lines = t.split('\n');
      const a = Math.floor(r() * lines.length);
      const b = Math.floor(r() * lines.length);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      t = lines.join('\n');
    }
  }
  return t;
}

test('mutated manifests either parse or fail with a ValidationError, and what parses round-trips', () => {
  const dir = UPSTREAM_EXAMPLES;
  const seeds = readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'manifest.yaml')))
    .map((d) => readFileSync(join(dir, d, 'manifest.yaml'), 'utf8'));
  seeds.push(...seeds.map((s) => serializeManifest(parseManifest(s), 'json')));
  const r = rng(0x5eed);
  let ok = 0;
  let rejected = 0;
  for (let i = 0; i < 1500; i++) {
    const text = mutate(seeds[Math.floor(r() * seeds.length)]!, r);
    const format: Format | undefined = [undefined, 'yaml', 'json', 'toml'][Math.floor(r() * 4)] as Format | undefined;
    try {
      const m = parseManifest(text, format);
      assert.deepEqual(parseManifest(serializeManifest(m)), m, `round trip of a mutated manifest:\n${text}`);
      ok++;
    } catch (e) {
      if (!(e instanceof ValidationError)) assert.fail(`unexpected ${String(e)} for:\n${JSON.stringify(text)}\n${(e as Error).stack}`);
      assert.ok(e.issues.length > 0 && e.issues.every((x) => x.rule.length > 0), 'every issue has a rule');
      assert.ok(!e.message.includes('\n    at '), 'no stack trace in the message');
      rejected++;
    }
  }
  assert.ok(ok > 50 && rejected > 50, `both outcomes exercised (ok ${ok}, rejected ${rejected})`);
});
