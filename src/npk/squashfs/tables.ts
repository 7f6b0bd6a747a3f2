/**
 * The lookup tables of an image (id, fragment, xattr id, export) and the bounds of the inode
 * and directory tables. They are read once at open; their positions are checked against each
 * other, since each table ends where the next one starts (§3).
 */
import { NO_TABLE, SUPERBLOCK_SIZE } from './format.js';
import { fail, type ImageSource, type Table } from './source.js';
import type { SquashfsSuperblock } from './superblock.js';

export interface Tables {
  ids: number[];
  fragments: { start: number; size: number }[];
  xattrIds: { ref: bigint; count: number }[];
  xattrKv: Table | undefined;
  inodeTable: Table;
  directoryTable: Table;
}

/** What the inode, directory and file readers work on: the reads, the superblock and the tables. */
export interface Image {
  src: ImageSource;
  sb: SquashfsSuperblock;
  tables: Tables;
}

/** Read the tables, from the image end backwards; `next` is always where the last read one starts. */
export async function loadTables(src: ImageSource, sb: SquashfsSuperblock): Promise<Tables> {
  const xattr = await loadXattrIds(src, sb);
  let next = xattr.next;
  if (sb.idCount === 0) fail('id table is empty');
  const idsRaw = await src.readLookup('id table', sb.idTableStart, sb.idCount, 4, next);
  const ids: number[] = [];
  for (let i = 0; i < sb.idCount; i++) ids.push(idsRaw.readUInt32LE(4 * i));
  next = Number((src.readAt(sb.idTableStart, 8)).readBigUInt64LE(0));
  if (sb.lookupTableStart !== NO_TABLE) {
    const at = Number(sb.lookupTableStart);
    if (at >= sb.idTableStart || at < SUPERBLOCK_SIZE) fail('export table is out of place');
    const first = Number((src.readAt(at, 8)).readBigUInt64LE(0));
    if (first < next) next = first;
  }
  const fragments: { start: number; size: number }[] = [];
  if (sb.fragmentCount > 0) {
    if (sb.fragmentCount * 16 > sb.bytesUsed) fail(`fragment count ${sb.fragmentCount} is larger than the image`);
    const raw = await src.readLookup('fragment table', sb.fragmentTableStart, sb.fragmentCount, 16, next);
    for (let i = 0; i < sb.fragmentCount; i++) {
      fragments.push({ start: Number(raw.readBigUInt64LE(16 * i)), size: raw.readUInt32LE(16 * i + 8) });
    }
    next = Number((src.readAt(sb.fragmentTableStart, 8)).readBigUInt64LE(0));
  }
  if (!(sb.inodeTableStart < sb.directoryTableStart && sb.directoryTableStart <= next)) {
    fail(`inode table (${sb.inodeTableStart}) and directory table (${sb.directoryTableStart}) are out of order`);
  }
  return {
    ids,
    fragments,
    xattrIds: xattr.ids,
    xattrKv: xattr.kv,
    inodeTable: { name: 'inode table', start: sb.inodeTableStart, end: sb.directoryTableStart },
    directoryTable: { name: 'directory table', start: sb.directoryTableStart, end: next },
  };
}

/** The xattr id table (last in the image) and the bounds of the key/value table before it. */
async function loadXattrIds(
  src: ImageSource,
  sb: SquashfsSuperblock,
): Promise<{ ids: { ref: bigint; count: number }[]; kv: Table | undefined; next: number }> {
  const ids: { ref: bigint; count: number }[] = [];
  const next = sb.bytesUsed;
  if (sb.xattrIdTableStart === NO_TABLE) return { ids, kv: undefined, next };
  const hpos = Number(sb.xattrIdTableStart);
  if (hpos + 16 > next) fail('xattr id table header passes bytes_used');
  const h = src.readAt(hpos, 16);
  const kvStart = Number(h.readBigUInt64LE(0));
  const count = h.readUInt32LE(8);
  if (count === 0) fail('xattr id table has no entries');
  if (count * 16 > next) fail(`xattr id count ${count} is larger than the image`);
  const raw = await src.readLookup('xattr id table', hpos + 16, count, 16, next);
  for (let i = 0; i < count; i++) ids.push({ ref: raw.readBigUInt64LE(16 * i), count: raw.readUInt32LE(16 * i + 8) });
  const firstBlock = Number((src.readAt(hpos + 16, 8)).readBigUInt64LE(0));
  if (kvStart < SUPERBLOCK_SIZE || kvStart > firstBlock) fail(`xattr kv start ${kvStart} is out of place`);
  return { ids, kv: { name: 'xattr table', start: kvStart, end: firstBlock }, next: kvStart };
}
