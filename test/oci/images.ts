/**
 * Test images, made here with umoci and skopeo (never pulled): layers are written as tar
 * files by a small ustar writer (so whiteouts, opaque directories, hard links to a lower
 * layer's file and hostile `../` entries can be put exactly where a test wants them), added
 * with `umoci raw add-layer`, configured with `umoci config`, and converted with
 * `skopeo copy` to oci-archive:, docker-archive: and zstd layers.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface TarItem {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'fifo';
  mode?: number;
  data?: Buffer | string;
  link?: string;
  mtime?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar archive of `items`, in order, with the two end blocks. */
export function tarOf(items: TarItem[]): Buffer {
  const blocks: Buffer[] = [];
  for (const it of items) {
    const type = it.type ?? 'file';
    const data = type === 'file' ? Buffer.from(it.data ?? '') : Buffer.alloc(0);
    const h = Buffer.alloc(512);
    let name = it.path;
    let prefix = '';
    if (Buffer.byteLength(name) > 100) {
      const cut = name.lastIndexOf('/', 154);
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    h.write(name, 0, 100, 'utf8');
    h.write(octal(it.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'latin1');
    h.write(octal(0, 8), 108, 'latin1');
    h.write(octal(0, 8), 116, 'latin1');
    h.write(octal(data.length, 12), 124, 'latin1');
    h.write(octal(it.mtime ?? 1700000000, 12), 136, 'latin1');
    h.write('        ', 148, 'latin1');
    h.write({ file: '0', hardlink: '1', symlink: '2', char: '3', dir: '5', fifo: '6' }[type], 156, 'latin1');
    h.write(it.link ?? '', 157, 100, 'utf8');
    h.write('ustar\0' + '00', 257, 'latin1');
    h.write(octal(type === 'char' ? 1 : 0, 8), 329, 'latin1');
    h.write(octal(type === 'char' ? 3 : 0, 8), 337, 'latin1');
    h.write(prefix, 345, 155, 'utf8');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(octal(sum, 7) + ' ', 148, 'latin1');
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** An OCI layout at `dir` with tag `tag`: the layers in order, then the config. */
export function makeLayout(dir: string, tag: string, layers: TarItem[][], config: string[], work: string): void {
  run('umoci', ['init', '--layout', dir]);
  run('umoci', ['new', '--image', `${dir}:${tag}`]);
  mkdirSync(work, { recursive: true });
  for (const [i, items] of layers.entries()) {
    const f = join(work, `layer${i}.tar`);
    writeFileSync(f, tarOf(items));
    run('umoci', ['raw', 'add-layer', '--image', `${dir}:${tag}`, f]);
  }
  if (config.length) run('umoci', ['config', '--image', `${dir}:${tag}`, ...config]);
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function writeBlob(dir: string, b: Buffer): { digest: string; size: number } {
  const digest = sha256(b);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), b);
  return { digest, size: b.length };
}

function readBlob(dir: string, digest: string): Buffer {
  return readFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)));
}

/**
 * Turn tag `tag` of the layout into a two-platform index: the image as linux/amd64 and a
 * copy of it (its config marked arm64, a marker Env added) as linux/arm64.
 */
export function makeTwoPlatformIndex(dir: string, tag: string): void {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; mediaType: string; annotations?: Record<string, string> }[] };
  const i = index.manifests.findIndex((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  const desc = index.manifests[i]!;
  const manifest = JSON.parse(readBlob(dir, desc.digest).toString()) as { config: { digest: string; size: number; mediaType: string } };
  const config = JSON.parse(readBlob(dir, manifest.config.digest).toString()) as { architecture: string; config: { Env?: string[] } };
  const armConfig = { ...config, architecture: 'arm64', variant: 'v8', config: { ...config.config, Env: [...(config.config.Env ?? []), 'PLATFORM=arm64'] } };
  const armConfigBlob = writeBlob(dir, Buffer.from(JSON.stringify(armConfig)));
  const armManifest = { ...manifest, config: { ...manifest.config, ...armConfigBlob } };
  const armManifestBlob = writeBlob(dir, Buffer.from(JSON.stringify(armManifest)));
  const nested = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...armManifestBlob, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: desc.digest, size: desc.size, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  const nestedBlob = writeBlob(dir, Buffer.from(JSON.stringify(nested)));
  index.manifests[i] = { mediaType: 'application/vnd.oci.image.index.v1+json', ...nestedBlob, annotations: { 'org.opencontainers.image.ref.name': tag } };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
}

/** The first layer blob's path of tag `tag` (for tests that damage it). */
export function layerBlobs(dir: string, tag: string): string[] {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: Record<string, string> }[] };
  const desc = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag)!;
  const manifest = JSON.parse(readBlob(dir, desc.digest).toString()) as { layers: { digest: string }[] };
  return manifest.layers.map((l) => join(dir, 'blobs', 'sha256', l.digest.slice(7)));
}
