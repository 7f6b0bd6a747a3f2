import { z } from 'zod';
import { sizeSchema } from './mounts.js';

/** Default size of a writable root's tmpfs upper layer: 64 MiB. */
export const DEFAULT_WRITABLE_ROOT_SIZE = 64n * 1024n * 1024n;

/**
 * OUR EXTENSION (not in upstream Northstar): the container's root. With `writable: true`
 * the root is an overlay of the read-only image with an upper layer on a tmpfs of `size`
 * bytes, made for each start and removed at exit: the container can write anywhere and
 * every change is gone after it exits.
 */
export const rootSchema = z
  .object({
    writable: z.boolean().describe('Mount the root as an overlay of the image with a tmpfs upper layer'),
    size: sizeSchema.default(DEFAULT_WRITABLE_ROOT_SIZE).describe('Size limit of the tmpfs upper layer in bytes (default 64 MiB); like a tmpfs mount size'),
  })
  .strict()
  .describe('Northstar for TypeScript extension: a writable root (overlay with a tmpfs upper layer, discarded at exit)');

export type Root = z.output<typeof rootSchema>;
