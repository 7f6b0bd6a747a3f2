/**
 * NDJSON framing over a byte stream (console.md §1): lines split on `\n`, a maximum line
 * length (the `\n` not counted), a last line without `\n` still delivered at EOF, and raw
 * byte reads after a line (the install payload follows its request line on the same socket).
 *
 * The reader pulls: it buffers at most about one maximum line (plus one socket chunk) and
 * pauses the stream beyond that, so a peer that sends faster than we read cannot make us
 * buffer without bound. Lines are returned as bytes; parseMessage validates the UTF-8 and
 * strips one trailing `\r`.
 */
import type { Readable } from 'node:stream';
import { NorthstarError } from '../common/errors.js';

export class LineTooLongError extends NorthstarError {
  constructor(readonly limit: number) {
    super('ELINETOOLONG', `line exceeds the maximum of ${limit} bytes`);
    this.name = 'LineTooLongError';
  }
}

export class StreamTimeoutError extends NorthstarError {
  constructor(readonly ms: number) {
    super('ETIMEOUT', `no data within ${ms} ms`);
    this.name = 'StreamTimeoutError';
  }
}

export class StreamReader {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Bytes at the front of the buffer already known to hold no `\n`. */
  private scanned = 0;
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly highWater: number;

  /**
   * @param maxLine maximum line length in bytes (Infinity for none)
   * @param bufferLimit pause the stream once this many bytes are buffered (default: maxLine + 64 KiB, at least 1 MiB)
   */
  constructor(
    private readonly stream: Readable,
    private readonly maxLine = Infinity,
    bufferLimit?: number,
  ) {
    this.highWater = bufferLimit ?? (Number.isFinite(maxLine) ? Math.max(maxLine + 65_536, 1 << 20) : 1 << 20);
    stream.on('data', (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (b.length === 0) return;
      this.chunks.push(b);
      this.length += b.length;
      if (this.length >= this.highWater) stream.pause();
      this.notify();
    });
    stream.on('end', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('close', () => {
      this.ended = true;
      this.notify();
    });
    stream.on('error', (e: Error) => {
      this.failure ??= e;
      this.notify();
    });
  }

  /** Bytes received and not yet consumed. */
  get buffered(): number {
    return this.length;
  }

  /** True once the stream ended and every buffered byte was consumed. */
  get atEof(): boolean {
    return this.ended && this.length === 0;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private resumeIfRoom(): void {
    if (this.length < this.highWater && this.stream.isPaused() && !this.ended) this.stream.resume();
  }

  /**
   * Wait until more data, EOF or an error arrives; rejects with StreamTimeoutError after
   * `timeout` ms. `needMore`: the buffered bytes are not enough (a line not yet complete,
   * bounded by the line cap), so read on even above the buffer limit.
   */
  private waitForData(timeout?: number, needMore = false): Promise<void> {
    if (needMore && this.stream.isPaused() && !this.ended) this.stream.resume();
    else this.resumeIfRoom();
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      this.wake = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      if (timeout !== undefined && Number.isFinite(timeout)) {
        timer = setTimeout(() => {
          this.wake = undefined;
          reject(new StreamTimeoutError(timeout));
        }, timeout);
      }
    });
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      // Within one chunk: no copy.
      out = first.length === n ? first : first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let off = 0;
      while (off < n) {
        const c = this.chunks[0]!;
        const need = n - off;
        if (c.length <= need) {
          c.copy(out, off);
          off += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, off, 0, need);
          this.chunks[0] = c.subarray(need);
          off += need;
        }
      }
    }
    this.length -= n;
    this.scanned = Math.max(0, this.scanned - n);
    this.resumeIfRoom();
    return out;
  }

  /** Offset of the first `\n` in the buffer, or -1; remembers how far it looked. */
  private findNewline(): number {
    let base = 0;
    for (const c of this.chunks) {
      if (base + c.length > this.scanned) {
        const from = Math.max(0, this.scanned - base);
        const k = c.indexOf(0x0a, from);
        if (k >= 0) return base + k;
      }
      base += c.length;
    }
    this.scanned = this.length;
    return -1;
  }

  /**
   * The next line without its `\n` (a last line without `\n` at EOF included), or null at EOF.
   * Throws LineTooLongError when a line exceeds the maximum (the stream is left as it is),
   * StreamTimeoutError when `timeout` ms pass without data, or the stream's error.
   */
  async readLine(timeout?: number): Promise<Buffer | null> {
    for (;;) {
      const nl = this.findNewline();
      if (nl >= 0) {
        if (nl > this.maxLine) throw new LineTooLongError(this.maxLine);
        const line = this.take(nl + 1);
        return line.subarray(0, nl);
      }
      if (this.length > this.maxLine) throw new LineTooLongError(this.maxLine);
      if (this.failure) throw this.failure;
      if (this.ended) return this.length > 0 ? this.take(this.length) : null;
      await this.waitForData(timeout, true);
    }
  }

  /**
   * Up to `max` raw bytes: what is buffered first, otherwise the next chunk to arrive.
   * Returns null at EOF. Throws StreamTimeoutError when `timeout` ms pass without data.
   */
  async readBytes(max: number, timeout?: number): Promise<Buffer | null> {
    for (;;) {
      // The first buffered chunk (or part of it): no copy.
      if (this.length > 0) return this.take(Math.min(max, this.chunks[0]!.length));
      if (this.failure) throw this.failure;
      if (this.ended) return null;
      await this.waitForData(timeout);
    }
  }

  /** Stop reading from the stream and drop what is buffered. */
  dispose(): void {
    this.chunks = [];
    this.length = 0;
    this.scanned = 0;
    this.ended = true;
    this.notify();
  }
}
