import { ValidationError } from './errors.js';

declare const versionBrand: unique symbol;
/**
 * A container version in its canonical text form `M.m.p` (decimal u64 parts).
 * Parsing is strict SemVer (as Rust's semver 1.0); pre-release and build metadata are
 * parsed and then dropped, so `1.0.0-rc1` and `1.0.0` are the same Version. Being a
 * canonical string, equal versions are `===` and can key a Map.
 */
export type Version = string & { readonly [versionBrand]: 'Version' };

export const U64_MAX = (1n << 64n) - 1n;

export interface VersionParts {
  readonly major: bigint;
  readonly minor: bigint;
  readonly patch: bigint;
}

export type SemverPosition = 'major' | 'minor' | 'patch' | 'pre-release' | 'build';

/** How semver 1.0 names each position in its error messages. */
export const POSITION_TEXT: Readonly<Record<SemverPosition, string>> = {
  major: 'major version number',
  minor: 'minor version number',
  patch: 'patch version number',
  'pre-release': 'pre-release identifier',
  build: 'build metadata',
};

/** A scanner over the text of a version or requirement, reporting errors like semver 1.0. */
export class SemverScanner {
  pos = 0;
  constructor(readonly text: string) {}

  get rest(): string {
    return this.text.slice(this.pos);
  }
  peek(): string | undefined {
    return this.text[this.pos];
  }
  eat(s: string): boolean {
    if (this.text.startsWith(s, this.pos)) {
      this.pos += s.length;
      return true;
    }
    return false;
  }
  skipSpaces(): void {
    while (this.text[this.pos] === ' ') this.pos++;
  }

  /** A u64 numeric identifier without leading zeros. */
  numeric(position: SemverPosition): bigint {
    const start = this.pos;
    while (this.pos < this.text.length && isDigit(this.text[this.pos]!)) this.pos++;
    const digits = this.text.slice(start, this.pos);
    if (digits.length === 0) {
      const c = this.peek();
      throw c === undefined
        ? new SemverError(`unexpected end of input while parsing ${POSITION_TEXT[position]}`)
        : new SemverError(`unexpected character ${quoteChar(c)} while parsing ${POSITION_TEXT[position]}`);
    }
    if (digits.length > 1 && digits.startsWith('0')) {
      throw new SemverError(`invalid leading zero in ${POSITION_TEXT[position]}`);
    }
    const value = BigInt(digits);
    if (value > U64_MAX) throw new SemverError(`value of ${POSITION_TEXT[position]} exceeds u64::MAX`);
    return value;
  }

  /**
   * Dot-separated identifiers of `[0-9A-Za-z-]` for a pre-release or build part. Returns the
   * text, stopping at the first character that cannot belong to it.
   */
  identifiers(position: 'pre-release' | 'build'): string {
    const start = this.pos;
    let segStart = this.pos;
    for (;;) {
      const c = this.text[this.pos];
      if (c !== undefined && /[0-9A-Za-z-]/.test(c)) {
        this.pos++;
        continue;
      }
      const seg = this.text.slice(segStart, this.pos);
      if (seg.length === 0) throw new SemverError(`empty identifier segment in ${POSITION_TEXT[position]}`);
      if (position === 'pre-release' && /^[0-9]+$/.test(seg) && seg.length > 1 && seg.startsWith('0')) {
        throw new SemverError('invalid leading zero in pre-release identifier');
      }
      if (c === '.') {
        this.pos++;
        segStart = this.pos;
        continue;
      }
      return this.text.slice(start, this.pos);
    }
  }
}

/** Internal: a semver syntax error, turned into a ValidationError by the callers. */
export class SemverError extends Error {}

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

/** A character as Rust's QuotedChar prints it. */
export function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '\0') return "'\\0'";
  return `'${c}'`;
}

/** Why `text` is not a valid version, or undefined. */
export function versionProblem(text: string): string | undefined {
  try {
    scanVersion(text);
    return undefined;
  } catch (e) {
    if (e instanceof SemverError) return `invalid version ${JSON.stringify(text)}: ${e.message}`;
    throw e;
  }
}

function scanVersion(text: string): VersionParts {
  const s = new SemverScanner(text);
  if (text.length === 0) throw new SemverError('empty string, expected a semver version');
  const major = s.numeric('major');
  if (!s.eat('.')) throw afterError(s, 'major');
  const minor = s.numeric('minor');
  if (!s.eat('.')) throw afterError(s, 'minor');
  const patch = s.numeric('patch');
  let last: SemverPosition = 'patch';
  if (s.eat('-')) {
    s.identifiers('pre-release');
    last = 'pre-release';
  }
  if (s.eat('+')) {
    s.identifiers('build');
    last = 'build';
  }
  const c = s.peek();
  if (c !== undefined) throw new SemverError(`unexpected character ${quoteChar(c)} after ${POSITION_TEXT[last]}`);
  return { major, minor, patch };
}

function afterError(s: SemverScanner, position: SemverPosition): SemverError {
  const c = s.peek();
  return c === undefined
    ? new SemverError(`unexpected end of input while parsing ${POSITION_TEXT[position]}`)
    : new SemverError(`unexpected character ${quoteChar(c)} after ${POSITION_TEXT[position]}`);
}

/** Parse a strict SemVer version, keeping only `M.m.p`. Throws ValidationError. */
export function parseVersion(text: string, path = 'version'): Version {
  try {
    const p = scanVersion(text);
    return `${p.major}.${p.minor}.${p.patch}` as Version;
  } catch (e) {
    if (e instanceof SemverError) {
      throw new ValidationError([{ path, rule: `invalid version ${JSON.stringify(text)}: ${e.message}` }], 'invalid version');
    }
    throw e;
  }
}

export function isVersion(text: unknown): text is Version {
  return typeof text === 'string' && versionProblem(text) === undefined && /^\d+\.\d+\.\d+$/.test(text);
}

/** Build a Version from numeric parts (each a u64). */
export function versionFromParts(major: bigint | number, minor: bigint | number, patch: bigint | number): Version {
  const parts = [BigInt(major), BigInt(minor), BigInt(patch)];
  if (parts.some((p) => p < 0n || p > U64_MAX)) {
    throw new ValidationError([{ path: 'version', rule: 'version parts must be between 0 and 18446744073709551615' }]);
  }
  return parts.join('.') as Version;
}

export function versionParts(v: Version): VersionParts {
  const [major, minor, patch] = v.split('.');
  return { major: BigInt(major!), minor: BigInt(minor!), patch: BigInt(patch!) };
}

/** Numeric ordering by major, minor, patch: negative, zero or positive. */
export function compareVersions(a: Version, b: Version): number {
  if (a === b) return 0;
  const x = versionParts(a);
  const y = versionParts(b);
  for (const k of ['major', 'minor', 'patch'] as const) {
    if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1;
  }
  return 0;
}
