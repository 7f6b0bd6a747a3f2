/**
 * Hostile packages against a real runtime (issue 9, "Unsigned YAML parsed before the
 * signature"): signature.yaml and the zip comment are read before the signature is checked,
 * and manifest.yaml of a trusted (keyless) repository is parsed without any signature. A
 * package whose unsigned parts are crafted YAML (alias bombs, deep nesting, many keys, one
 * error per byte) must be refused quickly, and must not hold the runtime's event loop: a
 * `list` from another client, sent repeatedly while the install is processed, answers
 * within a bound relative to an ordinary `list` (generous: the larger of 2 s and 20 times
 * the ordinary latency). Without the fix, the runtime was frozen for seconds to minutes
 * (the alias bomb in a keyless manifest for ever).
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError, type Client } from '../../src/client/index.js';
import { MAX_MANIFEST_SIZE } from '../../src/npk/reader.js';
import { billionLaughs, craftNpk, deepNesting, manyKeys, strayBraces } from '../helpers/craft-npk.js';
import { isRoot, tempDir } from '../helpers/tmp.js';
import { startRuntime, testNpks, type RuntimeOptions, type TestRuntime } from './harness.js';

const SIGNATURE_TAIL = `---\nsignature: ${Buffer.alloc(64, 1).toString('base64')}`;
const RESOURCE_MANIFEST = 'name: test-resource\nversion: 0.0.1\nuid: 1000\ngid: 1000\n';

async function setup(t: Parameters<typeof startRuntime>[0], opts: RuntimeOptions = {}): Promise<{ rt: TestRuntime; installer: Client; lister: Client }> {
  const rt = await startRuntime(t, { npks: [], ...opts });
  const installer = await rt.client();
  const lister = await rt.client();
  t.after(() => {
    installer.close();
    lister.close();
  });
  return { rt, installer, lister };
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await p;
  return { ms: performance.now() - started, value };
}

/** Median latency of an ordinary `list` on an idle runtime. */
async function ordinaryList(lister: Client): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < 7; i++) ms.push((await timed(lister.list())).ms);
  return ms.sort((a, b) => a - b)[3]!;
}

/**
 * Install `npk` from one client while another sends `list` after `list`; returns the install
 * error and the slowest `list`. A `list` that does not answer within `bound` fails the test
 * at once (and kills the frozen runtime, which could not even handle SIGTERM).
 */
async function installWhileListing(rt: TestRuntime, installer: Client, lister: Client, npk: string, repo: string, bound: number): Promise<{ error: unknown; installMs: number; slowest: number; lists: number }> {
  const started = performance.now();
  let settled = false;
  const install = installer.install(npk, repo).then(
    () => ({ error: undefined as unknown }),
    (error: unknown) => ({ error }),
  );
  const done = install.then((r) => {
    settled = true;
    return { ...r, installMs: performance.now() - started };
  });
  let slowest = 0;
  let lists = 0;
  while (!settled || lists === 0) {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      lister.list().then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), bound))),
    ]);
    clearTimeout(timer);
    if (!answered) {
      await rt.stop('SIGKILL');
      assert.fail(`a list from another client did not answer within ${bound} ms while ${npk} was installed (the runtime was frozen)`);
    }
    slowest = Math.max(slowest, performance.now() - t0);
    lists++;
  }
  const r = await done;
  return { ...r, slowest, lists };
}

function assertRefused(error: unknown, re: RegExp, what: string): void {
  assert.ok(error instanceof RuntimeError, `${what}: refused with a runtime error, got ${String(error)}`);
  assert.match(error.message, re, what);
}

/**
 * Install each crafted package (`craft` makes it from the case's text) while another client
 * lists: each is refused with its error, no list waits longer than 20x an ordinary one (at
 * least 2 s), and nothing is left in the repository directory.
 */
async function refusedWhileListing(
  t: TestContext,
  { rt, installer, lister }: { rt: TestRuntime; installer: Client; lister: Client },
  cases: readonly [string, string, RegExp][],
  craft: (what: string, text: string) => Promise<string>,
): Promise<void> {
  const ordinary = await ordinaryList(lister);
  const bound = Math.max(2000, 20 * ordinary);
  for (const [what, text, re] of cases) {
    const r = await installWhileListing(rt, installer, lister, await craft(what, text), 'default', bound);
    assertRefused(r.error, re, what);
    t.diagnostic(`${what}: refused in ${r.installMs.toFixed(0)} ms; ${r.lists} lists, slowest ${r.slowest.toFixed(0)} ms (ordinary ${ordinary.toFixed(1)} ms)`);
    assert.ok(r.slowest < bound, `${what}: slowest list ${r.slowest.toFixed(0)} ms, bound ${bound.toFixed(0)} ms`);
    assert.ok(r.installMs < 30_000, `${what}: refused in ${r.installMs.toFixed(0)} ms`);
  }
  assert.deepEqual(readdirSync(rt.repoDir), [], 'nothing left in the repository directory');
}

describe('hostile packages: crafted unsigned yaml never freezes the runtime', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('a ~500 KiB crafted signature.yaml is refused quickly while another client\'s list keeps answering', async (t) => {
    const dir = tempDir(t);
    const good = (await testNpks())['test-resource']!;
    const size = 500 << 10;
    const cases: [string, string, RegExp][] = [
      ['billion laughs', `${billionLaughs(size)}${SIGNATURE_TAIL}`, /signature\.yaml: 5\d{5} bytes, more than the limit of 4096/],
      ['deep nesting', `${deepNesting(size)}${SIGNATURE_TAIL}`, /signature\.yaml: 5\d{5} bytes, more than the limit of 4096/],
      ['many keys', `${manyKeys(size)}${SIGNATURE_TAIL}`, /signature\.yaml: 5\d{5} bytes, more than the limit of 4096/],
      ['stray braces', `${strayBraces(size)}\n${SIGNATURE_TAIL}`, /signature\.yaml: 5\d{5} bytes, more than the limit of 4096/],
      // Within the size bound: refused by the strict grammar at its first line.
      ['small billion laughs', `${billionLaughs(3500)}${SIGNATURE_TAIL}`, /signature\.yaml: line 1: l0: "&l0 \[lol, lol/],
    ];
    const ctx = await setup(t);
    await refusedWhileListing(t, ctx, cases, (what, signature) => craftNpk(good, join(dir, `${what.replace(/ /g, '-')}.npk`), { signature }));
    // The runtime is fine: the genuine package installs.
    await ctx.installer.install(good, 'default');
    assert.deepEqual((await ctx.lister.list()).map((c) => c.toString()), ['test-resource:0.0.1']);
  });

  test('a 64 KiB crafted zip comment is refused quickly (with and without a key) while another client\'s list keeps answering', async (t) => {
    const dir = tempDir(t);
    const good = (await testNpks())['test-resource']!;
    const cases: [string, string, RegExp][] = [
      ['stray braces', strayBraces(65535), /zip comment \(meta\): 65535 bytes, more than the limit of 4096/],
      ['many keys', manyKeys(65000).slice(0, 65535), /zip comment \(meta\): 65\d{3} bytes, more than the limit of 4096/],
      ['billion laughs', billionLaughs(65000).slice(0, 65535), /zip comment \(meta\): 65\d{3} bytes, more than the limit of 4096/],
      ['small deep nesting', deepNesting(4000), /zip comment \(meta\): line 1: a: "\[\[\[/],
    ];
    for (const key of [undefined, null] as const) {
      await t.test(key === null ? 'trusted repository' : 'signed repository', async (t) => {
        const ctx = await setup(t, { key });
        await refusedWhileListing(t, ctx, cases, (what, comment) => craftNpk(good, join(dir, `comment-${what.replace(/ /g, '-')}.npk`), { comment }));
      });
    }
  });

  test('trusted repository: a crafted manifest.yaml (alias bomb, error flood, oversize) is refused quickly while list keeps answering', async (t) => {
    const dir = tempDir(t);
    const good = (await testNpks())['test-resource']!;
    const cases: [string, string, RegExp][] = [
      ['billion laughs', billionLaughs(20_000, RESOURCE_MANIFEST), /manifest\.yaml: invalid yaml: more than 100000 nodes with aliases expanded/],
      ['stray braces', strayBraces(MAX_MANIFEST_SIZE), /manifest\.yaml: invalid yaml at line 1, column 1: /],
      ['many keys over the bound', manyKeys(500 << 10, RESOURCE_MANIFEST), /manifest\.yaml is 5\d{5} bytes, more than the limit of 65536/],
    ];
    const ctx = await setup(t, { key: null });
    await refusedWhileListing(t, ctx, cases, (what, manifest) => craftNpk(good, join(dir, `manifest-${what.replace(/ /g, '-')}.npk`), { manifest }));
    await ctx.installer.install(good, 'default');
    assert.deepEqual((await ctx.lister.list()).map((c) => c.toString()), ['test-resource:0.0.1']);
  });
});
