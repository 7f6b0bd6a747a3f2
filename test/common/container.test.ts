import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Container, parseContainer, compareContainers } from '../../src/common/container.js';
import { parseName } from '../../src/common/name.js';
import { parseVersion } from '../../src/common/version.js';
import { ValidationError } from '../../src/common/errors.js';

test('containers parse as name:version, split at the first colon', () => {
  const c = parseContainer('hello-world:0.0.1');
  assert.equal(c.name, 'hello-world');
  assert.equal(c.version, '0.0.1');
  assert.equal(c.toString(), 'hello-world:0.0.1');
  assert.equal(JSON.stringify({ c }), '{"c":"hello-world:0.0.1"}');
  assert.equal(parseContainer('a:1.0.0-rc1+b').toString(), 'a:1.0.0');
  assert.ok(c.equals(new Container(parseName('hello-world'), parseVersion('0.0.1'))));
});

test('invalid containers are rejected naming the part', () => {
  const cases: [string, RegExp][] = [
    ['hello', /missing container version/],
    ['hello:', /invalid version "": empty string/],
    [':0.0.1', /name must not be empty/],
    ['a/b:0.0.1', /name invalid character "\/"/],
    ['..:0.0.1', /name must not be '\.\.'/],
    ['a:1:2', /invalid version "1:2"/],
    ['a:v1.0.0', /unexpected character 'v'/],
  ];
  for (const [input, re] of cases) {
    assert.throws(() => Container.parse(input), (e: unknown) => e instanceof ValidationError && re.test(e.message), input);
  }
});

test('containers order by name, then numerically by version', () => {
  const list = ['b:1.0.0', 'a:0.10.0', 'a:0.9.0', 'a:0.0.1'].map((s) => parseContainer(s));
  assert.deepEqual(list.sort(compareContainers).map(String), ['a:0.0.1', 'a:0.9.0', 'a:0.10.0', 'b:1.0.0']);
});
