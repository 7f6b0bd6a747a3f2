/**
 * Issue 13's "done when": docs/recipes.md's "Your first image" walkthrough, run as written
 * (its shell block, taken from the doc) against a real runtime, with the tools on PATH as the
 * Quickstart leaves them: build a recipe app, install it, see its output with nstar logs,
 * change it, rebuild, replace it in one step and see the new output. Only two things are
 * adapted: the checkout's key (the runtime's) and the `nstar logs` lines, which poll the
 * container's kept output until the expected line is in (the app prints every 5 s), with a
 * deadline; `logs -f` would follow forever. Skipped when the Debian archive is not reachable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEY, startRuntime } from './runtime/harness.js';
import { debianBuildSkip } from './helpers/debian.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The first ```sh block after "## Your first image". */
function walkthrough(): string {
  const doc = readFileSync(join(ROOT, 'docs', 'recipes.md'), 'utf8');
  const at = doc.indexOf('## Your first image');
  assert.ok(at >= 0, 'docs/recipes.md has its walkthrough');
  const m = /```sh\n([\s\S]*?)```/.exec(doc.slice(at));
  assert.ok(m, 'the walkthrough has a sh block');
  return m[1]!;
}

test('docs/recipes.md: your first image, from recipe to a replaced running app', { timeout: 1_200_000 }, async (t) => {
  const why = await debianBuildSkip('the walkthrough');
  if (why) return t.skip(why);
  const block = walkthrough();
  // What the walkthrough promises, so a change of the doc is a change of this test.
  for (const step of ['sextant build Recipe', 'nstar install out/myapp-0.1.0.npk default', 'nstar start myapp', 'nstar logs myapp', "sed -i 's/hello/hi/' app.py", 'nstar install --replace out/myapp-0.1.0.npk default', 'nstar logs -f myapp']) {
    assert.ok(block.includes(step), `the walkthrough has: ${step}`);
  }
  const rt = await startRuntime(t, {});
  const dir = mkdtempSync(join(tmpdir(), 'ns-walkthrough-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // NS: a checkout whose target/keys/northstar.key is the key this runtime trusts.
  const ns = join(dir, 'ns');
  mkdirSync(join(ns, 'target', 'keys'), { recursive: true });
  copyFileSync(KEY, join(ns, 'target', 'keys', 'northstar.key'));
  // The tools on PATH, as scripts/link-tools.sh puts them after the Quickstart.
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const tool of ['nstar', 'sextant']) symlinkSync(join(ROOT, 'dist', 'src', 'cli', `${tool}.js`), join(bin, tool));
  const poll = (want: string): string => `i=0; until nstar logs myapp | grep -q '${want}'; do i=$((i+1)); [ $i -lt 600 ] || { echo 'no ${want} in nstar logs myapp' >&2; nstar logs myapp >&2; exit 1; }; sleep 0.2; done; nstar logs myapp`;
  const script = block
    .replace(/^NS=\S+;/m, `NS=${ns};`)
    .replace(/^nstar logs myapp .*$/m, poll('hello #1'))
    .replace(/^nstar logs -f myapp .*$/m, poll('hi #1'));
  const r = spawnSync('sh', ['-ec', script], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, NORTHSTAR_URL: rt.consoleUrl },
    timeout: 1_100_000,
  });
  assert.equal(r.status, 0, `the walkthrough failed:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^hello #1$/m, 'nstar logs showed the first build\'s output');
  assert.match(r.stdout, /^hi #1$/m, 'after the rebuild and replace, the new output');
  assert.match(r.stdout + r.stderr, /stopped|replaced/i, 'install --replace said what it did');
});
