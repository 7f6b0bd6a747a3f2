import { NorthstarError } from '../../common/errors.js';
import type { ByteSource } from './types.js';

/**
 * Pull exactly `size` bytes from `source` into `sink`. After the first failure (of the
 * sink or a pre-set `refuse` error) the rest of the upload is still read and dropped, so
 * exactly `size` bytes are consumed unless the source ends early or overshoots. Returns
 * the first failure, or undefined when everything went into the sink.
 */
export async function consumeExactly(
  source: ByteSource,
  size: number,
  sink: ((chunk: Buffer) => Promise<void>) | undefined,
  refuse?: unknown,
): Promise<{ received: number; error: unknown }> {
  let received = 0;
  let error: unknown = refuse;
  for await (const raw of source) {
    const chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    if (received + chunk.length > size) {
      error ??= new NorthstarError('EOVERSIZE', `npk upload: the stream has more than the announced ${size} bytes`);
      received += chunk.length;
      break;
    }
    received += chunk.length;
    if (error === undefined && sink) {
      try {
        await sink(chunk);
      } catch (e) {
        error = e;
      }
    }
    if (received === size) break;
  }
  if (received < size) {
    error ??= new NorthstarError('ETRUNCATED', `npk upload: the stream ended after ${received} of ${size} bytes`);
  }
  return { received, error };
}

/** A one-slot async mutex: operations on one repository run one after another. */
export class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
