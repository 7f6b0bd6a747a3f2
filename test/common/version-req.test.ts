import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VersionReq, versionReqProblem, highestMatching } from '../../src/common/version-req.js';
import { parseVersion, compareVersions, type Version } from '../../src/common/version.js';
import { ValidationError } from '../../src/common/errors.js';

// Every version from 0.0.0 to 3.4.4: enough to see each bound of the examples below.
const GRID: Version[] = [];
for (let a = 0; a <= 3; a++) for (let b = 0; b <= 4; b++) for (let c = 0; c <= 4; c++) GRID.push(parseVersion(`${a}.${b}.${c}`));

/** Check `req` against `>=lo, <hi` (hi undefined = no upper bound) over the grid. */
function assertRange(req: string, lo: string, hi?: string): void {
  const r = VersionReq.parse(req);
  for (const v of GRID) {
    const expected = compareVersions(v, parseVersion(lo)) >= 0 && (hi === undefined || compareVersions(v, parseVersion(hi)) < 0);
    assert.equal(r.matches(v), expected, `${req} vs ${v}: expected ${expected}`);
  }
}

// The Cargo Book, "Specifying dependencies": the documented equivalences.
test('caret requirements (cargo book)', () => {
  assertRange('^1.2.3', '1.2.3', '2.0.0');
  assertRange('^1.2', '1.2.0', '2.0.0');
  assertRange('^1', '1.0.0', '2.0.0');
  assertRange('^0.2.3', '0.2.3', '0.3.0');
  assertRange('^0.2', '0.2.0', '0.3.0');
  assertRange('^0.0.3', '0.0.3', '0.0.4');
  assertRange('^0.0', '0.0.0', '0.1.0');
  assertRange('^0', '0.0.0', '1.0.0');
});

test('a bare version is a caret requirement', () => {
  assertRange('1.2.3', '1.2.3', '2.0.0');
  assertRange('0.0.1', '0.0.1', '0.0.2');
  assertRange('0.1', '0.1.0', '0.2.0');
  assertRange('2', '2.0.0', '3.0.0');
});

test('tilde requirements (cargo book)', () => {
  assertRange('~1.2.3', '1.2.3', '1.3.0');
  assertRange('~1.2', '1.2.0', '1.3.0');
  assertRange('~1', '1.0.0', '2.0.0');
  assertRange('~0.0.1', '0.0.1', '0.1.0');
});

test('wildcard requirements (cargo book)', () => {
  assertRange('*', '0.0.0');
  assertRange('1.*', '1.0.0', '2.0.0');
  assertRange('1.2.*', '1.2.0', '1.3.0');
  assertRange('1.x', '1.0.0', '2.0.0');
  assertRange('1.2.X', '1.2.0', '1.3.0');
  assertRange('1.*.*', '1.0.0', '2.0.0');
  assertRange(' * ', '0.0.0');
});

test('comparison requirements and multiple comparators', () => {
  assertRange('>= 1.2.0', '1.2.0');
  assertRange('>=0.0.1', '0.0.1');
  assertRange('> 1', '2.0.0');
  assertRange('>1.2', '1.3.0');
  assertRange('>1.2.3', '1.2.4');
  assertRange('< 2', '0.0.0', '2.0.0');
  assertRange('<1.2', '0.0.0', '1.2.0');
  assertRange('<=1.2', '0.0.0', '1.3.0');
  assertRange('<=1.2.3', '0.0.0', '1.2.4');
  assertRange('= 1.2.3', '1.2.3', '1.2.4');
  assertRange('=1.2', '1.2.0', '1.3.0');
  assertRange('=1', '1.0.0', '2.0.0');
  assertRange('>= 1.2, < 1.5', '1.2.0', '1.5.0');
  assertRange('>=0.0.2,<0.0.4', '0.0.2', '0.0.4');
  assertRange('^1.2, <1.4', '1.2.0', '1.4.0');
});

test('pre-release comparators against versions without pre-release', () => {
  const v = (s: string) => parseVersion(s);
  assert.equal(VersionReq.parse('>1.2.3-alpha').matches(v('1.2.3')), true);
  assert.equal(VersionReq.parse('=1.2.3-alpha').matches(v('1.2.3')), false);
  assert.equal(VersionReq.parse('<1.2.3-alpha').matches(v('1.2.3')), false);
  assert.equal(VersionReq.parse('<1.2.3-alpha').matches(v('1.2.2')), true);
  assert.equal(VersionReq.parse('^1.2.3-alpha').matches(v('1.2.3')), true);
  assert.equal(VersionReq.parse('~1.2.3-alpha').matches(v('1.2.3')), true);
  assert.equal(VersionReq.parse('>=1.2.3+build').matches(v('1.2.3')), true);
});

test('the original text is kept for display and serialisation', () => {
  for (const t of ['>=0.0.1', '>= 1.2, < 1.5', '1.2', '*', '~1']) {
    const r = VersionReq.parse(t);
    assert.equal(r.text, t);
    assert.equal(String(r), t);
    assert.equal(JSON.stringify(r), JSON.stringify(t));
  }
  assert.deepEqual(VersionReq.parse('>=1'), VersionReq.parse('>=1'));
});

test('invalid requirements are rejected like cargo', () => {
  const cases: [string, string][] = [
    ['', 'unexpected end of input while parsing major version number'],
    ['   ', 'unexpected end of input while parsing major version number'],
    ['v1.2.3', "unexpected character 'v' while parsing major version number"],
    ['>=v1', "unexpected character 'v' while parsing major version number"],
    ['1.2.3 || 2.0.0', "expected comma after patch version number, found '|'"],
    ['>=1.2.3 <2.0.0', "expected comma after patch version number, found '<'"],
    ['01.2.3', 'invalid leading zero in major version number'],
    ['1.02', 'invalid leading zero in minor version number'],
    ['1.*.3', 'unexpected character after wildcard in version req'],
    ['*, 1.0.0', 'wildcard req (*) must be the only comparator in the version req'],
    ['1.0.0, *', 'wildcard req (*) must be the only comparator in the version req'],
    ['>=*', "unexpected character '*' while parsing major version number"],
    ['~>1.2', "unexpected character '>' while parsing major version number"],
    ['1.2.3,', 'unexpected end of input while parsing major version number'],
    ['=>1.2', "unexpected character '>' while parsing major version number"],
    ['1.2.3-', 'empty identifier segment in pre-release identifier'],
    ['>=1.2.3-alpha 2', "expected comma after pre-release identifier, found '2'"],
    ['>=1.2.3+b 2', "expected comma after build metadata, found '2'"],
    ['1.2 3', "expected comma after minor version number, found '3'"],
    [Array.from({ length: 33 }, () => '>=1').join(','), 'excessive number of version comparators'],
  ];
  for (const [input, reason] of cases) {
    const rule = `invalid version requirement ${JSON.stringify(input)}: ${reason}`;
    assert.equal(versionReqProblem(input), rule, input);
    assert.throws(() => VersionReq.parse(input, 'mounts./x.version'), (e: unknown) => e instanceof ValidationError && e.message === `mounts./x.version: ${rule}`);
  }
  assert.equal(versionReqProblem(Array.from({ length: 32 }, () => '>=1').join(',')), undefined);
});

test('highestMatching picks the highest satisfying version', () => {
  const versions = ['0.0.1', '0.0.2', '0.1.0', '1.0.0', '0.0.10'].map((v) => parseVersion(v));
  assert.equal(highestMatching(VersionReq.parse('>=0.0.1'), versions), '1.0.0');
  assert.equal(highestMatching(VersionReq.parse('^0.0.2'), versions), '0.0.2');
  assert.equal(highestMatching(VersionReq.parse('~0.0.1'), versions), '0.0.10');
  assert.equal(highestMatching(VersionReq.parse('>=2'), versions), undefined);
  assert.equal(highestMatching(VersionReq.parse('*'), []), undefined);
});
