/**
 * The framing and report records of the launch core's two control sockets
 * (native/src/proto.h): every frame is a u32 little-endian length and its payload.
 * Shared by a container's core (launcher.ts) and an exec core (exec-process.ts).
 */
/** How the app ended: its exit code, or the signal that killed it (a seccomp kill is 31). */
export type ExitStatus = { code: number } | { signal: number };

export const REP_CREATED = 1;
export const REP_STARTED = 2;
export const REP_EXIT = 3;
export const REP_ERROR = 4;
export const CMD_EXEC = 1;
export const CMD_SIGNAL = 2;
/** Ours (exec into a running container): sent before the plan. */
export const CMD_JOIN = 3;
/** Ours: the exec core's pty size. */
export const CMD_RESIZE = 4;
export const MAX_REPORT = 8192;

export type Report =
  | { type: 'created'; pid: number }
  | { type: 'started'; pid: number }
  | { type: 'exit'; status: ExitStatus }
  | { type: 'error'; step: string; errno: number; path: string; message: string };

/** Frames of the payloads, in one buffer. */
export function frames(...payloads: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const p of payloads) {
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32LE(p.length);
    out.push(hdr, p);
  }
  return Buffer.concat(out);
}

/**
 * Splits report frames out of a byte stream. `push` returns the complete records so far;
 * it throws on a frame that no core writes (empty or over MAX_REPORT).
 */
export class ReportReader {
  private rx: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Report[] {
    this.rx = this.rx.length ? Buffer.concat([this.rx, chunk]) : chunk;
    const out: Report[] = [];
    while (this.rx.length >= 4) {
      const len = this.rx.readUInt32LE(0);
      if (len === 0 || len > MAX_REPORT) throw new Error(`report of ${len} bytes`);
      if (this.rx.length < 4 + len) break;
      out.push(decodeReport(this.rx.subarray(4, 4 + len)));
      this.rx = this.rx.subarray(4 + len);
    }
    return out;
  }
}

/** One record; throws on a malformed one. */
export function decodeReport(rec: Buffer): Report {
  const type = rec[0];
  const need = (n: number): void => {
    if (rec.length !== n) throw new Error(`record type ${type} has ${rec.length} bytes, expected ${n}`);
  };
  switch (type) {
    case REP_CREATED:
      need(5);
      return { type: 'created', pid: rec.readUInt32LE(1) };
    case REP_STARTED:
      need(5);
      return { type: 'started', pid: rec.readUInt32LE(1) };
    case REP_EXIT: {
      need(6);
      const kind = rec[1];
      const value = rec.readInt32LE(2);
      if (kind !== 0 && kind !== 1) throw new Error(`exit record of kind ${kind}`);
      return { type: 'exit', status: kind === 0 ? { code: value } : { signal: value } };
    }
    case REP_ERROR: {
      let at = 1;
      const str = (): string => {
        if (at + 4 > rec.length) throw new Error('truncated error record');
        const n = rec.readUInt32LE(at);
        at += 4;
        if (at + n > rec.length) throw new Error('truncated error record');
        const s = rec.toString('utf8', at, at + n);
        at += n;
        return s;
      };
      const step = str();
      if (at + 4 > rec.length) throw new Error('truncated error record');
      const errno = rec.readInt32LE(at);
      at += 4;
      const path = str();
      const message = str();
      if (at !== rec.length) throw new Error('trailing bytes in error record');
      return { type: 'error', step, errno, path, message };
    }
    default:
      throw new Error(`unknown record type ${type}`);
  }
}
