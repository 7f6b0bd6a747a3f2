/**
 * The squashfs reader's public face. The work is split by job:
 * superblock.ts (the superblock), source.ts (bytes, metadata blocks, lookup tables),
 * tables.ts (the tables read at open), inode.ts and directory.ts (inodes, xattrs, listings),
 * blocks.ts (file contents), image.ts (SquashfsImage: open, walk, stat, readFile),
 * extract.ts (extraction to a directory) and listing.ts (the `unsquashfs -ll` form).
 */
export { SquashfsImage } from './image.js';
export { formatListing } from './listing.js';
export type { SquashfsEntry } from './inode.js';
export type { SquashfsSuperblock } from './superblock.js';
