/**
 * dm-verity hash tree and superblock, byte-identical to
 * `veritysetup format --format=1 --hash=sha256 --data-block-size=4096 --hash-block-size=4096`
 * writing to a separate hash device (here: appended to the image itself).
 *
 * Layout after the data (S bytes, S % 4096 == 0): one 4096-byte superblock, then the hash
 * levels stored top level first, leaf level last. Level 0 holds SHA256(salt ‖ block) for every
 * data block; level n+1 hashes the 4 KiB blocks of level n; the root hashes the single top block
 * (or the single data block when the image is one block long).
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { NpkError } from '../common/errors.js';

export const VERITY_BLOCK = 4096;
const HASH_SIZE = 32;
const HASHES_PER_BLOCK = VERITY_BLOCK / HASH_SIZE;
const MAGIC = Buffer.from('verity\0\0', 'latin1');

export interface VeritySuperblock {
  version: number;
  hashType: number;
  uuid: Buffer;
  algorithm: string;
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: bigint;
  salt: Buffer;
}

export interface VerityResult {
  /** Root hash (32 bytes). */
  rootHash: Buffer;
  salt: Buffer;
  uuid: Buffer;
  /** Superblock + hash levels, exactly the bytes to append after the data. */
  hashArea: Buffer;
}

function hashBlock(salt: Buffer, block: Buffer): Buffer {
  return createHash('sha256').update(salt).update(block).digest();
}

/** Number of hash blocks per level, leaf level first. */
export function levelBlockCounts(dataBlocks: number): number[] {
  const counts: number[] = [];
  let n = dataBlocks;
  while (n > 1) {
    n = Math.ceil(n / HASHES_PER_BLOCK);
    counts.push(n);
  }
  return counts;
}

/** Hash one level: `blocks` is a buffer of whole 4 KiB blocks; returns the next level padded. */
function hashLevel(salt: Buffer, blocks: Buffer): Buffer {
  const count = blocks.length / VERITY_BLOCK;
  const out = Buffer.alloc(Math.ceil(count / HASHES_PER_BLOCK) * VERITY_BLOCK);
  for (let i = 0; i < count; i++) {
    hashBlock(salt, blocks.subarray(i * VERITY_BLOCK, (i + 1) * VERITY_BLOCK)).copy(out, i * HASH_SIZE);
  }
  return out;
}

export function encodeSuperblock(sb: VeritySuperblock): Buffer {
  const b = Buffer.alloc(VERITY_BLOCK);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(sb.version, 8);
  b.writeUInt32LE(sb.hashType, 12);
  sb.uuid.copy(b, 16, 0, 16);
  b.write(sb.algorithm, 32, 32, 'latin1');
  b.writeUInt32LE(sb.dataBlockSize, 64);
  b.writeUInt32LE(sb.hashBlockSize, 68);
  b.writeBigUInt64LE(sb.dataBlocks, 72);
  b.writeUInt16LE(sb.salt.length, 80);
  sb.salt.copy(b, 88);
  return b;
}

export function decodeSuperblock(b: Buffer): VeritySuperblock {
  if (b.length < 344) throw new NpkError('EVERITY', 'verity superblock: truncated');
  if (!b.subarray(0, 8).equals(MAGIC)) throw new NpkError('EVERITY', 'verity superblock: bad magic');
  const saltSize = b.readUInt16LE(80);
  if (saltSize > 256) throw new NpkError('EVERITY', `verity superblock: salt size ${saltSize} exceeds 256`);
  const algorithm = b.toString('latin1', 32, 64).replace(/\0+$/, '');
  const sb: VeritySuperblock = {
    version: b.readUInt32LE(8),
    hashType: b.readUInt32LE(12),
    uuid: Buffer.from(b.subarray(16, 32)),
    algorithm,
    dataBlockSize: b.readUInt32LE(64),
    hashBlockSize: b.readUInt32LE(68),
    dataBlocks: b.readBigUInt64LE(72),
    salt: Buffer.from(b.subarray(88, 88 + saltSize)),
  };
  if (sb.version !== 1) throw new NpkError('EVERITY', `verity superblock: unsupported version ${sb.version}`);
  if (sb.hashType !== 1) throw new NpkError('EVERITY', `verity superblock: unsupported hash type ${sb.hashType}`);
  if (sb.algorithm !== 'sha256') throw new NpkError('EVERITY', `verity superblock: unsupported algorithm ${sb.algorithm}`);
  if (sb.dataBlockSize !== VERITY_BLOCK || sb.hashBlockSize !== VERITY_BLOCK) {
    throw new NpkError('EVERITY', `verity superblock: block sizes ${sb.dataBlockSize}/${sb.hashBlockSize} are not 4096`);
  }
  return sb;
}

/** A version 4 UUID from 16 bytes (sets the version and variant bits). */
export function uuidV4(bytes: Buffer): Buffer {
  const u = Buffer.from(bytes.subarray(0, 16));
  u[6] = (u[6]! & 0x0f) | 0x40;
  u[8] = (u[8]! & 0x3f) | 0x80;
  return u;
}

export function formatUuid(u: Buffer): string {
  const h = u.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new NpkError('ETRUNCATED', `unexpected end of file at ${position + done}`);
    done += bytesRead;
  }
}

const CHUNK = 256 * VERITY_BLOCK; // 1 MiB reads

/** Level 0: hash every data block of `[offset, offset+size)` of the file. */
async function hashData(fh: FileHandle, offset: number, size: number, salt: Buffer): Promise<Buffer> {
  const blocks = size / VERITY_BLOCK;
  const out = Buffer.alloc(Math.ceil(blocks / HASHES_PER_BLOCK) * VERITY_BLOCK);
  const chunk = Buffer.allocUnsafe(CHUNK);
  let block = 0;
  for (let pos = 0; pos < size; pos += CHUNK) {
    const len = Math.min(CHUNK, size - pos);
    const view = chunk.subarray(0, len);
    await readFully(fh, view, offset + pos);
    for (let o = 0; o < len; o += VERITY_BLOCK, block++) {
      hashBlock(salt, view.subarray(o, o + VERITY_BLOCK)).copy(out, block * HASH_SIZE);
    }
  }
  return out;
}

interface Tree {
  rootHash: Buffer;
  /** Levels leaf first, each padded to whole blocks. */
  levels: Buffer[];
}

async function buildTree(fh: FileHandle, offset: number, size: number, salt: Buffer): Promise<Tree> {
  if (size <= 0 || size % VERITY_BLOCK !== 0) {
    throw new NpkError('EVERITY', `image size ${size} is not a positive multiple of ${VERITY_BLOCK}`);
  }
  if (size === VERITY_BLOCK) {
    const only = Buffer.alloc(VERITY_BLOCK);
    await readFully(fh, only, offset);
    return { rootHash: hashBlock(salt, only), levels: [] };
  }
  const levels = [await hashData(fh, offset, size, salt)];
  while (levels[levels.length - 1]!.length > VERITY_BLOCK) {
    levels.push(hashLevel(salt, levels[levels.length - 1]!));
  }
  return { rootHash: hashBlock(salt, levels[levels.length - 1]!), levels };
}

/**
 * Compute the verity data of `size` bytes at `offset` in `file`. Salt and UUID are taken
 * from the options (for reproducible packs) or drawn from the OS RNG.
 */
export async function computeVerity(
  file: string,
  opts: { offset?: number; size: number; salt?: Buffer; uuid?: Buffer },
): Promise<VerityResult> {
  const salt = opts.salt ?? randomBytes(32);
  if (salt.length > 256) throw new NpkError('EVERITY', 'salt longer than 256 bytes');
  const uuid = opts.uuid ?? uuidV4(randomBytes(16));
  const fh = await open(file, 'r');
  try {
    const tree = await buildTree(fh, opts.offset ?? 0, opts.size, salt);
    const sb = encodeSuperblock({
      version: 1,
      hashType: 1,
      uuid,
      algorithm: 'sha256',
      dataBlockSize: VERITY_BLOCK,
      hashBlockSize: VERITY_BLOCK,
      dataBlocks: BigInt(opts.size / VERITY_BLOCK),
      salt,
    });
    const hashArea = Buffer.concat([sb, ...[...tree.levels].reverse()]);
    return { rootHash: tree.rootHash, salt, uuid, hashArea };
  } finally {
    await fh.close();
  }
}

/** Append verity data to an image file in place; returns the root hash and the data size. */
export async function appendVerity(
  file: string,
  opts: { salt?: Buffer; uuid?: Buffer } = {},
): Promise<VerityResult & { dataSize: number }> {
  const { size } = await stat(file);
  const v = await computeVerity(file, { size, ...opts });
  const fh = await open(file, 'r+');
  try {
    await fh.write(v.hashArea, 0, v.hashArea.length, size);
  } finally {
    await fh.close();
  }
  return { ...v, dataSize: size };
}

/**
 * Verify the whole hash tree of an image in user space: `file` holds the data at
 * `offset` (length `dataSize`), followed by the superblock and the stored hash levels.
 * Every stored hash block must equal the recomputed one and the root must equal
 * `rootHash`. Throws an NpkError saying what did not match.
 */
export async function verifyVerity(
  file: string | FileHandle,
  opts: { offset?: number; dataSize: number; rootHash: Buffer; hashAreaSize?: number },
): Promise<void> {
  const fh = typeof file === 'string' ? await open(file, 'r') : file;
  try {
    const offset = opts.offset ?? 0;
    if (opts.dataSize <= 0 || opts.dataSize % VERITY_BLOCK !== 0) {
      throw new NpkError('EVERITY', `image size ${opts.dataSize} is not a positive multiple of ${VERITY_BLOCK}`);
    }
    const sbBuf = Buffer.alloc(VERITY_BLOCK);
    await readFully(fh, sbBuf, offset + opts.dataSize);
    const sb = decodeSuperblock(sbBuf);
    if (sb.dataBlocks !== BigInt(opts.dataSize / VERITY_BLOCK)) {
      throw new NpkError(
        'EVERITY',
        `verity superblock: ${sb.dataBlocks} data blocks, but the verity offset says ${opts.dataSize / VERITY_BLOCK}`,
      );
    }
    const counts = levelBlockCounts(opts.dataSize / VERITY_BLOCK);
    const storedSize = counts.reduce((a, b) => a + b, 0) * VERITY_BLOCK;
    if (opts.hashAreaSize !== undefined && opts.hashAreaSize < VERITY_BLOCK + storedSize) {
      throw new NpkError(
        'EVERITY',
        `hash area of ${opts.hashAreaSize} bytes is smaller than the ${VERITY_BLOCK + storedSize} the tree needs`,
      );
    }
    const stored = Buffer.alloc(storedSize);
    await readFully(fh, stored, offset + opts.dataSize + VERITY_BLOCK);
    const bad = (what: string) => new NpkError('EVERITY', `verity: ${what} (the image is corrupt or was modified)`);
    if (counts.length === 0) {
      const only = Buffer.alloc(VERITY_BLOCK);
      await readFully(fh, only, offset);
      if (!hashBlock(sb.salt, only).equals(opts.rootHash)) throw bad(`root hash of the only data block does not match the signed ${opts.rootHash.toString('hex')}`);
      return;
    }
    // The stored levels, leaf first (they are stored top first). Check the stored tree from
    // the signed root down, as the kernel does, so a corrupt hash block is named as such;
    // then hash every data block against the authenticated leaf level.
    const levels: Buffer[] = [];
    let end = storedSize;
    for (const n of counts) {
      levels.push(stored.subarray(end - n * VERITY_BLOCK, end));
      end -= n * VERITY_BLOCK;
    }
    const topHash = hashBlock(sb.salt, levels[levels.length - 1]!);
    if (!topHash.equals(opts.rootHash)) {
      throw bad(`root hash ${topHash.toString('hex')} of the hash tree's top block does not match the signed ${opts.rootHash.toString('hex')}`);
    }
    for (let level = levels.length - 2; level >= 0; level--) {
      const parent = levels[level + 1]!;
      const blocks = levels[level]!;
      for (let b = 0; b * VERITY_BLOCK < blocks.length; b++) {
        const h = hashBlock(sb.salt, blocks.subarray(b * VERITY_BLOCK, (b + 1) * VERITY_BLOCK));
        if (!h.equals(parent.subarray(b * HASH_SIZE, (b + 1) * HASH_SIZE))) {
          throw bad(`hash tree block ${b} of level ${level} (0 = leaf) does not match the hash above it`);
        }
      }
    }
    // Only the used hashes count (the padding of a stored block is covered by its parent).
    const used = (opts.dataSize / VERITY_BLOCK) * HASH_SIZE;
    const leaf = (await hashData(fh, offset, opts.dataSize, sb.salt)).subarray(0, used);
    if (!leaf.equals(levels[0]!.subarray(0, used))) {
      for (let h = 0; h * HASH_SIZE < used; h++) {
        if (leaf.subarray(h * HASH_SIZE, (h + 1) * HASH_SIZE).equals(levels[0]!.subarray(h * HASH_SIZE, (h + 1) * HASH_SIZE))) continue;
        throw bad(`data block ${h} (byte ${h * VERITY_BLOCK}) does not match the hash tree`);
      }
    }
  } finally {
    if (typeof file === 'string') await fh.close();
  }
}
