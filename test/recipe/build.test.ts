/**
 * Real builds as root: overlay mounts, RUN steps in the launch core, packing, the step
 * cache, FROM an NPK, the built NPK running in a real runtime, and debian:<suite> when the
 * archive is reachable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { buildRecipe, BuildStepError, type BuildOptions } from '../../src/recipe/build.js';
import { RecipeError } from '../../src/recipe/parse.js';
import { Npk } from '../../src/npk/reader.js';
import { SquashfsImage } from '../../src/npk/squashfs/reader.js';
import { packNpk } from '../../src/npk/builder.js';
import { parseManifest } from '../../src/manifest/index.js';
import { readPublicKey, readSigningKey } from '../../src/npk/keys.js';
import { KEY, PUB, isExit, nextNotification, startRuntime } from '../runtime/harness.js';
import { aptMirror } from '../../src/recipe/base.js';

const LAUNCH = new URL('../../../native/build/northstar-launch', import.meta.url);
const isRoot = process.getuid?.() === 0;
const BUSYBOX = '/bin/busybox';

function skipReason(): string | null {
  if (!isRoot) return 'needs root (overlay mounts and the launch core)';
  if (!existsSync(LAUNCH)) return 'native/build/northstar-launch is not built (make -C native)';
  if (!existsSync(BUSYBOX)) return 'needs busybox-static at /bin/busybox';
  return null;
}

/** Mounts and loop devices under `dir` (other tests may run on this machine at the same time). */
function leftovers(dir: string): { mounts: string[]; loops: string[] } {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
  const loops = execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(dir));
  return { mounts, loops };
}
const NONE = { mounts: [], loops: [] };

/** A recipe dir with busybox and a few files, a manifest and a cache, removed after the test. */
function workspace(t: TestContext, recipe: string, manifest = 'name: built\nversion: 0.1.0\nuid: 1000\ngid: 1000\n') {
  const dir = mkdtempSync(join(tmpdir(), 'ns-recipe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(BUSYBOX, join(dir, 'busybox'));
  mkdirSync(join(dir, 'files', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'files', 'a.txt'), 'alpha\n');
  writeFileSync(join(dir, 'files', 'b.txt'), 'beta\n');
  writeFileSync(join(dir, 'files', 'sub', 'c.conf'), 'gamma\n');
  writeFileSync(join(dir, 'Recipe'), recipe);
  writeFileSync(join(dir, 'manifest.yaml'), manifest);
  const lines: string[] = [];
  const opts = (extra: Partial<BuildOptions> = {}): BuildOptions => ({
    recipe: join(dir, 'Recipe'),
    manifest: join(dir, 'manifest.yaml'),
    out: join(dir, 'out.npk'),
    cacheDir: join(dir, 'cache'),
    log: (l) => lines.push(l),
    ...extra,
  });
  return { dir, lines, opts };
}

async function imageFiles(npkPath: string): Promise<Map<string, { type: string; mode: number; uid: number; data?: string; target?: string }>> {
  const npk = await Npk.open(npkPath);
  const img = await SquashfsImage.open(npkPath, { offset: npk.fsImg.offset, size: npk.verity ? npk.verity.dataSize : npk.fsImg.size });
  try {
    const out = new Map<string, { type: string; mode: number; uid: number; data?: string; target?: string }>();
    for (const e of await img.entries()) {
      const rec: { type: string; mode: number; uid: number; data?: string; target?: string } = { type: e.type, mode: e.mode & 0o7777, uid: e.uid };
      if (e.type === 'file' && e.size < 4096) rec.data = (await img.readFile(e.path)).toString();
      if (e.type === 'symlink') rec.target = e.target ?? '';
      out.set(e.path, rec);
    }
    return out;
  } finally {
    await img.close();
  }
}

const BASE = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`;

test('each instruction: COPY (globs, dirs, --chown), RUN writing and deleting files, ENV, USER, ENTRYPOINT, CMD', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(
    t,
    `${BASE}# files
COPY files/*.txt /data/
COPY --chown=123:456 files/sub /etc/app
COPY files/a.txt /single
ENV GREETING="hello recipe" \\
    SECOND=2
RUN echo "$GREETING" > /data/greeting && rm /data/b.txt && mkdir -p /var/run && id -u > /var/uid && chmod 0600 /single
RUN --network=none sh -c 'ip -o link | wc -l > /var/links'
USER 1000:1000
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /data/greeting"]
`,
  );
  const r = await buildRecipe(w.opts({ key: await readSigningKey(KEY) }));
  assert.deepEqual(leftovers(w.dir), NONE, 'no overlay or loop device left behind');
  const files = await imageFiles(r.npk.path);
  assert.equal(files.get('/bin/busybox')?.type, 'file');
  assert.equal(files.get('/bin/ls')?.target, '/bin/busybox');
  assert.equal(files.get('/data/a.txt')?.data, 'alpha\n');
  assert.equal(files.has('/data/b.txt'), false, 'a file deleted by RUN is gone (whiteout)');
  assert.equal(files.get('/data/greeting')?.data, 'hello recipe\n');
  assert.equal(files.get('/etc/app/c.conf')?.data, 'gamma\n', 'a directory source copies its contents');
  assert.equal(files.get('/single')?.data, 'alpha\n');
  assert.equal(files.get('/single')?.mode, 0o600, 'RUN chmod is captured');
  assert.equal(files.get('/var/uid')?.data, '0\n', 'RUN runs as root inside');
  assert.equal(files.get('/var/links')?.data?.trim(), '1', 'RUN --network=none sees only lo');
  assert.equal(files.has('/proc'), false, 'the RUN scaffold does not leak into the image');
  // The manifest
  const m = parseManifest((await Npk.open(r.npk.path)).manifestBytes.toString());
  assert.equal(m.init, '/bin/sh');
  assert.deepEqual(m.args, ['-c', 'cat /data/greeting']);
  assert.deepEqual(m.env, { GREETING: 'hello recipe', SECOND: '2' });
  assert.equal(m.uid, 1000);
  // Signed: it verifies with the public key
  const npk = await Npk.open(r.npk.path, { key: await readPublicKey(PUB) });
  await npk.verifyImage();
  // Live output carries the step number
  assert.ok(w.lines.includes('Step 8/12 : RUN echo "$GREETING" > /data/greeting && rm /data/b.txt && mkdir -p /var/run && id -u > /var/uid && chmod 0600 /single'), w.lines.join('\n'));
  assert.deepEqual(r.steps.filter((s) => s.cached), []);
  // --chown applies inside the build (the packer forces the manifest's uid/gid on the final image)
  const check = workspace(t, `FROM ${r.npk.path}\nRUN test "$(stat -c %u:%g /etc/app/c.conf)" = 1000:1000\n`);
  await buildRecipe(check.opts());
});

test('a rebuild with no changes takes every layer from the cache; a changed COPY source rebuilds from there', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, `${BASE}COPY files/a.txt /a\nRUN cat /a > /b\nENV X=1\nRUN echo $X > /x\nCMD ["/bin/cat", "/x"]\n`);
  const first = await buildRecipe(w.opts());
  assert.deepEqual(first.steps.filter((s) => s.op === 'COPY' || s.op === 'RUN').map((s) => s.cached), [false, false, false, false, false]);
  const second = await buildRecipe(w.opts({ out: join(w.dir, 'again.npk') }));
  assert.deepEqual(second.steps.filter((s) => s.op === 'COPY' || s.op === 'RUN').map((s) => s.cached), [true, true, true, true, true]);
  assert.deepEqual(second.layers, first.layers);
  assert.equal(w.lines.filter((l) => /using the cached layer/.test(l)).length, 5);
  writeFileSync(join(w.dir, 'files', 'a.txt'), 'changed\n');
  const third = await buildRecipe(w.opts({ out: join(w.dir, 'third.npk') }));
  assert.deepEqual(third.steps.filter((s) => s.op === 'COPY' || s.op === 'RUN').map((s) => s.cached), [true, true, false, false, false]);
  assert.equal((await imageFiles(third.npk.path)).get('/b')?.data, 'changed\n');
  const nocache = await buildRecipe(w.opts({ out: join(w.dir, 'n.npk'), noCache: true }));
  assert.ok(nocache.steps.every((s) => !s.cached));
});

test('a failing RUN stops the build with its exit code and leaves no mounts, processes or layers', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, `${BASE}RUN echo partial > /partial && echo to-stderr >&2 && exit 7\nRUN echo never\n`);
  await assert.rejects(buildRecipe(w.opts()), (e: unknown) => e instanceof BuildStepError && e.exitCode === 7 && e.step === 4 && /exit code 7/.test(e.message));
  assert.deepEqual(leftovers(w.dir), NONE);
  assert.ok(w.lines.includes('[4] to-stderr'), w.lines.join('\n'));
  assert.ok(!w.lines.some((l) => l.includes('never')));
  assert.equal(existsSync(join(w.dir, 'out.npk')), false);
  const pids = execFileSync('sh', ['-c', 'pgrep -f "[s]extant-build-step" || true'], { encoding: 'utf8' }).trim();
  assert.equal(pids, '');
  // Only the two good layers are stored; no temporary layer is left.
  const layers = execFileSync('ls', [join(w.dir, 'cache', 'layers')], { encoding: 'utf8' }).trim().split('\n');
  assert.equal(layers.length, 2, layers.join(' '));
  assert.ok(layers.every((l) => !l.startsWith('tmp-')));
  // A program that does not exist: a clear error, no mount left.
  const w2 = workspace(t, `${BASE}RUN ["nonexistent-tool"]\n`);
  await assert.rejects(buildRecipe(w2.opts()), (e: unknown) => e instanceof RecipeError && /nonexistent-tool is not found/.test(e.message));
  assert.deepEqual(leftovers(w2.dir), NONE);
});

test('bad input: missing COPY source, source outside the recipe dir, invalid merged manifest', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, `${BASE}COPY nothing-*.bin /x\n`);
  await assert.rejects(buildRecipe(w.opts()), /COPY source nothing-\*\.bin matches nothing/);
  writeFileSync(join(w.dir, 'Recipe'), 'FROM scratch\nCOPY ../etc/passwd /x\n');
  await assert.rejects(buildRecipe(w.opts()), /lies outside the recipe's directory/);
  writeFileSync(join(w.dir, 'Recipe'), 'FROM scratch\nUSER 0\n');
  await assert.rejects(buildRecipe(w.opts()), /uid: must be at least 1/);
  writeFileSync(join(w.dir, 'Recipe'), 'FROM scratch\nRUN echo hi\n');
  await assert.rejects(buildRecipe(w.opts()), /step 2: exec: \/bin\/sh does not exist in the container \(ENOENT\) \(the shell form needs \/bin\/sh in the image; use the JSON form\)/);
  assert.deepEqual(leftovers(w.dir), NONE);
  writeFileSync(join(w.dir, 'Recipe'), 'FROM ./missing-dir\n');
  await assert.rejects(buildRecipe(w.opts()), /FROM \.\/missing-dir: no such file or directory/);
});

test('FROM an NPK made by packNpk, and FROM a directory (left untouched)', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, '');
  const root = join(w.dir, 'baseroot');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  execFileSync('chmod', ['755', join(root, 'bin', 'busybox')]);
  for (const a of ['sh', 'cat', 'echo', 'rm']) execFileSync('ln', ['-s', 'busybox', join(root, 'bin', a)]);
  writeFileSync(join(root, 'base.txt'), 'from the base\n');
  const basePath = join(w.dir, 'base.npk');
  await packNpk({ manifest: parseManifest('name: base\nversion: 1.0.0\nuid: 1000\ngid: 1000\n'), root, out: basePath, key: await readSigningKey(KEY) });
  writeFileSync(join(w.dir, 'Recipe'), 'FROM base.npk\nRUN cat /base.txt > /copied.txt && rm /base.txt\nCMD ["/bin/cat", "/copied.txt"]\n');
  const r = await buildRecipe(w.opts());
  const files = await imageFiles(r.npk.path);
  assert.equal(files.get('/copied.txt')?.data, 'from the base\n');
  assert.equal(files.has('/base.txt'), false);
  // Symlinks of the image are followed inside the image, relative and absolute ones.
  mkdirSync(join(root, 'usr', 'lib'), { recursive: true });
  execFileSync('ln', ['-s', 'usr/lib', join(root, 'lib')]);
  execFileSync('ln', ['-s', '/usr/lib', join(root, 'abslib')]);
  writeFileSync(join(w.dir, 'Recipe'), 'FROM baseroot\nRUN rm /base.txt && echo new > /bin/new\nCOPY files/a.txt /lib/a.txt\nCOPY files/b.txt /abslib/\n');
  const d = await buildRecipe(w.opts({ out: join(w.dir, 'd.npk') }));
  const df = await imageFiles(d.npk.path);
  assert.equal(df.has('/base.txt'), false);
  assert.equal(df.get('/usr/lib/a.txt')?.data, 'alpha\n');
  assert.equal(df.get('/usr/lib/b.txt')?.data, 'beta\n');
  assert.equal(df.get('/lib')?.type, 'symlink');
  assert.equal(df.get('/abslib')?.type, 'symlink');
  assert.equal(existsSync('/usr/lib/b.txt'), false, 'an absolute symlink never reaches the host');
  assert.equal(readFileSync(join(root, 'base.txt'), 'utf8'), 'from the base\n', 'the FROM directory is untouched');
  assert.equal(existsSync(join(root, 'bin', 'new')), false);
});

test('the built NPK installs and runs in the runtime', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(
    t,
    `${BASE}COPY files/a.txt /data/a.txt\nRUN echo "built by recipe" >> /data/a.txt\nENV WHO=recipe\nCMD echo "hello from $WHO: $(cat /data/a.txt | tr '\\n' ' ')"\n`,
    'name: built\nversion: 0.1.0\nuid: 1000\ngid: 1000\nio:\n  stdout: pipe\n  stderr: pipe\nmounts:\n  /proc:\n    type: proc\n',
  );
  const r = await buildRecipe(w.opts({ key: await readSigningKey(KEY) }));
  const rt = await startRuntime(t, { npks: [r.npk.path] });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  const exit = nextNotification(client, isExit('built:0.1.0'));
  await client.start('built:0.1.0');
  await exit;
  await rt.waitLog(/hello from recipe: alpha built by recipe/);
});

test('FROM debian:<suite> with debootstrap, cached on disk', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  if (!existsSync('/usr/sbin/debootstrap')) return t.skip('debootstrap is not installed');
  const cache = '/var/cache/northstar/debootstrap';
  const suite = 'bookworm';
  if (!existsSync(join(cache, `${suite}-amd64.complete`))) {
    const mirror = await aptMirror();
    const ok = await fetch(`${mirror.replace(/\/$/, '')}/dists/${suite}/Release`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })
      .then((res) => res.ok)
      .catch(() => false);
    if (!ok) return t.skip(`the Debian archive ${mirror} is not reachable`);
  }
  if (process.arch !== 'x64') return t.skip('the test expects amd64');
  const w = workspace(t, `FROM debian:${suite}\nRUN --network=none echo "$(cat /etc/debian_version)" > /version && rm -rf /usr/share/doc\nCMD ["/bin/cat", "/version"]\n`);
  const r = await buildRecipe(w.opts({ debootstrapCache: cache }));
  const files = await imageFiles(r.npk.path);
  assert.match(files.get('/version')?.data ?? '', /^12\./);
  assert.equal(files.has('/usr/share/doc'), false);
  assert.equal(files.get('/usr/bin/dpkg')?.type, 'file');
  // A second build uses the cached root, without debootstrap.
  const from = w.lines.length;
  const again = await buildRecipe(w.opts({ debootstrapCache: cache, out: join(w.dir, 'again.npk') }));
  const second = w.lines.slice(from);
  assert.ok(second.some((l) => /using the cached root/.test(l)), second.join('\n'));
  assert.ok(!second.some((l) => /debootstrap --variant/.test(l)));
  assert.ok(again.steps.filter((s) => s.op === 'RUN').every((s) => s.cached));
});

test('sextant build: the CLI exits with a failing step\'s exit code and builds into a directory', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const cli = new URL('../../src/cli/sextant.js', import.meta.url).pathname;
  const w = workspace(t, `${BASE}RUN exit 42\n`);
  const run = (args: string[]) => spawnSync(process.execPath, [cli, 'build', ...args], { encoding: 'utf8' });
  const failed = run([join(w.dir, 'Recipe'), '-m', join(w.dir, 'manifest.yaml'), '-o', w.dir, '--cache-dir', join(w.dir, 'cache')]);
  assert.equal(failed.status, 42, failed.stderr);
  assert.match(failed.stderr, /sextant: error: step 4: \/bin\/sh -c exit 42 failed with exit code 42/);
  assert.match(failed.stdout, /Step 4\/4 : RUN exit 42/);
  writeFileSync(join(w.dir, 'Recipe'), `${BASE}CMD ["/bin/true"]\n`);
  const ok = run([join(w.dir, 'Recipe'), '-m', join(w.dir, 'manifest.yaml'), '-o', w.dir, '-k', KEY, '--cache-dir', join(w.dir, 'cache')]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /Built .*built-0\.1\.0\.npk \[\d+ bytes, 2 layers, 2 cached\]/);
  assert.ok(existsSync(join(w.dir, 'built-0.1.0.npk')));
  assert.match(ok.stdout, /\nStep cache .*: 2 layers, [\d.]+ MiB \(sextant build --prune keeps only the layers of this build\)\n/);
  const again = run([join(w.dir, 'Recipe'), '-m', join(w.dir, 'manifest.yaml'), '-o', `${w.dir}/`, '-k', KEY, '--cache-dir', join(w.dir, 'cache'), '--prune']);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /Nothing changed since the last build: keeping .*built-0\.1\.0\.npk \(not repacked\)\n/);
  assert.match(again.stdout, /\nPruned the step cache: removed 0 layers, 0 B\n/);
  assert.match(again.stdout, /\nUnchanged .*built-0\.1\.0\.npk \[\d+ bytes, 2 layers, 2 cached\]/);
  const bad = run([join(w.dir, 'nope'), '-m', join(w.dir, 'manifest.yaml'), '-o', w.dir]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /^sextant: error: recipe .*nope: no such file\n$/);
});

test('exec-form ENTRYPOINT/CMD: a bare program name is resolved through the image PATH; what the runtime would refuse fails the build, naming the instruction or field', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, `${BASE}CMD ["cat", "/data"]\n`);
  const r = await buildRecipe(w.opts());
  assert.equal(r.manifest.init, '/bin/cat', 'the default PATH finds /bin/cat');
  assert.deepEqual(r.manifest.args, ['/data']);
  assert.equal(parseManifest((await Npk.open(r.npk.path)).manifestBytes.toString()).init, '/bin/cat', 'the NPK has the resolved path');
  assert.ok(w.lines.includes('CMD: cat is /bin/cat in the image'), w.lines.join('\n'));
  // ENV PATH of the recipe is the PATH searched.
  writeFileSync(join(w.dir, 'files', 'tool'), '#!/bin/sh\necho tool\n');
  execFileSync('chmod', ['755', join(w.dir, 'files', 'tool')]);
  writeFileSync(join(w.dir, 'Recipe'), `${BASE}COPY files/tool /opt/tools/tool\nENV PATH=/opt/tools:/bin\nENTRYPOINT ["tool", "x"]\n`);
  assert.equal((await buildRecipe(w.opts())).manifest.init, '/opt/tools/tool');
  // Not in PATH: a build error with file, line and instruction.
  writeFileSync(join(w.dir, 'Recipe'), `${BASE}ENV PATH=/usr/bin\nENTRYPOINT ["tool"]\n`);
  await assert.rejects(buildRecipe(w.opts()), (e: unknown) => e instanceof RecipeError && /Recipe:5: ENTRYPOINT: tool is not found in the image's PATH \(\/usr\/bin\)/.test(e.message));
  // An absolute program that is not in the image.
  writeFileSync(join(w.dir, 'Recipe'), `${BASE}CMD ["/usr/bin/python3", "app.py"]\n`);
  await assert.rejects(buildRecipe(w.opts()), /Recipe:4: CMD: init: \/usr\/bin\/python3 does not exist in the image/);
  assert.deepEqual(leftovers(w.dir), NONE);

  // Refused before any step runs: a relative program path, a relative mount point.
  const early = workspace(t, `${BASE}RUN touch /ran\nCMD ["./app"]\n`);
  await assert.rejects(buildRecipe(early.opts()), /Recipe:5: CMD: the program "\.\/app" must be an absolute path or a name found in the image's PATH/);
  assert.ok(!early.lines.some((l) => /^Step /.test(l)), early.lines.join('\n'));
  writeFileSync(join(early.dir, 'Recipe'), `${BASE}CMD ["/bin/true"]\n`);
  writeFileSync(join(early.dir, 'manifest.yaml'), 'name: built\nversion: 0.1.0\nuid: 1000\ngid: 1000\nmounts:\n  data:\n    type: persist\n');
  await assert.rejects(buildRecipe(early.opts()), /mounts\.data: mount points must be absolute/);
  assert.ok(!early.lines.some((l) => /^Step /.test(l)), early.lines.join('\n'));
  assert.equal(existsSync(join(early.dir, 'cache', 'layers')), false, 'no work was done');
});

test('-o: a missing directory given as dir/ is created, a missing parent is refused before any work', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, `${BASE}CMD ["/bin/true"]\n`);
  await assert.rejects(buildRecipe(w.opts({ out: join(w.dir, 'nodir', 'x.npk') })), /output .*nodir\/x\.npk: the directory .*nodir does not exist/);
  assert.ok(!w.lines.some((l) => /^Step /.test(l)), 'refused before the first step');
  assert.equal(existsSync(join(w.dir, 'cache', 'layers')), false);
  const r = await buildRecipe(w.opts({ out: `${join(w.dir, 'out', 'npks')}/` }));
  assert.equal(r.npk.path, join(w.dir, 'out', 'npks', 'built-0.1.0.npk'));
  assert.ok(existsSync(r.npk.path));
});

test('a fully cached build keeps the unchanged NPK; any change that goes into it repacks; --prune keeps only this build\'s layers', async (t) => {
  const why = skipReason();
  if (why) return t.skip(why);
  const w = workspace(t, `${BASE}COPY files/a.txt /a\nCMD ["cat", "/a"]\n`);
  const key = await readSigningKey(KEY);
  const first = await buildRecipe(w.opts({ key }));
  assert.equal(first.reused, false);
  const before = statSync(first.npk.path);
  const from = w.lines.length;
  const second = await buildRecipe(w.opts({ key }));
  assert.equal(second.reused, true);
  assert.ok(w.lines.slice(from).some((l) => /^Nothing changed since the last build: keeping .*out\.npk \(not repacked\)$/.test(l)), w.lines.slice(from).join('\n'));
  assert.ok(!w.lines.slice(from).some((l) => /^Packing /.test(l)));
  const after = statSync(second.npk.path);
  assert.equal(after.mtimeMs, before.mtimeMs, 'the file was not rewritten');
  assert.equal(second.npk.size, first.npk.size);
  assert.equal(second.manifest.init, '/bin/cat');
  const npk = await Npk.open(second.npk.path, { key: await readPublicKey(PUB) });
  await npk.verifyImage();
  // Each of these repacks: a changed manifest, an output that was modified, unsigned, --no-cache.
  writeFileSync(join(w.dir, 'manifest.yaml'), 'name: built\nversion: 0.1.0\nuid: 1001\ngid: 1001\n');
  assert.equal((await buildRecipe(w.opts({ key }))).reused, false, 'manifest changed');
  assert.equal((await buildRecipe(w.opts({ key }))).reused, true);
  writeFileSync(join(w.dir, 'out.npk'), 'x', { flag: 'a' });
  assert.equal((await buildRecipe(w.opts({ key }))).reused, false, 'the output was modified');
  assert.equal((await buildRecipe(w.opts())).reused, false, 'another key (none)');
  assert.equal((await buildRecipe(w.opts({ noCache: true }))).reused, false, '--no-cache');
  rmSync(join(w.dir, 'out.npk'));
  assert.equal((await buildRecipe(w.opts())).reused, false, 'the output is gone');
  const last = await buildRecipe(w.opts());
  assert.equal(last.reused, true);
  // The cache size is reported; --prune removes the layers of other recipes.
  assert.equal(last.cache.layers, 3);
  assert.ok(last.cache.bytes > 1_000_000, `busybox is in a layer: ${last.cache.bytes}`);
  assert.ok(w.lines.some((l) => /^Step cache .*cache: 3 layers, [\d.]+ MiB \(sextant build --prune keeps only the layers of this build\)$/.test(l)), w.lines.join('\n'));
  writeFileSync(join(w.dir, 'Recipe'), `${BASE}COPY files/b.txt /b\nCMD ["cat", "/b"]\n`);
  const other = await buildRecipe(w.opts({ out: join(w.dir, 'other.npk'), prune: true }));
  assert.deepEqual(other.pruned, { layers: 1, bytes: other.pruned!.bytes });
  assert.equal(other.cache.layers, 3, 'COPY busybox and RUN are shared, COPY a.txt is gone');
  assert.deepEqual(readdirSync(join(w.dir, 'cache', 'layers')).sort(), [...other.layers].sort());
  assert.ok(w.lines.some((l) => /^Pruned the step cache: removed 1 layers, /.test(l)));
  assert.deepEqual(leftovers(w.dir), NONE);
});
