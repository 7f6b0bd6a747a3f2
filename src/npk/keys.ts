/**
 * ed25519 keys as upstream stores them: `<name>.key` is the raw 32-byte seed,
 * `<name>.pub` the raw 32-byte public key. Node's crypto does the signing; we add the
 * checks of a strict (RFC 8032 + "verify_strict") verifier that OpenSSL leaves out:
 * small-order or non-canonical public keys and R points are refused.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { NorthstarError } from '../common/errors.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export function privateKeyFromSeed(seed: Buffer): KeyObject {
  if (seed.length < 32) throw new NorthstarError('EKEY', `signing key: ${seed.length} bytes, expected a 32-byte ed25519 seed`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
}

export function publicKeyBytes(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

/** p = 2^255 - 19, little-endian y coordinate must be < p (sign bit masked). */
function isCanonicalY(enc: Buffer): boolean {
  const y = Buffer.from(enc);
  y[31] = y[31]! & 0x7f;
  // y >= p iff y is 2^255-19 .. 2^255-1: bytes ed..ff then 0xff * 30, then 0x7f
  if (y[31] !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (y[i] !== 0xff) return true;
  return y[0]! < 0xed;
}

/** Encodings (sign bit cleared) of the points of order 1, 2, 4 and 8. */
const SMALL_ORDER = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
].map((h) => Buffer.from(h, 'hex'));

export function isSmallOrder(enc: Buffer): boolean {
  const y = Buffer.from(enc);
  y[31] = y[31]! & 0x7f;
  return SMALL_ORDER.some((s) => s.equals(y));
}

export function publicKeyFromBytes(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new NorthstarError('EKEY', `public key: ${raw.length} bytes, expected 32`);
  if (!isCanonicalY(raw)) throw new NorthstarError('EKEY', 'public key: not a canonical point encoding');
  if (isSmallOrder(raw)) throw new NorthstarError('EKEY', 'public key: a small-order point (weak key)');
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (e) {
    throw new NorthstarError('EKEY', 'public key: not a valid ed25519 point', { cause: e });
  }
}

export async function readSigningKey(path: string): Promise<KeyObject> {
  const seed = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new NorthstarError('EKEY', `signing key ${path}: ${e.code ?? e.message}`);
  });
  return privateKeyFromSeed(seed);
}

export async function readPublicKey(path: string): Promise<KeyObject> {
  const raw = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new NorthstarError('EKEY', `public key ${path}: ${e.code ?? e.message}`);
  });
  try {
    return publicKeyFromBytes(raw);
  } catch (e) {
    throw new NorthstarError('EKEY', `${path}: ${(e as Error).message}`);
  }
}

export function signEd25519(key: KeyObject, data: Buffer): Buffer {
  return sign(null, data, key);
}

const L = Buffer.from('edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010', 'hex'); // group order, LE

function scalarIsCanonical(s: Buffer): boolean {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! < L[i]!) return true;
    if (s[i]! > L[i]!) return false;
  }
  return false; // s == L
}

/** Strict ed25519 verification: canonical S, R not of small order, then OpenSSL's check. */
export function verifyEd25519Strict(key: KeyObject, data: Buffer, signature: Buffer): boolean {
  if (signature.length !== 64) return false;
  const r = signature.subarray(0, 32);
  const s = signature.subarray(32);
  if (!scalarIsCanonical(s) || !isCanonicalY(r) || isSmallOrder(r)) return false;
  if (isSmallOrder(publicKeyBytes(key))) return false;
  return verify(null, data, key, signature);
}

/** `sextant gen-key`: a fresh seed and its public key; refuses to overwrite; creates `outDir`. */
export async function generateKeyPair(name: string, outDir: string): Promise<{ key: string; pub: string }> {
  const stem = basename(name, extname(name)) || name;
  await mkdir(outDir, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
    throw new NorthstarError('EKEY', `output directory ${outDir}: ${e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'a file is in the way' : (e.code ?? e.message)}`);
  });
  const keyPath = join(outDir, `${stem}.key`);
  const pubPath = join(outDir, `${stem}.pub`);
  for (const p of [keyPath, pubPath]) {
    const exists = await open(p, 'r').then(
      async (fh) => {
        await fh.close();
        return true;
      },
      () => false,
    );
    if (exists) throw new NorthstarError('EKEY', `${p} already exists`);
  }
  const seed = randomBytes(32);
  const pub = publicKeyBytes(createPublicKey(privateKeyFromSeed(seed)));
  await writeFile(keyPath, seed, { flag: 'wx', mode: 0o600 });
  await writeFile(pubPath, pub, { flag: 'wx', mode: 0o644 });
  return { key: keyPath, pub: pubPath };
}

