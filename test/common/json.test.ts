import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactJson, JsonSyntaxError, MAX_JSON_DEPTH, member, parseJson, prettyJson, toJsonValue, type JsonNode } from '../../src/common/json.js';

function syntaxError(text: string, options?: Parameters<typeof parseJson>[1]): JsonSyntaxError {
  try {
    parseJson(text, options);
  } catch (e) {
    assert.ok(e instanceof JsonSyntaxError, `${text}: ${String(e)}`);
    return e;
  }
  assert.fail(`${text}: parsed`);
}

test('integers stay exact and apart from floats', () => {
  assert.deepEqual(parseJson('18446744073709551615'), { t: 'int', v: 18446744073709551615n });
  assert.deepEqual(parseJson('-9223372036854775808'), { t: 'int', v: -9223372036854775808n });
  assert.deepEqual(parseJson('9007199254740993'), { t: 'int', v: 9007199254740993n });
  assert.deepEqual(parseJson('1.0'), { t: 'num', v: 1 });
  assert.deepEqual(parseJson('1e3'), { t: 'num', v: 1000 });
  assert.deepEqual(parseJson('-0'), { t: 'int', v: 0n });
  // As values: within 2^53 a number, beyond it a bigint.
  assert.deepEqual(toJsonValue(parseJson('[9007199254740991,9007199254740992,18446744073709551615,-9007199254740992]')), [
    9007199254740991,
    9007199254740992n,
    18446744073709551615n,
    -9007199254740992n,
  ]);
});

test('u64 values round-trip exactly through parse and both writers', () => {
  const text = '{"uptime":18446744073709551615,"low":9007199254740993,"f":0.5,"s":"ü\\n","n":null,"b":[true,false]}';
  const v = toJsonValue(parseJson(text));
  assert.equal(compactJson(v), text);
  assert.deepEqual(toJsonValue(parseJson(prettyJson(v))), v);
  assert.equal(prettyJson({ a: [], b: {}, c: [1n, { d: 'x' }] }), '{\n  "a": [],\n  "b": {},\n  "c": [\n    1,\n    {\n      "d": "x"\n    }\n  ]\n}');
  assert.equal(compactJson({ a: [1, null, true], b: Infinity }), '{"a":[1,null,true],"b":null}');
});

test('strings: escapes, surrogate pairs; lone surrogates and raw control characters are errors', () => {
  assert.deepEqual(parseJson('"a\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"'), { t: 'str', v: 'a"\\/\b\f\n\r\té😀' });
  assert.equal(syntaxError('"\\ud800"').reason, 'lone leading surrogate in hex escape');
  assert.equal(syntaxError('"\\ud800\\u0041"').reason, 'lone leading surrogate in hex escape');
  assert.equal(syntaxError('"\\udc00"').reason, 'lone trailing surrogate in hex escape');
  assert.equal(syntaxError('"\\u12"').reason, 'invalid \\u escape');
  assert.equal(syntaxError('"\\x"').reason, 'invalid escape');
  assert.equal(syntaxError('"a\tb"').reason, 'control character in string');
  assert.equal(syntaxError('"abc').reason, 'unterminated string');
});

test('a repeated key is an error by default, at the key, and kept in order with duplicates: keep', () => {
  const e = syntaxError('{"a":1,"a":2}');
  assert.equal(e.message, 'invalid json at line 1, column 8: duplicate key "a"');
  assert.equal(e.offset, 7);
  // Past the scan limit the check uses a set: still found.
  const many = `{${Array.from({ length: 20 }, (_, i) => `"k${i}":${i}`).join(',')},"k3":0}`;
  assert.match(syntaxError(many).reason, /^duplicate key "k3"$/);
  const kept = parseJson('{"a":1,"b":2,"a":3}', { duplicates: 'keep' }) as Extract<JsonNode, { t: 'obj' }>;
  assert.deepEqual(kept.entries.map(([k]) => k), ['a', 'b', 'a']);
  assert.deepEqual(member(kept, 'a'), { t: 'int', v: 3n });
  assert.equal(member(kept, 'c'), undefined);
  assert.deepEqual(toJsonValue(kept), { a: 3, b: 2 });
});

test('keys like __proto__ stay plain data', () => {
  const v = toJsonValue(parseJson('{"__proto__":{"x":1}}')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(v), ['__proto__']);
  assert.equal(({} as Record<string, unknown>)['x'], undefined);
  assert.equal(compactJson(v as never), '{"__proto__":{"x":1}}');
});

test('syntax errors name the line and column of the offset', () => {
  const e = syntaxError('{\n  "a": 1,\n  "b": tru\n}');
  assert.equal(e.message, 'invalid json at line 3, column 8: unexpected character "t"');
  assert.deepEqual([e.line, e.column, e.offset], [3, 8, 19]);
  assert.equal(syntaxError('{"a":1} x').message, 'invalid json at line 1, column 9: trailing characters');
  assert.equal(syntaxError('').reason, 'unexpected end of input');
  assert.equal(syntaxError('[1,]').reason, 'unexpected character "]"');
  assert.equal(syntaxError('{"a" 1}').reason, "expected ':'");
  assert.equal(syntaxError('{"a":1 "b":2}').reason, "expected ',' or '}'");
  assert.equal(syntaxError('[1 2]').reason, "expected ',' or ']'");
  assert.equal(syntaxError('{1:2}').reason, 'expected a string key');
  assert.equal(syntaxError('01').reason, 'trailing characters');
  assert.equal(syntaxError('1e999').reason, 'number out of range');
  assert.equal(syntaxError('\ufeff{}').reason, 'unexpected character "\ufeff"');
});

test("nesting beyond serde_json's recursion limit is an error, not a stack overflow", () => {
  assert.equal(MAX_JSON_DEPTH, 127);
  assert.doesNotThrow(() => parseJson('['.repeat(MAX_JSON_DEPTH) + ']'.repeat(MAX_JSON_DEPTH)));
  assert.doesNotThrow(() => parseJson('{"a":'.repeat(MAX_JSON_DEPTH) + '1' + '}'.repeat(MAX_JSON_DEPTH)));
  assert.equal(syntaxError('['.repeat(MAX_JSON_DEPTH + 1) + ']'.repeat(MAX_JSON_DEPTH + 1)).reason, 'recursion limit exceeded');
  assert.equal(syntaxError('{"a":'.repeat(100_000)).reason, 'recursion limit exceeded');
});
