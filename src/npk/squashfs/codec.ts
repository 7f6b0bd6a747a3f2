/**
 * Block codecs. gzip in squashfs is one complete zlib stream (RFC 1950) per block (§3);
 * zstd is one zstd frame per block and only available when the running Node provides it
 * (Node >= 22.15). Other squashfs compressors (lzma, lzo, xz, lz4) have no codec in Node.
 */
import * as zlib from 'node:zlib';
import { NorthstarError, NpkError } from '../../common/errors.js';
import { COMPRESSOR_NAMES } from './format.js';

export type CompressionName = 'gzip' | 'zstd' | 'none';

export interface Codec {
  /** Superblock compressor id. */
  readonly id: number;
  readonly name: string;
  compress(data: Buffer): Promise<Buffer>;
  compressSync(data: Buffer): Buffer;
  /** Inflate one block; throws if the output would exceed `maxSize`. */
  decompressSync(data: Buffer, maxSize: number): Buffer;
}

type ZlibCb = (err: Error | null, out: Buffer) => void;
interface ZstdApi {
  zstdCompress(buf: Buffer, opts: object, cb: ZlibCb): void;
  zstdCompressSync(buf: Buffer, opts?: object): Buffer;
  zstdDecompressSync(buf: Buffer, opts?: object): Buffer;
  constants: Record<string, number>;
}

function zstdApi(): ZstdApi | undefined {
  const z = zlib as unknown as Partial<ZstdApi>;
  return typeof z.zstdCompress === 'function' &&
    typeof z.zstdCompressSync === 'function' &&
    typeof z.zstdDecompressSync === 'function'
    ? (z as ZstdApi)
    : undefined;
}

/** Names of compressors this Node can write and read. */
export function availableCompressors(): string[] {
  return zstdApi() ? ['gzip', 'zstd'] : ['gzip'];
}

function gzipCodec(level: number): Codec {
  const opts: zlib.ZlibOptions = { level, windowBits: 15, memLevel: 8 };
  return {
    id: 1,
    name: 'gzip',
    compress: (data) =>
      new Promise((resolve, reject) => zlib.deflate(data, opts, (err, out) => (err ? reject(err) : resolve(out)))),
    compressSync: (data) => zlib.deflateSync(data, opts),
    decompressSync: (data, maxSize) => zlib.inflateSync(data, { maxOutputLength: maxSize }),
  };
}

function zstdCodec(api: ZstdApi, level: number): Codec {
  const c = api.constants;
  const params = { params: { [c['ZSTD_c_compressionLevel'] ?? 100]: level } };
  return {
    id: 6,
    name: 'zstd',
    compress: (data) =>
      new Promise((resolve, reject) => api.zstdCompress(data, params, (err, out) => (err ? reject(err) : resolve(out)))),
    compressSync: (data) => api.zstdCompressSync(data, params),
    decompressSync: (data, maxSize) => api.zstdDecompressSync(data, { maxOutputLength: maxSize }),
  };
}

/** Codec used for writing. 'none' still names gzip in the superblock (upstream parity). */
export function writerCodec(name: string, level?: number): Codec {
  switch (name) {
    case 'gzip':
    case 'none':
      return gzipCodec(level ?? 9);
    case 'zstd': {
      const api = zstdApi();
      if (!api) {
        throw new NorthstarError(
          'ESQUASHFS_COMPRESSION',
          `squashfs compression zstd is not available: node ${process.version} has no zstd codec (needs node >= 22.15)`,
        );
      }
      return zstdCodec(api, level ?? 15);
    }
    default:
      throw new NorthstarError(
        'ESQUASHFS_COMPRESSION',
        `squashfs compression ${name} is not supported: use ${[...availableCompressors(), 'none'].join(', ')}`,
      );
  }
}

/** Codec for reading an image whose superblock names compressor `id`. */
export function readerCodec(id: number): Codec {
  if (id === 1) return gzipCodec(9);
  const name = COMPRESSOR_NAMES[id];
  if (id === 6) {
    const api = zstdApi();
    if (api) return zstdCodec(api, 15);
    throw new NpkError(
      'ESQUASHFS_COMPRESSION',
      `squashfs image is compressed with zstd, which node ${process.version} cannot decompress (needs node >= 22.15); supported: gzip`,
    );
  }
  throw new NpkError(
    'ESQUASHFS_COMPRESSION',
    name
      ? `squashfs image is compressed with ${name}, which is not supported (supported: ${availableCompressors().join(', ')})`
      : `squashfs image names unknown compressor id ${id} (supported: ${availableCompressors().join(', ')})`,
  );
}

/**
 * Parallel gzip block compression with reused zlib contexts. Each block is one complete zlib
 * stream (write + flush(Z_FINISH) + reset on a long-lived Deflate stream), byte-identical to
 * `deflateSync`, without paying deflateInit for every block (it dominates with 4 KiB blocks).
 * Each stream works on one block at a time on libuv's thread pool; blocks wait for a free stream.
 */
export class DeflatePool {
  private readonly idle: DeflateWorker[] = [];
  private readonly queue: { buf: Buffer; resolve: (b: Buffer) => void; reject: (e: unknown) => void }[] = [];
  private readonly all: DeflateWorker[] = [];

  constructor(
    private readonly level: number,
    size: number,
  ) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn());
  }

  private spawn(): DeflateWorker {
    const w = new DeflateWorker(this.level);
    this.all.push(w);
    return w;
  }

  compress(buf: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.queue.push({ buf, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const job = this.queue.shift()!;
      w.run(job.buf, (err, out) => {
        if (err) {
          job.reject(err);
          w.close();
          this.idle.push(this.spawn());
        } else {
          this.idle.push(w);
          job.resolve(out!);
        }
        this.pump();
      });
    }
  }

  close(): void {
    for (const w of this.all) w.close();
    this.all.length = 0;
  }
}

class DeflateWorker {
  private readonly stream: zlib.Deflate;
  private chunks: Buffer[] = [];
  private failed: Error | undefined;

  constructor(level: number) {
    this.stream = zlib.createDeflate({ level, windowBits: 15, memLevel: 8 });
    this.stream.on('data', (c: Buffer) => this.chunks.push(c));
    this.stream.on('error', (e: Error) => {
      this.failed = e;
    });
  }

  run(buf: Buffer, done: (err: Error | undefined, out?: Buffer) => void): void {
    this.chunks = [];
    this.stream.write(buf);
    this.stream.flush(zlib.constants.Z_FINISH, () => {
      if (this.failed) return done(this.failed);
      const out = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
      this.chunks = [];
      this.stream.reset();
      done(undefined, out);
    });
  }

  close(): void {
    this.stream.close();
  }
}
