/**
 * The cgroup ownership record as a journal (pure file logic: plain directories stand in for
 * cgroups, no root needed). What an earlier run left is read back exactly, a torn last
 * append is ignored, the version-1 record of an older runtime is still read, and the
 * journal is rewritten whole once it has grown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupOwnership, OWNERSHIP_FILE } from '../../src/runtime/cgroups/ownership.js';
import { recordingLog } from './npk-fixture.js';

function setup(t: { after(f: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'ns-owned-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = join(dir, 'run');
  mkdirSync(run);
  const cg = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d);
    return d;
  };
  return { dir, run, cg, file: join(run, OWNERSHIP_FILE) };
}

test('what a run recorded is what the next run finds, made and pending, forgotten ones dropped', async (t) => {
  const { run, cg, file } = setup(t);
  const { ownership, leftovers } = await CgroupOwnership.open(run, recordingLog());
  assert.deepEqual(leftovers, []);
  await ownership.cleanLeftovers(leftovers, 1000);
  const a = cg('a');
  const b = cg('b');
  await ownership.intend(a);
  await ownership.made(a);
  await ownership.intend(b);
  await ownership.made(b);
  await ownership.intend(join(a, 'pending'));
  await ownership.forget(b);
  assert.ok(await ownership.owns(a));
  assert.ok(!(await ownership.owns(b)));
  // One header and one line per change: appended, not rewritten.
  assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 1 + 6);
  await ownership.close();

  const again = await CgroupOwnership.open(run, recordingLog());
  const st = statSync(a);
  assert.deepEqual(again.leftovers, [{ dir: a, dev: st.dev, ino: st.ino }, { dir: join(a, 'pending') }]);
});

test('a torn last append is ignored; the lines before it count', async (t) => {
  const { run, cg, file } = setup(t);
  const { ownership, leftovers } = await CgroupOwnership.open(run, recordingLog());
  await ownership.cleanLeftovers(leftovers, 1000);
  const a = cg('a');
  await ownership.intend(a);
  await ownership.made(a);
  await ownership.close();
  appendFileSync(file, '{"forget":"' + a.slice(0, 5));
  const again = await CgroupOwnership.open(run, recordingLog());
  assert.deepEqual(again.leftovers.map((e) => e.dir), [a]);
  assert.equal(typeof again.leftovers[0]!.ino, 'number');
});

test('the version-1 record of an older runtime is read; a record of another boot is dropped', async (t) => {
  const { run, file } = setup(t);
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  writeFileSync(file, JSON.stringify({ version: 1, boot, entries: [{ dir: '/x/y', dev: 1, ino: 2 }, { dir: '/x/z' }, { dir: 'relative' }] }));
  assert.deepEqual((await CgroupOwnership.open(run, recordingLog())).leftovers, [{ dir: '/x/y', dev: 1, ino: 2 }, { dir: '/x/z' }]);
  writeFileSync(file, JSON.stringify({ version: 2, boot: 'another boot' }) + '\n{"intend":"/x/y"}\n');
  assert.deepEqual((await CgroupOwnership.open(run, recordingLog())).leftovers, []);
  writeFileSync(file, 'not json at all');
  const log = recordingLog();
  assert.deepEqual((await CgroupOwnership.open(run, log)).leftovers, []);
  assert.ok(log.lines.some((l) => /not a valid record/.test(l.msg)), JSON.stringify(log.lines));
});

test('a long journal is rewritten whole, and the file goes when nothing is recorded', async (t) => {
  const { run, cg, file } = setup(t);
  const { ownership, leftovers } = await CgroupOwnership.open(run, recordingLog());
  await ownership.cleanLeftovers(leftovers, 1000);
  const keep = cg('keep');
  await ownership.intend(keep);
  await ownership.made(keep);
  const other = cg('other');
  for (let i = 0; i < 600; i++) {
    await ownership.intend(other);
    await ownership.forget(other);
  }
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.ok(lines.length < 1000, `rewritten (${lines.length} lines)`);
  const again = await CgroupOwnership.open(run, recordingLog());
  assert.deepEqual(again.leftovers.map((e) => e.dir), [keep]);
  await ownership.forget(keep);
  assert.ok(!existsSync(file), 'no record when nothing is recorded');
  await ownership.close();
});
