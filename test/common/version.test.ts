import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVersion, versionProblem, compareVersions, versionParts, versionFromParts, isVersion } from '../../src/common/version.js';
import { ValidationError } from '../../src/common/errors.js';

test('strict semver versions parse; only M.m.p is kept', () => {
  const cases: [string, string][] = [
    ['0.0.1', '0.0.1'],
    ['1.2.3', '1.2.3'],
    ['10.20.30', '10.20.30'],
    ['1.0.0-rc1', '1.0.0'],
    ['1.0.0-alpha.1', '1.0.0'],
    ['1.0.0-0.3.7', '1.0.0'],
    ['1.0.0-x-y-z.--', '1.0.0'],
    ['1.0.0+build.001', '1.0.0'],
    ['1.0.0-beta+exp.sha.5114f85', '1.0.0'],
    ['18446744073709551615.0.0', '18446744073709551615.0.0'],
  ];
  for (const [input, shown] of cases) assert.equal(parseVersion(input), shown, input);
  assert.equal(parseVersion('1.0.0-a'), parseVersion('1.0.0-b'));
});

test('invalid versions are rejected with the reason', () => {
  const cases: [string, string][] = [
    ['', 'empty string, expected a semver version'],
    ['v1.2.3', "unexpected character 'v' while parsing major version number"],
    ['1.2', 'unexpected end of input while parsing minor version number'],
    ['1', 'unexpected end of input while parsing major version number'],
    ['01.2.3', 'invalid leading zero in major version number'],
    ['1.02.3', 'invalid leading zero in minor version number'],
    ['1.2.03', 'invalid leading zero in patch version number'],
    ['1.2.3-01', 'invalid leading zero in pre-release identifier'],
    ['1.2.3-', 'empty identifier segment in pre-release identifier'],
    ['1.2.3-a..b', 'empty identifier segment in pre-release identifier'],
    ['1.2.3+', 'empty identifier segment in build metadata'],
    ['1.2.3-a b', "unexpected character ' ' after pre-release identifier"],
    ['1.2.3+b c', "unexpected character ' ' after build metadata"],
    ['1.2.3-a_b', "unexpected character '_' after pre-release identifier"],
    ["1.2'", "unexpected character '\\'' after minor version number"],
    ['1.2.3 ', "unexpected character ' ' after patch version number"],
    [' 1.2.3', "unexpected character ' ' while parsing major version number"],
    ['1.2.3.4', "unexpected character '.' after patch version number"],
    ['18446744073709551616.0.0', 'value of major version number exceeds u64::MAX'],
    ['1.x.0', "unexpected character 'x' while parsing minor version number"],
  ];
  for (const [input, reason] of cases) {
    const rule = `invalid version ${JSON.stringify(input)}: ${reason}`;
    assert.equal(versionProblem(input), rule, input);
    assert.throws(() => parseVersion(input), (e: unknown) => e instanceof ValidationError && e.message === `version: ${rule}`);
  }
});

test('versions compare numerically, not as text', () => {
  const v = (s: string) => parseVersion(s);
  assert.ok(compareVersions(v('2.0.0'), v('10.0.0')) < 0);
  assert.ok(compareVersions(v('1.10.0'), v('1.9.9')) > 0);
  assert.ok(compareVersions(v('1.1.1'), v('1.1.0')) > 0);
  assert.equal(compareVersions(v('1.0.0-rc1'), v('1.0.0')), 0);
  const sorted = ['0.0.10', '0.0.2', '1.0.0', '0.10.0', '0.9.0'].map(v).sort(compareVersions);
  assert.deepEqual(sorted, ['0.0.2', '0.0.10', '0.9.0', '0.10.0', '1.0.0']);
  assert.deepEqual(versionParts(v('18446744073709551615.2.3')), { major: 18446744073709551615n, minor: 2n, patch: 3n });
  assert.equal(versionFromParts(1, 2n, 3), '1.2.3');
  assert.equal(isVersion('1.2.3'), true);
  assert.equal(isVersion('1.2.3-rc1'), false);
});
