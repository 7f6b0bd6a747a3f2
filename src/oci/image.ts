/**
 * Reading OCI images by the transport names of skopeo and podman:
 *
 *   oci:<dir>[:<tag>]                 an OCI image layout directory
 *   oci-archive:<file>[:<tag>]        the same layout in a tar file
 *   docker-archive:<file>[:<name:tag>] `docker save` / `podman save` output
 *
 * Archives are indexed by their tar headers only and blobs are read at their offsets, so a
 * multi-GiB archive is never held in memory nor read twice. Every JSON document (index,
 * manifest, config) is checked against its digest and size before it is parsed; layer blobs
 * are checked while they stream (a mismatch fails the import and its staging tree is
 * removed), and every uncompressed layer against the config's `rootfs.diff_ids`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { NorthstarError } from '../common/errors.js';
import { indexTar, type TarIndexEntry } from './tar.js';

export class OciError extends NorthstarError {
  constructor(message: string, options?: ErrorOptions) {
    super('EOCI', message, options);
    this.name = 'OciError';
  }
}

export type Transport = 'oci' | 'oci-archive' | 'docker-archive';

export interface ImageRef {
  transport: Transport;
  path: string;
  /** oci/oci-archive: the tag (ref.name annotation); docker-archive: name:tag. */
  ref?: string | undefined;
  /** The reference as given, for messages. */
  text: string;
}

export const IMAGE_FORMS = 'oci:<dir>[:<tag>], oci-archive:<file>[:<tag>] or docker-archive:<file>[:<name:tag>]';

/** An image reference, or undefined when `text` names none of the transports. */
export function parseImageRef(text: string): ImageRef | undefined {
  const m = /^(oci|oci-archive|docker-archive):(.*)$/.exec(text);
  if (!m) return undefined;
  const transport = m[1] as Transport;
  const rest = m[2]!;
  const i = rest.indexOf(':');
  const path = i < 0 ? rest : rest.slice(0, i);
  const ref = i < 0 ? undefined : rest.slice(i + 1);
  if (path === '') throw new OciError(`${text}: no path (the forms are ${IMAGE_FORMS})`);
  if (ref === '') throw new OciError(`${text}: empty ${transport === 'docker-archive' ? 'name:tag' : 'tag'} after the path`);
  return { transport, path, ref, text };
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/i.test(p))) {
    throw new OciError(`platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`);
  }
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

/** This machine's platform in OCI terms. */
export function hostPlatform(): Platform {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', riscv64: 'riscv64', ppc64: 'ppc64le', s390x: 's390x', loong64: 'loong64' };
  const architecture = map[process.arch] ?? process.arch;
  let variant: string | undefined;
  if (process.arch === 'arm') {
    const v = (process.config.variables as Record<string, unknown>)['arm_version'];
    variant = `v${typeof v === 'string' || typeof v === 'number' ? v : '7'}`;
  }
  return { os: 'linux', architecture, variant };
}

function platformMatches(want: Platform, have: Platform): boolean {
  if (want.os !== have.os || want.architecture !== have.architecture) return false;
  if (want.variant === undefined || have.variant === undefined) return true;
  // arm64's variant is v8 whether written or not.
  return want.variant === have.variant;
}

// --- blob stores ------------------------------------------------------------------------

interface FileRange {
  size: number;
  stream(): Readable;
}

/** Files of a layout directory or of an archive, by relative path. */
interface Store {
  describe: string;
  get(path: string): Promise<FileRange | undefined>;
  close(): Promise<void>;
}

async function dirStore(dir: string, describe: string): Promise<Store> {
  const s = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    throw new OciError(`${describe}: ${e.code === 'ENOENT' ? 'no such directory' : (e.code ?? e.message)}`);
  });
  if (!s.isDirectory()) throw new OciError(`${describe}: not a directory (an oci: image is an OCI image layout directory; for a tar file use oci-archive:)`);
  return {
    describe,
    async get(path) {
      const p = join(dir, path);
      const st = await stat(p).catch(() => undefined);
      if (!st?.isFile()) return undefined;
      return { size: st.size, stream: () => createReadStream(p, { highWaterMark: 1 << 20 }) };
    },
    async close() {},
  };
}

async function archiveStore(file: string, describe: string): Promise<Store> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OciError(`${describe}: ${code === 'ENOENT' ? 'no such file' : (code ?? String(e))}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new OciError(`${describe}: not a file`);
    const read = async (pos: number, len: number): Promise<Buffer> => {
      const b = Buffer.alloc(len);
      const { bytesRead } = await fh.read(b, 0, len, pos);
      return b.subarray(0, bytesRead);
    };
    const head = await read(0, 6);
    if (head[0] === 0x1f && head[1] === 0x8b) throw new OciError(`${describe}: the archive is gzip-compressed; decompress it first (gunzip -k)`);
    if (head.readUInt32LE(0) === 0xfd2fb528) throw new OciError(`${describe}: the archive is zstd-compressed; decompress it first (zstd -d)`);
    if (head.toString('latin1', 0, 6) === '\xfd7zXZ\0') throw new OciError(`${describe}: the archive is xz-compressed; decompress it first (xz -dk)`);
    let entries: TarIndexEntry[];
    try {
      entries = await indexTar(read, st.size, describe);
    } catch (e) {
      throw new OciError(e instanceof Error ? e.message : String(e), { cause: e });
    }
    const norm = (p: string) => p.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    const byPath = new Map<string, TarIndexEntry>();
    for (const e of entries) if (e.type === 'file' || e.type === 'symlink' || e.type === 'hardlink') byPath.set(norm(e.path), e);
    /** A file of the archive; links between its files (docker save's <id>/layer.tar) followed inside it. */
    const lookup = (path: string): TarIndexEntry | undefined => {
      let p = path;
      for (let hops = 0; hops < 8; hops++) {
        const e = byPath.get(p);
        if (!e || e.type === 'file') return e;
        const base = e.type === 'symlink' ? p.split('/').slice(0, -1) : [];
        const parts: string[] = [];
        for (const c of [...base, ...e.linkname.split('/')]) {
          if (c === '..') parts.pop();
          else if (c !== '' && c !== '.') parts.push(c);
        }
        p = parts.join('/');
      }
      return undefined;
    };
    return {
      describe,
      async get(path) {
        const e = lookup(path);
        if (!e) return undefined;
        return {
          size: e.size,
          stream: () => (e.size === 0 ? createReadStream(file, { start: 0, end: -1 }) : createReadStream(file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 })),
        };
      },
      async close() {
        await fh.close();
      },
    };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

// --- verification -----------------------------------------------------------------------

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

export function checkDigest(d: unknown, where: string): string {
  if (typeof d !== 'string' || !DIGEST.test(d)) throw new OciError(`${where}: invalid digest ${JSON.stringify(d)} (expected sha256:<64 hex> or sha512:<128 hex>)`);
  return d;
}

/** Passes bytes through; fails when more than `size` arrive, or at the end on a short count or a digest mismatch. */
export class VerifyStream extends Transform {
  private readonly hash;
  private count = 0;
  constructor(
    private readonly digest: string,
    private readonly size: number | undefined,
    private readonly what: string,
  ) {
    super();
    this.hash = createHash(digest.slice(0, digest.indexOf(':')));
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.size !== undefined && this.count > this.size) {
      cb(new OciError(`${this.what}: larger than the ${this.size} bytes its descriptor says`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    if (this.size !== undefined && this.count !== this.size) {
      cb(new OciError(`${this.what}: ${this.count} bytes where its descriptor says ${this.size} (truncated?)`));
      return;
    }
    const got = `${this.digest.slice(0, this.digest.indexOf(':'))}:${this.hash.digest('hex')}`;
    if (got !== this.digest) {
      cb(new OciError(`${this.what}: digest mismatch: the content hashes to ${got}, expected ${this.digest}`));
      return;
    }
    cb();
  }
}

const MAX_JSON = 32 << 20;

async function readAll(r: FileRange, what: string): Promise<Buffer> {
  if (r.size > MAX_JSON) throw new OciError(`${what}: ${r.size} bytes is too large for a JSON document`);
  const chunks: Buffer[] = [];
  for await (const c of r.stream()) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function parseJson(b: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch (e) {
    throw new OciError(`${what}: not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new OciError(`${what}: expected a JSON object`);
  return v as Record<string, unknown>;
}

// --- images -----------------------------------------------------------------------------

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd' | 'sniff';

const LAYER_TYPES: Record<string, Compression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'sniff',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'sniff',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
};

export interface Layer {
  /** For messages: the digest, or the archive path. */
  name: string;
  mediaType: string;
  compression: Compression;
  size: number;
  /** The uncompressed tar's digest from the config (rootfs.diff_ids), checked while applying. */
  diffId?: string | undefined;
  /** The blob as stored (compressed), verified against digest and size while it streams. */
  open(): Readable;
}

export interface ImageConfig {
  User?: string;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  ExposedPorts?: Record<string, unknown>;
  Volumes?: Record<string, unknown>;
  Healthcheck?: unknown;
  StopSignal?: string;
  Labels?: Record<string, string>;
}

export interface Image {
  ref: ImageRef;
  /** Identity for caches: the manifest's digest (docker-archive: the config's). */
  digest: string;
  platform: Platform;
  config: ImageConfig;
  layers: Layer[];
  close(): Promise<void>;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform | undefined;
  annotations?: Record<string, string> | undefined;
}

function descriptor(v: unknown, where: string): Descriptor {
  if (typeof v !== 'object' || v === null) throw new OciError(`${where}: not a descriptor object`);
  const d = v as Record<string, unknown>;
  const digest = checkDigest(d['digest'], where);
  const size = d['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new OciError(`${where}: invalid size ${JSON.stringify(size)}`);
  const mediaType = typeof d['mediaType'] === 'string' ? d['mediaType'] : '';
  const p = d['platform'] as Record<string, unknown> | undefined;
  const platform = p && typeof p['os'] === 'string' && typeof p['architecture'] === 'string' ? { os: p['os'], architecture: p['architecture'], variant: typeof p['variant'] === 'string' ? p['variant'] : undefined } : undefined;
  const annotations = (typeof d['annotations'] === 'object' && d['annotations'] !== null ? d['annotations'] : undefined) as Record<string, string> | undefined;
  return { mediaType, digest, size, platform, annotations };
}

function blobPath(digest: string): string {
  const i = digest.indexOf(':');
  return `blobs/${digest.slice(0, i)}/${digest.slice(i + 1)}`;
}

async function blob(store: Store, d: { digest: string; size?: number | undefined }, what: string): Promise<FileRange> {
  const r = await store.get(blobPath(d.digest));
  if (!r) throw new OciError(`${store.describe}: ${what} ${d.digest} is missing (no ${blobPath(d.digest)})`);
  if (d.size !== undefined && r.size !== d.size) throw new OciError(`${store.describe}: ${what} ${d.digest} has ${r.size} bytes, its descriptor says ${d.size} (truncated or replaced)`);
  return r;
}

async function verifiedJson(store: Store, d: Descriptor, what: string): Promise<Record<string, unknown>> {
  const r = await blob(store, d, what);
  const b = await readAll(r, `${store.describe}: ${what}`);
  const alg = d.digest.slice(0, d.digest.indexOf(':'));
  const got = `${alg}:${createHash(alg).update(b).digest('hex')}`;
  if (got !== d.digest) throw new OciError(`${store.describe}: ${what} ${d.digest}: digest mismatch: the content hashes to ${got}`);
  return parseJson(b, `${store.describe}: ${what} ${d.digest}`);
}

function imageConfig(doc: Record<string, unknown>): { config: ImageConfig; diffIds: string[]; platform: Platform | undefined } {
  const config = (typeof doc['config'] === 'object' && doc['config'] !== null ? doc['config'] : {}) as ImageConfig;
  const rootfs = doc['rootfs'] as { diff_ids?: unknown } | undefined;
  const diffIds = Array.isArray(rootfs?.diff_ids) ? rootfs.diff_ids.map((d, i) => checkDigest(d, `config rootfs.diff_ids[${i}]`)) : [];
  const platform = typeof doc['os'] === 'string' && typeof doc['architecture'] === 'string' ? { os: doc['os'], architecture: doc['architecture'], variant: typeof doc['variant'] === 'string' ? doc['variant'] : undefined } : undefined;
  return { config, diffIds, platform };
}

async function layerOf(store: Store, d: Descriptor, i: number, diffId: string | undefined): Promise<Layer> {
  const compression = LAYER_TYPES[d.mediaType];
  if (compression === undefined) {
    throw new OciError(`${store.describe}: layer ${i} (${d.digest}) has the unsupported media type ${JSON.stringify(d.mediaType)}; supported: tar layers uncompressed, +gzip or +zstd`);
  }
  const range = await blob(store, d, `layer ${i}`);
  return {
    name: d.digest,
    mediaType: d.mediaType,
    compression,
    size: d.size,
    diffId,
    open() {
      const v = new VerifyStream(d.digest, d.size, `${store.describe}: layer ${d.digest}`);
      const s = range.stream();
      s.on('error', (e) => v.destroy(e));
      return s.pipe(v);
    },
  };
}

/** Open an image and choose the manifest for `platform` (default: this machine's). */
export async function openImage(ref: ImageRef, platform?: Platform): Promise<Image> {
  const want = platform ?? hostPlatform();
  const store = ref.transport === 'oci' ? await dirStore(ref.path, `${ref.transport}:${ref.path}`) : await archiveStore(ref.path, `${ref.transport}:${ref.path}`);
  try {
    const img = ref.transport === 'docker-archive' ? await dockerImage(store, ref, want, platform !== undefined) : await ociImage(store, ref, want, platform !== undefined);
    return img;
  } catch (e) {
    await store.close();
    throw e;
  }
}

async function ociImage(store: Store, ref: ImageRef, want: Platform, explicit: boolean): Promise<Image> {
  const layoutFile = await store.get('oci-layout');
  if (!layoutFile) throw new OciError(`${store.describe}: not an OCI image layout (no oci-layout file)${ref.transport === 'oci-archive' ? '' : '; for docker save output use docker-archive:'}`);
  const layout = parseJson(await readAll(layoutFile, `${store.describe}: oci-layout`), `${store.describe}: oci-layout`);
  if (layout['imageLayoutVersion'] !== '1.0.0') throw new OciError(`${store.describe}: oci-layout: unsupported imageLayoutVersion ${JSON.stringify(layout['imageLayoutVersion'])} (expected "1.0.0")`);
  const indexFile = await store.get('index.json');
  if (!indexFile) throw new OciError(`${store.describe}: no index.json`);
  const index = parseJson(await readAll(indexFile, `${store.describe}: index.json`), `${store.describe}: index.json`);
  if (!Array.isArray(index['manifests'])) throw new OciError(`${store.describe}: index.json: no manifests array`);
  let top = index['manifests'].map((m, i) => descriptor(m, `${store.describe}: index.json manifests[${i}]`));
  const tagOf = (d: Descriptor) => d.annotations?.['org.opencontainers.image.ref.name'];
  if (ref.ref !== undefined) {
    const tagged = top.filter((d) => tagOf(d) === ref.ref);
    if (tagged.length === 0) {
      const tags = [...new Set(top.map(tagOf).filter((t) => t !== undefined))];
      throw new OciError(`${store.describe}: no image tagged ${JSON.stringify(ref.ref)}; the layout has ${tags.length ? tags.map((t) => JSON.stringify(t)).join(', ') : 'no tags'}`);
    }
    top = tagged;
  }
  // Leaves: image manifests with the platform their index gives them.
  const leaves: Descriptor[] = [];
  const visit = async (ds: Descriptor[], depth: number): Promise<void> => {
    for (const d of ds) {
      if (d.mediaType === MEDIA.ociIndex || d.mediaType === MEDIA.dockerList) {
        if (depth > 4) throw new OciError(`${store.describe}: indexes nested too deep`);
        const sub = await verifiedJson(store, d, 'index');
        if (!Array.isArray(sub['manifests'])) throw new OciError(`${store.describe}: index ${d.digest}: no manifests array`);
        await visit(sub['manifests'].map((m, i) => descriptor(m, `${store.describe}: index ${d.digest} manifests[${i}]`)), depth + 1);
      } else if (d.mediaType === MEDIA.ociManifest || d.mediaType === MEDIA.dockerManifest) {
        leaves.push(d);
      } else if (d.mediaType === '') {
        leaves.push(d); // media type from the manifest itself
      } else {
        throw new OciError(`${store.describe}: unsupported media type ${JSON.stringify(d.mediaType)} for ${d.digest} (expected an image index or manifest)`);
      }
    }
  };
  await visit(top, 0);
  if (leaves.length === 0) throw new OciError(`${store.describe}: the index lists no image manifests`);
  // Leaves whose platform is known and does not match are out; the rest are checked by their config.
  const seen: string[] = [];
  const candidates: { d: Descriptor; manifest: Record<string, unknown>; cfg: ReturnType<typeof imageConfig>; configDigest: string }[] = [];
  for (const d of leaves) {
    if (d.platform && !platformMatches(want, d.platform)) {
      seen.push(formatPlatform(d.platform));
      continue;
    }
    const manifest = await verifiedJson(store, d, 'manifest');
    const mt = typeof manifest['mediaType'] === 'string' ? manifest['mediaType'] : d.mediaType;
    if (mt === MEDIA.ociIndex || mt === MEDIA.dockerList) throw new OciError(`${store.describe}: ${d.digest} is an index where a manifest was expected`);
    const cd = descriptor(manifest['config'], `${store.describe}: manifest ${d.digest} config`);
    const cfg = imageConfig(await verifiedJson(store, cd, 'config'));
    const p = d.platform ?? cfg.platform;
    if (p && !platformMatches(want, p)) {
      seen.push(formatPlatform(p));
      continue;
    }
    if (!candidates.some((c) => c.d.digest === d.digest)) candidates.push({ d, manifest, cfg, configDigest: cd.digest });
  }
  if (candidates.length === 0) {
    throw new OciError(`${store.describe}: no image for ${formatPlatform(want)}${explicit ? '' : ' (this machine)'}; it has ${[...new Set(seen)].join(', ')}${explicit ? '' : '; choose one with --platform'}`);
  }
  if (candidates.length > 1) {
    const tags = candidates.map((c) => tagOf(c.d)).filter((t) => t !== undefined);
    throw new OciError(`${store.describe}: ${candidates.length} images match ${formatPlatform(want)}; name one with :<tag>${tags.length ? ` (${tags.map((t) => JSON.stringify(t)).join(', ')})` : ''}`);
  }
  const c = candidates[0]!;
  const layersRaw = c.manifest['layers'];
  if (!Array.isArray(layersRaw)) throw new OciError(`${store.describe}: manifest ${c.d.digest}: no layers array`);
  const descs = layersRaw.map((l, i) => descriptor(l, `${store.describe}: manifest ${c.d.digest} layers[${i}]`));
  if (c.cfg.diffIds.length !== descs.length) throw new OciError(`${store.describe}: manifest ${c.d.digest} has ${descs.length} layers but its config lists ${c.cfg.diffIds.length} diff_ids`);
  const layers: Layer[] = [];
  for (const [i, d] of descs.entries()) layers.push(await layerOf(store, d, i, c.cfg.diffIds[i]));
  return {
    ref,
    digest: c.d.digest,
    platform: c.d.platform ?? c.cfg.platform ?? want,
    config: c.cfg.config,
    layers,
    close: () => store.close(),
  };
}

async function dockerImage(store: Store, ref: ImageRef, want: Platform, explicit: boolean): Promise<Image> {
  const mf = await store.get('manifest.json');
  if (!mf) {
    if (await store.get('oci-layout')) throw new OciError(`${store.describe}: this is an OCI archive (it has oci-layout, no manifest.json); use oci-archive:${ref.path}`);
    throw new OciError(`${store.describe}: not a docker archive (no manifest.json)`);
  }
  let list: unknown;
  try {
    list = JSON.parse((await readAll(mf, `${store.describe}: manifest.json`)).toString('utf8'));
  } catch (e) {
    throw new OciError(`${store.describe}: manifest.json: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(list) || list.length === 0) throw new OciError(`${store.describe}: manifest.json: expected a non-empty array`);
  const items = list as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[];
  const tagsOf = (it: (typeof items)[number]): string[] => (Array.isArray(it.RepoTags) ? it.RepoTags.filter((t): t is string => typeof t === 'string') : []);
  let item: (typeof items)[number];
  if (ref.ref !== undefined) {
    const want = ref.ref;
    const norm = (t: string) => t.replace(/^(docker\.io\/)?(library\/)?/, '').replace(/^localhost\//, '');
    const found = items.filter((it) => tagsOf(it).some((t) => t === want || norm(t) === norm(want) || norm(t) === norm(`${want}:latest`)));
    if (found.length === 0) throw new OciError(`${store.describe}: no image named ${JSON.stringify(want)}; the archive has ${items.flatMap(tagsOf).map((t) => JSON.stringify(t)).join(', ') || 'untagged images only'}`);
    item = found[0]!;
  } else {
    if (items.length > 1) throw new OciError(`${store.describe}: ${items.length} images in the archive; name one with :<name:tag> (${items.flatMap(tagsOf).map((t) => JSON.stringify(t)).join(', ')})`);
    item = items[0]!;
  }
  if (typeof item.Config !== 'string' || !Array.isArray(item.Layers)) throw new OciError(`${store.describe}: manifest.json: an entry without Config or Layers`);
  const cfgFile = await store.get(item.Config);
  if (!cfgFile) throw new OciError(`${store.describe}: the config ${item.Config} is missing`);
  const cfgBytes = await readAll(cfgFile, `${store.describe}: ${item.Config}`);
  const configDigest = `sha256:${createHash('sha256').update(cfgBytes).digest('hex')}`;
  // The config's file name is its digest (<hex>.json or blobs/sha256/<hex>): check it.
  const named = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(item.Config);
  if (named && `sha256:${named[1]}` !== configDigest) throw new OciError(`${store.describe}: config ${item.Config}: digest mismatch: the content hashes to ${configDigest}`);
  const cfg = imageConfig(parseJson(cfgBytes, `${store.describe}: ${item.Config}`));
  if (cfg.platform && !platformMatches(want, cfg.platform)) {
    throw new OciError(`${store.describe}: the image is for ${formatPlatform(cfg.platform)}, not ${formatPlatform(want)}${explicit ? '' : ' (this machine); import it anyway with --platform ' + formatPlatform(cfg.platform)}`);
  }
  if (cfg.diffIds.length !== item.Layers.length) throw new OciError(`${store.describe}: ${item.Layers.length} layers but the config lists ${cfg.diffIds.length} diff_ids`);
  const layers: Layer[] = [];
  for (const [i, p] of item.Layers.entries()) {
    if (typeof p !== 'string') throw new OciError(`${store.describe}: manifest.json Layers[${i}] is not a path`);
    const r = await store.get(p);
    if (!r) throw new OciError(`${store.describe}: layer ${p} is missing`);
    const blobDigest = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(p);
    layers.push({
      name: p,
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar',
      compression: 'sniff',
      size: r.size,
      diffId: cfg.diffIds[i],
      open() {
        const s = r.stream();
        if (!blobDigest) return s;
        const v = new VerifyStream(`sha256:${blobDigest[1]}`, r.size, `${store.describe}: layer ${p}`);
        s.on('error', (e) => v.destroy(e));
        return s.pipe(v);
      },
    });
  }
  return { ref, digest: configDigest, platform: cfg.platform ?? want, config: cfg.config, layers, close: () => store.close() };
}

/** Read a small regular file of a tree (e.g. /etc/passwd of an imported root). */
export async function readSmall(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}
