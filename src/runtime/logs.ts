/**
 * Ours (issue 12, logs): the recent `io: pipe` output of one container, kept in memory.
 *
 * A ring of lines bounded by bytes: each line counts its UTF-8 bytes plus LINE_OVERHEAD (so
 * a flood of empty lines is bounded too); when a new line does not fit, the oldest lines
 * go first. Lines arrive already cut by the bounded LineSplitter (at most MAX_LINE_BYTES
 * each), so one line never exceeds the bound of a buffer of at least that size; a longer
 * piece (a buffer smaller than one line) is cut to fit.
 *
 * The buffer lives with the container's state entry (it survives restarts, goes with an
 * uninstall). Followers (a console connection's `logs` with follow) get every line pushed
 * after they joined, and an end (the container's exit delivered, an uninstall).
 */
import type { LogEndReason, LogLine, LogStream } from '../api/model.js';
import { MAX_LINE_BYTES } from '../common/line-splitter.js';

export type { LogEndReason, LogLine, LogStream };

/** Someone following the buffer. */
export interface LogFollower {
  line(l: LogLine): void;
  end(reason: LogEndReason): void;
}

/** Bytes a line costs besides its text (the bound covers many empty lines too). */
export const LINE_OVERHEAD = 64;

/** The default buffer size (`[logs] buffer_size`): 1 MiB. */
export const DEFAULT_LOG_BUFFER_SIZE = 1 << 20;

/** The line cap: the bounded splitter's. */
export { MAX_LINE_BYTES };

export interface LogBufferStats {
  /** Lines held. */
  lines: number;
  /** Bytes they count (UTF-8 text + LINE_OVERHEAD each). */
  bytes: number;
  /** The bound. */
  capacity: number;
  /** Lines dropped (oldest first) since the buffer was made. */
  dropped: number;
}

export class LogBuffer {
  /** Lines from `head` on are held; the slots before it are free (compacted now and then). */
  private ring: (LogLine & { cost: number })[] = [];
  private head = 0;
  private bytes = 0;
  private dropped = 0;
  /** Followers, each with the run it follows (its end is theirs). */
  private readonly followers = new Map<LogFollower, unknown>();

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity <= 0) throw new RangeError(`log buffer: capacity ${capacity} must be a positive integer (bytes)`);
  }

  /** Add one line (dropping the oldest ones while it does not fit), then tell the followers. */
  push(stream: LogStream, text: string, time: bigint = BigInt(Date.now())): void {
    let line = text;
    let cost = Buffer.byteLength(line) + LINE_OVERHEAD;
    if (cost > this.capacity) {
      // Only a buffer smaller than one line gets here: keep what fits, at a char boundary.
      const room = Math.max(0, this.capacity - LINE_OVERHEAD);
      line = Buffer.from(line).subarray(0, room).toString('utf8').replace(/\uFFFD$/, '');
      cost = Buffer.byteLength(line) + LINE_OVERHEAD;
      if (cost > this.capacity) return;
    }
    while (this.bytes + cost > this.capacity && this.head < this.ring.length) this.dropOldest();
    const entry = { time, stream, line, cost };
    this.ring.push(entry);
    this.bytes += cost;
    const out: LogLine = { time, stream, line };
    for (const f of [...this.followers.keys()]) f.line(out);
  }

  private dropOldest(): void {
    const old = this.ring[this.head]!;
    this.bytes -= old.cost;
    this.dropped += 1;
    this.head += 1;
    // Compact once the free prefix is half the array: amortised O(1) per line.
    if (this.head >= 1024 && this.head * 2 >= this.ring.length) {
      this.ring = this.ring.slice(this.head);
      this.head = 0;
    }
  }

  /** The last `n` lines (all of them for undefined), oldest first. */
  tail(n?: number): LogLine[] {
    const count = this.ring.length - this.head;
    const take = n === undefined ? count : Math.min(Math.max(0, n), count);
    const out: LogLine[] = [];
    for (let i = this.ring.length - take; i < this.ring.length; i++) {
      const { time, stream, line } = this.ring[i]!;
      out.push({ time, stream, line });
    }
    return out;
  }

  stats(): LogBufferStats {
    return { lines: this.ring.length - this.head, bytes: this.bytes, capacity: this.capacity, dropped: this.dropped };
  }

  /** Follow new lines of the run `run` (any tag); returns the unfollow function. */
  follow(f: LogFollower, run?: unknown): () => void {
    this.followers.set(f, run);
    return () => this.followers.delete(f);
  }

  /** The follows of `from` follow `to` from now on (a restart: the next run, or waiting for it). */
  retag(from: unknown, to: unknown): void {
    for (const [f, r] of this.followers) if (r === from) this.followers.set(f, to);
  }

  /**
   * End the follows of `run` (every follow for undefined): each follower is told once,
   * then forgotten.
   */
  endFollowers(reason: LogEndReason, run?: unknown): void {
    const ending = [...this.followers].filter(([, r]) => run === undefined || r === run).map(([f]) => f);
    for (const f of ending) this.followers.delete(f);
    for (const f of ending) f.end(reason);
  }

  get following(): number {
    return this.followers.size;
  }
}
