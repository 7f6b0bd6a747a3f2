/**
 * Upstream's reader takes fs.img at whatever byte its zip entry data starts (no alignment
 * check); packages written by other zip writers put it at odd offsets. Ours accepts them
 * everywhere upstream does (reader, verification, sextant unpack/inspect/verify) and still
 * writes aligned packages. Mount and install of such packages: test/runtime/install-verify.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Npk } from '../../src/npk/reader.js';
import { verifyNpk } from '../../src/npk/tools.js';
import { tempDir } from '../helpers/tmp.js';
import { unalignNpk } from '../helpers/unaligned.js';
import { makeNpk, upstreamPublicKey, PUB } from '../runtime/npk-fixture.js';

const SEXTANT = fileURLToPath(new URL('../../src/cli/sextant.js', import.meta.url));

function sextant(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [SEXTANT, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('an NPK whose fs.img starts at an odd byte opens, verifies (signature and hash tree) and reads', async (t) => {
  const dir = tempDir(t);
  const aligned = await makeNpk(dir, { payload: 50_000 });
  const odd = join(dir, 'odd.npk');
  const offset = await unalignNpk(aligned, odd);
  assert.equal(offset % 4096, 291, 'fs.img data starts at an odd byte, not on a 512-byte sector');
  const key = await upstreamPublicKey();
  const npk = await Npk.open(odd, { key });
  assert.equal(npk.fsImg.offset, offset);
  const ref = await Npk.open(aligned, { key });
  assert.equal(ref.fsImg.offset % 4096, 0, 'our packer still aligns fs.img');
  assert.equal(npk.fsImg.size, ref.fsImg.size);
  assert.deepEqual(npk.verity!.rootHash, ref.verity!.rootHash);
  await npk.verifyImage();
  assert.equal((await verifyNpk(odd, key)).name, 'hello');
  // Unsigned reading (a trusted repository, sextant) too.
  assert.equal((await Npk.open(odd)).fsImg.offset, offset);
});

test('a flipped byte in an unaligned fs.img is found at its block, not at the zip offset', async (t) => {
  const dir = tempDir(t);
  const odd = join(dir, 'odd.npk');
  const offset = await unalignNpk(await makeNpk(dir, { payload: 50_000 }), odd);
  const buf = readFileSync(odd);
  buf[offset + 3 * 4096 + 7]! ^= 0x01;
  const bad = join(dir, 'bad.npk');
  writeFileSync(bad, buf);
  const npk = await Npk.open(bad, { key: await upstreamPublicKey() });
  await assert.rejects(npk.verifyImage(), (e: Error) => {
    assert.match(e.message, /^fs\.img: verity: data block 3 \(byte 12288\) does not match the hash tree/);
    return true;
  });
});

test('sextant inspect, unpack and verify accept an unaligned NPK', async (t) => {
  const dir = tempDir(t);
  const odd = join(dir, 'odd.npk');
  await unalignNpk(await makeNpk(dir, { payload: 10_000 }), odd);
  const short = sextant(['inspect', '--short', odd]);
  assert.equal(short.status, 0, short.stderr);
  assert.match(short.stdout, /^name: hello, version: 0\.0\.1, NPK version: /);
  const long = sextant(['inspect', odd]);
  assert.equal(long.status, 0, long.stderr);
  assert.match(long.stdout, /## SquashFS listing[\s\S]*marker/);
  const out = join(dir, 'out');
  const unpack = sextant(['unpack', '-n', odd, '-o', out]);
  assert.equal(unpack.status, 0, unpack.stderr);
  assert.deepEqual(readdirSync(out).sort(), ['manifest.yaml', 'root', 'signature.yaml']);
  assert.equal(readFileSync(join(out, 'root', 'marker'), 'utf8'), 'hello:0.0.1\n');
  const verify = sextant(['verify', '-k', PUB, odd]);
  assert.equal(verify.status, 0, verify.stderr);
  assert.match(verify.stdout, /: ok \(hello:0\.0\.1, root hash [0-9a-f]{64}\)/);
});
