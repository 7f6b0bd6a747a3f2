import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { StreamReader, LineTooLongError, StreamTimeoutError } from '../../src/api/lines.js';

const text = (b: Buffer | null): string | null => (b === null ? null : b.toString());

test('lines split on \\n across chunk boundaries; the last line without \\n comes at EOF', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s, 100);
  s.write('ab');
  s.write('c\nde');
  s.write('f\r\n\n');
  s.end('tail');
  assert.equal(text(await r.readLine()), 'abc');
  assert.equal(text(await r.readLine()), 'def\r'); // parseMessage strips one \r
  assert.equal(text(await r.readLine()), ''); // empty line: parseMessage rejects it
  assert.equal(text(await r.readLine()), 'tail');
  assert.equal(await r.readLine(), null);
});

test('the maximum line length does not count the \\n', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s, 4);
  s.end('abcd\nabcde\n');
  assert.equal(text(await r.readLine()), 'abcd');
  await assert.rejects(r.readLine(), LineTooLongError);
});

test('an over-long line is detected before its end arrives', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s, 1000);
  s.write(Buffer.alloc(1001, 0x61));
  await assert.rejects(r.readLine(), LineTooLongError);
});

test('raw bytes after a line: buffered bytes first, then the stream', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s, 100);
  s.write('{"x":1}\nPAY');
  assert.equal(text(await r.readLine()), '{"x":1}');
  assert.equal(text(await r.readBytes(2)), 'PA');
  assert.equal(text(await r.readBytes(100)), 'Y');
  setImmediate(() => s.write('LOADnext\n'));
  assert.equal(text(await r.readBytes(4)), 'LOAD');
  assert.equal(text(await r.readLine()), 'next');
  s.end();
  assert.equal(await r.readBytes(10), null);
});

test('readBytes times out without data', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s, 100);
  await assert.rejects(r.readBytes(10, 20), StreamTimeoutError);
});

test('the reader pauses the stream instead of buffering without bound', async () => {
  const s = new PassThrough({ highWaterMark: 1024 });
  const r = new StreamReader(s, 10, 4096);
  let written = 0;
  const chunk = Buffer.alloc(1024, 0x0a);
  // Write until the stream reports backpressure: the reader must stop taking data.
  while (s.write(chunk)) {
    written += chunk.length;
    if (written > 1 << 20) break;
  }
  await new Promise((resolve) => setImmediate(resolve));
  assert.ok(written < 1 << 20, `the stream never pushed back (${written} bytes accepted)`);
  assert.ok(r.buffered <= 4096 + 1024, `buffered ${r.buffered}`);
  // Reading lines releases the pause.
  assert.equal(text(await r.readLine()), '');
});

test('a line longer than the buffer limit is still read when the cap allows it', async () => {
  const s = new PassThrough();
  const r = new StreamReader(s, Infinity, 64 * 1024);
  const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
  const done = r.readLine();
  for (let off = 0; off < big.length; off += 100_000) s.write(big.subarray(off, off + 100_000));
  s.write('\nrest\n');
  const line = await done;
  assert.equal(line?.length, big.length);
  assert.equal(text(await r.readLine()), 'rest');
});
