/**
 * The superblock (§2): parsed and checked before anything else of an image is read, so a
 * wrong file or a truncated image gets one precise message.
 */
import { NpkError } from '../../common/errors.js';
import { readerCodec } from './codec.js';
import { COMPRESSOR_NAMES, Flag, METADATA_SIZE, NO_TABLE, SQUASHFS_MAGIC, SUPERBLOCK_SIZE } from './format.js';

export interface SquashfsSuperblock {
  inodeCount: number;
  mkfsTime: number;
  blockSize: number;
  fragmentCount: number;
  compressionId: number;
  compression: string;
  blockLog: number;
  flags: number;
  idCount: number;
  rootInode: bigint;
  bytesUsed: number;
  idTableStart: number;
  xattrIdTableStart: bigint;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number;
  lookupTableStart: bigint;
}

/** Parse and check the superblock of the image `name` whose region is `size` bytes. */
export function parseSuperblock(b: Buffer, size: number, name: string): SquashfsSuperblock {
  const bad = (m: string): never => {
    throw new NpkError('ESQUASHFS_CORRUPT', `squashfs image ${name}: ${m}`);
  };
  const magic = b.readUInt32LE(0);
  if (magic !== SQUASHFS_MAGIC) {
    bad(magic === 0x68737173 ? 'big-endian squashfs is not supported' : `bad magic 0x${magic.toString(16).padStart(8, '0')} (not a squashfs image)`);
  }
  const major = b.readUInt16LE(28);
  const minor = b.readUInt16LE(30);
  if (major !== 4 || minor !== 0) bad(`version ${major}.${minor} is not supported (only 4.0)`);
  const compressionId = b.readUInt16LE(20);
  const sb: SquashfsSuperblock = {
    inodeCount: b.readUInt32LE(4),
    mkfsTime: b.readUInt32LE(8),
    blockSize: b.readUInt32LE(12),
    fragmentCount: b.readUInt32LE(16),
    compressionId,
    compression: COMPRESSOR_NAMES[compressionId] ?? `unknown (${compressionId})`,
    blockLog: b.readUInt16LE(22),
    flags: b.readUInt16LE(24),
    idCount: b.readUInt16LE(26),
    rootInode: b.readBigUInt64LE(32),
    bytesUsed: Number(b.readBigUInt64LE(40)),
    idTableStart: Number(b.readBigUInt64LE(48)),
    xattrIdTableStart: b.readBigUInt64LE(56),
    inodeTableStart: Number(b.readBigUInt64LE(64)),
    directoryTableStart: Number(b.readBigUInt64LE(72)),
    fragmentTableStart: Number(b.readBigUInt64LE(80)),
    lookupTableStart: b.readBigUInt64LE(88),
  };
  const bs = sb.blockSize;
  if (bs < 4096 || bs > 1048576 || (bs & (bs - 1)) !== 0) bad(`block size ${bs} is not a power of two from 4096 to 1048576`);
  if (sb.blockLog > 20 || 1 << sb.blockLog !== bs) bad(`block_log ${sb.blockLog} does not match block size ${bs}`);
  if (sb.bytesUsed > size) bad(`bytes_used ${sb.bytesUsed} is larger than the image (${size} bytes); truncated?`);
  if (sb.inodeCount === 0) bad('inode count is 0');
  if (sb.flags & Flag.CHECK) bad('flag 0x0004 (check data) is set, which squashfs 4.0 never uses');
  if (sb.flags & Flag.COMPRESSOR_OPTIONS && !(sb.inodeTableStart > SUPERBLOCK_SIZE)) bad('compressor options flag set but no room for them');
  if ((sb.rootInode & 0xffffn) >= BigInt(METADATA_SIZE)) bad('root inode ref offset is beyond 8192');
  for (const [k, v] of [
    ['inode table', sb.inodeTableStart],
    ['directory table', sb.directoryTableStart],
    ['id table', sb.idTableStart],
  ] as const) {
    if (v < SUPERBLOCK_SIZE || v >= sb.bytesUsed) bad(`${k} start ${v} lies outside the image`);
  }
  if (sb.fragmentCount > 0 && (sb.fragmentTableStart < SUPERBLOCK_SIZE || sb.fragmentTableStart >= sb.bytesUsed)) {
    bad(`fragment table start ${sb.fragmentTableStart} lies outside the image`);
  }
  if (sb.xattrIdTableStart !== NO_TABLE && (sb.xattrIdTableStart < BigInt(SUPERBLOCK_SIZE) || sb.xattrIdTableStart >= BigInt(sb.bytesUsed))) {
    bad('xattr table start lies outside the image');
  }
  if (sb.lookupTableStart !== NO_TABLE && (sb.lookupTableStart < BigInt(SUPERBLOCK_SIZE) || sb.lookupTableStart >= BigInt(sb.bytesUsed))) {
    bad('export table start lies outside the image');
  }
  // The compressor is checked last so corrupt images get the more precise message above.
  readerCodec(compressionId);
  return sb;
}
