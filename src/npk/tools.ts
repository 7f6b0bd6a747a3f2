/** What sextant's unpack, inspect and verify do, as functions (also used by tests). */
import type { KeyObject } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isResourceContainer } from '../manifest/index.js';
import { Npk } from './reader.js';
import { SquashfsImage, formatListing } from './squashfs/reader.js';

async function withImage<T>(npk: Npk, fn: (img: SquashfsImage) => Promise<T>): Promise<T> {
  const size = npk.verity ? npk.verity.dataSize : npk.fsImg.size;
  const img = await SquashfsImage.open(npk.path, { offset: npk.fsImg.offset, size });
  try {
    return await fn(img);
  } finally {
    await img.close();
  }
}

export async function unpackNpk(path: string, out: string): Promise<{ warnings: string[] }> {
  const npk = await Npk.open(path);
  await mkdir(out, { recursive: true });
  await writeFile(join(out, 'manifest.yaml'), npk.manifestBytes);
  if (npk.signatureBytes) await writeFile(join(out, 'signature.yaml'), npk.signatureBytes);
  return withImage(npk, (img) => img.extract(join(out, 'root')));
}

export async function inspectShort(path: string): Promise<string> {
  const npk = await Npk.open(path);
  const m = npk.manifest;
  return `name: ${m.name}, version: ${m.version}, NPK version: ${npk.metaVersion}, resource container: ${isResourceContainer(m) ? 'yes' : 'no'}`;
}

export async function inspectLong(path: string): Promise<string> {
  const npk = await Npk.open(path);
  const lines = [`# inspection of '${path}'`, '## NPK Content', ...npk.entries.map((e) => `${e.name}`), ''];
  lines.push('## manifest.yaml', npk.manifestBytes.toString('utf8').trimEnd(), '');
  lines.push('## signature.yaml', npk.signatureBytes ? npk.signatureBytes.toString('utf8').trimEnd() : 'No signature found', '');
  lines.push('## SquashFS listing', (await withImage(npk, (img) => formatListing(img))).trimEnd(), '');
  return lines.join('\n');
}

/** The full check the runtime does on a signed package, hash tree included. */
export async function verifyNpk(path: string, key: KeyObject): Promise<{ name: string; version: string; rootHash: string }> {
  const npk = await Npk.open(path, { key });
  await npk.verifyImage();
  return { name: String(npk.manifest.name), version: String(npk.manifest.version), rootHash: npk.verity!.rootHash.toString('hex') };
}
