/**
 * Console tokens (console.md §9): 40 bytes = big-endian u64 whole seconds since the token
 * epoch ‖ HMAC-SHA256(K, be_u128(secs*1000) ‖ HMAC(K,user) ‖ HMAC(K,target) ‖ HMAC(K,shared)).
 * K is 32 random bytes drawn once per authority (one authority per runtime process), the
 * epoch a monotonic instant taken lazily at the first create or verify.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TOKEN_LENGTH, type VerificationResult } from '../api/model.js';

/** A monotonic clock in milliseconds (performance.now by default). */
export type MonotonicClock = () => number;

export class TokenAuthority {
  private readonly key: Buffer;
  private epoch: number | undefined;

  constructor(
    private readonly clock: MonotonicClock = () => performance.now(),
    key: Buffer = randomBytes(32),
  ) {
    this.key = Buffer.from(key);
  }

  /** Whole seconds since the epoch, taking the epoch now if this is the first use. */
  private seconds(): bigint {
    const now = this.clock();
    this.epoch ??= now;
    return BigInt(Math.max(0, Math.floor((now - this.epoch) / 1000)));
  }

  private hmac(...parts: (Buffer | string)[]): Buffer {
    const h = createHmac('sha256', this.key);
    for (const p of parts) h.update(p);
    return h.digest();
  }

  private mac(secs: bigint, user: string, target: string, shared: Buffer): Buffer {
    const time = Buffer.alloc(16);
    const ms = secs * 1000n;
    time.writeBigUInt64BE(ms >> 64n, 0);
    time.writeBigUInt64BE(ms & 0xffff_ffff_ffff_ffffn, 8);
    return this.hmac(time, this.hmac(user), this.hmac(target), this.hmac(shared));
  }

  /** A token for `user` (the creator's name or "extern") to present to `target`. */
  create(user: string, target: string, shared: Buffer): Buffer {
    const secs = this.seconds();
    const out = Buffer.alloc(TOKEN_LENGTH);
    out.writeBigUInt64BE(secs, 0);
    this.mac(secs, user, target, shared).copy(out, 8);
    return out;
  }

  /**
   * Check a token that `user` presents to `target` (the verifier's name or "extern");
   * `validity` in ms is the verifying connection's token_validity.
   */
  verify(token: Buffer, user: string, target: string, shared: Buffer, validity: number): VerificationResult {
    if (token.length !== TOKEN_LENGTH) return 'Invalid';
    const now = this.seconds();
    const time = token.readBigUInt64BE(0);
    if (now < time) return 'Future';
    if (now - time > BigInt(Math.floor(validity / 1000))) return 'Expired';
    const expected = this.mac(time, user, target, shared);
    return timingSafeEqual(expected, token.subarray(8)) ? 'Ok' : 'Invalid';
  }
}
