/**
 * Packing an NPK: manifest + optional root directory (+ optional signing key) → zip of
 * manifest.yaml, signature.yaml and fs.img (squashfs + appended verity data).
 *
 * Reproducible packs: with `mtime` (SOURCE_DATE_EPOCH) set, the squashfs image is
 * deterministic and the verity salt and UUID are derived from `seed` if given, else
 * from the manifest and the image contents, so two packs of the same inputs are
 * byte-identical. Without either, salt and UUID are random like upstream's.
 */
import { createHash, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { NorthstarError } from '../common/errors.js';
import { serializeManifest, isResourceContainer, type Manifest } from '../manifest/index.js';
import { writeSquashfs, type SquashfsWriteOptions } from './squashfs/writer.js';
import { metaDocument } from './format.js';
import { hashesDocument, sha256, signatureFile } from './signature.js';
import { signEd25519 } from './keys.js';
import { appendVerity, uuidV4 } from './verity.js';
import { NpkZipWriter } from './zip.js';
import { pseudoEntries } from './pseudo.js';

export type Compression = NonNullable<SquashfsWriteOptions['compression']>;

export interface PackOptions {
  manifest: Manifest;
  /** Root filesystem directory; absent = only what the manifest implies. */
  root?: string | undefined;
  /** ed25519 signing key; absent = unsigned NPK without verity data. */
  key?: KeyObject | undefined;
  /** Output file path. */
  out: string;
  compression?: Compression | undefined;
  blockSize?: number | undefined;
  /** SOURCE_DATE_EPOCH: fixed timestamps for reproducible images. */
  mtime?: number | undefined;
  /** Seed for the verity salt and UUID (reproducible builds). */
  seed?: string | Buffer | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface PackResult {
  path: string;
  size: number;
  /** fs.img offset inside the NPK and its length (squashfs + verity). */
  fsImg: { offset: number; size: number };
  rootHash?: Buffer;
}

async function hashFile(path: string): Promise<Buffer> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest();
}

async function deriveSaltAndUuid(opts: PackOptions, manifestBytes: Buffer, image: string): Promise<{ salt?: Buffer; uuid?: Buffer }> {
  let secret: Buffer;
  if (opts.seed !== undefined) secret = Buffer.from(opts.seed);
  else if (opts.mtime !== undefined) secret = Buffer.concat([manifestBytes, await hashFile(image)]);
  else return { salt: randomBytes(32), uuid: uuidV4(randomBytes(16)) };
  return {
    salt: createHmac('sha256', secret).update('northstar verity salt').digest(),
    uuid: uuidV4(createHmac('sha256', secret).update('northstar verity uuid').digest()),
  };
}

export async function packNpk(opts: PackOptions): Promise<PackResult> {
  const manifestBytes = Buffer.from(serializeManifest(opts.manifest));
  const work = await mkdtemp(join(dirname(opts.out), `.${basename(opts.out)}.`));
  try {
    const image = join(work, 'fs.img');
    await writeSquashfs(image, {
      root: opts.root,
      pseudo: pseudoEntries(opts.manifest),
      forceUid: opts.manifest.uid,
      forceGid: opts.manifest.gid,
      compression: opts.compression,
      blockSize: opts.blockSize,
      mtime: opts.mtime,
      onProgress: opts.onProgress,
    });
    const meta = metaDocument();
    let signature: Buffer | undefined;
    let rootHash: Buffer | undefined;
    if (opts.key) {
      const { salt, uuid } = await deriveSaltAndUuid(opts, manifestBytes, image);
      const v = await appendVerity(image, { salt, uuid });
      rootHash = v.rootHash;
      const doc = hashesDocument({
        metaHash: sha256(meta),
        manifestHash: sha256(manifestBytes),
        verityHash: v.rootHash,
        verityOffset: v.dataSize,
      });
      signature = signatureFile(doc, signEd25519(opts.key, doc));
    }
    const imageSize = (await stat(image)).size;
    const tmpOut = join(work, 'out.npk');
    const fh = await open(tmpOut, 'w');
    let size: number;
    let offset: number;
    try {
      const zip = new NpkZipWriter(fh);
      await zip.addBuffer('manifest.yaml', manifestBytes);
      if (signature) await zip.addBuffer('signature.yaml', signature);
      offset = await zip.addFileAligned('fs.img', image, imageSize);
      size = await zip.finish(meta);
    } finally {
      await fh.close();
    }
    await rename(tmpOut, opts.out);
    return { path: opts.out, size, fsImg: { offset, size: imageSize }, ...(rootHash ? { rootHash } : {}) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `out` ends with a slash: it names a directory. */
function namesDirectory(out: string): boolean {
  return out.endsWith('/') || out.endsWith(sep);
}

/**
 * Where `sextant pack` and `build` write: `<out>/<name>-<version>.npk` for a directory, else
 * `out` itself. Called before any work: a directory named with a trailing slash (`-o out/`)
 * is created; a file whose directory does not exist is refused, naming it.
 */
export async function packTarget(out: string, name: string, version: string): Promise<string> {
  if (namesDirectory(out)) {
    await mkdir(out, { recursive: true }).catch((e: NodeJS.ErrnoException) => {
      throw new NorthstarError('EARGS', `output directory ${out}: ${e.code === 'EEXIST' || e.code === 'ENOTDIR' ? 'a file is in the way' : (e.code ?? e.message)}`);
    });
    return join(out, `${name}-${version}.npk`);
  }
  const s = await stat(out).catch(() => undefined);
  if (s?.isDirectory()) return join(out, `${name}-${version}.npk`);
  const parent = dirname(out);
  const p = await stat(parent).catch(() => undefined);
  if (p === undefined) throw new NorthstarError('EARGS', `output ${out}: the directory ${parent} does not exist (create it, or end -o with / to name a directory that sextant creates)`);
  if (!p.isDirectory()) throw new NorthstarError('EARGS', `output ${out}: ${parent} is not a directory`);
  return out;
}

/**
 * `--clones n`: n NPKs of the same root whose names are `<name>-<i>` (i zero-padded to
 * the digits of n). Resource containers are packed once, like upstream.
 */
export async function packClones(opts: PackOptions, clones: number): Promise<PackResult[]> {
  if (namesDirectory(opts.out)) await mkdir(opts.out, { recursive: true });
  const s = await stat(opts.out).catch(() => undefined);
  if (!s?.isDirectory()) throw new NorthstarError('EARGS', `--clones needs --out to be an existing directory: ${opts.out}`);
  const m = opts.manifest;
  if (isResourceContainer(m)) {
    return [await packNpk({ ...opts, out: join(opts.out, `${m.name}-${m.version}.npk`) })];
  }
  const digits = String(clones).length;
  const results: PackResult[] = [];
  for (let i = 0; i < clones; i++) {
    const name = `${m.name}-${String(i).padStart(digits, '0')}`;
    const manifest = { ...m, name } as Manifest;
    results.push(await packNpk({ ...opts, manifest, out: join(opts.out, `${name}-${m.version}.npk`) }));
  }
  return results;
}
