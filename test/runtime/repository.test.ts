import { test } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from '../../src/common/container.js';
import { NorthstarError } from '../../src/common/errors.js';
import { readPublicKey } from '../../src/npk/keys.js';
import {
  FsRepository, MemRepository, findDuplicates, openRepositories, type Repository,
} from '../../src/runtime/repository/index.js';
import { parseConfig } from '../../src/runtime/config.js';
import { tempDir } from '../helpers/tmp.js';
import { chunks, makeNpk, otherKeyPair, recordingLog, tamperManifest, upstreamPublicKey, PUB, flipByte } from './npk-fixture.js';

const HELLO = Container.parse('hello:0.0.1');

function code(c: string, msg?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof NorthstarError, `expected a NorthstarError, got ${String(e)}`);
    assert.equal(e.code, c, e.message);
    if (msg) assert.match(e.message, msg);
    return true;
  };
}

async function fsRepo(dir: string, extra: Partial<Parameters<typeof FsRepository.open>[0]> = {}) {
  const log = recordingLog();
  const repo = await FsRepository.open({ id: 'fs', dir, key: await upstreamPublicKey(), log, ...extra });
  return { repo, log };
}

function npkFiles(dir: string): string[] {
  return readdirSync(dir).sort();
}

test('fs: install, list, restart-load, remove', async (t) => {
  const tmp = tempDir(t);
  const npk = await makeNpk(tmp);
  const bytes = readFileSync(npk);
  const dir = join(tmp, 'repo');
  const { repo } = await fsRepo(dir);
  assert.deepEqual(repo.list(), []);
  const src = chunks(bytes, { chunk: 7000 });
  const entry = await repo.install(src, bytes.length);
  assert.equal(src.pulled, bytes.length);
  assert.equal(entry.container.toString(), 'hello:0.0.1');
  assert.equal(entry.path, join(dir, 'hello:0.0.1.npk'));
  assert.equal(entry.size, bytes.length);
  assert.equal(entry.repository, 'fs');
  assert.equal(entry.npk.manifest.init, '/bin/hello');
  assert.ok(entry.npk.verity, 'opened with the key: verity data is known');
  assert.deepEqual(npkFiles(dir), ['hello:0.0.1.npk']);
  assert.ok(readFileSync(entry.path).equals(bytes));
  assert.deepEqual(repo.capacity(), { count: 1, size: bytes.length, capacityNum: undefined, capacitySize: undefined });

  // A new instance (a runtime restart) loads it again.
  const { repo: again } = await fsRepo(dir);
  assert.deepEqual(again.list().map((e) => e.container.toString()), ['hello:0.0.1']);
  assert.equal(again.get(HELLO)?.size, bytes.length);

  await again.remove(HELLO);
  assert.deepEqual(npkFiles(dir), []);
  assert.equal(again.get(HELLO), undefined);
  await assert.rejects(again.remove(HELLO), code('ENOTINSTALLED', /hello:0\.0\.1 is not installed/));
});

test('fs: an install cut off half-way leaves nothing in the repository', async (t) => {
  const tmp = tempDir(t);
  const bytes = readFileSync(await makeNpk(tmp));
  const dir = join(tmp, 'repo');
  const { repo } = await fsRepo(dir);
  await assert.rejects(repo.install(chunks(bytes, { chunk: 4096, stopAfter: bytes.length / 2 }), bytes.length), code('ETRUNCATED', /ended after \d+ of \d+ bytes/));
  assert.deepEqual(npkFiles(dir), []);
  await assert.rejects(repo.install(chunks(bytes, { chunk: 4096, failAfter: bytes.length / 2 }), bytes.length), /connection reset/);
  assert.deepEqual(npkFiles(dir), []);
  assert.deepEqual(repo.list(), []);
  // The repository is still usable.
  await repo.install(chunks(bytes), bytes.length);
  assert.deepEqual(npkFiles(dir), ['hello:0.0.1.npk']);
});

test('fs: a stream longer than announced is refused and leaves nothing', async (t) => {
  const tmp = tempDir(t);
  const bytes = readFileSync(await makeNpk(tmp));
  const dir = join(tmp, 'repo');
  const { repo } = await fsRepo(dir);
  await assert.rejects(repo.install(chunks(bytes), bytes.length - 10), code('EOVERSIZE'));
  assert.deepEqual(npkFiles(dir), []);
});

test('fs: tampered and wrongly signed NPKs are refused at install, the upload consumed in full', async (t) => {
  const tmp = tempDir(t);
  const good = await makeNpk(tmp);
  const other = await makeNpk(tmp, { sign: 'other' });
  const unsigned = await makeNpk(tmp, { sign: 'none' });
  const tampered = tamperManifest(good, join(tmp, 'tampered.npk'));
  const dir = join(tmp, 'repo');
  const { repo } = await fsRepo(dir);
  for (const [file, c, msg] of [
    [tampered, 'ESIGNATURE', /manifest\.yaml hash does not match|crc/],
    [other, 'ESIGNATURE', /does not verify with the repository key/],
    [unsigned, 'ESIGNATURE', /not signed/],
  ] as const) {
    const bytes = readFileSync(file);
    const src = chunks(bytes);
    await assert.rejects(repo.install(src, bytes.length), (e: unknown) => {
      assert.ok(e instanceof NorthstarError);
      assert.ok(e.code === c || e.code === 'ENPKZIP', `${file}: ${e.code} ${e.message}`);
      if (e.code === c) assert.match(e.message, msg);
      return true;
    });
    assert.equal(src.pulled, bytes.length, 'exactly size bytes consumed');
    assert.deepEqual(npkFiles(dir), []);
  }
  // Garbage is refused too.
  const junk = Buffer.from('this is not a zip file at all');
  await assert.rejects(repo.install(chunks(junk), junk.length), code('ENPKZIP'));
  assert.deepEqual(npkFiles(dir), []);
});

test('fs: at start, temp files are removed and corrupt or wrongly signed NPKs are logged and skipped', async (t) => {
  const tmp = tempDir(t);
  const dir = join(tmp, 'repo');
  const good = await makeNpk(tmp);
  const good2 = await makeNpk(tmp, { name: 'second' });
  const other = await makeNpk(tmp, { name: 'signed-by-other', sign: 'other' });
  const { repo: first } = await fsRepo(dir);
  await first.install(chunks(readFileSync(good)), statSync(good).size);
  copyFileSync(other, join(dir, 'signed-by-other:0.0.1.npk'));
  tamperManifest(good2, join(dir, 'second:0.0.1.npk'));
  writeFileSync(join(dir, 'truncated:0.0.1.npk'), readFileSync(good).subarray(0, 5000));
  writeFileSync(join(dir, '.tmp-0123abcd.npk'), readFileSync(good).subarray(0, 1000));
  writeFileSync(join(dir, 'README'), 'not a package');

  const { repo, log } = await fsRepo(dir);
  assert.deepEqual(repo.list().map((e) => e.container.toString()), ['hello:0.0.1']);
  assert.ok(!existsSync(join(dir, '.tmp-0123abcd.npk')), 'temp file removed');
  assert.ok(existsSync(join(dir, 'README')), 'unrelated files are left alone');
  const errors = log.lines.filter((l) => l.level === 'error').map((l) => l.msg);
  assert.equal(errors.length, 3, errors.join('\n'));
  assert.ok(errors.some((m) => m.includes('signed-by-other:0.0.1.npk') && m.includes('does not verify')), errors.join('\n'));
  assert.ok(errors.some((m) => m.includes('second:0.0.1.npk')), errors.join('\n'));
  assert.ok(errors.some((m) => m.includes('truncated:0.0.1.npk')), errors.join('\n'));
  assert.ok(log.lines.some((l) => l.level === 'warn' && l.msg.includes('.tmp-0123abcd.npk') && l.msg.includes('interrupted install')));
});

test('fs: trusted repository (no key) accepts unsigned packages; a same-repo duplicate is refused', async (t) => {
  const tmp = tempDir(t);
  const unsigned = readFileSync(await makeNpk(tmp, { sign: 'none' }));
  const dir = join(tmp, 'repo');
  const { repo } = await fsRepo(dir, { key: undefined });
  assert.equal(repo.verified, false);
  const e = await repo.install(chunks(unsigned), unsigned.length);
  assert.equal(e.npk.verity, undefined);
  const src = chunks(unsigned);
  await assert.rejects(repo.install(src, unsigned.length), code('EDUPLICATE', /repository fs: hello:0\.0\.1 is already installed/));
  assert.equal(src.pulled, unsigned.length);
  assert.deepEqual(npkFiles(dir), ['hello:0.0.1.npk']);
});

test('fs: capacity_num and capacity_size with upstream messages, upload drained', async (t) => {
  const tmp = tempDir(t);
  const a = readFileSync(await makeNpk(tmp, { name: 'a' }));
  const b = readFileSync(await makeNpk(tmp, { name: 'b' }));
  const { repo: byNum } = await fsRepo(join(tmp, 'num'), { capacityNum: 1 });
  await byNum.install(chunks(a), a.length);
  const src = chunks(b);
  await assert.rejects(byNum.install(src, b.length), code('ECAPACITY', /^max number of container reached$/));
  assert.equal(src.pulled, b.length);
  assert.deepEqual(npkFiles(join(tmp, 'num')), ['a:0.0.1.npk']);

  const { repo: bySize } = await fsRepo(join(tmp, 'size'), { capacitySize: 1000 });
  const src2 = chunks(a);
  await assert.rejects(bySize.install(src2, a.length), code('ECAPACITY', /^size limit reached$/));
  assert.equal(src2.pulled, a.length);
  assert.deepEqual(npkFiles(join(tmp, 'size')), []);

  const { repo: fits } = await fsRepo(join(tmp, 'fits'), { capacitySize: a.length + b.length - 1 });
  await fits.install(chunks(a), a.length);
  await assert.rejects(fits.install(chunks(b), b.length), code('ECAPACITY', /^size limit reached$/));
  assert.deepEqual(fits.capacity(), { count: 1, size: a.length, capacityNum: undefined, capacitySize: a.length + b.length - 1 });
});

test('mem: the package lives in an unlinked tmpfs file reached through /proc/<pid>/fd', async (t) => {
  const tmp = tempDir(t);
  const bytes = readFileSync(await makeNpk(tmp));
  const repo = await MemRepository.open({ id: 'mem', key: await upstreamPublicKey(), log: recordingLog(), dir: join(tmp, 'mem') });
  t.after(() => repo.close());
  const entry = await repo.install(chunks(bytes, { chunk: 4096 }), bytes.length);
  assert.match(entry.path, new RegExp(`^/proc/${process.pid}/fd/\\d+$`));
  assert.ok(readFileSync(entry.path).equals(bytes), 'readable through the fd path');
  assert.deepEqual(readdirSync(repo.storageDir), [], 'nothing visible in the directory');
  assert.equal(statSync(repo.storageDir).mode & 0o777, 0o700);
  const fd = repo.fdOf(HELLO)!;
  assert.equal(typeof fd, 'number');
  assert.equal(statSync(entry.path).nlink, 0, 'the file is unlinked');
  assert.equal(entry.npk.manifest.name, 'hello');
  // The only handle is read-only (O_ACCMODE of the fd's flags is O_RDONLY).
  const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
  assert.equal(parseInt(flags, 8) & 3, 0);
  // It is a sealed memfd: not even root can write to it through the magic link.
  assert.match(readlinkSync(`/proc/self/fd/${fd}`), /^\/memfd:northstar-mem /);
  assert.throws(() => writeFileSync(entry.path, 'x', { flag: 'r+' }), /EPERM|EACCES/);
  assert.ok(readFileSync(entry.path).equals(bytes), 'unchanged');

  await repo.remove(HELLO);
  assert.ok(!existsSync(entry.path), 'fd closed on remove');
  const dir = repo.storageDir;
  await repo.close();
  assert.ok(!existsSync(dir), 'the private directory is removed at close');
});

test('mem: capacity, verification and cut-off installs leave nothing', async (t) => {
  const tmp = tempDir(t);
  const a = readFileSync(await makeNpk(tmp, { name: 'a' }));
  const b = readFileSync(await makeNpk(tmp, { name: 'b' }));
  const other = readFileSync(await makeNpk(tmp, { name: 'c', sign: 'other' }));
  const key = await upstreamPublicKey();
  const mem = await MemRepository.open({ id: 'mem', key, capacityNum: 1, log: recordingLog(), dir: join(tmp, 'mem') });
  t.after(() => mem.close());
  await assert.rejects(mem.install(chunks(a, { chunk: 4096, stopAfter: 10000 }), a.length), code('ETRUNCATED'));
  assert.deepEqual(readdirSync(mem.storageDir), []);
  await assert.rejects(mem.install(chunks(other), other.length), code('ESIGNATURE'));
  assert.deepEqual(readdirSync(mem.storageDir), []);
  await mem.install(chunks(a), a.length);
  const src = chunks(b);
  await assert.rejects(mem.install(src, b.length), code('ECAPACITY', /^max number of container reached$/));
  assert.equal(src.pulled, b.length);

  const bySize = await MemRepository.open({ id: 'mem-size', key, capacitySize: a.length, log: recordingLog(), dir: join(tmp, 'mem') });
  t.after(() => bySize.close());
  // Upstream refuses Σ + size >= capacity_size, so a package of exactly the capacity does not fit.
  await assert.rejects(bySize.install(chunks(a), a.length), code('ECAPACITY', /^repository capacity limit reached$/));
  const roomy = await MemRepository.open({ id: 'mem-roomy', key, capacitySize: a.length + 1, log: recordingLog(), dir: join(tmp, 'mem') });
  t.after(() => roomy.close());
  await roomy.install(chunks(a), a.length);
  await assert.rejects(roomy.install(chunks(a), a.length), code('ECAPACITY'));
});

test('openRepositories from the config; duplicates across repositories are reported with the first repository winning', async (t) => {
  const tmp = tempDir(t);
  const bytes = readFileSync(await makeNpk(tmp));
  const other = otherKeyPair(tmp);
  const cfg = parseConfig(`run_dir = "${tmp}/run"\ndata_dir = "${tmp}/data"\nsocket_dir = "${tmp}/s"\ncgroup = "ns"
[repositories.disk]
type = { fs = { dir = "${tmp}/disk" } }
key = "${PUB}"
[repositories.memory]
type = "mem"
key = "${PUB}"
mount_on_start = true
`);
  const repos = await openRepositories(cfg.repositories.values(), { log: recordingLog(), memDir: join(tmp, 'mem') });
  t.after(async () => {
    for (const r of repos.values()) await r.close();
  });
  assert.deepEqual([...repos.keys()], ['disk', 'memory']);
  assert.equal(repos.get('memory')!.mountOnStart, true);
  assert.equal(repos.get('memory')!.kind, 'mem');
  for (const r of repos.values()) await r.install(chunks(bytes), bytes.length);
  const dups = findDuplicates(repos.values() as Iterable<Repository>);
  assert.equal(dups.length, 1);
  assert.equal(dups[0]!.winner.repository, 'disk');
  assert.deepEqual(dups[0]!.losers.map((l) => l.repository), ['memory']);

  const bad = parseConfig(`run_dir = "/r"\ndata_dir = "/d"\nsocket_dir = "/s"\ncgroup = "ns"\n[repositories.m]\ntype = "mem"\nkey = "${tmp}/missing.pub"\n`);
  await assert.rejects(openRepositories(bad.repositories.values(), { log: recordingLog(), memDir: join(tmp, 'mem') }), code('EKEY', /^repositories\.m\.key: public key .*missing\.pub: ENOENT/));
  assert.ok(await readPublicKey(other.pub));
});

test('fs: an NPK with a corrupted fs.img is refused at install; one corrupted on disk later still fails verification (the mount check)', async (t) => {
  const tmp = tempDir(t);
  const good = await makeNpk(tmp);
  const dir = join(tmp, 'repo');
  const { repo } = await fsRepo(dir);
  const probe = await repo.install(chunks(readFileSync(good)), statSync(good).size);
  const off = probe.npk.fsImg.offset + 10;
  await repo.remove(HELLO);
  const bad = readFileSync(flipByte(good, join(tmp, 'bad.npk'), off));
  await assert.rejects(repo.install(chunks(bad), bad.length), code('EVERITY', /^repository fs: package hello:0\.0\.1 refused: fs\.img: verity: data block 0 /));
  assert.deepEqual(readdirSync(dir), [], 'no package and no temp file left');
  // The file changes on disk after install: the check before each mount catches it.
  const e = await repo.install(chunks(readFileSync(good)), statSync(good).size);
  flipByte(e.path, e.path, off);
  await assert.rejects(e.npk.verifyImage(), code('EVERITY', /^fs\.img: verity: data block 0/));
});

const FS_REPO_MODULE = new URL('../../src/runtime/repository/index.js', import.meta.url).href;
const LOGGER_MODULE = new URL('../../src/runtime/logger.js', import.meta.url).href;

test('fs: a runtime killed in the middle of an install leaves only a temp file, which the next start removes', async (t) => {
  const tmp = tempDir(t);
  const npk = await makeNpk(tmp, { payload: 200_000 });
  const dir = join(tmp, 'repo');
  const script = join(tmp, 'installer.mjs');
  // The child installs from a stream that delivers half of the package and then stalls.
  writeFileSync(script, `
import { FsRepository } from ${JSON.stringify(FS_REPO_MODULE)};
import { nullLog } from ${JSON.stringify(LOGGER_MODULE)};
import { readFileSync } from 'node:fs';
const bytes = readFileSync(${JSON.stringify(npk)});
const repo = await FsRepository.open({ id: 'fs', dir: ${JSON.stringify(dir)}, log: nullLog });
async function* half() {
  yield bytes.subarray(0, bytes.length >> 1);
  console.log('half');
  await new Promise(() => setInterval(() => {}, 1000));
}
await repo.install(half(), bytes.length);
`);
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await once(child.stdout!, 'data');
  const during = npkFiles(dir);
  assert.equal(during.length, 1);
  assert.match(during[0]!, /^\.tmp-[0-9a-f]+\.npk$/, 'only a temp file while the upload runs');
  child.kill('SIGKILL');
  await once(child, 'exit');
  const { repo, log } = await fsRepo(dir, { key: undefined });
  assert.deepEqual(repo.list(), []);
  assert.deepEqual(npkFiles(dir), [], 'the temp file is removed at the next start');
  assert.ok(log.lines.some((l) => l.level === 'warn' && l.msg.includes('interrupted install')));
});

test('mem: the directory of a runtime that is gone (with a half-written install) is removed at the next open', async (t) => {
  const tmp = tempDir(t);
  const base = join(tmp, 'shm');
  mkdirSync(base);
  // A pid that is certainly not running: a child that has exited.
  const dead = spawn(process.execPath, ['-e', '0']);
  await once(dead, 'exit');
  const stale = join(base, `northstar-mem-${dead.pid}-mem-abc123`);
  mkdirSync(stale, { mode: 0o700 });
  writeFileSync(join(stale, 'deadbeef.npk'), 'half an upload');
  const alive = join(base, `northstar-mem-${process.ppid}-mem-other`);
  mkdirSync(alive);
  const log = recordingLog();
  const repo = await MemRepository.open({ id: 'mem', log, dir: base });
  t.after(() => repo.close());
  assert.ok(!existsSync(stale), 'stale directory removed');
  assert.ok(existsSync(alive), 'a live runtime\'s directory is kept');
  assert.ok(repo.storageDir.startsWith(join(base, `northstar-mem-${process.pid}-mem-`)));
  assert.ok(log.lines.some((l) => l.level === 'warn' && l.msg.includes(stale)));
});

test('consumeExactly: exact, short, long and failing sinks', async () => {
  const { consumeExactly } = await import('../../src/runtime/repository/index.js');
  const data = Buffer.from('0123456789');
  const got: Buffer[] = [];
  let r = await consumeExactly(chunks(data, { chunk: 3 }), 10, async (c) => void got.push(c));
  assert.equal(r.error, undefined);
  assert.equal(Buffer.concat(got).toString(), '0123456789');
  r = await consumeExactly(chunks(Buffer.alloc(0)), 0, undefined);
  assert.deepEqual(r, { received: 0, error: undefined });
  r = await consumeExactly(chunks(data, { chunk: 4 }), 12, undefined);
  assert.ok(r.error instanceof NorthstarError && r.error.code === 'ETRUNCATED' && r.received === 10);
  r = await consumeExactly(chunks(data, { chunk: 4 }), 6, undefined);
  assert.ok(r.error instanceof NorthstarError && r.error.code === 'EOVERSIZE');
  // A failing sink: the rest is still read (and dropped), the first error is kept.
  const src = chunks(data, { chunk: 2 });
  let calls = 0;
  r = await consumeExactly(src, 10, async () => {
    calls++;
    throw new Error('disk full');
  });
  assert.equal(calls, 1);
  assert.equal(src.pulled, 10);
  assert.match(String(r.error), /disk full/);
});
