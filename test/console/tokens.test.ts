import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { TokenAuthority } from '../../src/console/tokens.js';

/** A fake monotonic clock in ms. */
function clock(start = 5_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('layout: u64 seconds since the lazy epoch, then HMAC-SHA256 as console.md §9', () => {
  const key = Buffer.alloc(32, 0x42);
  const c = clock();
  const a = new TokenAuthority(c.now, key);
  c.advance(123_456); // before the first use: not counted (the epoch is lazy)
  const t0 = a.create('token-client', 'token-server', Buffer.from('hello!'));
  assert.equal(t0.length, 40);
  assert.equal(t0.readBigUInt64BE(0), 0n);
  assert.ok(t0.toString('base64').startsWith('AAAAAAAAAA'));
  c.advance(2_999);
  const t2 = a.create('token-client', 'token-server', Buffer.from('hello!'));
  assert.equal(t2.readBigUInt64BE(0), 2n);
  // Recompute the MAC independently.
  const h = (...parts: Buffer[]): Buffer => {
    const m = createHmac('sha256', key);
    for (const p of parts) m.update(p);
    return m.digest();
  };
  const time = Buffer.alloc(16);
  time.writeBigUInt64BE(2000n, 8);
  const mac = h(time, h(Buffer.from('token-client')), h(Buffer.from('token-server')), h(Buffer.from('hello!')));
  assert.deepEqual(t2.subarray(8), mac);
});

test('verify: Ok, Invalid (user, target, shared, tampered), Expired, Future', () => {
  const c = clock();
  const a = new TokenAuthority(c.now);
  const shared = Buffer.from('aGVsbG8h', 'base64');
  const t = a.create('client', 'server', shared);
  assert.equal(a.verify(t, 'client', 'server', shared, 60_000), 'Ok');
  assert.equal(a.verify(t, 'other', 'server', shared, 60_000), 'Invalid');
  assert.equal(a.verify(t, 'client', 'extern', shared, 60_000), 'Invalid');
  assert.equal(a.verify(t, 'client', 'server', Buffer.from('x'), 60_000), 'Invalid');
  const tampered = Buffer.from(t);
  tampered[39]! ^= 1;
  assert.equal(a.verify(tampered, 'client', 'server', shared, 60_000), 'Invalid');
  // Exactly at the validity limit: still Ok; one second later: Expired.
  c.advance(60_000);
  assert.equal(a.verify(t, 'client', 'server', shared, 60_000), 'Ok');
  c.advance(1_000);
  assert.equal(a.verify(t, 'client', 'server', shared, 60_000), 'Expired');
  // The validity comes from the verifier.
  assert.equal(a.verify(t, 'client', 'server', shared, 120_000), 'Ok');
  // A token dated after now.
  const future = Buffer.from(t);
  future.writeBigUInt64BE(10_000n, 0);
  assert.equal(a.verify(future, 'client', 'server', shared, 60_000), 'Future');
  // Time is checked before the MAC: an expired forgery says Expired.
  const old = Buffer.alloc(40);
  assert.equal(a.verify(old, 'client', 'server', shared, 60_000), 'Expired');
});

test('tokens do not cross authorities (per-process key)', () => {
  const c = clock();
  const a = new TokenAuthority(c.now);
  const b = new TokenAuthority(c.now);
  const t = a.create('u', 't', Buffer.alloc(0));
  b.create('x', 'y', Buffer.alloc(0)); // start b's epoch at the same instant
  assert.equal(b.verify(t, 'u', 't', Buffer.alloc(0), 60_000), 'Invalid');
  assert.equal(a.verify(t, 'u', 't', Buffer.alloc(0), 60_000), 'Ok');
});
