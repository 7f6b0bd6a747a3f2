/**
 * Output side of the writer: a positioned, batching file sink and an ordered pipeline that
 * compresses blocks concurrently (zlib's async API runs on libuv's thread pool) while writing
 * them strictly in submission order, so every block's position is deterministic.
 */
import { writevSync } from 'node:fs';

export class FileSink {
  private bufs: Buffer[] = [];
  private bufBytes = 0;
  private bufStart: number;
  /** Highest byte offset ever written (the file may be longer than `pos` after a rewind). */
  maxEnd = 0;

  constructor(
    private readonly fd: number,
    public pos: number,
  ) {
    this.bufStart = pos;
  }

  write(b: Buffer): void {
    if (b.length === 0) return;
    this.bufs.push(b);
    this.bufBytes += b.length;
    this.pos += b.length;
    if (this.bufBytes >= 4 << 20 || this.bufs.length >= 1024) this.flush();
  }

  flush(): void {
    let bufs = this.bufs;
    let at = this.bufStart;
    while (bufs.length) {
      let n = writevSync(this.fd, bufs, at);
      at += n;
      // Drop what was written (partial writes are possible for large batches).
      let i = 0;
      while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
      bufs = bufs.slice(i);
      if (n > 0 && bufs.length) bufs[0] = bufs[0]!.subarray(n);
    }
    this.maxEnd = Math.max(this.maxEnd, at);
    this.bufs = [];
    this.bufBytes = 0;
    this.bufStart = this.pos;
  }

  /** Move the write position back (used to drop the blocks of a late-detected duplicate). */
  seek(pos: number): void {
    this.flush();
    this.pos = pos;
    this.bufStart = pos;
  }
}

export interface Stored {
  data: Buffer;
  raw: boolean;
}

interface Job {
  result: Promise<Stored> | Stored;
  bytes: number;
  done: (pos: number, stored: Stored) => void;
}

export class OrderedPipeline {
  private queue: Job[] = [];
  private head = 0;
  private inflightBytes = 0;

  constructor(
    private readonly sink: FileSink,
    private readonly maxJobs: number,
    private readonly maxBytes: number,
  ) {}

  /** Queue a block; waits while too much is in flight. `done` runs when it is written. */
  async push(result: Promise<Stored> | Stored, bytes: number, done: (pos: number, stored: Stored) => void): Promise<void> {
    // Mark the promise handled now; its error surfaces when the job is drained.
    if (result instanceof Promise) result.catch(() => undefined);
    this.queue.push({ result, bytes, done });
    this.inflightBytes += bytes;
    while (this.queue.length - this.head > this.maxJobs || this.inflightBytes > this.maxBytes) await this.drainOne();
  }

  private async drainOne(): Promise<void> {
    const job = this.queue[this.head]!;
    this.queue[this.head] = undefined as unknown as Job;
    this.head++;
    if (this.head > 4096) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    const stored = await job.result;
    const pos = this.sink.pos;
    this.sink.write(stored.data);
    this.inflightBytes -= job.bytes;
    job.done(pos, stored);
  }

  /** Write everything queued. */
  async drain(): Promise<void> {
    while (this.queue.length - this.head > 0) await this.drainOne();
  }
}
