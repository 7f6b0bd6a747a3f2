/**
 * test/suites.txt names every test file exactly once, as `unit` (run by `npm run test:unit`
 * without root) or `system` (root or apt tools, with the reason), so a new test file cannot
 * silently fall out of either run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.ts')) out.push(relative(ROOT, p));
  }
  return out.sort();
}

test('test/suites.txt classifies every test file exactly once, and only existing ones', () => {
  const seen = new Map<string, string>();
  const problems: string[] = [];
  readFileSync(join(ROOT, 'test', 'suites.txt'), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const [cls, file, ...why] = line.split(/\s+/).filter((w) => w !== '');
      if ((cls !== 'unit' && cls !== 'system') || file === undefined) problems.push(`line ${i + 1}: not '<unit|system> <file>': ${line}`);
      else if (cls === 'system' && why.length === 0) problems.push(`line ${i + 1}: a system file says why: ${line}`);
      else if (cls === 'unit' && why.length > 0) problems.push(`line ${i + 1}: a unit file takes no reason: ${line}`);
      else if (seen.has(file)) problems.push(`line ${i + 1}: ${file} listed twice`);
      else seen.set(file, cls);
    });
  const onDisk = testFiles(join(ROOT, 'test'));
  for (const f of onDisk) if (!seen.has(f)) problems.push(`${f}: not in test/suites.txt (add it as unit or system)`);
  for (const f of seen.keys()) if (!onDisk.includes(f)) problems.push(`${f}: listed but no such test file`);
  assert.deepEqual(problems, []);
  assert.ok([...seen.values()].includes('unit') && [...seen.values()].includes('system'));
  assert.equal(seen.get('test/suites.test.ts'), 'unit');
});
