/**
 * NPKs for the repository, mount and cgroup tests, packed with our own builder.
 * Signed ones use the upstream example key pair; "other" is a fresh key pair.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { privateKeyFromSeed, publicKeyBytes, readPublicKey, readSigningKey } from '../../src/npk/keys.js';
import type { ByteSource } from '../../src/runtime/repository/index.js';
import type { Log } from '../../src/runtime/logger.js';

import { UPSTREAM_KEY as KEY, UPSTREAM_PUB as PUB } from '../helpers/fixtures.js';
export { UPSTREAM_EXAMPLES as FIXTURES } from '../helpers/fixtures.js';
export { KEY, PUB };

export function upstreamPublicKey(): Promise<KeyObject> {
  return readPublicKey(PUB);
}

/** Deterministic incompressible bytes. */
export function noise(bytes: number, seed = 'seed'): Buffer {
  const parts: Buffer[] = [];
  let h = createHash('sha256').update(seed).digest();
  for (let n = 0; n < bytes; n += 32) {
    parts.push(h);
    h = createHash('sha256').update(h).digest();
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

export interface FixtureOptions {
  name?: string;
  version?: string;
  /** 'upstream' (default): signed with the example key; 'other': a different key; 'none': unsigned. */
  sign?: 'upstream' | 'other' | 'none';
  /** Bytes of incompressible payload in the image. */
  payload?: number;
  /** Extra manifest YAML lines. */
  extra?: string;
}

/** Write a key pair other than the upstream one; returns the public key path. */
export function otherKeyPair(dir: string): { pub: string; seed: Buffer } {
  const seed = randomBytes(32);
  const pub = join(dir, 'other.pub');
  writeFileSync(pub, publicKeyBytes(createPublicKey(privateKeyFromSeed(seed))));
  return { pub, seed };
}

export async function makeNpk(dir: string, opts: FixtureOptions = {}): Promise<string> {
  const name = opts.name ?? 'hello';
  const version = opts.version ?? '0.0.1';
  const root = join(dir, `root-${name}-${version}-${randomBytes(4).toString('hex')}`);
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin/hello'), '#!/bin/sh\necho hello\n');
  chmodSync(join(root, 'bin/hello'), 0o755);
  writeFileSync(join(root, 'payload'), noise(opts.payload ?? 20_000, `${name}:${version}`));
  writeFileSync(join(root, 'marker'), `${name}:${version}\n`);
  const manifest = parseManifest(`name: ${name}\nversion: ${version}\ninit: /bin/hello\nuid: 1000\ngid: 1000\n${opts.extra ?? ''}`);
  const sign = opts.sign ?? 'upstream';
  const key = sign === 'upstream' ? await readSigningKey(KEY) : sign === 'other' ? privateKeyFromSeed(randomBytes(32)) : undefined;
  const out = join(dir, `${name}-${version}-${sign}.npk`);
  await packNpk({ manifest, root, key, out });
  rmSync(root, { recursive: true, force: true });
  return out;
}

/** Flip one byte of the manifest text inside the zip (the hash in signature.yaml no longer matches). */
export function tamperManifest(npk: string, out: string): string {
  const buf = Buffer.from(readFileSync(npk));
  const at = buf.indexOf('init: /bin/hello');
  if (at < 0) throw new Error('manifest text not found');
  buf[at + 'init: /bin/'.length] = 'j'.charCodeAt(0);
  writeFileSync(out, buf);
  return out;
}

/** Flip one byte at `offset`. */
export function flipByte(npk: string, out: string, offset: number): string {
  const buf = Buffer.from(readFileSync(npk));
  buf[offset] = buf[offset]! ^ 0xff;
  writeFileSync(out, buf);
  return out;
}

/** Stream a buffer in chunks; `count.bytes` records how much was pulled. */
export function chunks(data: Buffer, opts: { chunk?: number; stopAfter?: number; failAfter?: number } = {}): ByteSource & { pulled: number } {
  const chunk = opts.chunk ?? 64 * 1024;
  const src = {
    pulled: 0,
    async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < data.length; off += chunk) {
        if (opts.stopAfter !== undefined && off >= opts.stopAfter) return;
        if (opts.failAfter !== undefined && off >= opts.failAfter) throw new Error('connection reset');
        const part = data.subarray(off, Math.min(off + chunk, data.length));
        src.pulled += part.length;
        yield part;
      }
    },
  };
  return src;
}

export interface RecordingLog extends Log {
  lines: { level: string; msg: string }[];
}

export function recordingLog(): RecordingLog {
  const lines: { level: string; msg: string }[] = [];
  return {
    lines,
    debug: (msg) => lines.push({ level: 'debug', msg }),
    info: (msg) => lines.push({ level: 'info', msg }),
    warn: (msg) => lines.push({ level: 'warn', msg }),
    error: (msg) => lines.push({ level: 'error', msg }),
  };
}
