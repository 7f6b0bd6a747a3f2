/**
 * Seccomp as the C core installs it: with the `default` profile rules of the plan
 * builder and hand-written values/mask rules, run the test container's `syscall`
 * command and check what passes and what is killed with SIGSYS (31). Every listed value
 * of a `values` rule allows (upstream only matched the first).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { Launcher } from '../../src/launch/launcher.js';
import type { SeccompRule } from '../../src/launch/plan.js';
import { defaultProfileRules } from '../../src/launch/seccomp-profile.js';
import { buildCore, REPO, run, shPlan, skipReason } from './core-fixture.js';

const TC_DIR = join(REPO, 'examples/test-container');
const TC_BIN = join(TC_DIR, 'build/test-container');

function testContainer(): string | null {
  if (!existsSync(join(TC_DIR, 'Makefile'))) return 'examples/test-container is not in this checkout';
  try {
    execFileSync('make', ['-s', '-C', TC_DIR], { stdio: 'inherit' });
  } catch (e) {
    return `building the test container failed: ${(e as Error).message}`;
  }
  return existsSync(TC_BIN) ? null : 'the test container was not built';
}

const skip = skipReason() ?? testContainer();
const launcher = new Launcher();

before(() => {
  if (!skip) buildCore();
});

function makeRoot(t: TestContext): string {
  const root = mkdtempSync(join(tmpdir(), 'nsl-seccomp-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  chmodSync(root, 0o755);
  mkdirSync(join(root, 'proc'));
  copyFileSync(TC_BIN, join(root, 'test-container'));
  chmodSync(join(root, 'test-container'), 0o755);
  return root;
}

async function syscall(root: string, rules: SeccompRule[], args: string[], capabilities: number[] = []) {
  const plan = shPlan(root, '', {
    path: '/test-container',
    argv: ['test-container', 'syscall', ...args],
    mounts: [],
    capabilities,
    seccomp: { enabled: true, rules },
  });
  const r = await run(launcher, plan);
  return { status: r.status, out: r.stdout.trim().split('\n').pop() ?? '' };
}

test('default profile: every personality value passes, others are killed with 31', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const rules = defaultProfileRules([]);
  for (const v of ['0', '8', '0x20000', '0x20008', '0xffffffff']) {
    const r = await syscall(root, rules, ['personality', v]);
    assert.deepEqual(r.status, { code: 0 }, `personality ${v}`);
    assert.match(r.out, /^syscall personality: ret=\d+ errno=0$/);
  }
  assert.deepEqual((await syscall(root, rules, ['personality', '4'])).status, { signal: 31 });
  assert.deepEqual((await syscall(root, rules, ['uname'])).status, { code: 0 });
  // not in the base list and no capability that would add it
  assert.deepEqual((await syscall(root, rules, ['ioperm', '0', '1', '1'])).status, { signal: 31 });
});

test('default profile: clone only with capabilities, and then only without namespace flags', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const SIGCHLD = '17';
  assert.deepEqual((await syscall(root, defaultProfileRules([]), ['clone', SIGCHLD])).status, { signal: 31 });
  const withCaps = defaultProfileRules(['CAP_KILL']);
  const ok = await syscall(root, withCaps, ['clone', SIGCHLD], [5]);
  assert.deepEqual(ok.status, { code: 0 });
  assert.match(ok.out, /^syscall clone: ret=\d+ errno=0$/);
  // CLONE_NEWUTS (0x04000000) is inside 0x7E020000: killed
  assert.deepEqual((await syscall(root, withCaps, ['clone', String(0x04000000 | 17)], [5])).status, { signal: 31 });
});

test('values and mask rules: either allows; anything else is killed', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  // upstream's test: delete_module !args {index 1, values [1], mask 0x06}
  const rules: SeccompRule[] = [
    ...defaultProfileRules([]),
    { syscall: 'delete_module', kind: 'values', index: 1, values: [1, 0x100] },
    { syscall: 'delete_module', kind: 'mask', index: 1, mask: 0x06 },
  ];
  for (const flags of ['1', '0x100', '4', '2', '6', '0']) {
    const r = await syscall(root, rules, ['delete_module', '0', flags]);
    assert.deepEqual(r.status, { code: 0 }, `flags ${flags}`);
    assert.match(r.out, /^syscall delete_module: ret=-1 errno=E[A-Z]+$/);
  }
  for (const flags of ['7', '0x101', '8']) {
    assert.deepEqual((await syscall(root, rules, ['delete_module', '0', flags])).status, { signal: 31 }, `flags ${flags}`);
  }
});

test('a rule for a syscall unknown to this architecture is skipped', { skip: skip ?? false }, async (t) => {
  const root = makeRoot(t);
  const rules: SeccompRule[] = [...defaultProfileRules([]), { syscall: 'no_such_syscall_anywhere', kind: 'any' }, { syscall: 'socketcall', kind: 'any' }];
  assert.deepEqual((await syscall(root, rules, ['uname'])).status, { code: 0 });
});
