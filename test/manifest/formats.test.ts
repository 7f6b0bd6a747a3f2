import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { parse as parseYaml } from 'yaml';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { UPSTREAM_EXAMPLES } from '../helpers/fixtures.js';
import { parseManifest, serializeManifest, manifestJsonSchema, manifestToJson, validateManifest } from '../../src/manifest/index.js';
import { ValidationError } from '../../src/common/errors.js';
import { parseJson } from '../../src/common/json.js';
import { manifestFromJson } from '../../src/manifest/parse.js';
import { BASE, accepts, issues, rejects } from './helpers.js';

const YAML_KITCHEN = `${BASE}args: [one, two]
env:
  LD_LIBRARY_PATH: /lib
sched:
  policy: !fifo
    priority: 11
network: !namespace foo
mounts:
  /lib:
    type: bind
    host: /lib
    options: rw,nosuid
  /r:
    type: resource
    name: res
    version: '>=1.0.0'
    dir: /bin
  /t:
    type: tmpfs
    size: 10MB
seccomp:
  allow:
    fork: any
    ioctl: !args
      index: 1
      values: [1, 2]
rlimits:
  nofile:
    soft: 10
sockets:
  s:
    type: stream
    mode: 0o600
`;

test('JSON uses the map form for enums and gives the same manifest as YAML', () => {
  const json = JSON.stringify({
    name: 'hello', version: '0.0.1', init: '/binary', uid: 1000, gid: 1001, args: ['one', 'two'],
    env: { LD_LIBRARY_PATH: '/lib' },
    sched: { policy: { fifo: { priority: 11 } } },
    network: { namespace: 'foo' },
    mounts: {
      '/lib': { type: 'bind', host: '/lib', options: 'rw,nosuid' },
      '/r': { type: 'resource', name: 'res', version: '>=1.0.0', dir: '/bin' },
      '/t': { type: 'tmpfs', size: '10MB' },
    },
    seccomp: { allow: { fork: 'any', ioctl: { args: { index: 1, values: [1, 2] } } } },
    rlimits: { nofile: { soft: 10 } },
    sockets: { s: { type: 'stream', mode: 384 } },
  });
  const fromYaml = parseManifest(YAML_KITCHEN);
  assert.deepEqual(parseManifest(json), fromYaml);
  assert.deepEqual(parseManifest(json, 'json'), fromYaml);
  assert.deepEqual(parseManifest(serializeManifest(fromYaml, 'json', { pretty: false }), 'json'), fromYaml);
});

test('JSON is strict like serde_json: no coercion, exact big integers, clear errors', () => {
  const threads = '{"name":"a","version":"1.0.0","uid":1,"gid":1,"init":"/a","env":{"THREADS":4}}';
  rejects(threads, ['env.THREADS: expected a string, found the integer 4'], 'json');
  // Without a hint YAML comes first, as upstream: JSON text is YAML, and YAML coerces.
  assert.deepEqual(accepts(threads).env, { THREADS: '4' });
  rejects('{"name":"a","version":"1.0.0","uid":"1","gid":1}', ['uid: expected an integer, found the string "1"']);
  const m = accepts('{"name":"a","version":"1.0.0","uid":1,"gid":1,"rlimits":{"nofile":{"soft":18446744073709551615}}}');
  assert.equal(m.rlimits.nofile?.soft, 18446744073709551615n);
  rejects('{"name":"a","version":"1.0.0","uid":1,"gid":1,"network":{"namespace":"x","other":"y"}}', [
    'network: expected a map with exactly one key, expected one of host, namespace',
  ]);
  rejects('{"name":"a","version":"1.0.0","uid":1,"gid":1,"network":{"host":null}}', ['network: unit variant host is written as the string "host"']);
  rejects('{"name":"a","version":"1.0.0","uid":1,"gid":1,"uid":2}', ['uid: duplicate field']);
  assert.deepEqual(accepts('{"name":"a","version":"1.0.0","uid":1,"gid":1,"init":"/a","env":{"A":"1","A":"2"}}').env, { A: '2' });
  // A JSON syntax error in a hinted JSON text is reported as such.
  assert.match(issues('{"name": "a",, }', 'json')[0]!, /^invalid json at line 1, column 14: expected a string key$/);
});

test('TOML uses the map form and gives the same manifest as YAML', () => {
  const toml = `name = "hello"
version = "0.0.1"
init = "/binary"
uid = 1000
gid = 1001
args = ["one", "two"]

[env]
LD_LIBRARY_PATH = "/lib"

[sched.policy.fifo]
priority = 11

[network]
namespace = "foo"

[mounts."/lib"]
type = "bind"
host = "/lib"
options = "rw,nosuid"

[mounts."/r"]
type = "resource"
name = "res"
version = ">=1.0.0"
dir = "/bin"

[mounts."/t"]
type = "tmpfs"
size = "10MB"

[seccomp.allow]
fork = "any"
ioctl = { args = { index = 1, values = [1, 2] } }

[rlimits.nofile]
soft = 10

[sockets.s]
type = "stream"
mode = 0o600
`;
  assert.deepEqual(parseManifest(toml), parseManifest(YAML_KITCHEN));
  assert.deepEqual(parseManifest(toml, 'toml'), parseManifest(YAML_KITCHEN));
  rejects('name = "a"\nversion = "1.0.0"\nuid = 1\ngid = 1\nnetwork = "container"\n', ['network: unknown variant "container", expected one of host, namespace'], 'toml');
  assert.match(issues('name = "a"\nversion = 1.0.0\n', 'toml')[0]!, /^invalid toml at line 2, column \d+: /);
});

function collectKeywords(s: unknown, out: Set<string>, underProperties = false): void {
  if (Array.isArray(s)) {
    s.forEach((x) => collectKeywords(x, out));
    return;
  }
  if (s === null || typeof s !== 'object') return;
  for (const [k, v] of Object.entries(s)) {
    if (!underProperties) out.add(k);
    const isMapOfSchemas = !underProperties && (k === 'properties' || k === '$defs' || k === 'patternProperties');
    if (!underProperties && (k === 'enum' || k === 'const' || k === 'default' || k === 'required' || k === 'examples')) continue;
    collectKeywords(v, out, isMapOfSchemas);
  }
}

test('the JSON Schema is draft 2020-12 and uses only its vocabulary', () => {
  const schema = manifestJsonSchema();
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  JSON.parse(JSON.stringify(schema));
  const used = new Set<string>();
  collectKeywords(schema, used);
  const vocabulary = new Set([
    '$schema', '$id', '$ref', '$defs', '$comment', 'title', 'description', 'default', 'examples', 'readOnly', 'writeOnly', 'deprecated',
    'type', 'enum', 'const', 'properties', 'required', 'additionalProperties', 'propertyNames', 'patternProperties',
    'items', 'prefixItems', 'minItems', 'maxItems', 'uniqueItems', 'anyOf', 'oneOf', 'allOf', 'not',
    'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf', 'minLength', 'maxLength', 'pattern', 'format',
  ]);
  for (const k of used) assert.ok(vocabulary.has(k), `keyword ${k} is not draft 2020-12 vocabulary`);
  const props = schema.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(schema.required, ['name', 'version', 'uid', 'gid']);
  assert.equal(schema.additionalProperties, false);
  assert.equal(props.name!.pattern, '^[0-9A-Za-z._-]{1,1024}$');
  assert.match(JSON.stringify(props.sched), /!fifo/);
  assert.match(String(schema.description), /!namespace/);
});

test('the JSON Schema accepts every upstream example in JSON form and refuses broken ones', (t) => {
  let Ajv: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] | null } };
  try {
    Ajv = createRequire(import.meta.url)('ajv');
  } catch {
    return t.skip('no JSON Schema validator (ajv) installed');
  }
  // ajv 6 implements draft-07; the keywords this schema uses mean the same in 2020-12.
  const { $schema: _s, $id: _i, ...schema } = manifestJsonSchema();
  const ajv = new Ajv({ allErrors: true }) as unknown as { validateSchema(s: object): boolean; errors?: unknown };
  // Structure check against ajv's built-in draft-07 meta-schema (same keyword semantics as used here).
  assert.ok(ajv.validateSchema(schema), JSON.stringify(ajv.errors));
  const validate = new Ajv({ allErrors: true }).compile(schema);
  const dir = UPSTREAM_EXAMPLES;
  let n = 0;
  for (const d of readdirSync(dir)) {
    const f = join(dir, d, 'manifest.yaml');
    if (!existsSync(f)) continue;
    const json: unknown = JSON.parse(serializeManifest(parseManifest(readFileSync(f, 'utf8')), 'json'));
    assert.ok(validate(json), `${d}: ${JSON.stringify(validate.errors)}`);
    n++;
  }
  assert.ok(n >= 22);
  assert.equal(validate({ name: 'x', version: '1.0.0', uid: 0, gid: 1 }), false);
  assert.equal(validate({ name: 'x', version: '1.0.0', uid: 1, gid: 1, sgroups: [] }), false);
  assert.equal(validate({ name: 'x', version: '1.0.0', uid: 1, gid: 1, network: { namespace: 'x' } }), true);
  assert.equal(validate({ name: 'x', version: '1.0.0', uid: 1, gid: 1, mounts: { '/a': { type: 'bind' } } }), false);
});

test('the YAML flavour of the JSON Schema accepts the examples as a generic YAML parser sees them', (t) => {
  let Ajv: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown[] | null } };
  try {
    Ajv = createRequire(import.meta.url)('ajv');
  } catch {
    return t.skip('no JSON Schema validator (ajv) installed');
  }
  const dir = UPSTREAM_EXAMPLES;
  const { $schema: _s, $id: _i, ...schema } = manifestJsonSchema({ yaml: true });
  const validate = new Ajv({ allErrors: true }).compile(schema);
  for (const d of readdirSync(dir)) {
    const f = join(dir, d, 'manifest.yaml');
    if (!existsSync(f)) continue;
    // A generic YAML parser drops the unknown tags (!fifo, !namespace, !args) and keeps their content.
    const value: unknown = parseYaml(readFileSync(f, 'utf8'), { logLevel: 'silent' });
    assert.ok(validate(value), `${d}: ${JSON.stringify(validate.errors)}`);
  }
  const yaml = manifestJsonSchema({ yaml: true });
  const policy = ((yaml.properties as Record<string, Record<string, Record<string, Record<string, unknown>>>>).sched!.properties!.policy!.anyOf as unknown[]);
  assert.ok(policy.some((o) => JSON.stringify(o).includes('content of the !fifo tag')));
  assert.equal(validate({ name: 'x', version: '1.0.0', uid: 1, gid: 1, sched: { policy: { priority: 100 } } }), false);
});

test('validateManifest takes the JSON form as a JS value', () => {
  const m = parseManifest(YAML_KITCHEN);
  assert.deepEqual(validateManifest(manifestToJson(m)), m);
  assert.deepEqual(validateManifest(JSON.parse(serializeManifest(m, 'json'))), m);
  assert.equal(validateManifest({ name: 'a', version: '1.0.0', uid: 1, gid: 1, rlimits: { nofile: { soft: 5n } } }).rlimits.nofile?.soft, 5n);
  assert.throws(
    () => validateManifest({ name: 'a', version: '1.0.0', uid: 1.5, gid: 1 }),
    (e: unknown) => e instanceof ValidationError && e.message === 'uid: expected an integer, found the number 1.5',
  );
  rejects('name = "a"\nversion = "1.0.0"\nuid = 1.0\ngid = 1\n', ['uid: expected an integer, found the number 1'], 'toml');
});

test('a manifest already parsed as JSON (inside inspect) validates as its text does, without a second parse', () => {
  const text = serializeManifest(parseManifest(YAML_KITCHEN), 'json', { pretty: false });
  assert.deepEqual(manifestFromJson(parseJson(text)), parseManifest(text, 'json'));
  const bad = '{"name":"a","version":"1.0.0","uid":"1","gid":1,"init":"/a","rlimits":{"nofile":{"soft":18446744073709551616}}}';
  const errorOf = (f: () => unknown): string[] => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      return e.issues.map((i) => `${i.path}: ${i.rule}`);
    }
    return assert.fail('accepted');
  };
  const expected = errorOf(() => parseManifest(bad, 'json'));
  assert.ok(expected.length >= 2, expected.join('\n'));
  assert.deepEqual(errorOf(() => manifestFromJson(parseJson(bad))), expected);
  // Repeated keys: a repeated struct field is an error, a repeated map key keeps the later value.
  const dup = '{"name":"a","version":"1.0.0","uid":1,"gid":1,"uid":2,"init":"/a","env":{"A":"1","A":"2"}}';
  assert.deepEqual(errorOf(() => manifestFromJson(parseJson(dup, { duplicates: 'keep' }))), ['uid: duplicate field']);
});
