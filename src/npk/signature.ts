/**
 * signature.yaml: the hashes document (exact bytes, signed) followed by `---` and the
 * base64 ed25519 signature, with no trailing newline. Also the zip comment (meta), which
 * shares the strict grammar below.
 */
import { createHash } from 'node:crypto';
import { NpkError, type ErrorCode } from '../common/errors.js';

export interface Hashes {
  metaHash: Buffer;
  manifestHash: Buffer;
  verityHash: Buffer;
  verityOffset: number;
}

export interface SignatureFile {
  hashes: Hashes;
  /** The exact signed bytes (everything before `---`). */
  document: Buffer;
  signature: Buffer;
}

export function sha256(data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest();
}

export function hashesDocument(h: Hashes): Buffer {
  return Buffer.from(
    'meta:\n' +
      `  hash: ${h.metaHash.toString('hex')}\n` +
      'manifest.yaml:\n' +
      `  hash: ${h.manifestHash.toString('hex')}\n` +
      'fs.img:\n' +
      `  verity-hash: ${h.verityHash.toString('hex')}\n` +
      `  verity-offset: ${h.verityOffset}\n`,
  );
}

export function signatureFile(document: Buffer, signature: Buffer): Buffer {
  return Buffer.concat([document, Buffer.from(`---\nsignature: ${signature.toString('base64')}`)]);
}

/** Upper bound of signature.yaml: three hashes, an offset and a signature are about 380 bytes. */
export const MAX_SIGNATURE_SIZE = 4096;
/** Upper bound of the zip comment (meta document): `version: 0.9.3\n` is 15 bytes. */
export const MAX_META_SIZE = 4096;

/*
 * signature.yaml and the zip comment are read before anything is verified, so they are
 * never given to a YAML library: a few hundred KiB of aliases, nesting or keys would hold
 * the event loop for minutes. Both have a fixed shape, read here by a bounded line
 * grammar (linear in the input, which is at most 4 KiB):
 *
 *   file    = line*                  lines end with \n (or \r\n); printable ascii only
 *   line    = blank | comment | top | child
 *   top     = key ':' [ ' '+ scalar ]          at column 0; without a scalar it opens a section
 *   child   = indent key ':' ' '+ scalar       same indent (spaces) for every child of a section
 *   key     = [A-Za-z0-9._][A-Za-z0-9._-]*, or that in '' or ""
 *   scalar  = [A-Za-z0-9._+/=-]+, or that in '' or ""; an optional ' #comment' may follow
 *
 * This takes every form upstream (serde_yaml) writes and reads for these documents
 * (sections and keys in any order, quoting, comments, unknown keys with simple values,
 * as upstream ignores unknown fields) and nothing else: no anchors, aliases, tags, flow
 * collections, multi-line scalars or nesting deeper than one section.
 */

interface Scalar {
  value: string;
  line: number;
}

interface Section {
  entries: Map<string, Scalar>;
  line: number;
}

type TopValue = Scalar | Section;

const KEY = /^(?:'([A-Za-z0-9._][A-Za-z0-9._-]*)'|"([A-Za-z0-9._][A-Za-z0-9._-]*)"|([A-Za-z0-9._][A-Za-z0-9._-]*)):(.*)$/;
const SCALAR = /^(?:'([A-Za-z0-9._+/=-]*)'|"([A-Za-z0-9._+/=-]*)"|([A-Za-z0-9._+/=-]+))(?:[ ]+#.*)?[ ]*$/;

function show(text: string): string {
  const cut = text.length > 40 ? `${text.slice(0, 40)}…` : text;
  return JSON.stringify(cut);
}

function fail(code: ErrorCode, file: string, message: string, line?: number): never {
  throw new NpkError(code, `${file}: ${line !== undefined ? `line ${line}: ` : ''}${message}`);
}

/** Lines of `text` (1-based numbers), checked to be printable ascii without tabs. */
function lines(text: string, code: ErrorCode, file: string, firstLine = 1): { text: string; n: number }[] {
  const out: { text: string; n: number }[] = [];
  let n = firstLine;
  for (const raw of text.split('\n')) {
    const l = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    for (let i = 0; i < l.length; i++) {
      const c = l.charCodeAt(i);
      if (c === 9) fail(code, file, 'tab character (yaml indents with spaces)', n);
      if (c < 0x20 || c > 0x7e) fail(code, file, `character 0x${c.toString(16).padStart(2, '0')} is not allowed (only printable ascii)`, n);
    }
    out.push({ text: l, n });
    n++;
  }
  return out;
}

/** Parse the lines of one document with the grammar above. */
function parseMap(ls: { text: string; n: number }[], code: ErrorCode, file: string): Map<string, TopValue> {
  const top = new Map<string, TopValue>();
  let section: { name: string; value: Section; indent: number | undefined } | undefined;
  for (const { text, n } of ls) {
    if (/^[ ]*(#.*)?$/.test(text)) continue;
    const indent = /^[ ]*/.exec(text)![0].length;
    const m = KEY.exec(text.slice(indent));
    if (!m) fail(code, file, `expected 'key: value', found ${show(text.trim())}`, n);
    const key = m[1] ?? m[2] ?? m[3]!;
    const rest = m[4]!;
    let scalar: string | undefined;
    if (!/^[ ]*(#.*)?$/.test(rest)) {
      if (!rest.startsWith(' ')) fail(code, file, `expected a space after '${key}:'`, n);
      const s = SCALAR.exec(rest.trimStart());
      if (!s) fail(code, file, `${section && indent > 0 ? `${section.name}.` : ''}${key}: ${show(rest.trim())} is not a plain value (letters, digits and ._+/=- only)`, n);
      scalar = s[1] ?? s[2] ?? s[3]!;
    }
    if (indent === 0) {
      if (top.has(key)) fail(code, file, `duplicate key '${key}'`, n);
      if (scalar === undefined) {
        const value: Section = { entries: new Map(), line: n };
        top.set(key, value);
        section = { name: key, value, indent: undefined };
      } else {
        top.set(key, { value: scalar, line: n });
        section = undefined;
      }
      continue;
    }
    if (!section) fail(code, file, `unexpected indentation of '${key}' (only one level of sections)`, n);
    section.indent ??= indent;
    if (indent !== section.indent) fail(code, file, `'${section.name}.${key}' is indented by ${indent} spaces, its section by ${section.indent}`, n);
    if (scalar === undefined) fail(code, file, `'${section.name}.${key}' has no value (only one level of sections)`, n);
    if (section.value.entries.has(key)) fail(code, file, `duplicate key '${section.name}.${key}'`, n);
    section.value.entries.set(key, { value: scalar, line: n });
  }
  return top;
}

function isSection(v: TopValue | undefined): v is Section {
  return v !== undefined && 'entries' in v;
}

function section(doc: Map<string, TopValue>, name: string, file: string, what: string): Section {
  const v = doc.get(name);
  if (v === undefined) fail('ESIGNATURE', file, `missing section '${name}' (with ${what})`);
  if (!isSection(v)) fail('ESIGNATURE', file, `'${name}' must be a section with ${what}, found the value ${show(v.value)}`, v.line);
  return v;
}

function field(s: Section, sectionName: string, key: string, file: string, what: string): Scalar {
  const v = s.entries.get(key);
  if (v === undefined) fail('ESIGNATURE', file, `missing ${sectionName}.${key} (${what})`, s.line);
  return v;
}

function hex32(s: Section, sectionName: string, key: string, file: string): Buffer {
  const v = field(s, sectionName, key, file, '64 hex digits');
  if (!/^[0-9a-fA-F]{64}$/.test(v.value)) fail('ESIGNATURE', file, `${sectionName}.${key} must be 64 hex digits, found ${show(v.value)}`, v.line);
  return Buffer.from(v.value, 'hex');
}

/**
 * Parse signature.yaml strictly (see the grammar above). The hashes document is the exact
 * text before the first `---`, which must be a line of its own; the signature document
 * after it holds `signature: <base64 of 64 bytes>`.
 */
export function parseSignatureFile(raw: Buffer): SignatureFile {
  const file = 'signature.yaml';
  if (raw.length > MAX_SIGNATURE_SIZE) {
    fail('ESIGNATURE', file, `${raw.length} bytes, more than the limit of ${MAX_SIGNATURE_SIZE} (it holds three hashes, an offset and a signature)`);
  }
  const text = raw.toString('latin1');
  const sep = text.indexOf('---');
  if (sep < 0) fail('ESIGNATURE', file, "missing '---' line between the hashes and the signature");
  const sepLine = text.slice(0, sep).split('\n').length;
  const lineEnd = text.indexOf('\n', sep);
  const sepText = text.slice(sep, lineEnd < 0 ? text.length : lineEnd).replace(/\r$/, '');
  if ((sep > 0 && text[sep - 1] !== '\n') || !/^---[ ]*$/.test(sepText)) {
    fail('ESIGNATURE', file, `'---' must be a line of its own, found ${show(text.slice(text.lastIndexOf('\n', sep) + 1, lineEnd < 0 ? text.length : lineEnd))}`, sepLine);
  }
  const docText = text.slice(0, sep);
  const doc = parseMap(lines(docText.endsWith('\n') ? docText.slice(0, -1) : docText, 'ESIGNATURE', file), 'ESIGNATURE', file);
  const sigDoc = parseMap(lineEnd < 0 ? [] : lines(text.slice(lineEnd + 1), 'ESIGNATURE', file, sepLine + 1), 'ESIGNATURE', file);

  const fs = section(doc, 'fs.img', file, 'verity-hash and verity-offset');
  const hashes: Hashes = {
    metaHash: hex32(section(doc, 'meta', file, 'hash'), 'meta', 'hash', file),
    manifestHash: hex32(section(doc, 'manifest.yaml', file, 'hash'), 'manifest.yaml', 'hash', file),
    verityHash: hex32(fs, 'fs.img', 'verity-hash', file),
    verityOffset: 0,
  };
  const offset = field(fs, 'fs.img', 'verity-offset', file, 'a decimal integer');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(offset.value) || !Number.isSafeInteger(Number(offset.value))) {
    fail('ESIGNATURE', file, `fs.img.verity-offset must be a non-negative decimal integer, found ${show(offset.value)}`, offset.line);
  }
  hashes.verityOffset = Number(offset.value);

  const sig = sigDoc.get('signature');
  if (sig === undefined) fail('ESIGNATURE', file, `missing 'signature: <base64>' after '---'`);
  if (isSection(sig)) fail('ESIGNATURE', file, 'signature must be a base64 value, found a section', sig.line);
  // Standard, padded base64 of 64 bytes is 86 characters and '=='.
  if (!/^[A-Za-z0-9+/]{86}==$/.test(sig.value)) {
    fail('ESIGNATURE', file, `signature must be the padded base64 of 64 bytes (88 characters), found ${show(sig.value)} (${sig.value.length} characters)`, sig.line);
  }
  return { hashes, document: Buffer.from(docText, 'latin1'), signature: Buffer.from(sig.value, 'base64') };
}

/**
 * The zip comment (meta document), strictly: `version: <semver>` plus optional unknown
 * keys (upstream ignores them), an optional leading `---` line and comments. Returns
 * the version text; the caller checks it (checkFormatVersion).
 */
export function parseMetaComment(raw: Buffer): string {
  const file = 'zip comment (meta)';
  if (raw.length > MAX_META_SIZE) fail('ENPKMETA', file, `${raw.length} bytes, more than the limit of ${MAX_META_SIZE} (it holds 'version: <format version>')`);
  const all = lines(raw.toString('latin1'), 'ENPKMETA', file);
  const first = all.findIndex((l) => !/^[ ]*(#.*)?$/.test(l.text));
  const body = first >= 0 && /^---[ ]*$/.test(all[first]!.text) ? all.slice(first + 1) : all;
  const doc = parseMap(body, 'ENPKMETA', file);
  const version = doc.get('version');
  if (version === undefined) fail('ENPKMETA', file, `missing 'version: <format version>'`);
  if (isSection(version)) fail('ENPKMETA', file, 'version must be a value, found a section', version.line);
  return version.value;
}
