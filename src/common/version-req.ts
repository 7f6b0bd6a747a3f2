import { ValidationError } from './errors.js';
import { POSITION_TEXT, SemverError, SemverScanner, compareVersions, quoteChar, versionParts, type SemverPosition, type Version } from './version.js';

/** Comparison operators of a cargo-style requirement; `wildcard` is `1.*` / `1.2.x`. */
export type ReqOp = 'exact' | 'greater' | 'greater_eq' | 'less' | 'less_eq' | 'tilde' | 'caret' | 'wildcard';

export interface Comparator {
  readonly op: ReqOp;
  readonly major: bigint;
  readonly minor?: bigint;
  readonly patch?: bigint;
  /** Pre-release text (without `-`), empty when absent. */
  readonly pre: string;
}

const MAX_COMPARATORS = 32;

/**
 * A version requirement with cargo's semantics (Rust semver 1.0.23): comma-separated
 * comparators that must all match; `*` alone matches everything. The original text is kept
 * and used for serialisation and display.
 */
export class VersionReq {
  readonly text: string;
  readonly comparators: readonly Comparator[];

  private constructor(text: string, comparators: readonly Comparator[]) {
    this.text = text;
    this.comparators = comparators;
    Object.freeze(this);
  }

  /** Parse a requirement; throws ValidationError naming `path` (default `version`). */
  static parse(text: string, path = 'version'): VersionReq {
    try {
      return new VersionReq(text, scanReq(text));
    } catch (e) {
      if (e instanceof SemverError) {
        throw new ValidationError(
          [{ path, rule: `invalid version requirement ${JSON.stringify(text)}: ${e.message}` }],
          'invalid version requirement',
        );
      }
      throw e;
    }
  }

  /** Whether `version` (which never has a pre-release) satisfies every comparator. */
  matches(version: Version): boolean {
    const v = versionParts(version);
    return this.comparators.every((c) => matchesComparator(c, v.major, v.minor, v.patch));
  }

  toString(): string {
    return this.text;
  }

  toJSON(): string {
    return this.text;
  }
}

/**
 * The highest of `versions` that satisfies `req`, or undefined. (Our runtime resolves
 * resource mounts to the highest match; upstream took the lowest, spec README 3.)
 */
export function highestMatching(req: VersionReq, versions: Iterable<Version>): Version | undefined {
  let best: Version | undefined;
  for (const v of versions) {
    if (req.matches(v) && (best === undefined || compareVersions(v, best) > 0)) best = v;
  }
  return best;
}

export function parseVersionReq(text: string, path = 'version'): VersionReq {
  return VersionReq.parse(text, path);
}

/** Why `text` is not a valid requirement, or undefined. */
export function versionReqProblem(text: string): string | undefined {
  try {
    scanReq(text);
    return undefined;
  } catch (e) {
    if (e instanceof SemverError) return `invalid version requirement ${JSON.stringify(text)}: ${e.message}`;
    throw e;
  }
}

function isWildcard(c: string | undefined): boolean {
  return c === '*' || c === 'x' || c === 'X';
}

function scanReq(text: string): Comparator[] {
  const s = new SemverScanner(text);
  s.skipSpaces();
  // A lone wildcard is the whole requirement.
  if (isWildcard(s.peek())) {
    const ch = s.peek()!;
    const save = s.pos;
    s.pos++;
    s.skipSpaces();
    if (s.pos === text.length) return [];
    if (s.peek() === ',') throw new SemverError(`wildcard req (${ch}) must be the only comparator in the version req`);
    s.pos = save;
    throw new SemverError('unexpected character after wildcard in version req');
  }
  const out: Comparator[] = [];
  for (;;) {
    const start = s.pos;
    let parsed: { cmp: Comparator; last: SemverPosition };
    try {
      parsed = comparator(s);
    } catch (e) {
      // semver reports a wildcard among several comparators specially.
      const t = new SemverScanner(text);
      t.pos = start;
      if (e instanceof SemverError && isWildcard(t.peek())) {
        const ch = t.peek()!;
        t.pos++;
        t.skipSpaces();
        if (t.pos === text.length || t.peek() === ',') {
          throw new SemverError(`wildcard req (${ch}) must be the only comparator in the version req`);
        }
      }
      throw e;
    }
    out.push(parsed.cmp);
    if (s.pos === text.length) return out;
    if (!s.eat(',')) {
      throw new SemverError(`expected comma after ${POSITION_TEXT[parsed.last]}, found ${quoteChar(s.peek()!)}`);
    }
    s.skipSpaces();
    if (out.length === MAX_COMPARATORS) throw new SemverError('excessive number of version comparators');
  }
}

function comparator(s: SemverScanner): { cmp: Comparator; last: SemverPosition } {
  let op: ReqOp = 'caret';
  let defaultOp = false;
  if (s.eat('>=')) op = 'greater_eq';
  else if (s.eat('>')) op = 'greater';
  else if (s.eat('<=')) op = 'less_eq';
  else if (s.eat('<')) op = 'less';
  else if (s.eat('=')) op = 'exact';
  else if (s.eat('~')) op = 'tilde';
  else if (s.eat('^')) op = 'caret';
  else defaultOp = true;
  s.skipSpaces();

  let last: SemverPosition = 'major';
  const major = s.numeric('major');
  let minor: bigint | undefined;
  let patch: bigint | undefined;
  let hasWildcard = false;
  if (s.eat('.')) {
    last = 'minor';
    if (isWildcard(s.peek())) {
      s.pos++;
      hasWildcard = true;
      if (defaultOp) op = 'wildcard';
    } else {
      minor = s.numeric('minor');
    }
  }
  if (s.eat('.')) {
    last = 'patch';
    if (isWildcard(s.peek())) {
      s.pos++;
      if (defaultOp) op = 'wildcard';
    } else if (hasWildcard) {
      throw new SemverError('unexpected character after wildcard in version req');
    } else {
      patch = s.numeric('patch');
    }
  }
  let pre = '';
  if (patch !== undefined && s.eat('-')) {
    last = 'pre-release';
    pre = s.identifiers('pre-release');
  }
  if (patch !== undefined && s.eat('+')) {
    last = 'build';
    s.identifiers('build');
  }
  s.skipSpaces();
  const cmp: Comparator = { op, major, pre, ...(minor !== undefined ? { minor } : {}), ...(patch !== undefined ? { patch } : {}) };
  return { cmp, last };
}

/*
 * Matching follows semver 1.0's eval.rs for a version whose pre-release is empty (ours
 * always are). An empty pre-release orders above every non-empty one, so:
 * ver.pre == cmp.pre  <=> cmp.pre is empty; ver.pre > cmp.pre <=> cmp.pre is non-empty;
 * ver.pre < cmp.pre is never true; ver.pre >= cmp.pre is always true.
 */
function matchesComparator(c: Comparator, major: bigint, minor: bigint, patch: bigint): boolean {
  switch (c.op) {
    case 'exact':
    case 'wildcard':
      return exact(c, major, minor, patch);
    case 'greater':
      return greater(c, major, minor, patch);
    case 'greater_eq':
      return exact(c, major, minor, patch) || greater(c, major, minor, patch);
    case 'less':
      return less(c, major, minor, patch);
    case 'less_eq':
      return exact(c, major, minor, patch) || less(c, major, minor, patch);
    case 'tilde':
      return tilde(c, major, minor, patch);
    case 'caret':
      return caret(c, major, minor, patch);
  }
}

function exact(c: Comparator, major: bigint, minor: bigint, patch: bigint): boolean {
  if (major !== c.major) return false;
  if (c.minor !== undefined && minor !== c.minor) return false;
  if (c.patch !== undefined && patch !== c.patch) return false;
  return c.pre === '';
}

function greater(c: Comparator, major: bigint, minor: bigint, patch: bigint): boolean {
  if (major !== c.major) return major > c.major;
  if (c.minor === undefined) return false;
  if (minor !== c.minor) return minor > c.minor;
  if (c.patch === undefined) return false;
  if (patch !== c.patch) return patch > c.patch;
  return c.pre !== '';
}

function less(c: Comparator, major: bigint, minor: bigint, patch: bigint): boolean {
  if (major !== c.major) return major < c.major;
  if (c.minor === undefined) return false;
  if (minor !== c.minor) return minor < c.minor;
  if (c.patch === undefined) return false;
  if (patch !== c.patch) return patch < c.patch;
  return false;
}

function tilde(c: Comparator, major: bigint, minor: bigint, patch: bigint): boolean {
  if (major !== c.major) return false;
  if (c.minor !== undefined && minor !== c.minor) return false;
  if (c.patch !== undefined && patch !== c.patch) return patch > c.patch;
  return true;
}

function caret(c: Comparator, major: bigint, minor: bigint, patch: bigint): boolean {
  if (major !== c.major) return false;
  if (c.minor === undefined) return true;
  if (c.patch === undefined) return c.major > 0n ? minor >= c.minor : minor === c.minor;
  if (c.major > 0n) {
    if (minor !== c.minor) return minor > c.minor;
    if (patch !== c.patch) return patch > c.patch;
  } else if (c.minor > 0n) {
    if (minor !== c.minor) return false;
    if (patch !== c.patch) return patch > c.patch;
  } else if (minor !== c.minor || patch !== c.patch) {
    return false;
  }
  return true;
}
