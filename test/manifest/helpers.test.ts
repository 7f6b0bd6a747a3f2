import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseMountOptions, formatMountOptions, mountOptionFlags, parseSize, pathComponents, isResourceContainer, manifestContainer,
  CAPABILITIES, CAPABILITY_NUMBERS, RLIMIT_RESOURCES, RLIMIT_NUMBERS, CONSOLE_PERMISSIONS, MOUNT_OPTIONS,
} from '../../src/manifest/index.js';
import { BASE, RESOURCE_BASE, accepts } from './helpers.js';

test('mount options: parse, normalise, format, flags', () => {
  assert.deepEqual(parseMountOptions(''), { options: [] });
  assert.deepEqual(parseMountOptions('  '), { options: [] });
  assert.deepEqual(parseMountOptions('rec, nodev ,nosuid,noexec,rw,rw'), { options: ['rw', 'noexec', 'nosuid', 'nodev', 'rec'] });
  assert.deepEqual(parseMountOptions('ro'), { error: 'invalid mount option "ro", expected rw, noexec, nosuid, nodev, rec' });
  assert.deepEqual(parseMountOptions('rw,,nodev'), { error: 'invalid mount option "", expected rw, noexec, nosuid, nodev, rec' });
  assert.deepEqual(parseMountOptions('RW'), { error: 'invalid mount option "RW", expected rw, noexec, nosuid, nodev, rec' });
  assert.equal(formatMountOptions(['nodev', 'rw']), 'rw,nodev');
  assert.equal(formatMountOptions([]), '');
  // MS_NOSUID 2, MS_NODEV 4, MS_NOEXEC 8, MS_REC 0x4000; rw sets none
  assert.equal(mountOptionFlags(['rw']), 0);
  assert.equal(mountOptionFlags(['nosuid', 'nodev', 'noexec', 'rec']), 0x400e);
  assert.deepEqual([...MOUNT_OPTIONS], ['rw', 'noexec', 'nosuid', 'nodev', 'rec']);
});

test('sizes: integers, decimal and binary units, case-insensitive, one optional space', () => {
  const ok: [string | number | bigint, bigint][] = [
    [0, 0n], [42n, 42n], ['42', 42n], ['42b', 42n], ['42 B', 42n], ['1k', 1000n], ['1KB', 1000n], ['10MB', 10000000n],
    ['1 KiB', 1024n], ['1ki', 1024n], ['3MiB', 3n << 20n], ['2g', 2000000000n], ['2GiB', 2n << 30n], ['1t', 10n ** 12n],
    ['1TiB', 1n << 40n], ['1pb', 10n ** 15n], ['1PiB', 1n << 50n], ['1e', 10n ** 18n], ['15EiB', 15n << 60n],
  ];
  for (const [input, bytes] of ok) assert.deepEqual(parseSize(input), { bytes }, String(input));
  const bad = ['', ' 1', '1  MB', '1.5MB', '-1', '1 ZB', 'MB', '1MBs', '20EB'];
  for (const input of bad) assert.ok('error' in parseSize(input), input);
  assert.ok('error' in parseSize(-1));
});

test('path components follow Rust Path::components', () => {
  assert.deepEqual(pathComponents('/'), ['/']);
  assert.deepEqual(pathComponents('/lib'), ['/', 'lib']);
  assert.deepEqual(pathComponents('/lib/'), ['/', 'lib']);
  assert.deepEqual(pathComponents('//lib//x/./y'), ['/', 'lib', 'x', 'y']);
  assert.deepEqual(pathComponents('/a/../b'), ['/', 'a', '..', 'b']);
  assert.deepEqual(pathComponents('./a'), ['.', 'a']);
  assert.deepEqual(pathComponents('a/b'), ['a', 'b']);
});

test('tables for the runtime', () => {
  assert.equal(CAPABILITIES.length, 41);
  assert.equal(new Set(Object.values(CAPABILITY_NUMBERS)).size, 41);
  assert.equal(CAPABILITY_NUMBERS.CAP_MKNOD, 27);
  assert.equal(CAPABILITY_NUMBERS.CAP_CHECKPOINT_RESTORE, 40);
  assert.equal(RLIMIT_RESOURCES.length, 16);
  assert.deepEqual(Object.keys(RLIMIT_NUMBERS).sort(), [...RLIMIT_RESOURCES].sort());
  assert.equal(RLIMIT_NUMBERS.nofile, 7);
  assert.equal(CONSOLE_PERMISSIONS.length, 17);
});

test('isResourceContainer and manifestContainer', () => {
  assert.equal(isResourceContainer(accepts(BASE)), false);
  assert.equal(isResourceContainer(accepts(RESOURCE_BASE)), true);
  const c = manifestContainer(accepts(BASE.replace('0.0.1', '1.0.0-rc1')));
  assert.equal(c.toString(), 'hello:1.0.0');
});
