/**
 * Rewrite an NPK with some of its parts replaced (signature.yaml, the zip comment,
 * manifest.yaml), keeping the others byte for byte, with our zip writer. For tests of
 * hostile packages: the result is a well-formed zip whose replaced parts say anything.
 */
import { open, readFile, writeFile, rm } from 'node:fs/promises';
import { Npk } from '../../src/npk/reader.js';
import { NpkZipWriter } from '../../src/npk/zip.js';

export interface Replace {
  signature?: Buffer | string;
  comment?: Buffer | string;
  manifest?: Buffer | string;
}

export async function craftNpk(src: string, out: string, replace: Replace): Promise<string> {
  const npk = await Npk.open(src);
  const data = await readFile(src);
  const part = (name: string): Buffer | undefined => {
    const e = npk.entries.find((i) => i.name === name);
    return e ? data.subarray(e.offset, e.offset + e.size) : undefined;
  };
  const img = `${out}.fs.img`;
  await writeFile(img, part('fs.img')!);
  const fh = await open(out, 'w');
  try {
    const zip = new NpkZipWriter(fh);
    await zip.addBuffer('manifest.yaml', Buffer.from(replace.manifest ?? part('manifest.yaml')!));
    const sig = replace.signature ?? part('signature.yaml');
    if (sig !== undefined) await zip.addBuffer('signature.yaml', Buffer.from(sig));
    await zip.addFileAligned('fs.img', img, npk.fsImg.size);
    await zip.finish(Buffer.from(replace.comment ?? npk.metaBytes));
  } finally {
    await fh.close();
    await rm(img, { force: true });
  }
  return out;
}

/** `n` levels of aliases, each nine times the one before ("billion laughs"), padded to about `size` bytes. */
export function billionLaughs(size: number, prefix = ''): string {
  let s = `${prefix}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n`;
  for (let i = 1; i < 30; i++) s += `l${i}: &l${i} [${Array(9).fill(`*l${i - 1}`).join(', ')}]\n`;
  let k = 0;
  while (s.length < size) s += `k${k++}: *l29\n`;
  return s;
}

/** Deeply nested flow sequences of about `size` bytes. */
export function deepNesting(size: number, prefix = ''): string {
  const d = Math.floor(size / 2);
  return `${prefix}a: ${'['.repeat(d)}${']'.repeat(d)}\n`;
}

/** Many distinct keys, about `size` bytes. */
export function manyKeys(size: number, prefix = ''): string {
  let s = prefix;
  for (let k = 0; s.length < size; k++) s += `k${k}: v\n`;
  return s;
}

/** Stray flow indicators: one YAML error per byte (each costly in the yaml library). */
export function strayBraces(size: number): string {
  return '}'.repeat(size);
}
