/**
 * squashfs 4.0 on-disk constants and small codecs shared by the writer and the reader.
 * See shared/spec/squashfs.md for the format; section numbers below refer to it.
 */

export const SQUASHFS_MAGIC = 0x73717368;
export const SUPERBLOCK_SIZE = 96;
/** Decompressed size of every metadata block but a table's last (§4). */
export const METADATA_SIZE = 8192;
/** Bit 15 of a metadata block header: stored raw. */
export const METADATA_RAW = 0x8000;
/** Bit 24 of a data/fragment block size: stored raw. */
export const DATA_RAW = 0x1000000;
export const DATA_SIZE_MASK = 0xffffff;
export const NO_FRAGMENT = 0xffffffff;
export const NO_XATTR = 0xffffffff;
export const NO_TABLE = 0xffffffffffffffffn;
export const PADDING = 4096;
export const MIN_BLOCK_SIZE = 4096;
export const MAX_BLOCK_SIZE = 1048576;
export const DEFAULT_BLOCK_SIZE = 131072;
/** Entries behind one directory header (§7.2). */
export const MAX_DIR_RUN = 256;
export const MAX_NAME = 256;

/** Superblock flags (§2). */
export const Flag = {
  UNCOMPRESSED_INODES: 0x0001,
  UNCOMPRESSED_DATA: 0x0002,
  CHECK: 0x0004,
  UNCOMPRESSED_FRAGMENTS: 0x0008,
  NO_FRAGMENTS: 0x0010,
  ALWAYS_FRAGMENTS: 0x0020,
  DUPLICATES: 0x0040,
  EXPORTABLE: 0x0080,
  UNCOMPRESSED_XATTRS: 0x0100,
  NO_XATTRS: 0x0200,
  COMPRESSOR_OPTIONS: 0x0400,
  UNCOMPRESSED_IDS: 0x0800,
} as const;

/** Compressor ids in the superblock (§2). */
export const COMPRESSOR_NAMES: Readonly<Record<number, string>> = {
  1: 'gzip',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

/** Basic inode types (§6.1); the extended form is the basic value + 7. */
export const InodeType = {
  DIR: 1,
  FILE: 2,
  SYMLINK: 3,
  BLOCK: 4,
  CHAR: 5,
  FIFO: 6,
  SOCKET: 7,
  LDIR: 8,
  LFILE: 9,
  LSYMLINK: 10,
  LBLOCK: 11,
  LCHAR: 12,
  LFIFO: 13,
  LSOCKET: 14,
} as const;

export type EntryType = 'dir' | 'file' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export const BASIC_TYPE: Readonly<Record<EntryType, number>> = {
  dir: InodeType.DIR,
  file: InodeType.FILE,
  symlink: InodeType.SYMLINK,
  block: InodeType.BLOCK,
  char: InodeType.CHAR,
  fifo: InodeType.FIFO,
  socket: InodeType.SOCKET,
};

const TYPE_BY_BASIC: readonly (EntryType | undefined)[] = [
  undefined,
  'dir',
  'file',
  'symlink',
  'block',
  'char',
  'fifo',
  'socket',
];

/** Entry type of an inode type 1..14, or undefined if out of range. */
export function entryTypeOf(inodeType: number): EntryType | undefined {
  if (inodeType < 1 || inodeType > 14) return undefined;
  return TYPE_BY_BASIC[inodeType > 7 ? inodeType - 7 : inodeType];
}

/** Linux "new" device number encoding used by squashfs (§6.2). */
export function encodeRdev(major: number, minor: number): number {
  return ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & 0xfff00) << 12);
}

export function decodeRdev(rdev: number): { major: number; minor: number } {
  return { major: (rdev >>> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >>> 12) & 0xfff00) };
}

/** Xattr name prefixes storable in squashfs (§9), by prefix id. */
export const XATTR_PREFIXES = ['user.', 'trusted.', 'security.'] as const;

/** Split a full xattr name into its prefix id and the stored suffix, or undefined if not storable. */
export function splitXattrName(name: string): { prefix: number; suffix: string } | undefined {
  for (let i = 0; i < XATTR_PREFIXES.length; i++) {
    const p = XATTR_PREFIXES[i]!;
    if (name.startsWith(p) && name.length > p.length) return { prefix: i, suffix: name.slice(p.length) };
  }
  return undefined;
}

/** Check a directory entry name as stored (§7.3): 1..256 bytes, no '/' or NUL, not '.' or '..'. */
export function nameProblem(name: Buffer): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_NAME) return `is longer than ${MAX_NAME} bytes`;
  if (name.includes(0x2f)) return "contains '/'";
  if (name.includes(0)) return 'contains a NUL byte';
  if ((name.length === 1 && name[0] === 0x2e) || (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e)) {
    return "is '.' or '..'";
  }
  return undefined;
}

/** Permission bits of a squashfs mode as the `ls -l` string, given the entry type. */
export function modeString(type: EntryType, mode: number): string {
  const t = { dir: 'd', file: '-', symlink: 'l', char: 'c', block: 'b', fifo: 'p', socket: 's' }[type];
  const rwx = (bits: number, special: boolean, specialChar: string): string => {
    const x = (bits & 1) !== 0;
    let last = x ? 'x' : '-';
    if (special) last = x ? specialChar : specialChar.toUpperCase();
    return `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${last}`;
  };
  return (
    t +
    rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's') +
    rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's') +
    rwx(mode & 7, (mode & 0o1000) !== 0, 't')
  );
}
