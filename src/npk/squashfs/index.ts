/** squashfs 4.0 in TypeScript: the writer sextant packs fs.img with, and the reader behind unpack/inspect. */
export { writeSquashfs, type SquashfsWriteOptions, type SquashfsWriteResult, type PseudoEntry } from './writer.js';
export { SquashfsImage, formatListing, type SquashfsEntry, type SquashfsSuperblock } from './reader.js';
export { availableCompressors } from './codec.js';
export type { EntryType } from './format.js';
