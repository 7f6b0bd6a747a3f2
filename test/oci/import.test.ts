/**
 * `sextant import` against images made here with umoci and skopeo: the imported tree equals
 * what `umoci unpack` makes of the same image (ownership aside: the NPK forces it), for the
 * oci:, oci-archive: and docker-archive: forms and zstd layers; the image config becomes the
 * manifest's init, args, env, uid and gid; a platform is picked from an index; the NPK
 * verifies, installs and runs in a real runtime; malformed images are refused and leave
 * nothing behind; a recipe can start FROM an image.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KEY, PUB, isExit, nextNotification, startRuntime } from '../runtime/harness.js';
import { layerBlobs, makeLayout, makeTwoPlatformIndex, run, sha256, type TarItem } from './images.js';
import { buildRecipe } from '../../src/recipe/build.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SEXTANT = join(ROOT, 'dist', 'src', 'cli', 'sextant.js');
const BUSYBOX = '/bin/busybox';
const isRoot = process.getuid?.() === 0;

function skipReason(): string | null {
  for (const tool of ['umoci', 'skopeo']) if (spawnSync(tool, ['--version']).status !== 0) return `needs ${tool} (scripts/install.sh installs it)`;
  if (!existsSync(BUSYBOX)) return 'needs busybox-static at /bin/busybox';
  if (!isRoot) return 'needs root (umoci unpack keeps modes and links as root)';
  if (process.arch !== 'x64') return 'the images are made for linux/amd64';
  return null;
}
const SKIP = skipReason();

const W = mkdtempSync(join(tmpdir(), 'ns-oci-'));
process.on('exit', () => rmSync(W, { recursive: true, force: true }));
const LAYOUT = join(W, 'layout');

const MANIFEST = 'name: oci-test\nversion: 0.1.0\nio:\n  stdout: pipe\n  stderr: pipe\n';

const PASSWD = 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/data:/bin/sh\n';
const GROUP = 'root:x:0:\napp:x:1001:\n';

function layers(): TarItem[][] {
  const bb = readFileSync(BUSYBOX);
  return [
    [
      { path: 'bin/', type: 'dir' },
      { path: 'bin/busybox', data: bb, mode: 0o755 },
      { path: 'etc/', type: 'dir' },
      { path: 'etc/passwd', data: PASSWD },
      { path: 'etc/group', data: GROUP },
      { path: 'keep/', type: 'dir', mode: 0o750 },
      { path: 'keep/a', data: 'a\n' },
      { path: 'keep/b', data: 'b\n' },
      { path: 'gone/sub/y', data: 'y\n' }, // parents implied
      { path: 'gone/x', data: 'x\n' },
      { path: 'opq/', type: 'dir' },
      { path: 'opq/old1', data: 'old\n' },
      { path: 'opq/sub/', type: 'dir' },
      { path: 'opq/sub/old2', data: 'old\n' },
      { path: 'data/', type: 'dir', mode: 0o1777 },
      { path: 'data/file1', data: 'one\n', mode: 0o640 },
      { path: 'data/setuid', data: '#!/bin/sh\n', mode: 0o4755 },
      { path: 'libdir/', type: 'dir' },
      { path: 'libdir/x', data: 'x\n' },
      { path: 'lnkdir', type: 'symlink', link: 'libdir' },
      { path: 'link-rel', type: 'symlink', link: 'data/file1' },
      { path: 'link-abs', type: 'symlink', link: '/etc/passwd' },
      { path: 'link-out', type: 'symlink', link: '../../../../../etc/shadow' },
      { path: './dotted/', type: 'dir' },
      { path: './dotted/f', data: 'dotted\n' },
    ],
    [
      { path: '.wh.gone' },
      { path: 'keep/.wh.a' },
      { path: 'opq/', type: 'dir' },
      { path: 'opq/.wh..wh..opq' },
      { path: 'opq/new', data: 'new\n' },
      { path: 'hard', type: 'hardlink', link: 'data/file1' },
      { path: 'lnkdir/y', data: 'through the link\n' },
      { path: 'null', type: 'char', mode: 0o666 },
      { path: 'link-rel', type: 'symlink', link: 'keep/b' },
    ],
    [
      { path: 'bin/sh', type: 'symlink', link: 'busybox' },
      { path: 'hard2', type: 'hardlink', link: 'hard' },
      { path: 'data/file1', data: 'uno\n', mode: 0o644 },
      { path: 'opq/sub2/', type: 'dir', mode: 0o700 },
      { path: 'keep/b', data: 'bee\n' },
    ],
  ];
}

const CONFIG = [
  '--config.entrypoint=/bin/busybox',
  '--config.entrypoint=sh',
  '--config.entrypoint=-c',
  '--config.cmd=echo hello $GREETING from $(/bin/busybox id -u):$(/bin/busybox id -g) $(/bin/busybox cat /data/file1 /hard /lnkdir/y)',
  '--config.env=GREETING=oci',
  '--config.env=NORTHSTAR_NAME=spoofed',
  '--config.user=app',
  '--config.workingdir=/data',
  '--config.exposedports=8080/tcp',
];

before(() => {
  if (SKIP) return;
  makeLayout(LAYOUT, 'v1', layers(), CONFIG, join(W, 'layers'));
  run('skopeo', ['copy', '-q', `oci:${LAYOUT}:v1`, `oci-archive:${join(W, 'image.tar')}:v1`]);
  run('skopeo', ['copy', '-q', `oci:${LAYOUT}:v1`, `docker-archive:${join(W, 'docker.tar')}:example/app:v1`]);
  run('skopeo', ['copy', '-q', '--dest-compress-format', 'zstd', `oci:${LAYOUT}:v1`, `oci:${join(W, 'zstd')}:v1`]);
  run('umoci', ['unpack', '--image', `${LAYOUT}:v1`, join(W, 'bundle')]);
});

function sextant(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SEXTANT, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function manifestFile(text = MANIFEST): string {
  const f = join(mkdtempSync(join(W, 'm-')), 'manifest.yaml');
  writeFileSync(f, text);
  return f;
}

/** Every entry below `root`: type, permission bits, content hash or link target, and which entries share an inode. */
function tree(root: string, skip: string[] = []): Map<string, string> {
  const out = new Map<string, string>();
  const inodes = new Map<number, string[]>();
  const walk = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const p = rel ? `${rel}/${n}` : n;
      if (skip.includes(p)) continue;
      const s = lstatSync(join(root, p));
      const mode = (s.mode & 0o7777).toString(8);
      if (s.isDirectory()) {
        out.set(p, `dir ${mode}`);
        walk(p);
      } else if (s.isSymbolicLink()) out.set(p, `symlink -> ${readlinkSync(join(root, p))}`);
      else if (s.isFile()) {
        out.set(p, `file ${mode} ${createHash('sha256').update(readFileSync(join(root, p))).digest('hex').slice(0, 16)}`);
        inodes.set(s.ino, [...(inodes.get(s.ino) ?? []), p]);
      } else out.set(p, `other ${s.mode.toString(8)}`);
    }
  };
  walk('');
  for (const paths of inodes.values()) if (paths.length > 1) for (const p of paths) out.set(p, `${out.get(p)} linked with ${paths.filter((x) => x !== p).join(',')}`);
  return out;
}

function unpackNpk(npk: string): string {
  const dir = mkdtempSync(join(W, 'unpack-'));
  const r = sextant(['unpack', '-n', npk, '-o', dir]);
  assert.equal(r.status, 0, r.stderr);
  return join(dir, 'root');
}

function importOk(image: string, out: string, extra: string[] = [], manifest = manifestFile()): { stdout: string; stderr: string } {
  const r = sextant(['import', image, '-m', manifest, '-k', KEY, '-o', out, ...extra], { SOURCE_DATE_EPOCH: '1700000000' });
  assert.equal(r.status, 0, `sextant import ${image}: ${r.stderr}`);
  return r;
}

test('oci:, oci-archive:, docker-archive: and zstd layers import to the tree umoci unpack makes', { skip: SKIP ?? false }, async () => {
  // umoci creates the device node as root; the NPK leaves it to the manifest's dev mount.
  const reference = tree(join(W, 'bundle', 'rootfs'), ['null']);
  assert.equal(reference.get('hard2')?.includes('linked with'), true, 'the reference has the hard links');
  assert.equal(reference.has('gone'), false);
  assert.equal(reference.has('opq/old1'), false);
  assert.equal(reference.get('libdir/y')?.startsWith('file'), true, 'lnkdir/y went through the link');
  const npks: string[] = [];
  for (const [i, image] of [`oci:${LAYOUT}:v1`, `oci-archive:${join(W, 'image.tar')}`, `docker-archive:${join(W, 'docker.tar')}:example/app:v1`, `oci:${join(W, 'zstd')}:v1`].entries()) {
    const out = join(W, `out-${i}.npk`);
    const r = importOk(image, out);
    assert.match(r.stdout, /^Imported .* \(linux\/amd64, 3 layers, sha256:[0-9a-f]{64}\) as /);
    assert.match(r.stderr, /warning: device nodes skipped .*: \/null/);
    assert.match(r.stderr, /warning: image config WorkingDir \/data is not kept/);
    assert.match(r.stderr, /warning: image config ExposedPorts 8080\/tcp/);
    assert.match(r.stderr, /warning: image config Env NORTHSTAR_NAME is left out/);
    const got = tree(unpackNpk(out));
    assert.deepEqual(got, reference, image);
    const v = sextant(['verify', '-k', PUB, out]);
    assert.equal(v.status, 0, v.stderr);
    npks.push(out);
  }
  // The same image by any transport, packed with SOURCE_DATE_EPOCH: the same bytes (docker-archive
  // stores the image with other layer blobs, but the tree and the manifest are the same).
  assert.deepEqual(readFileSync(npks[0]!), readFileSync(npks[1]!));
  assert.deepEqual(readFileSync(npks[0]!), readFileSync(npks[2]!));
  assert.deepEqual(readFileSync(npks[0]!), readFileSync(npks[3]!));
  const inspect = sextant(['inspect', npks[0]!]);
  assert.equal(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /init: \/bin\/busybox/);
  assert.match(inspect.stdout, /GREETING: oci/);
  assert.match(inspect.stdout, /uid: 1000/);
  assert.match(inspect.stdout, /gid: 1001/);
  assert.doesNotMatch(inspect.stdout, /spoofed/);
});

test('explicit manifest values win over the image config; a root image needs uid and gid', { skip: SKIP ?? false }, async () => {
  const out = join(W, 'explicit.npk');
  importOk(`oci:${LAYOUT}:v1`, out, [], manifestFile(`${MANIFEST}init: /bin/sh\nargs: [-c, 'true']\nuid: 2000\ngid: 2000\nenv:\n  GREETING: manifest\n`));
  const inspect = sextant(['inspect', out]).stdout;
  assert.match(inspect, /init: \/bin\/sh/);
  assert.match(inspect, /uid: 2000/);
  assert.match(inspect, /GREETING: manifest/);
  assert.doesNotMatch(inspect, /hello/);
  // An image without USER runs as root: refused, naming the field and what to do.
  const rootImage = join(W, 'root-layout');
  makeLayout(rootImage, 'r', [[{ path: 'bin/', type: 'dir' }, { path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 }]], ['--config.cmd=/bin/busybox'], join(W, 'root-layers'));
  const r = sextant(['import', `oci:${rootImage}:r`, '-m', manifestFile(), '-o', join(W, 'root.npk')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /image config User is empty \(the image runs as root\); the manifest needs uid and gid ≥ 1: set uid and gid in the manifest/);
  assert.equal(existsSync(join(W, 'root.npk')), false);
  importOk(`oci:${rootImage}:r`, join(W, 'root.npk'), [], manifestFile(`${MANIFEST}uid: 1000\ngid: 1000\n`));
  // A program named without a path is found on the image's PATH.
  assert.match(sextant(['inspect', join(W, 'root.npk')]).stdout, /init: \/bin\/busybox/);
});

test('an index with two platforms: this machine\'s is taken, --platform picks another, a missing one is named', { skip: SKIP ?? false }, async () => {
  const dir = join(W, 'multi');
  execFileSync('cp', ['-a', LAYOUT, dir]);
  makeTwoPlatformIndex(dir, 'v1');
  const amd = join(W, 'amd64.npk');
  importOk(`oci:${dir}:v1`, amd);
  assert.doesNotMatch(sextant(['inspect', amd]).stdout, /PLATFORM/);
  const arm = join(W, 'arm64.npk');
  const r = importOk(`oci:${dir}:v1`, arm, ['--platform', 'linux/arm64']);
  assert.match(r.stdout, /linux\/arm64\/v8/);
  assert.match(sextant(['inspect', arm]).stdout, /PLATFORM: arm64/);
  const bad = sextant(['import', `oci:${dir}:v1`, '-m', manifestFile(), '-o', join(W, 'riscv.npk'), '--platform', 'linux/riscv64']);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no image for linux\/riscv64; it has linux\/arm64\/v8, linux\/amd64/);
  const tag = sextant(['import', `oci:${dir}:v2`, '-m', manifestFile(), '-o', join(W, 'v2.npk')]);
  assert.match(tag.stderr, /no image tagged "v2"; the layout has "v1"/);
});

test('malformed images are refused, naming the problem, and leave nothing behind', { skip: SKIP ?? false }, async () => {
  const cases: { name: string; damage: (dir: string) => string; error: RegExp }[] = [
    {
      name: 'a flipped byte in a layer',
      damage: (dir) => {
        const blob = layerBlobs(dir, 'v1')[1]!;
        const b = readFileSync(blob);
        const at = b.length >> 1;
        b[at] = b[at]! ^ 0xff;
        writeFileSync(blob, b);
        return `oci:${dir}:v1`;
      },
      error: /layer sha256:[0-9a-f]{64}: (digest mismatch|corrupt compressed data)|layer 1 .*digest mismatch|layer 1 .*corrupt/,
    },
    {
      name: 'a flipped byte in the config',
      damage: (dir) => {
        const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
        const m = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { config: { digest: string } };
        const blob = join(dir, 'blobs', 'sha256', m.config.digest.slice(7));
        writeFileSync(blob, readFileSync(blob, 'utf8').replace('"app"', '"ap0"'));
        return `oci:${dir}:v1`;
      },
      error: /config sha256:[0-9a-f]{64}: digest mismatch: the content hashes to sha256:/,
    },
    {
      // A docker archive's layers have no blob digest: the config's diff_ids catch this. The
      // layers are named as docker save used to (<id>/layer.tar, links inside the archive).
      name: 'a flipped byte in a docker-archive layer',
      damage: (dir) => {
        const x = `${dir}-docker`;
        mkdirSync(x);
        execFileSync('tar', ['-C', x, '-xf', join(W, 'docker.tar')]);
        const list = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
        const ids = readdirSync(x).filter((n) => /^[0-9a-f]{64}$/.test(n));
        const byTarget = new Map(ids.map((id) => [readlinkSync(join(x, id, 'layer.tar')).replace(/^\.\.\//, ''), `${id}/layer.tar`]));
        list[0]!.Layers = list[0]!.Layers.map((l) => byTarget.get(l) ?? assert.fail(`no <id>/layer.tar for ${l}`));
        writeFileSync(join(x, 'manifest.json'), JSON.stringify(list));
        const layer0 = join(x, readlinkSync(join(x, list[0]!.Layers[0]!)).replace(/^\.\.\//, ''));
        const b = readFileSync(layer0);
        const at = b.indexOf('one\n'); // data/file1's content: the tar stays well-formed
        b[at] = 'O'.charCodeAt(0);
        execFileSync('chmod', ['u+w', layer0]);
        writeFileSync(layer0, b);
        execFileSync('tar', ['-C', x, '-cf', `${x}.tar`, '.']);
        return `docker-archive:${x}.tar`;
      },
      error: /layer 0 \([0-9a-f]{64}\/layer\.tar\): the uncompressed layer hashes to sha256:[0-9a-f]{64}, the config's rootfs\.diff_ids says sha256:/,
    },
    {
      name: 'a truncated layer blob',
      damage: (dir) => {
        const blob = layerBlobs(dir, 'v1')[2]!;
        truncateSync(blob, Math.floor(readFileSync(blob).length / 2));
        return `oci:${dir}:v1`;
      },
      error: /layer 2 sha256:[0-9a-f]{64} has \d+ bytes, its descriptor says \d+ \(truncated or replaced\)/,
    },
    {
      name: 'a truncated oci-archive',
      damage: (dir) => {
        const f = join(dir, '..', `${dir.split('/').pop()}.tar`);
        copyFileSync(join(W, 'image.tar'), f);
        truncateSync(f, readFileSync(f).length - 4096);
        return `oci-archive:${f}`;
      },
      error: /extend past the end of the archive \(truncated\)|is missing|truncated/,
    },
    {
      name: 'a ../ entry',
      damage: (dir) => {
        const d = `${dir}-dotdot`;
        // Written naively (root + path), this entry lands in the test's directory W.
        makeLayout(d, 'v1', [[{ path: 'ok', data: 'ok\n' }, { path: `${'../'.repeat(24)}${W.slice(1)}/escaped`, data: 'pwned\n' }]], ['--config.user=1000:1000', '--config.cmd=/ok'], `${d}-layers`);
        return `oci:${d}:v1`;
      },
      error: /entry path "(\.\.\/)+tmp\/ns-oci-\w+\/escaped" has a '\.\.' component that could escape the root \(refused\)/,
    },
    {
      name: 'an absolute entry',
      damage: (dir) => {
        const d = `${dir}-abs`;
        makeLayout(d, 'v1', [[{ path: '/etc/escaped', data: 'pwned\n' }]], ['--config.user=1000:1000', '--config.cmd=/ok'], `${d}-layers`);
        return `oci:${d}:v1`;
      },
      error: /entry path "\/etc\/escaped" is absolute/,
    },
    {
      name: 'an unsupported layer media type',
      damage: (dir) => {
        const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
        const m = index.manifests[0]!;
        const doc = JSON.parse(readFileSync(join(dir, 'blobs', 'sha256', m.digest.slice(7)), 'utf8')) as { layers: { mediaType: string }[] };
        doc.layers[0]!.mediaType = 'application/vnd.oci.image.layer.v1.tar+bzip2';
        const b = Buffer.from(JSON.stringify(doc));
        const digest = sha256(b);
        writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), b);
        index.manifests[0] = { ...m, digest, size: b.length };
        writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
        return `oci:${dir}:v1`;
      },
      error: /unsupported media type "application\/vnd\.oci\.image\.layer\.v1\.tar\+bzip2"/,
    },
  ];
  for (const [i, c] of cases.entries()) {
    const dir = join(W, `bad-${i}`);
    execFileSync('cp', ['-a', LAYOUT, dir]);
    const image = c.damage(dir);
    const outDir = mkdtempSync(join(W, 'bad-out-'));
    const r = sextant(['import', image, '-m', manifestFile(), '-o', `${outDir}/`]);
    assert.equal(r.status, 1, `${c.name}: ${r.stdout}`);
    assert.match(r.stderr, c.error, c.name);
    assert.deepEqual(readdirSync(outDir), [], `${c.name}: nothing left behind`);
    assert.equal(existsSync(join(W, 'escaped')), false, c.name);
  }
});

test('symlinks of a lower layer never lead an entry or a hard link out of the root', { skip: SKIP ?? false }, async () => {
  const dir = join(W, 'hostile');
  const hostDir = mkdtempSync(join(W, 'host-'));
  writeFileSync(join(hostDir, 'secret'), 'host secret\n');
  // Layer 0 makes links to host paths; layer 1 writes through them and hard-links through them.
  makeLayout(
    dir,
    'v1',
    [
      [
        { path: 'bin/', type: 'dir' },
        { path: 'bin/busybox', data: readFileSync(BUSYBOX), mode: 0o755 },
        { path: 'abs', type: 'symlink', link: hostDir },
        { path: 'rel', type: 'symlink', link: `${'../'.repeat(12)}${hostDir.slice(1)}` },
      ],
      [
        { path: 'abs/written-abs', data: 'pwned\n' },
        { path: 'rel/written-rel', data: 'pwned\n' },
      ],
    ],
    ['--config.user=1000:1000', '--config.cmd=/bin/busybox'],
    join(W, 'hostile-layers'),
  );
  const out = join(W, 'hostile.npk');
  importOk(`oci:${dir}:v1`, out);
  assert.deepEqual(readdirSync(hostDir), ['secret'], 'nothing was written through the links on the host');
  const root = unpackNpk(out);
  // Inside the image the links resolve to the image's own directory of that name.
  assert.equal(readFileSync(join(root, hostDir.slice(1), 'written-abs'), 'utf8'), 'pwned\n');
  assert.equal(readFileSync(join(root, hostDir.slice(1), 'written-rel'), 'utf8'), 'pwned\n');
  assert.equal(readlinkSync(join(root, 'abs')), hostDir, 'symlinks are kept as they are');
  // A hard link through such a link to a host file is refused: the target is not in the image.
  const dir2 = join(W, 'hostile-hardlink');
  makeLayout(dir2, 'v1', [[{ path: 'abs', type: 'symlink', link: hostDir }], [{ path: 'stolen', type: 'hardlink', link: 'abs/secret' }]], ['--config.user=1000:1000', '--config.cmd=/stolen'], join(W, 'hostile-layers2'));
  const r = sextant(['import', `oci:${dir2}:v1`, '-m', manifestFile(), '-o', join(W, 'stolen.npk')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /hard link \/stolen → \/abs\/secret: the target does not exist in the layers applied so far/);
  assert.equal(existsSync(join(W, 'stolen.npk')), false);
});

test('the imported NPK installs and runs in a real runtime', { skip: SKIP ?? false }, async (t) => {
  const out = join(W, 'run.npk');
  importOk(`oci-archive:${join(W, 'image.tar')}:v1`, out);
  const rt = await startRuntime(t, { npks: [out] });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  const exit = nextNotification(client, isExit('oci-test:0.1.0'));
  await client.start('oci-test:0.1.0');
  await exit;
  await rt.waitLog(/hello oci from 1000:1001 uno one through the link/);
});

test('a recipe starts FROM an OCI image, extracted once per image digest', { skip: SKIP ?? false }, async (t) => {
  const dir = mkdtempSync(join(W, 'recipe-'));
  const cacheDir = join(dir, 'cache');
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'files', 'extra.txt'), 'extra\n');
  writeFileSync(join(dir, 'manifest.yaml'), 'name: from-oci\nversion: 0.1.0\nuid: 1000\ngid: 1000\n');
  writeFileSync(join(dir, 'Recipe'), `FROM oci-archive:${join(W, 'image.tar')}:v1\nCOPY files/extra.txt /data/extra.txt\nCMD ["/bin/busybox", "cat", "/data/extra.txt"]\n`);
  const logs: string[] = [];
  const opts = { recipe: join(dir, 'Recipe'), manifest: join(dir, 'manifest.yaml'), out: join(dir, 'out.npk'), cacheDir, log: (l: string) => logs.push(l) };
  await buildRecipe(opts);
  const root = unpackNpk(join(dir, 'out.npk'));
  assert.equal(readFileSync(join(root, 'data', 'extra.txt'), 'utf8'), 'extra\n');
  assert.equal(readFileSync(join(root, 'data', 'file1'), 'utf8'), 'uno\n');
  assert.equal(existsSync(join(root, 'gone')), false);
  const bases = readdirSync(join(cacheDir, 'bases')).filter((n) => n.startsWith('oci-') && !n.endsWith('.complete'));
  assert.equal(bases.length, 1);
  // The same image as docker-archive has another digest; the oci: form of the same layout the same one.
  writeFileSync(join(dir, 'Recipe'), `FROM oci:${LAYOUT}:v1\nCOPY files/extra.txt /data/extra.txt\nCMD ["/bin/busybox", "cat", "/data/extra.txt"]\n`);
  logs.length = 0;
  const r = await buildRecipe({ ...opts, out: join(dir, 'again.npk') });
  assert.ok(r.steps.every((s) => s.cached || s.op !== 'COPY'), 'the COPY layer came from the cache: the base is the same');
  assert.deepEqual(readdirSync(join(cacheDir, 'bases')).filter((n) => n.startsWith('oci-') && !n.endsWith('.complete')), bases);
  t.diagnostic(logs.join('\n'));
});
