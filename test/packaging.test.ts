import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../src/runtime/config.js';
import { tempDir } from './helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('the device configuration example parses', () => {
  const c = parseConfig(readFileSync(join(ROOT, 'packaging', 'northstar.toml'), 'utf8'));
  assert.deepEqual([...c.repositories.keys()], ['system', 'memory']);
  assert.equal(c.repositories.get('memory')!.capacitySize, 256 * 1024 * 1024);
});

test('check-kernel.sh: ok for a config with every required option, names what is missing otherwise', (t) => {
  const dir = tempDir(t);
  const required = ['NAMESPACES', 'PID_NS', 'UTS_NS', 'IPC_NS', 'NET_NS', 'BLK_DEV_LOOP', 'SQUASHFS', 'SQUASHFS_ZLIB', 'SQUASHFS_XATTR', 'CGROUPS', 'MEMCG', 'SECCOMP_FILTER', 'MEMFD_CREATE', 'PROC_FS', 'SYSFS', 'UNIX'];
  const good = join(dir, 'good');
  writeFileSync(good, required.map((o) => `CONFIG_${o}=y`).join('\n') + '\n');
  const ok = spawnSync(join(ROOT, 'scripts', 'check-kernel.sh'), [good], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stdout + ok.stderr);
  const bad = join(dir, 'bad');
  writeFileSync(bad, required.filter((o) => o !== 'SQUASHFS').map((o) => `CONFIG_${o}=y`).join('\n') + '\n# CONFIG_SQUASHFS is not set\n');
  const r = spawnSync(join(ROOT, 'scripts', 'check-kernel.sh'), [bad], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stdout, /MISSING\s+SQUASHFS\s/);
});

test('link-tools.sh: nstar, sextant and northstar linked into a directory work from any directory; a second run changes nothing', (t) => {
  const bin = tempDir(t);
  const elsewhere = tempDir(t);
  const link = spawnSync(join(ROOT, 'scripts', 'link-tools.sh'), [bin], { encoding: 'utf8' });
  assert.equal(link.status, 0, link.stderr);
  for (const tool of ['nstar', 'sextant', 'northstar']) {
    assert.equal(readlinkSync(join(bin, tool)), tool === 'northstar' ? join(ROOT, 'bin', 'northstar') : join(ROOT, 'dist', 'src', 'cli', `${tool}.js`));
    const r = spawnSync(join(bin, tool), ['--version'], { cwd: elsewhere, encoding: 'utf8' });
    assert.equal(r.status, 0, `${tool} --version from ${elsewhere}: ${r.stderr}`);
    assert.match(r.stdout, /^0\.1\.0/);
  }
  const again = spawnSync(join(ROOT, 'scripts', 'link-tools.sh'), [bin], { encoding: 'utf8' });
  assert.deepEqual([again.status, again.stdout, again.stderr], [0, '', '']);
  // A tool of that name that is not our link is left alone, with a warning.
  unlinkSync(join(bin, 'sextant'));
  writeFileSync(join(bin, 'sextant'), '#!/bin/sh\n');
  const other = spawnSync(join(ROOT, 'scripts', 'link-tools.sh'), [bin], { encoding: 'utf8' });
  assert.equal(other.status, 0);
  assert.match(other.stderr, /sextant exists and is not a symlink: left alone/);
  assert.equal(readFileSync(join(bin, 'sextant'), 'utf8'), '#!/bin/sh\n');
});

test('install.sh links the tools and installs bash-completion', () => {
  const text = readFileSync(join(ROOT, 'scripts', 'install.sh'), 'utf8');
  assert.match(text, /^\s*\.\/scripts\/link-tools\.sh$/m);
  assert.match(text, /PKGS=\([^)]*\bbash-completion\b/);
});

test('package.json: the exports map resolves the package name to the library entry (self-reference)', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; bin: Record<string, string>; files: string[] };
  assert.deepEqual(Object.keys(pkg.bin).sort(), ['northstar', 'nstar', 'sextant']);
  assert.ok(pkg.files.includes('dist/src'));
  // A specifier in a variable: tsc does not resolve it (its target is tsc's own output).
  const name = 'northstar-ts';
  const lib = (await import(name)) as Record<string, unknown>;
  const direct = (await import('../src/index.js')) as Record<string, unknown>;
  assert.equal(lib['Client'], direct['Client']);
});

test('no doc tells users to run npx outside the checkout, or cites a path of a development machine', () => {
  const docs = [join(ROOT, 'README.md'), ...readdirSync(join(ROOT, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))];
  for (const file of docs) {
    const text = readFileSync(file, 'utf8');
    for (const [i, line] of text.split('\n').entries()) {
      if (!line.includes('inside the checkout')) assert.doesNotMatch(line, /(^|[\s`$(])npx (nstar|sextant|northstar)\b/, `${file}:${i + 1}: ${line}`);
      assert.doesNotMatch(line, /(^|[\s`'"(])\/(work|home|root)\//, `${file}:${i + 1}: ${line}`);
    }
  }
});
