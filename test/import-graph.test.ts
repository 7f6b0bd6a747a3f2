/**
 * The import graph of src/ (every `import`/`export … from`, type-only ones included, and
 * dynamic `import('…')`), read from the .ts sources: no cycle between files, none between the
 * top-level folders, and the folder rules of issue 11 (runtime/ does not import recipe/,
 * nstar/ does not import launch/); and the `#include "…"` graph of the C core (native/src,
 * native/test): no cycle, headers only. Pure: reads files only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SRC = join(ROOT, 'src');

/** Folder pairs that must have no import from the first into the second. */
const FORBIDDEN: readonly [from: string, to: string, why: string][] = [
  ['runtime', 'recipe', 'the overlay and writable-root mounts live in runtime/mount/'],
  ['nstar', 'launch', 'the seccomp tables live in manifest/'],
];

/**
 * Cycles that exist and are being removed: each entry must still be a cycle (else the test
 * asks for its removal here), and no other cycle may appear.
 */
const KNOWN_CYCLES: readonly (readonly string[])[] = [];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The text with comments blanked out; string and template literals kept (a `//` in a URL stays). */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    const next = text[i + 1];
    if (c === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? text.length : end + 2;
      out += ' ';
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const STATIC = /(?:^|[\s;}])(?:import|export)\s(?:[^;'"`]*?\sfrom\s*)?(['"])([^'"]+)\1/g;
const DYNAMIC = /\bimport\s*\(\s*(['"])([^'"]+)\1\s*\)/g;

/** Module specifiers imported by a source text. */
export function specifiers(text: string): string[] {
  const code = stripComments(text);
  return [...code.matchAll(STATIC), ...code.matchAll(DYNAMIC)].map((m) => m[2]!);
}

/** The src/-relative files each src/ file imports (relative specifiers only; packages are not edges). */
function graph(): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const file of sources(SRC)) {
    const deps = new Set<string>();
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) continue;
      const base = resolve(dirname(file), spec);
      const target = [base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')].find((p) => p.endsWith('.ts') && existsSync(p));
      assert.ok(target, `${relative(SRC, file)}: import '${spec}' resolves to no .ts file`);
      deps.add(relative(SRC, target));
    }
    g.set(relative(SRC, file), deps);
  }
  return g;
}

/** Strongly connected components with more than one node (or a self-import), each sorted. */
function cycles(g: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n);
    n++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || g.get(v)?.has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

const folder = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : file);

test('the import parser sees static, type-only, re-export and dynamic imports, and skips comments', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "import {\n  c,\n  type D,\n} from './c.js';",
    "export { e } from './e.js';",
    "export * from './f.js';",
    "import './g.js';",
    "const h = await import('./h.js');",
    "// import { x } from './commented.js';",
    "/* export { y } from './block.js'; */",
    "const url = 'tcp://host'; import { i } from 'node:fs';",
  ].join('\n');
  assert.deepEqual(specifiers(text).sort(), ['../b.js', './a.js', './c.js', './e.js', './f.js', './g.js', './h.js', 'node:fs']);
});

test('src/ has no import cycle between files other than the known ones, and each known one is still there', () => {
  const g = graph();
  assert.ok(g.size > 50 && [...g.values()].some((d) => d.size > 0), `the parser found ${g.size} files`);
  const found = cycles(g).map((c) => c.join(' -> '));
  const known = KNOWN_CYCLES.map((c) => [...c].sort().join(' -> '));
  assert.deepEqual(found.filter((c) => !known.includes(c)), [], 'new import cycles in src/');
  assert.deepEqual(known.filter((c) => !found.includes(c)), [], 'these cycles are gone: remove them from KNOWN_CYCLES');
});

test('the top-level folders of src/ import each other without a cycle', () => {
  const g = new Map<string, Set<string>>();
  for (const [file, deps] of graph()) {
    for (const d of deps) {
      if (folder(d) === folder(file)) continue;
      if (!g.has(folder(file))) g.set(folder(file), new Set());
      g.get(folder(file))!.add(folder(d));
    }
  }
  assert.ok(g.get('runtime')?.has('launch'), 'runtime/ imports launch/ (the parser sees folder edges)');
  assert.deepEqual(cycles(g), []);
});

test('folder rules: runtime/ does not import recipe/, nstar/ does not import launch/', () => {
  const broken: string[] = [];
  for (const [file, deps] of graph()) {
    for (const [from, to, why] of FORBIDDEN) {
      if (folder(file) !== from) continue;
      for (const d of deps) if (folder(d) === to) broken.push(`${file} imports ${d} (${why})`);
    }
  }
  assert.deepEqual(broken, []);
});

/** `#include "…"` edges of the C core (native/src and native/test), each resolved to a file. */
function cGraph(): Map<string, Set<string>> {
  const g = new Map<string, Set<string>>();
  for (const dir of ['native/src', 'native/test']) {
    for (const name of readdirSync(join(ROOT, dir))) {
      if (!/\.[ch]$/.test(name)) continue;
      const file = join(ROOT, dir, name);
      const deps = new Set<string>();
      // Block and line comments blanked first: an include inside a comment is no edge.
      const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
      for (const m of code.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
        const target = [join(dirname(file), m[1]!), join(ROOT, 'native/src', m[1]!)].find((p) => existsSync(p));
        assert.ok(target, `${dir}/${name}: #include "${m[1]}" resolves to no file in its directory or native/src`);
        assert.ok(target.endsWith('.h'), `${dir}/${name}: includes ${m[1]}, which is not a header`);
        deps.add(relative(ROOT, target));
      }
      g.set(relative(ROOT, file), deps);
    }
  }
  return g;
}

test('the C core has no #include cycle, and includes headers only', () => {
  const g = cGraph();
  assert.ok(g.get('native/src/core.h')?.has('native/src/plan.h'), 'the parser sees core.h -> plan.h');
  assert.deepEqual(cycles(g), []);
});
