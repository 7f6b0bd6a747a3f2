/**
 * Directory listings (§7) of the reader: runs of entries behind a header, every name checked
 * (not empty, no '/' or NUL, not '.' or '..'; sorted, no repeats) so an extracted tree cannot escape
 * its destination, and every entry checked against the inode it names.
 */
import { MAX_DIR_RUN, METADATA_SIZE, entryTypeOf, nameProblem, type EntryType } from './format.js';
import { readInode, type Inode } from './inode.js';
import { fail } from './source.js';
import type { Image } from './tables.js';

export interface DirEntry {
  name: Buffer;
  type: EntryType;
  block: number;
  offset: number;
  number: number;
}

/** Parse and check a directory listing. */
export async function readListing(img: Image, dir: Inode): Promise<DirEntry[]> {
  if (dir.size < 3) fail(`directory inode ${dir.number} has size ${dir.size} (< 3)`);
  const len = dir.size - 3;
  if (len === 0) return [];
  const { directoryTable, inodeTable } = img.tables;
  if (dir.dirBlock >= directoryTable.end - directoryTable.start) fail(`directory inode ${dir.number} points outside the directory table`);
  const { data } = await img.src.readMeta(directoryTable, dir.dirBlock, dir.dirOffset, len);
  const out: DirEntry[] = [];
  let p = 0;
  let prev: Buffer | undefined;
  while (p < len) {
    if (p + 12 > len) fail(`directory inode ${dir.number}: truncated run header`);
    const count = data.readUInt32LE(p) + 1;
    const block = data.readUInt32LE(p + 4);
    const base = data.readUInt32LE(p + 8);
    p += 12;
    if (count > MAX_DIR_RUN) fail(`directory inode ${dir.number}: run of ${count} entries (max 256)`);
    if (block >= inodeTable.end - inodeTable.start) fail(`directory inode ${dir.number}: inode block ${block} outside the inode table`);
    for (let i = 0; i < count; i++) {
      if (p + 8 > len) fail(`directory inode ${dir.number}: truncated entry`);
      const offset = data.readUInt16LE(p);
      const delta = data.readInt16LE(p + 2);
      const t = data.readUInt16LE(p + 4);
      const nameLen = data.readUInt16LE(p + 6) + 1;
      p += 8;
      if (p + nameLen > len) fail(`directory inode ${dir.number}: truncated name`);
      const name = data.subarray(p, p + nameLen);
      p += nameLen;
      const bad = nameProblem(name);
      if (bad) fail(`directory inode ${dir.number}: entry name ${JSON.stringify(name.toString())} ${bad}`);
      if (prev && Buffer.compare(prev, name) >= 0) fail(`directory inode ${dir.number}: names are not sorted or repeat (${name.toString()})`);
      prev = name;
      const type = t >= 1 && t <= 7 ? entryTypeOf(t) : undefined;
      if (!type) fail(`directory inode ${dir.number}: entry ${name.toString()} has invalid type ${t}`);
      const number = base + delta;
      if (number < 1 || number > img.sb.inodeCount) fail(`directory inode ${dir.number}: entry ${name.toString()} has invalid inode number ${number}`);
      if (offset >= METADATA_SIZE) fail(`directory inode ${dir.number}: entry ${name.toString()} has inode offset ${offset}`);
      out.push({ name: Buffer.from(name), type, block, offset, number });
    }
  }
  return out;
}

/** The inode a directory entry names, which must agree with the entry on type and number. */
export async function readChild(img: Image, e: DirEntry): Promise<Inode> {
  const ino = await readInode(img, e.block, e.offset);
  if (ino.type !== e.type) fail(`entry ${e.name.toString()} says ${e.type} but its inode is a ${ino.type}`);
  if (ino.number !== e.number) fail(`entry ${e.name.toString()} says inode ${e.number} but the inode has number ${ino.number}`);
  return ino;
}

/** The root directory's inode. */
export async function readRoot(img: Image): Promise<Inode> {
  const ref = img.sb.rootInode;
  const ino = await readInode(img, Number(ref >> 16n), Number(ref & 0xffffn));
  if (ino.type !== 'dir') fail('root inode is not a directory');
  return ino;
}
