/**
 * The strict grammar of signature.yaml and the zip comment (meta), both read before the
 * signature is checked (issue 9, "Unsigned YAML parsed before the signature"): every form
 * upstream and we write is accepted, each malformed or hostile variant is refused with
 * the file, the field and what is wrong, oversize input is refused before it is read, and
 * nothing crafted takes long. Also: the manifest's YAML parse bounds alias expansion.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { NpkError } from '../../src/common/errors.js';
import { parseManifest, serializeManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { readPublicKey, readSigningKey, signEd25519 } from '../../src/npk/keys.js';
import { MAX_MANIFEST_SIZE, Npk } from '../../src/npk/reader.js';
import { MAX_META_SIZE, MAX_SIGNATURE_SIZE, hashesDocument, parseMetaComment, parseSignatureFile, signatureFile } from '../../src/npk/signature.js';
import { metaDocument } from '../../src/npk/format.js';
import { billionLaughs, craftNpk, deepNesting, manyKeys, strayBraces } from '../helpers/craft-npk.js';
import { tempDir } from '../helpers/tmp.js';

import { UPSTREAM_EXAMPLES as FIXTURES } from '../helpers/fixtures.js';
const KEY = join(FIXTURES, 'northstar.key');
const PUB = join(FIXTURES, 'northstar.pub');

const META = 'a1'.repeat(32);
const MANIFEST = 'b2'.repeat(32);
const VERITY = 'c3'.repeat(32);
const SIG = Buffer.alloc(64, 7);
const SIG64 = SIG.toString('base64');

/** Exactly what upstream's hashes_yaml() and signature() write (npk.rs, format! strings). */
function upstreamForm(offset = 8192): string {
  return `meta:\n  hash: ${META}\nmanifest.yaml:\n  hash: ${MANIFEST}\nfs.img:\n  verity-hash: ${VERITY}\n  verity-offset: ${offset}\n---\nsignature: ${SIG64}`;
}

function ok(text: string): ReturnType<typeof parseSignatureFile> {
  return parseSignatureFile(Buffer.from(text, 'latin1'));
}

function refused(text: string | Buffer, re: RegExp, what = String(text).slice(0, 60)): void {
  assert.throws(
    () => parseSignatureFile(Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1')),
    (e: unknown) => {
      assert.ok(e instanceof NpkError, `${what}: ${String(e)}`);
      assert.equal(e.code, 'ESIGNATURE', what);
      assert.match(e.message, /^signature\.yaml: /, what);
      assert.match(e.message, re, what);
      return true;
    },
    what,
  );
}

test('signature.yaml: upstream\'s and our exact forms parse, and the signed document is the exact text before ---', () => {
  const up = ok(upstreamForm());
  assert.equal(up.hashes.metaHash.toString('hex'), META);
  assert.equal(up.hashes.manifestHash.toString('hex'), MANIFEST);
  assert.equal(up.hashes.verityHash.toString('hex'), VERITY);
  assert.equal(up.hashes.verityOffset, 8192);
  assert.ok(up.signature.equals(SIG));
  assert.equal(up.document.toString(), upstreamForm().slice(0, upstreamForm().indexOf('---')));

  const doc = hashesDocument({ metaHash: Buffer.from(META, 'hex'), manifestHash: Buffer.from(MANIFEST, 'hex'), verityHash: Buffer.from(VERITY, 'hex'), verityOffset: 8192 });
  const ours = signatureFile(doc, SIG);
  assert.equal(ours.toString(), upstreamForm(), 'our writer writes upstream\'s bytes');
  assert.deepEqual(parseSignatureFile(ours), up);
});

test('signature.yaml: formatting variants YAML allows and upstream reads are accepted', () => {
  const lines = upstreamForm().split('\n');
  const variants: Record<string, string> = {
    'trailing newline': `${upstreamForm()}\n`,
    'crlf line ends': upstreamForm().replace(/\n/g, '\r\n'),
    'sections reordered': [...lines.slice(4, 7), ...lines.slice(2, 4), ...lines.slice(0, 2), ...lines.slice(7)].join('\n'),
    'keys reordered': [...lines.slice(0, 5), lines[6], lines[5], ...lines.slice(7)].join('\n'),
    'four-space indent': upstreamForm().replace(/\n {2}/g, '\n    '),
    'one-space indent': upstreamForm().replace(/\n {2}/g, '\n '),
    'quoted values and keys': upstreamForm().replace(`hash: ${META}`, `hash: '${META}'`).replace('manifest.yaml:', '"manifest.yaml":').replace(`signature: ${SIG64}`, `signature: "${SIG64}"`),
    'upper-case hex': upstreamForm().replace(VERITY, VERITY.toUpperCase()),
    'comments and blank lines': `# hashes\n\n${upstreamForm().replace('fs.img:', 'fs.img:   # the image').replace(`verity-offset: 8192`, 'verity-offset: 8192 # bytes')}\n\n# end\n`,
    'trailing spaces': upstreamForm().replace('meta:', 'meta:  ').replace('---', '---  '),
    'unknown keys with simple values (upstream ignores them)': upstreamForm().replace('fs.img:', 'builder: sextant-0.9.3\nextra:\n  a: 1\n  b: x/y=z\nfs.img:').replace(`verity-offset: 8192`, 'verity-offset: 8192\n  verity-salt: 00ff').replace(`signature: ${SIG64}`, `signature: ${SIG64}\nalgorithm: ed25519`),
  };
  for (const [what, text] of Object.entries(variants)) {
    const s = ok(text);
    assert.equal(s.hashes.verityOffset, 8192, what);
    assert.equal(s.hashes.verityHash.toString('hex'), VERITY, what);
    assert.ok(s.signature.equals(SIG), what);
    assert.equal(s.document.toString('latin1'), text.slice(0, text.indexOf('---')), `${what}: the signed bytes are the text before ---`);
  }
  assert.equal(ok(upstreamForm(0)).hashes.verityOffset, 0);
  assert.equal(ok(upstreamForm(2 ** 52)).hashes.verityOffset, 2 ** 52);
});

test('signature.yaml: each malformed or hostile variant is refused naming the line, the field and the problem', () => {
  const f = upstreamForm();
  const cases: [string, string | Buffer, RegExp][] = [
    ['no separator', f.replace('---\n', ''), /missing '---' line between the hashes and the signature/],
    ['--- inside a value', f.replace(`hash: ${META}`, 'hash: ab---cd'), /line 2: '---' must be a line of its own/],
    ['--- with text', f.replace('---\n', '--- x\n'), /line 8: '---' must be a line of its own/],
    ['anchor', f.replace(`hash: ${META}`, `hash: &a ${META}`), /line 2: meta\.hash: "&a a1a1.*" is not a plain value/],
    ['alias', f.replace(`hash: ${MANIFEST}`, 'hash: *a'), /line 4: manifest\.yaml\.hash: "\*a" is not a plain value/],
    ['anchored section', f.replace('meta:', 'meta: &m'), /line 1: meta: "&m" is not a plain value/],
    ['alias as a key', f.replace('meta:', '*m:'), /line 1: expected 'key: value', found "\*m:"/],
    ['flow map', f.replace(`meta:\n  hash: ${META}`, `meta: {hash: ${META}}`), /line 1: meta: "\{hash: a1a1.*" is not a plain value/],
    ['flow sequence', f.replace('verity-offset: 8192', 'verity-offset: [8192]'), /fs\.img\.verity-offset: "\[8192\]" is not a plain value/],
    ['tag', f.replace(`hash: ${META}`, `hash: !!str ${META}`), /meta\.hash: "!!str a1a1.*" is not a plain value/],
    ['block scalar', f.replace(`hash: ${META}`, `hash: |\n    ${META}`), /line 2: meta\.hash: "\|" is not a plain value/],
    ['nesting', f.replace(`hash: ${META}`, `hash:\n    deeper: ${META}`), /line 2: 'meta\.hash' has no value \(only one level of sections\)/],
    ['indentation under a value', `top: x\n  stray: 1\n${f}`, /line 2: unexpected indentation of 'stray'/],
    ['inconsistent indentation', f.replace('  verity-offset', '    verity-offset'), /line 7: 'fs\.img\.verity-offset' is indented by 4 spaces, its section by 2/],
    ['sequence', `- a\n${f}`, /line 1: expected 'key: value', found "- a"/],
    ['duplicate section', f.replace('fs.img:', `meta:\n  hash: ${META}\nfs.img:`), /line 5: duplicate key 'meta'/],
    ['duplicate field', f.replace('  verity-offset: 8192', '  verity-offset: 8192\n  verity-offset: 4096'), /line 8: duplicate key 'fs\.img\.verity-offset'/],
    ['tab indentation', f.replace('  hash', '\thash'), /line 2: tab character/],
    ['nul byte', f.replace('meta:', 'meta:\0'), /line 1: character 0x00 is not allowed/],
    ['non-ascii', Buffer.concat([Buffer.from('# \xc3\xa9\n', 'latin1'), Buffer.from(f)]), /line 1: character 0xc3 is not allowed \(only printable ascii\)/],
    ['missing section', f.replace(`manifest.yaml:\n  hash: ${MANIFEST}\n`, ''), /missing section 'manifest\.yaml' \(with hash\)/],
    ['section as a value', f.replace(`meta:\n  hash: ${META}`, 'meta: x'), /line 1: 'meta' must be a section with hash, found the value "x"/],
    ['missing field', f.replace(`  verity-hash: ${VERITY}\n`, ''), /line 5: missing fs\.img\.verity-hash \(64 hex digits\)/],
    ['short hash', f.replace(META, META.slice(2)), /line 2: meta\.hash must be 64 hex digits, found "a1a1/],
    ['non-hex hash', f.replace(VERITY, `${VERITY.slice(1)}g`), /line 6: fs\.img\.verity-hash must be 64 hex digits/],
    ['empty hash', f.replace(`hash: ${META}`, "hash: ''"), /meta\.hash must be 64 hex digits, found ""/],
    ['negative offset', f.replace('8192', '-8192'), /line 7: fs\.img\.verity-offset must be a non-negative decimal integer, found "-8192"/],
    ['hex offset', f.replace('8192', '0x2000'), /fs\.img\.verity-offset must be a non-negative decimal integer, found "0x2000"/],
    ['leading zero', f.replace('8192', '08192'), /found "08192"/],
    ['float offset', f.replace('8192', '8192.0'), /found "8192\.0"/],
    ['huge offset', f.replace('8192', '99999999999999999999'), /found "99999999999999999999"/],
    ['missing signature', f.replace(`signature: ${SIG64}`, ''), /missing 'signature: <base64>' after '---'/],
    ['signature section', f.replace(`signature: ${SIG64}`, `signature:\n  a: b`), /line 9: signature must be a base64 value, found a section/],
    ['signature not base64', f.replace(SIG64, `${SIG64.slice(0, 80)}!!!!!!==`), /line 9: signature: .* is not a plain value/],
    ['unpadded signature', f.replace(SIG64, SIG64.slice(0, 86)), /line 9: signature must be the padded base64 of 64 bytes \(88 characters\), found .* \(86 characters\)/],
    ['short signature', f.replace(SIG64, Buffer.alloc(32).toString('base64')), /\(44 characters\)/],
    ['second document', `${f}\n---\nsignature: ${SIG64}`, /line 10: expected 'key: value', found "---"/],
  ];
  for (const [what, text, re] of cases) refused(text, re, what);
});

// The test's timeout guards against a parser that is not linear (no time is asserted: that
// is the benchmarks' job).
test('signature.yaml: oversize input is refused by its size, crafted input by the grammar', { timeout: 120_000 }, () => {
  refused(Buffer.alloc(MAX_SIGNATURE_SIZE + 1, 0x7d), /^signature\.yaml: 4097 bytes, more than the limit of 4096 \(it holds three hashes, an offset and a signature\)$/);
  const hostile = [billionLaughs(500 << 10), deepNesting(500 << 10), manyKeys(500 << 10), strayBraces(500 << 10)];
  for (const h of hostile) {
    refused(h, /more than the limit of 4096/, 'oversize');
    // The same, cut to the limit: refused by the grammar, line by line.
    refused(`${h.slice(0, MAX_SIGNATURE_SIZE - 4)}\n---`, /line \d+: /, `cut: ${h.slice(0, 20)}`);
  }
  for (let i = 0; i < 200; i++) refused(`${'a:\n  b: c\n'.repeat(400)}---`, /duplicate key 'a'/);
});

test('zip comment (meta): the forms serde_yaml writes are accepted, everything else is refused naming the problem', () => {
  assert.equal(parseMetaComment(metaDocument()), '0.9.3');
  const good: Record<string, string> = {
    'upstream (serde_yaml 0.9)': 'version: 0.9.3\n',
    'serde_yaml 0.8 document start': '---\nversion: 0.9.3\n',
    'no newline': 'version: 0.9.3',
    quoted: "version: '0.9.3'\n",
    'double quoted, crlf': 'version: "0.9.3"\r\n',
    'comment and unknown key': '# meta\nversion: 0.9.3 # format\nbuilder: sextant\n',
    'pre-release': 'version: 1.0.0-rc.1+build.5\n',
  };
  for (const [what, text] of Object.entries(good)) assert.match(parseMetaComment(Buffer.from(text)), /^(0\.9\.3|1\.0\.0-rc\.1\+build\.5)$/, what);

  const bad: [string, string | Buffer, RegExp][] = [
    ['empty', '', /^zip comment \(meta\): missing 'version: <format version>'$/],
    ['no version', 'name: x\n', /missing 'version: <format version>'/],
    ['version section', 'version:\n  major: 0\n', /line 1: version must be a value, found a section/],
    ['flow', 'version: [0, 9, 3]\n', /line 1: version: "\[0, 9, 3\]" is not a plain value/],
    ['alias', 'a: &v 0.9.3\nversion: *v\n', /line 1: a: "&v 0\.9\.3" is not a plain value/],
    ['duplicate', 'version: 0.9.3\nversion: 1.0.0\n', /line 2: duplicate key 'version'/],
    ['binary', Buffer.from([0x76, 0x3a, 0x20, 0xff]), /line 1: character 0xff is not allowed/],
    ['oversize', Buffer.alloc(MAX_META_SIZE + 1, 0x7d), /^zip comment \(meta\): 4097 bytes, more than the limit of 4096/],
    ['billion laughs', billionLaughs(4000), /line 1: l0: "&l0 \[lol, lol, lol/],
    ['deep nesting', deepNesting(4000), /line 1: a: "\[\[\[\[/],
    ['stray braces', strayBraces(4000), /line 1: expected 'key: value', found "\}\}\}/],
  ];
  for (const [what, text, re] of bad) {
    assert.throws(
      () => parseMetaComment(Buffer.isBuffer(text) ? text : Buffer.from(text)),
      (e: unknown) => e instanceof NpkError && e.code === 'ENPKMETA' && /^zip comment \(meta\): /.test(e.message) && re.test(e.message),
      what,
    );
  }
});

test('every upstream example packs to a signature.yaml, comment and manifest within the bounds and opens with the key', async (t) => {
  const dir = tempDir(t);
  const key = await readSigningKey(KEY);
  const pub = await readPublicKey(PUB);
  const names = readdirSync(FIXTURES).filter((n) => existsSync(join(FIXTURES, n, 'manifest.yaml')));
  assert.ok(names.length >= 20, `upstream examples found: ${names.join(', ')}`);
  let largestManifest = 0;
  for (const name of names) {
    const manifest = parseManifest(readFileSync(join(FIXTURES, name, 'manifest.yaml'), 'utf8'));
    largestManifest = Math.max(largestManifest, Buffer.byteLength(serializeManifest(manifest)));
    const root = existsSync(join(FIXTURES, name, 'root')) ? join(FIXTURES, name, 'root') : undefined;
    const out = join(dir, `${name}.npk`);
    await packNpk({ manifest, root, key, out });
    const npk = await Npk.open(out, { key: pub });
    assert.ok(npk.signatureBytes!.length < MAX_SIGNATURE_SIZE / 8, `${name}: signature.yaml is ${npk.signatureBytes!.length} bytes`);
    assert.equal(npk.metaVersion, '0.9.3');
  }
  assert.ok(largestManifest < MAX_MANIFEST_SIZE / 32, `the largest upstream manifest is ${largestManifest} bytes`);
  // The largest possible hashes document (a 20-digit offset) is still far below the bound.
  const doc = hashesDocument({ metaHash: Buffer.alloc(32), manifestHash: Buffer.alloc(32), verityHash: Buffer.alloc(32), verityOffset: Number.MAX_SAFE_INTEGER });
  assert.ok(signatureFile(doc, signEd25519(key, doc)).length < 512);
});

test('reader: hostile signature.yaml, comment and manifest are refused before any yaml parse, with the file named', async (t) => {
  const dir = tempDir(t);
  const key = await readSigningKey(KEY);
  const pub = await readPublicKey(PUB);
  const good = join(dir, 'good.npk');
  await packNpk({ manifest: parseManifest('name: hello\nversion: 0.0.1\ninit: /bin/hello\nuid: 1000\ngid: 1000\n'), key, out: good });
  const sig = await craftNpk(good, join(dir, 'sig.npk'), { signature: billionLaughs(500 << 10) });
  await assert.rejects(Npk.open(sig, { key: pub }), /^NpkError: signature\.yaml: 5\d{5} bytes, more than the limit of 4096/);
  // Without a key signature.yaml is not parsed at all (like upstream): the package opens.
  assert.equal((await Npk.open(sig)).signature, undefined);
  const small = await craftNpk(good, join(dir, 'small.npk'), { signature: `${billionLaughs(3000)}---\n` });
  await assert.rejects(Npk.open(small, { key: pub }), /^NpkError: signature\.yaml: line 1: l0: "&l0 \[lol/);
  const comment = await craftNpk(good, join(dir, 'comment.npk'), { comment: strayBraces(65535) });
  for (const k of [pub, undefined]) await assert.rejects(Npk.open(comment, { key: k }), /^NpkError: zip comment \(meta\): 65535 bytes, more than the limit of 4096/);
  const manifest = await craftNpk(good, join(dir, 'manifest.npk'), { manifest: manyKeys(MAX_MANIFEST_SIZE + 1) });
  await assert.rejects(Npk.open(manifest), /^NpkError: manifest\.yaml is 655\d\d bytes, more than the limit of 65536/);
});

// No time is asserted (speed is the benchmarks' job): the unbounded parser took minutes or
// never ended on these, so the test's timeout is the guard against a regression.
test('manifest yaml: alias bombs, deep nesting and error floods are refused by the limits', { timeout: 120_000 }, () => {
  const base = 'name: a\nversion: 0.0.1\nuid: 1\ngid: 1\n';
  const cases: [string, string, RegExp][] = [
    ['billion laughs', billionLaughs(20_000, base), /invalid yaml: more than 100000 nodes with aliases expanded/],
    ['deep nesting', deepNesting(MAX_MANIFEST_SIZE - 100, base), /invalid yaml.*(nesting is too deep|call stack)/i],
    ['stray braces', strayBraces(MAX_MANIFEST_SIZE), /invalid yaml at line 1, column 1: /],
  ];
  for (const [what, text, re] of cases) {
    let error = '';
    try {
      parseManifest(text, 'yaml');
    } catch (e) {
      error = (e as Error).message;
    }
    assert.match(error, re, what);
  }
  // Many aliases are resolved once each (the library's Alias.resolve scans the document per
  // alias, quadratic: minutes for this one).
  const m = parseManifest(`${base}init: /x\nargs: [&x y, ${Array(29_999).fill('*x').join(', ')}]\n`, 'yaml');
  assert.equal(m.args.length, 30_000);
});
