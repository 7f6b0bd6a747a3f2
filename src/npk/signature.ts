/**
 * signature.yaml: the hashes document (exact bytes, signed) followed by `---` and the
 * base64 ed25519 signature, with no trailing newline.
 */
import { createHash } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { NpkError } from '../common/errors.js';

export interface Hashes {
  metaHash: Buffer;
  manifestHash: Buffer;
  verityHash: Buffer;
  verityOffset: number;
}

export interface SignatureFile {
  hashes: Hashes;
  /** The exact signed bytes (everything before `---`). */
  document: Buffer;
  signature: Buffer;
}

export function sha256(data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hashesDocument(h: Hashes): Buffer {
  return Buffer.from(
    'meta:\n' +
      `  hash: ${h.metaHash.toString('hex')}\n` +
      'manifest.yaml:\n' +
      `  hash: ${h.manifestHash.toString('hex')}\n` +
      'fs.img:\n' +
      `  verity-hash: ${h.verityHash.toString('hex')}\n` +
      `  verity-offset: ${h.verityOffset}\n`,
  );
}

export function signatureFile(document: Buffer, signature: Buffer): Buffer {
  return Buffer.concat([document, Buffer.from(`---\nsignature: ${signature.toString('base64')}`)]);
}

function hex32(v: unknown, field: string): Buffer {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) {
    throw new NpkError('ESIGNATURE', `signature.yaml: ${field} must be 64 hex digits`);
  }
  return Buffer.from(v, 'hex');
}

function section(doc: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = doc[key];
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new NpkError('ESIGNATURE', `signature.yaml: missing section ${key}`);
  return v as Record<string, unknown>;
}

export function parseSignatureFile(raw: Buffer): SignatureFile {
  const text = raw.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(raw)) throw new NpkError('ESIGNATURE', 'signature.yaml: not valid utf-8');
  const sep = text.indexOf('---');
  if (sep < 0) throw new NpkError('ESIGNATURE', 'signature.yaml: missing --- separator before the signature');
  const docText = text.slice(0, sep);
  let doc: unknown;
  let sigDoc: unknown;
  try {
    doc = parseYaml(docText);
    sigDoc = parseYaml(text.slice(sep + 3));
  } catch (e) {
    throw new NpkError('ESIGNATURE', `signature.yaml: invalid yaml: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!doc || typeof doc !== 'object') throw new NpkError('ESIGNATURE', 'signature.yaml: hashes document is not a map');
  const d = doc as Record<string, unknown>;
  const fs = section(d, 'fs.img');
  const offset = fs['verity-offset'];
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    throw new NpkError('ESIGNATURE', 'signature.yaml: fs.img.verity-offset must be a non-negative integer');
  }
  const sigField = (sigDoc as Record<string, unknown> | null)?.['signature'];
  if (typeof sigField !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(sigField)) {
    throw new NpkError('ESIGNATURE', 'signature.yaml: signature must be base64');
  }
  const signature = Buffer.from(sigField, 'base64');
  if (signature.length !== 64) throw new NpkError('ESIGNATURE', `signature.yaml: signature is ${signature.length} bytes, expected 64`);
  return {
    hashes: {
      metaHash: hex32(section(d, 'meta')['hash'], 'meta.hash'),
      manifestHash: hex32(section(d, 'manifest.yaml')['hash'], 'manifest.yaml.hash'),
      verityHash: hex32(fs['verity-hash'], 'fs.img.verity-hash'),
      verityOffset: offset,
    },
    document: Buffer.from(docText, 'utf8'),
    signature,
  };
}
