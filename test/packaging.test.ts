import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
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
