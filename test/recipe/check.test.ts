/**
 * What `sextant pack` and `build` refuse because the runtime would refuse it at start
 * (src/recipe/check.ts: the plan builder's own checks plus an absolute, present, executable
 * init), and the output paths: `-o dir/` created, `-o missing/x.npk` refused before any work,
 * `gen-key -o keys/` created. Pure file work: runs without root.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifest } from '../../src/manifest/index.js';
import { packTarget } from '../../src/npk/builder.js';
import { generateKeyPair } from '../../src/npk/keys.js';
import { initProblems, startProblems } from '../../src/recipe/check.js';
import { tempDir } from '../helpers/tmp.js';

const SEXTANT = fileURLToPath(new URL('../../src/cli/sextant.js', import.meta.url));
const sextant = (args: string[]) => spawnSync(process.execPath, [SEXTANT, ...args], { encoding: 'utf8' });
const M = (extra: string) => parseManifest(`name: app\nversion: 1.0.0\nuid: 1000\ngid: 1000\n${extra}`);

test('startProblems: the runtime\'s start checks, each naming its field', () => {
  assert.deepEqual(startProblems(M('init: /bin/app\nmounts:\n  /proc:\n    type: proc\n')), []);
  assert.deepEqual(startProblems(M('')), [], 'a resource container is never started');
  const rel = startProblems(M('init: python3\n'));
  assert.equal(rel.length, 1);
  assert.equal(rel[0]!.path, 'init');
  assert.match(rel[0]!.rule, /must be an absolute path in the container .*without a PATH search.*got "python3": write e\.g\. \/usr\/bin\/python3/);
  // A relative mount point passes the manifest parser (only bind targets are checked there)
  // and is refused by the plan builder at start: the same rule, now at pack time.
  assert.deepEqual(startProblems(M('init: /bin/app\nmounts:\n  data:\n    type: persist\n')), [{ path: 'mounts.data', rule: 'mount points must be absolute' }]);
  assert.deepEqual(startProblems(M('init: /bin/app\nmounts:\n  /:\n    type: tmpfs\n    size: 1M\n')), [{ path: 'mounts./', rule: 'cannot mount over the container root' }]);
  assert.deepEqual(startProblems(M('init: /bin/app\nrlimits:\n  nofile:\n    soft: 20\n    hard: 10\n')), [{ path: 'rlimits.nofile', rule: 'the soft limit must not exceed the hard limit' }]);
  // Resource mounts are judged without the resource: only the manifest counts.
  assert.deepEqual(startProblems(M('init: /bin/app\nmounts:\n  /lib:\n    type: resource\n    name: libs\n    version: 1.0.0\n    dir: /\n')), []);
});

test('initProblems: init must be an executable file of the image, symlinks followed inside it, unless a mount provides it', async (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'usr', 'bin'), { recursive: true });
  writeFileSync(join(root, 'usr', 'bin', 'app'), '#!/bin/sh\n');
  chmodSync(join(root, 'usr', 'bin', 'app'), 0o755);
  writeFileSync(join(root, 'usr', 'bin', 'data'), 'x');
  chmodSync(join(root, 'usr', 'bin', 'data'), 0o644);
  symlinkSync('/usr/bin', join(root, 'bin'));
  assert.deepEqual(await initProblems(M('init: /usr/bin/app\n'), root), []);
  assert.deepEqual(await initProblems(M('init: /bin/app\n'), root), [], 'an absolute symlink resolves inside the image');
  assert.deepEqual(await initProblems(M('init: /usr/bin/nope\n'), root), [{ path: 'init', rule: '/usr/bin/nope does not exist in the image' }]);
  assert.deepEqual(await initProblems(M('init: /usr/bin/data\n'), root), [{ path: 'init', rule: '/usr/bin/data is not executable in the image (mode 644)' }]);
  assert.deepEqual(await initProblems(M('init: /usr/bin\n'), root), [{ path: 'init', rule: '/usr/bin is not a regular file in the image' }]);
  const mounted = M('init: /opt/tool/run\nmounts:\n  /opt/tool:\n    type: resource\n    name: tool\n    version: 1.0.0\n    dir: /\n');
  assert.deepEqual(await initProblems(mounted, root), [], 'a resource mount provides init');
});

test('sextant pack refuses what the runtime would refuse at start, naming the field, and writes nothing', (t) => {
  const dir = tempDir(t);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin', 'app'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'bin', 'app'), 0o755);
  const manifest = join(dir, 'manifest.yaml');
  const out = join(dir, 'out');
  mkdirSync(out);
  const pack = (text: string, withRoot = true) => {
    writeFileSync(manifest, `name: app\nversion: 1.0.0\nuid: 1000\ngid: 1000\n${text}`);
    return sextant(['pack', '-m', manifest, ...(withRoot ? ['-r', root] : []), '-o', out]);
  };
  const rel = pack('init: app\n');
  assert.equal(rel.status, 1, rel.stderr);
  assert.match(rel.stderr, /^sextant: error: init: must be an absolute path in the container .*got "app"/);
  const mp = pack('init: /bin/app\nmounts:\n  data:\n    type: persist\n');
  assert.equal(mp.status, 1, mp.stderr);
  assert.match(mp.stderr, /^sextant: error: mounts\.data: mount points must be absolute\n$/);
  const missing = pack('init: /bin/nope\n');
  assert.equal(missing.status, 1, missing.stderr);
  assert.match(missing.stderr, /^sextant: error: init: \/bin\/nope does not exist in the image\n$/);
  assert.deepEqual(readdirSync(out), [], 'nothing written for a refused manifest');
  const ok = pack('init: /bin/app\n');
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(readdirSync(out), ['app-1.0.0.npk']);
});

test('-o: a directory named with a trailing slash is created; a missing parent is refused before packing; gen-key -o creates its directory', async (t) => {
  const dir = tempDir(t);
  assert.equal(await packTarget(join(dir, 'new', 'deeper') + '/', 'app', '1.0.0'), join(dir, 'new', 'deeper', 'app-1.0.0.npk'));
  assert.ok(existsSync(join(dir, 'new', 'deeper')));
  assert.equal(await packTarget(join(dir, 'new'), 'app', '1.0.0'), join(dir, 'new', 'app-1.0.0.npk'), 'an existing directory');
  assert.equal(await packTarget(join(dir, 'file.npk'), 'app', '1.0.0'), join(dir, 'file.npk'));
  await assert.rejects(packTarget(join(dir, 'missing', 'x.npk'), 'app', '1.0.0'), /^NorthstarError: output .*missing\/x\.npk: the directory .*missing does not exist \(create it, or end -o with \/ to name a directory that sextant creates\)$/);
  writeFileSync(join(dir, 'plain'), '');
  await assert.rejects(packTarget(join(dir, 'plain') + '/', 'app', '1.0.0'), /output directory .*plain\/: a file is in the way/);

  // The CLI: -o out/ (missing) packs into it; -o missing/x.npk fails before packing.
  const manifest = join(dir, 'manifest.yaml');
  writeFileSync(manifest, 'name: res\nversion: 1.0.0\nuid: 1000\ngid: 1000\n');
  const made = sextant(['pack', '-m', manifest, '-o', join(dir, 'out') + '/']);
  assert.equal(made.status, 0, made.stderr);
  assert.ok(existsSync(join(dir, 'out', 'res-1.0.0.npk')));
  const refused = sextant(['pack', '-m', manifest, '-o', join(dir, 'nodir', 'res.npk')]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /^sextant: error: output .*nodir\/res\.npk: the directory .*nodir does not exist/);
  assert.doesNotMatch(refused.stderr, /ENOTDIR|rename/);

  const keys = await generateKeyPair('repo', join(dir, 'keys', 'sub'));
  assert.equal(keys.key, join(dir, 'keys', 'sub', 'repo.key'));
  assert.ok(existsSync(keys.pub));
  const g = sextant(['gen-key', '-n', 'cli', '-o', join(dir, 'cli-keys') + '/']);
  assert.equal(g.status, 0, g.stderr);
  assert.ok(existsSync(join(dir, 'cli-keys', 'cli.key')));
});
