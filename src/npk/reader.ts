/**
 * Opening and verifying an NPK. With a public key (a repository with a key) everything
 * the runtime relies on is checked before anything is mounted: the entry set and
 * layout, the format version, the strict ed25519 signature, the meta and manifest
 * hashes and the verity superblock. `verifyImage()` additionally checks the whole
 * hash tree of fs.img against the signed root hash in user space, for kernels without
 * device-mapper. Without a key (a trusted repository) only the layout, the format
 * version and the manifest are checked, like upstream.
 */
import type { KeyObject } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import yauzl from 'yauzl';
import { NpkError, NorthstarError } from '../common/errors.js';
import { parseManifest, type Manifest } from '../manifest/index.js';
import { MAX_SIGNATURE_SIZE, parseMetaComment, parseSignatureFile, sha256, type SignatureFile } from './signature.js';
import { decodeSuperblock, verifyVerity, VERITY_BLOCK, type VeritySuperblock } from './verity.js';
import { crc32 } from './zip.js';
import { NPK_FORMAT_VERSION, checkFormatVersion } from './format.js';
import { verifyEd25519Strict } from './keys.js';

export const MANIFEST_NAME = 'manifest.yaml';
export const SIGNATURE_NAME = 'signature.yaml';
export const FS_IMG_NAME = 'fs.img';
const KNOWN = new Set([MANIFEST_NAME, SIGNATURE_NAME, FS_IMG_NAME]);
/** Upper bound for signature.yaml in a trusted repository (not parsed there, only kept). */
const MAX_META_ENTRY = 4 << 20;
/**
 * Upper bound for manifest.yaml. Upstream's manifests are a few KiB; the bound keeps the
 * YAML parse of an unsigned manifest, which runs on the event loop, short (what it costs:
 * docs/design/measurements.md).
 */
export const MAX_MANIFEST_SIZE = 64 << 10;

export interface NpkOpenOptions {
  /** Public key of the repository; absent = trusted, no signature checks. */
  key?: KeyObject | undefined;
  /** How messages name the key, e.g. its file and config key (default: none, "the repository key"). */
  keyName?: string | undefined;
  /** How messages name the file (default: its path; a repository names an upload instead of its temp path). */
  name?: string | undefined;
}

export interface NpkVerity {
  /** Bytes of squashfs data in fs.img = where the verity superblock starts. */
  dataSize: number;
  rootHash: Buffer;
  superblock: VeritySuperblock;
}

export interface NpkEntryInfo {
  name: string;
  offset: number;
  size: number;
}

export class Npk {
  private constructor(
    readonly path: string,
    readonly manifest: Manifest,
    readonly manifestBytes: Buffer,
    readonly metaBytes: Buffer,
    readonly metaVersion: string,
    readonly signatureBytes: Buffer | undefined,
    readonly signature: SignatureFile | undefined,
    /** Byte offset and length of fs.img inside the NPK file (for the loop device). */
    readonly fsImg: { offset: number; size: number },
    readonly verity: NpkVerity | undefined,
    readonly entries: readonly NpkEntryInfo[],
  ) {}

  static async open(path: string, opts: NpkOpenOptions = {}): Promise<Npk> {
    const zip = await openZip(path, opts.name ?? path);
    try {
      return await Npk.load(path, zip, opts);
    } finally {
      zip.close();
    }
  }

  private static async load(path: string, zip: yauzl.ZipFile, opts: NpkOpenOptions): Promise<Npk> {
    const found = new Map<string, yauzl.Entry>();
    const infos: NpkEntryInfo[] = [];
    for (let entry = await nextEntry(zip); entry; entry = await nextEntry(zip)) {
      const name = Buffer.isBuffer(entry.fileName) ? entry.fileName.toString('utf8') : String(entry.fileName);
      if (!KNOWN.has(name)) throw new NpkError('ENPKLAYOUT', `unexpected entry '${name}' in npk`);
      if (found.has(name)) throw new NpkError('ENPKLAYOUT', `duplicate entry '${name}' in npk`);
      if (entry.compressionMethod !== 0) {
        throw new NpkError('ENPKLAYOUT', `entry '${name}' is compressed (method ${entry.compressionMethod}); npk entries must be stored`);
      }
      if (entry.generalPurposeBitFlag & 0x1) throw new NpkError('ENPKLAYOUT', `entry '${name}' is encrypted`);
      if (entry.compressedSize !== entry.uncompressedSize) {
        throw new NpkError('ENPKLAYOUT', `entry '${name}': stored sizes differ (${entry.compressedSize} != ${entry.uncompressedSize})`);
      }
      const local = await zip.readLocalFileHeaderPromise(entry);
      const localName = Buffer.isBuffer(local.fileName) ? local.fileName.toString('utf8') : String(local.fileName);
      if (localName !== name || local.compressionMethod !== 0) {
        throw new NpkError('ENPKLAYOUT', `entry '${name}': local header does not match the central directory`);
      }
      found.set(name, entry);
      infos.push({ name, offset: local.fileDataStart, size: entry.uncompressedSize });
    }
    for (const required of [MANIFEST_NAME, FS_IMG_NAME]) {
      if (!found.has(required)) throw new NpkError('ENPKLAYOUT', `npk has no '${required}'`);
    }
    // Nothing unsigned reaches a YAML parser: the comment and signature.yaml are read by a
    // strict, bounded grammar (signature.ts) before anything else; manifest.yaml is parsed
    // last, after the signature and its hash were checked (with a key).
    const metaBytes = Buffer.from(zip.comment as unknown as Buffer);
    const metaVersion = parseMetaComment(metaBytes);

    const sigEntry = found.get(SIGNATURE_NAME);
    const theKey = `the repository key${opts.keyName ? ` ${opts.keyName}` : ''}`;
    if (opts.key && !sigEntry) {
      throw new NpkError('ESIGNATURE', `${opts.name ?? path} is not signed (it has no signature.yaml), and only packages signed for ${theKey} are accepted: pack it with a signing key (sextant pack --key <private key>)`);
    }
    if (opts.key && sigEntry!.uncompressedSize > MAX_SIGNATURE_SIZE) {
      throw new NpkError('ESIGNATURE', `signature.yaml: ${sigEntry!.uncompressedSize} bytes, more than the limit of ${MAX_SIGNATURE_SIZE} (it holds three hashes, an offset and a signature)`);
    }
    // Without a key signature.yaml is only kept (for inspect and unpack), never parsed, like upstream.
    const signatureBytes = sigEntry ? await readSmallEntry(zip, sigEntry, SIGNATURE_NAME, opts.key ? MAX_SIGNATURE_SIZE : MAX_META_ENTRY) : undefined;
    const signature = opts.key ? parseSignatureFile(signatureBytes!) : undefined;
    const manifestBytes = await readSmallEntry(zip, found.get(MANIFEST_NAME)!, MANIFEST_NAME, MAX_MANIFEST_SIZE);
    // Like upstream, fs.img may start at any byte (zip data_start): our packer aligns it to
    // 4096, other zip writers need not. Readers use pread at the offset and the loop driver
    // takes any byte offset (lo_offset) as long as direct I/O is off, which we never enable.
    const fsInfo = infos.find((i) => i.name === FS_IMG_NAME)!;

    let verity: NpkVerity | undefined;
    if (opts.key && signature) {
      if (!verifyEd25519Strict(opts.key, signature.document, signature.signature)) {
        throw new NpkError(
          'ESIGNATURE',
          `the package's signature does not verify with ${theKey}: it was signed with another key or changed after signing; sign it with the private key of that public key, or install it into a repository that trusts its key`,
        );
      }
      if (!sha256(metaBytes).equals(signature.hashes.metaHash)) {
        throw new NpkError('ESIGNATURE', 'meta (zip comment) hash does not match signature.yaml');
      }
      checkFormatVersion(metaVersion);
      if (!sha256(manifestBytes).equals(signature.hashes.manifestHash)) {
        throw new NpkError('ESIGNATURE', 'manifest.yaml hash does not match signature.yaml');
      }
      verity = await readVerity(path, fsInfo, signature.hashes.verityHash, signature.hashes.verityOffset);
    } else {
      checkFormatVersion(metaVersion);
    }
    let manifest: Manifest;
    try {
      manifest = parseManifest(manifestBytes.toString('utf8'), 'yaml');
    } catch (e) {
      if (e instanceof NorthstarError) throw new NpkError('EMANIFEST', `manifest.yaml: ${e.message}`, { cause: e });
      throw e;
    }
    return new Npk(path, manifest, manifestBytes, metaBytes, metaVersion, signatureBytes, signature, { offset: fsInfo.offset, size: fsInfo.size }, verity, infos);
  }

  /**
   * Verify every block of the image against the signed root hash (user-space dm-verity):
   * the whole fs.img data and hash tree are read once. Errors name fs.img and the block.
   */
  async verifyImage(): Promise<void> {
    if (!this.verity) throw new NpkError('EVERITY', 'npk lacks verity information (not signed or opened without a key)');
    try {
      await verifyVerity(this.path, {
        offset: this.fsImg.offset,
        dataSize: this.verity.dataSize,
        rootHash: this.verity.rootHash,
        hashAreaSize: this.fsImg.size - this.verity.dataSize,
      });
    } catch (e) {
      if (e instanceof NpkError) throw new NpkError(e.code, `${FS_IMG_NAME}: ${e.message}`, { cause: e });
      throw e;
    }
  }
}

async function readVerity(path: string, fsImg: NpkEntryInfo, rootHash: Buffer, verityOffset: number): Promise<NpkVerity> {
  if (verityOffset % VERITY_BLOCK !== 0 || verityOffset === 0 || verityOffset + VERITY_BLOCK > fsImg.size) {
    throw new NpkError('EVERITY', `verity offset ${verityOffset} is outside fs.img (${fsImg.size} bytes) or not 4096-aligned`);
  }
  const fh: FileHandle = await open(path, 'r');
  try {
    const sb = Buffer.alloc(VERITY_BLOCK);
    const { bytesRead } = await fh.read(sb, 0, VERITY_BLOCK, fsImg.offset + verityOffset);
    if (bytesRead !== VERITY_BLOCK) throw new NpkError('ETRUNCATED', 'verity superblock is truncated');
    const superblock = decodeSuperblock(sb);
    if (superblock.dataBlocks !== BigInt(verityOffset / VERITY_BLOCK)) {
      throw new NpkError('EVERITY', `verity superblock covers ${superblock.dataBlocks} blocks, the signature says ${verityOffset / VERITY_BLOCK}`);
    }
    return { dataSize: verityOffset, rootHash, superblock };
  } finally {
    await fh.close();
  }
}

/** yauzl's message, lowercase at the start like ours. */
const zipText = (err: Error): string => err.message.charAt(0).toLowerCase() + err.message.slice(1);

function openZip(path: string, name: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false }, (err, zip) => {
      if (err) reject(new NpkError('ENPKZIP', `${name} is not a valid npk (an npk is a zip archive, as sextant pack writes it): ${zipText(err)}`));
      else resolve(zip);
    });
  });
}

function nextEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const onEntry = (e: yauzl.Entry) => {
      cleanup();
      resolve(e);
    };
    const onEnd = () => {
      cleanup();
      resolve(undefined);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new NpkError('ENPKZIP', `not a valid npk: ${zipText(err)}`));
    };
    const cleanup = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

async function readSmallEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string, max: number): Promise<Buffer> {
  if (entry.uncompressedSize > max) throw new NpkError('ENPKLAYOUT', `${name} is ${entry.uncompressedSize} bytes, more than the limit of ${max}`);
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  try {
    for await (const c of stream) chunks.push(c as Buffer);
  } catch (e) {
    throw new NpkError('ENPKZIP', `${name}: ${(e as Error).message}`);
  }
  const data = Buffer.concat(chunks);
  if (crc32(data) !== entry.crc32) throw new NpkError('ENPKZIP', `${name}: crc-32 mismatch (the entry is corrupt)`);
  return data;
}

export { NPK_FORMAT_VERSION };
