/**
 * Bounded line splitting for output the runtime does not control (container stdout and
 * stderr, debug commands). Lines end at `\n`; one `\r` right before it is dropped (CRLF).
 * A line longer than `max` bytes is cut into pieces of at most `max` bytes, at a UTF-8
 * character boundary where there is one, so at most `max` bytes are ever buffered, however
 * long a line without a newline is. Invalid UTF-8 decodes to U+FFFD.
 */

/** Cap for one logged piece of container output, in bytes. */
export const MAX_LINE_BYTES = 8192;

export class LineSplitter {
  private readonly buf: Buffer;
  private len = 0;
  /** The pending bytes continue a line that was cut. */
  private continued = false;

  constructor(
    private readonly onLine: (line: string) => void,
    readonly max: number = MAX_LINE_BYTES,
  ) {
    if (!Number.isInteger(max) || max < 4) throw new RangeError(`line splitter: max ${max} must be an integer of at least 4 (bytes)`);
    this.buf = Buffer.alloc(max);
  }

  /** Feed a chunk; calls onLine for every line (or piece of a long line) it completes. */
  push(chunk: Buffer | string): void {
    const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let start = 0;
    while (start < data.length) {
      const nl = data.indexOf(0x0a, start);
      const end = nl < 0 ? data.length : nl;
      while (start < end) {
        // Cut only when more bytes of the same line arrive: a line of exactly `max`
        // bytes is one line, not a piece and an empty line.
        if (this.len === this.max) this.cut();
        const n = Math.min(this.max - this.len, end - start);
        data.copy(this.buf, this.len, start, start + n);
        this.len += n;
        start += n;
      }
      if (nl < 0) return;
      this.finishLine();
      start = nl + 1;
    }
  }

  /** End of input: a last line without a newline is still a line. */
  end(): void {
    if (this.len > 0) this.finishLine();
    this.continued = false;
  }

  private finishLine(): void {
    let n = this.len;
    if (n > 0 && this.buf[n - 1] === 0x0d) n--;
    this.len = 0;
    // The newline (or CRLF) after a cut piece is not an extra empty line.
    if (!(n === 0 && this.continued)) this.onLine(this.buf.toString('utf8', 0, n));
    this.continued = false;
  }

  /** Emit the buffer as a piece, keeping an incomplete UTF-8 sequence at its end. */
  private cut(): void {
    let k = this.len;
    let i = k - 1;
    while (i > 0 && k - i < 4 && ((this.buf[i] as number) & 0xc0) === 0x80) i--;
    const lead = this.buf[i] as number;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (i > 0 && lead >= 0xc0 && k - i < need) k = i;
    this.onLine(this.buf.toString('utf8', 0, k));
    this.buf.copy(this.buf, 0, k, this.len);
    this.len -= k;
    this.continued = true;
  }
}
