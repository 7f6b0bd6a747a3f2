/** Applying all layers of an image to a directory, with progress in compressed bytes. */
import { mkdir } from 'node:fs/promises';
import { RootBuilder } from './apply.js';
import type { Image } from './image.js';

export interface ExtractProgress {
  /** Compressed bytes read and the total of all layers. */
  (done: number, total: number): void;
}

/** Apply every layer of `image` to the empty directory `dir`. */
export async function extractImage(image: Image, dir: string, warn: (m: string) => void, onProgress?: ExtractProgress, signal?: AbortSignal): Promise<void> {
  const total = image.layers.reduce((a, l) => a + l.size, 0);
  let done = 0;
  await mkdir(dir, { mode: 0o755 });
  const b = new RootBuilder(dir, {
    warn,
    signal,
    onBytes: (n) => {
      done += n;
      onProgress?.(done, total);
    },
  });
  for (const [i, l] of image.layers.entries()) await b.apply(l, i);
  await b.finish();
  onProgress?.(total, total);
}
