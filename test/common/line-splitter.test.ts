import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineSplitter, MAX_LINE_BYTES } from '../../src/common/line-splitter.js';
import { escapeControl, humanStream } from '../../src/runtime/logger.js';

function split(chunks: (string | Buffer)[], max?: number): string[] {
  const out: string[] = [];
  const s = new LineSplitter((l) => out.push(l), max);
  for (const c of chunks) s.push(c);
  s.end();
  return out;
}

test('lines end at \\n, CRLF counts as one end, a last line without newline is kept', () => {
  assert.deepEqual(split(['a\nb\r\nc']), ['a', 'b', 'c']);
  assert.deepEqual(split(['a', 'b\n', '\n', 'c\r', '\n']), ['ab', '', 'c']);
  assert.deepEqual(split(['']), []);
  // A lone \r is no line end: it stays in the line (the logger shows it escaped).
  assert.deepEqual(split(['ok\rforged\n']), ['ok\rforged']);
});

test('a long line is cut into pieces of at most max bytes, never buffered whole', () => {
  assert.equal(MAX_LINE_BYTES, 8192);
  assert.deepEqual(split(['abcdefghij\n'], 4), ['abcd', 'efgh', 'ij']);
  // Exactly max bytes then the newline (or CRLF): one line, no empty piece after it.
  assert.deepEqual(split(['abcd\nefgh\r\nx'], 4), ['abcd', 'efgh', 'x']);
  // A flood without newlines in many chunks: every piece is full, nothing is held back.
  const pieces: string[] = [];
  const s = new LineSplitter((l) => pieces.push(l));
  const chunk = Buffer.alloc(65536, 'x');
  for (let i = 0; i < 100; i++) s.push(chunk);
  assert.equal(pieces.length, (100 * 65536) / MAX_LINE_BYTES - 1);
  assert.ok(pieces.every((p) => p.length === MAX_LINE_BYTES));
  s.end();
  assert.equal(pieces.length, (100 * 65536) / MAX_LINE_BYTES);
});

test('pieces are cut at UTF-8 character boundaries; invalid bytes become U+FFFD', () => {
  // 'aé€😀' = 1 + 2 + 3 + 4 bytes; with max 4 no character is split.
  assert.deepEqual(split(['aé€😀b\n'], 4), ['aé', '€', '😀', 'b']);
  // Split across chunks too.
  const bytes = Buffer.from('€€€\n');
  assert.deepEqual(split([bytes.subarray(0, 2), bytes.subarray(2, 5), bytes.subarray(5)], 4), ['€', '€', '€']);
  assert.deepEqual(split([Buffer.from([0x61, 0xff, 0x62, 0x0a])]), ['a\ufffdb']);
  // Only continuation bytes: cut anyway (no endless wait for a lead byte).
  assert.deepEqual(split([Buffer.alloc(9, 0x80)], 4).length, 3);
});

test('max must be a sane byte count', () => {
  assert.throws(() => new LineSplitter(() => undefined, 2), /max 2 must be an integer of at least 4/);
  assert.throws(() => new LineSplitter(() => undefined, 1.5), /max 1.5/);
});

test('control characters are written visibly, tab and text stay', () => {
  assert.equal(escapeControl('plain\ttext ü €'), 'plain\ttext ü €');
  assert.equal(escapeControl('a\rb\nc'), 'a\\rb\\nc');
  assert.equal(escapeControl('\x1b[2K\x00\x7f\u009b\u2028'), '\\u001b[2K\\u0000\\u007f\\u009b\\u2028');
});

test('a human log line cannot be forged or hidden by its message or fields', () => {
  const out: string[] = [];
  const h = humanStream({ write: (s: string) => out.push(s) });
  const forged = 'harmless\r12:00:00.000                northstar INFO : Runtime up\n\x1b[1A\x1b[2K';
  h.write(`${JSON.stringify({ level: 20, time: 0, target: 'evil:0.0.1', msg: forged, extra: '\r\x1b]0;t\x07' })}\n`);
  h.write('not json\r\x1b[2K\n');
  assert.equal(out.length, 2);
  for (const l of out) {
    assert.ok(l.endsWith('\n'));
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(l.slice(0, -1), /[\x00-\x08\x0a-\x1f\x7f-\x9f]/);
  }
  assert.match(out[0] ?? '', /evil:0\.0\.1 DEBUG: harmless\\r12:00:00\.000 +northstar INFO : Runtime up\\n\\u001b\[1A\\u001b\[2K extra=\\r\\u001b\]0;t\\u0007\n$/);
  assert.equal(out[1], 'not json\\r\\u001b[2K\n');
});
