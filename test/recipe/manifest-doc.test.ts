/**
 * docs/manifest.md against the manifest schema it documents: every top-level field of the
 * schema has its `### \`field\`` section under "## Fields" and every mount type its
 * `#### \`type: x\`` section, nothing documented there is absent from the schema, every field
 * section has a YAML example, and every example is a valid manifest (a fragment is merged
 * into a minimal one) that `sextant pack` would not refuse. Pure: reads files only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { manifestJsonSchema, parseManifest } from '../../src/manifest/index.js';
import { startProblems } from '../../src/recipe/check.js';

const DOC = readFileSync(fileURLToPath(new URL('../../../docs/manifest.md', import.meta.url)), 'utf8');
const schema = manifestJsonSchema() as { properties: Record<string, { additionalProperties?: { oneOf?: { properties: { type: { const: string } } }[] } }> };

/** The "## Fields" part of the document. */
function fieldsPart(): string {
  const start = DOC.indexOf('\n## Fields\n');
  assert.ok(start >= 0, 'docs/manifest.md has a "## Fields" section');
  const end = DOC.indexOf('\n## ', start + 1);
  return DOC.slice(start, end < 0 ? undefined : end);
}

/** Sections keyed by heading text: `### \`x\`` (level 3) or `#### \`type: x\`` (level 4). */
function sections(text: string, level: 3 | 4): Map<string, string> {
  const re = level === 3 ? /^### `([a-z_]+)`$/gm : /^#### `type: ([a-z_]+)`$/gm;
  const heads = [...text.matchAll(re)];
  const out = new Map<string, string>();
  // A section ends at the next heading of its level or above.
  const next = level === 3 ? /^#{2,3} /m : /^#{2,4} /m;
  for (const m of heads) {
    assert.ok(!out.has(m[1]!), `${m[1]} is documented twice`);
    const from = m.index + m[0].length;
    const end = text.slice(from).search(next);
    out.set(m[1]!, text.slice(from, end < 0 ? undefined : from + end));
  }
  return out;
}

const yamlBlocks = (text: string): string[] => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

const BASE = 'name: doc\nversion: 1.0.0\ninit: /bin/app\nuid: 1000\ngid: 1000\n';

/** A fragment merged into BASE: its top-level keys replace BASE's. */
function asManifest(block: string): string {
  if (block.startsWith('# complete\n')) return block;
  const keys = new Set([...block.matchAll(/^([a-z_]+):/gm)].map((m) => m[1]!));
  return BASE.split('\n').filter((l) => !keys.has(l.split(':')[0]!)).join('\n') + block;
}

test('every top-level field of the schema is documented, and nothing documented is absent from the schema', () => {
  const documented = [...sections(fieldsPart(), 3).keys()].sort();
  const inSchema = Object.keys(schema.properties).sort();
  assert.deepEqual(
    documented.filter((f) => !inSchema.includes(f)),
    [],
    'documented but not in the schema',
  );
  assert.deepEqual(
    inSchema.filter((f) => !documented.includes(f)),
    [],
    'in the schema but not documented in docs/manifest.md',
  );
});

test('every mount type of the schema is documented, and nothing else', () => {
  const variants = schema.properties['mounts']?.additionalProperties?.oneOf ?? [];
  const types = variants.map((v) => v.properties.type.const).sort();
  assert.ok(types.length >= 8, `mount types found in the JSON Schema: ${types.join(', ')}`);
  const mounts = sections(fieldsPart(), 3).get('mounts') ?? '';
  assert.deepEqual([...sections(mounts, 4).keys()].sort(), types);
});

test('every field and mount type has an example, and every example is a manifest that packs', () => {
  const fields = sections(fieldsPart(), 3);
  for (const [field, body] of fields) {
    const own = body.split(/^#### /m)[0]!;
    assert.ok(yamlBlocks(own).length > 0, `### \`${field}\` has a YAML example`);
  }
  for (const [type, body] of sections(fields.get('mounts') ?? '', 4)) {
    const blocks = yamlBlocks(body);
    assert.ok(blocks.length > 0, `#### \`type: ${type}\` has a YAML example`);
    assert.ok(blocks.every((b) => new RegExp(`type: ${type}\\b`).test(b)), `the example of type ${type} uses it`);
  }
  const all = yamlBlocks(DOC);
  assert.ok(all.length >= 30, `${all.length} examples`);
  for (const block of all) {
    const text = asManifest(block);
    let m;
    try {
      m = parseManifest(text);
    } catch (e) {
      assert.fail(`this example of docs/manifest.md is not a valid manifest: ${(e as Error).message}\n${text}`);
    }
    assert.deepEqual(startProblems(m), [], `sextant pack would refuse this example:\n${text}`);
  }
});
