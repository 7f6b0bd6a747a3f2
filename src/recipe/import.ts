/**
 * `sextant import`: an OCI image (layout, oci-archive or docker-archive) → a signed NPK.
 * The layers are applied in a staging directory next to the output, the image config fills
 * what the -m manifest leaves open, and the tree is packed by the same writer as
 * `sextant pack`. On any error the staging directory is removed and no output is written.
 */
import type { KeyObject } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ValidationError, errorMessage } from '../common/errors.js';
import type { Manifest } from '../manifest/index.js';
import { parseNodes, type Node } from '../manifest/source.js';
import { packNpk, packTarget, type Compression, type PackResult } from '../npk/builder.js';
import { checkStartable } from './check.js';
import { formatOf, mergeManifest } from './manifest.js';
import { configToManifest } from '../oci/config.js';
import { extractImage, type ExtractProgress } from '../oci/extract.js';
import { formatPlatform, IMAGE_FORMS, OciError, openImage, parseImageRef, parsePlatform } from '../oci/image.js';

export interface ImportOptions {
  /** oci:…, oci-archive:… or docker-archive:… */
  image: string;
  /** os/arch[/variant]; default: this machine's. */
  platform?: string | undefined;
  /** The -m manifest file. */
  manifest: string;
  key?: KeyObject | undefined;
  out: string;
  compression?: Compression | undefined;
  mtime?: number | undefined;
  seed?: string | undefined;
  warn?: ((message: string) => void) | undefined;
  onExtract?: ExtractProgress | undefined;
  onPack?: ((done: number, total: number) => void) | undefined;
  /** Aborts the import between layer entries or before packing; nothing is left behind. */
  signal?: AbortSignal | undefined;
}

export interface ImportResult {
  npk: PackResult;
  manifest: Manifest;
  digest: string;
  platform: string;
  layers: number;
}

function topKeys(text: string, file: string): Set<string> {
  let root: Node;
  try {
    root = parseNodes(text, formatOf(file));
  } catch {
    return new Set(); // mergeManifest reports the syntax error with its position
  }
  if (root.kind !== 'map') return new Set();
  return new Set(root.entries.map(([k]) => (k.kind === 'scalar' ? k.text : k.kind === 'str' ? k.value : '')));
}

export async function importImage(o: ImportOptions): Promise<ImportResult> {
  const ref = parseImageRef(o.image);
  if (!ref) throw new OciError(`image ${JSON.stringify(o.image)}: expected ${IMAGE_FORMS} (registry images are not fetched: copy one to a file first, e.g. skopeo copy docker://alpine:3 oci-archive:alpine.tar)`);
  const platform = o.platform !== undefined ? parsePlatform(o.platform) : undefined;
  const text = await readFile(o.manifest, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new OciError(`manifest ${o.manifest}: ${e.code ?? e.message}`);
  });
  const keys = topKeys(text, o.manifest);
  const warn = o.warn ?? (() => {});
  const image = await openImage(ref, platform);
  let staging: string | undefined;
  try {
    // The output's directory must exist before any work (packTarget names the problem).
    const preliminary = await packTarget(o.out, '_', '_');
    staging = await mkdtemp(join(dirname(preliminary), `.${basename(preliminary)}.import-`));
    const root = join(staging, 'root');
    await extractImage(image, root, warn, o.onExtract, o.signal);
    const { implied, warnings } = await configToManifest(image.config, root, { init: !keys.has('init'), uid: !keys.has('uid'), gid: !keys.has('gid') });
    for (const w of warnings) warn(w);
    let manifest: Manifest;
    try {
      manifest = mergeManifest(text, formatOf(o.manifest), implied, `manifest ${o.manifest} with the image config`, true);
    } catch (e) {
      if (e instanceof ValidationError) throw new OciError(`${o.manifest}: ${errorMessage(e)}`, { cause: e });
      throw e;
    }
    await checkStartable(manifest, o.manifest, root);
    if (o.signal?.aborted) throw new OciError(`${o.image}: interrupted`);
    const target = await packTarget(o.out, manifest.name, manifest.version);
    const npk = await packNpk({ manifest, root, key: o.key, out: target, compression: o.compression, mtime: o.mtime, seed: o.seed, onProgress: o.onPack });
    return { npk, manifest, digest: image.digest, platform: formatPlatform(image.platform), layers: image.layers.length };
  } finally {
    await image.close();
    if (staging) await rm(staging, { recursive: true, force: true });
  }
}
