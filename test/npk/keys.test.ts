import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  generateKeyPair, privateKeyFromSeed, publicKeyBytes, publicKeyFromBytes, readPublicKey, readSigningKey,
  signEd25519, verifyEd25519Strict,
} from '../../src/npk/keys.js';
import { tempDir } from '../helpers/tmp.js';
import { UPSTREAM_EXAMPLES } from '../helpers/fixtures.js';

const FIXTURES = pathToFileURL(UPSTREAM_EXAMPLES);

test('upstream example key: the public key derives from the seed', async () => {
  const seed = readFileSync(new URL('northstar.key', FIXTURES));
  const pub = readFileSync(new URL('northstar.pub', FIXTURES));
  assert.equal(pub.length, 32);
  assert.ok(publicKeyBytes(createPublicKey(privateKeyFromSeed(seed))).equals(pub));
  const key = await readSigningKey(new URL('northstar.key', FIXTURES).pathname);
  const verifier = await readPublicKey(new URL('northstar.pub', FIXTURES).pathname);
  const sig = signEd25519(key, Buffer.from('hello'));
  assert.ok(verifyEd25519Strict(verifier, Buffer.from('hello'), sig));
  assert.ok(!verifyEd25519Strict(verifier, Buffer.from('hellO'), sig));
});

test('strict verification refuses non-canonical S and small-order R', () => {
  const key = privateKeyFromSeed(Buffer.alloc(32, 7));
  const pub = publicKeyFromBytes(publicKeyBytes(createPublicKey(key)));
  const msg = Buffer.from('data');
  const sig = signEd25519(key, msg);
  assert.ok(verifyEd25519Strict(pub, msg, sig));
  // S + L is the same scalar mod L but not canonical: must be refused.
  const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex');
  const s = sig.subarray(32);
  const sPlusL = Buffer.alloc(32);
  let carry = 0;
  for (let i = 0; i < 32; i++) {
    const v = s[i]! + L[i]! + carry;
    sPlusL[i] = v & 0xff;
    carry = v >> 8;
  }
  assert.ok(!verifyEd25519Strict(pub, msg, Buffer.concat([sig.subarray(0, 32), sPlusL])));
  const identityR = Buffer.alloc(32);
  identityR[0] = 1;
  assert.ok(!verifyEd25519Strict(pub, msg, Buffer.concat([identityR, s])));
  assert.ok(!verifyEd25519Strict(pub, msg, sig.subarray(0, 63)));
});

test('weak, short and non-canonical public keys are refused', () => {
  assert.throws(() => publicKeyFromBytes(Buffer.alloc(31)), /31 bytes, expected 32/);
  const identity = Buffer.alloc(32);
  identity[0] = 1;
  assert.throws(() => publicKeyFromBytes(identity), /small-order/);
  assert.throws(() => publicKeyFromBytes(Buffer.from('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')), /small-order/);
  assert.throws(() => publicKeyFromBytes(Buffer.from('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')), /canonical/);
});

test('gen-key writes a 32-byte seed and public key and refuses to overwrite', async (t) => {
  const dir = tempDir(t);
  const { key, pub } = await generateKeyPair('repo.v1', dir);
  assert.equal(key, join(dir, 'repo.key'));
  assert.equal(pub, join(dir, 'repo.pub'));
  assert.equal(statSync(key).size, 32);
  assert.ok(publicKeyBytes(createPublicKey(privateKeyFromSeed(readFileSync(key)))).equals(readFileSync(pub)));
  await assert.rejects(generateKeyPair('repo', dir), /already exists/);
  writeFileSync(join(dir, 'short.key'), Buffer.alloc(5));
  await assert.rejects(readSigningKey(join(dir, 'short.key')), /5 bytes, expected a 32-byte ed25519 seed/);
});
