import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseName, isName, nameProblem, compareNames } from '../../src/common/name.js';
import { ValidationError } from '../../src/common/errors.js';

test('valid names are accepted unchanged', () => {
  for (const n of ['a', 'hello-world', 'bla-blah.foo', 'foo-bar.qwerty12', 'A_b.C-9', '...', '.a', 'a'.repeat(1024), '0']) {
    assert.equal(parseName(n), n);
    assert.equal(isName(n), true);
  }
});

test('invalid names are rejected with the rule', () => {
  const cases: [string, string][] = [
    ['', 'must not be empty'],
    ['a'.repeat(1025), 'must be at most 1024 characters'],
    ['a%', `invalid character "%": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`],
    ['test/../test', `invalid character "/": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`],
    ['a b', `invalid character " ": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`],
    ['a\0b', 'must not contain a nul byte'],
    ['é', `invalid character "é": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`],
    ['.', "must not be '.'"],
    ['..', "must not be '..'"],
  ];
  for (const [input, rule] of cases) {
    assert.equal(nameProblem(input), rule, input);
    assert.equal(isName(input), false);
    assert.throws(
      () => parseName(input),
      (e: unknown) => e instanceof ValidationError && e.message === `name: ${rule}` && e.issues[0]!.rule === rule,
    );
  }
});

test('names order byte-wise', () => {
  const names = ['b', 'B', 'a-b', 'a', 'a.b', '_'].map((n) => parseName(n));
  assert.deepEqual([...names].sort(compareNames), ['B', '_', 'a', 'a-b', 'a.b', 'b']);
});
