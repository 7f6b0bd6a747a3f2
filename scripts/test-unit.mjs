#!/usr/bin/env node
// `npm run test:unit` (after the build): the test files that test/suites.txt marks `unit`,
// as a user without root: started as root, the tests run as uid/gid 65534, so a test that
// needs root cannot pass here by accident. Fails when the list does not name every test file
// exactly once, and when a `unit` file ran no test at all (it then belongs to `system`).
// Extra arguments go to `node --test` (e.g. --test-name-pattern=...).
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NOBODY = 65534;

function fail(message) {
  console.error(`test:unit: ${message}`);
  process.exit(1);
}

function testFiles(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(p));
    else if (e.name.endsWith('.test.ts')) out.push(relative(ROOT, p));
  }
  return out;
}

const classes = new Map();
readFileSync(join(ROOT, 'test', 'suites.txt'), 'utf8')
  .split('\n')
  .forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const [cls, file] = line.split(/\s+/);
    if ((cls !== 'unit' && cls !== 'system') || !file) fail(`test/suites.txt:${i + 1}: expected 'unit <file>' or 'system <file> <why>', got ${JSON.stringify(line)}`);
    if (classes.has(file)) fail(`test/suites.txt:${i + 1}: ${file} is listed twice`);
    classes.set(file, cls);
  });
const onDisk = testFiles(join(ROOT, 'test'));
const unlisted = onDisk.filter((f) => !classes.has(f));
const missing = [...classes.keys()].filter((f) => !onDisk.includes(f));
if (unlisted.length > 0) fail(`not in test/suites.txt (add each as unit or system): ${unlisted.join(', ')}`);
if (missing.length > 0) fail(`listed in test/suites.txt but not in test/: ${missing.join(', ')}`);

const units = [...classes].filter(([, c]) => c === 'unit').map(([f]) => join(ROOT, 'dist', f.replace(/\.ts$/, '.js')));
const unbuilt = units.filter((f) => !existsSync(f));
if (unbuilt.length > 0) fail(`not built (run npm run build): ${unbuilt.map((f) => relative(ROOT, f)).join(', ')}`);

const asRoot = process.getuid?.() === 0;
const work = mkdtempSync(join(tmpdir(), 'ns-test-unit-'));
const drop = asRoot ? { uid: NOBODY, gid: NOBODY } : {};
if (asRoot) {
  chownSync(work, NOBODY, NOBODY);
  const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(units[0])}, require('fs').constants.R_OK)`], { ...drop, stdio: 'ignore' });
  if (probe.status !== 0) {
    rmSync(work, { recursive: true, force: true });
    fail(`started as root, the unit tests run as uid ${NOBODY}, which cannot read ${ROOT}: run npm run test:unit as a normal user, or from a checkout every user can read`);
  }
  console.log(`test:unit: started as root; running the unit tests as uid ${NOBODY}`);
}
const counts = join(work, 'counts.json');
const r = spawnSync(
  process.execPath,
  [
    '--test',
    '--test-concurrency=1',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${pathToFileURL(join(ROOT, 'scripts', 'test-unit-reporter.mjs')).href}`,
    `--test-reporter-destination=${counts}`,
    ...process.argv.slice(2),
    ...units,
  ],
  { ...drop, cwd: ROOT, stdio: 'inherit', env: asRoot ? { ...process.env, HOME: work, USER: 'nobody', LOGNAME: 'nobody' } : process.env },
);
let result;
try {
  result = JSON.parse(readFileSync(counts, 'utf8'));
} catch {
  result = null;
}
rmSync(work, { recursive: true, force: true });
if (r.error) fail(`node --test: ${r.error.message}`);
if (result === null) fail(`node --test wrote no counts (exit ${r.status ?? r.signal})`);
const filtered = process.argv.slice(2).some((a) => a.startsWith('--test-name-pattern') || a.startsWith('--test-skip-pattern') || a === '--test-only');
if (!filtered && result.withoutFile === 0) {
  const idle = units.filter((f) => !(result.files[f]?.pass > 0)).map((f) => relative(join(ROOT, 'dist'), f).replace(/\.js$/, '.ts'));
  if (idle.length > 0) fail(`no test ran in ${idle.join(', ')}: each needs root or a tool throughout; mark it system in test/suites.txt`);
}
const total = Object.values(result.files).reduce((a, c) => ({ pass: a.pass + c.pass, skip: a.skip + c.skip, fail: a.fail + c.fail }), { pass: 0, skip: 0, fail: 0 });
console.log(`test:unit: ${units.length} files, ${total.pass} tests passed, ${total.skip} skipped (need root or a tool), ${total.fail} failed`);
process.exit(r.status ?? 1);
