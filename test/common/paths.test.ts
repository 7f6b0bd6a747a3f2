import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NorthstarError } from '../../src/common/errors.js';
import { leafProblem, within } from '../../src/common/paths.js';
import { BASE, issues } from '../manifest/helpers.js';

const epath = (re: RegExp) => (e: unknown) => e instanceof NorthstarError && e.code === 'EPATH' && re.test(e.message);

test('within: a single file name stays in its directory', () => {
  assert.equal(within('/data', 'hello'), '/data/hello');
  assert.equal(within('/sockets/', 'a:0.0.1:s'), '/sockets/a:0.0.1:s');
  assert.throws(() => within('/data', '..', 'name'), epath(/^name: "\.\." must not be '\.\.' \(it would not be a file inside \/data\)$/));
  assert.throws(() => within('/data', '.'), epath(/must not be '\.'/));
  assert.throws(() => within('/data', '../etc', 'sockets.../etc'), epath(/^sockets\.\.\.\/etc: "\.\.\/etc" must not contain '\/'/));
  assert.throws(() => within('/data', 'a/b'), epath(/must not contain '\/'/));
  assert.throws(() => within('/data', 'a\0b'), epath(/nul byte/));
  assert.throws(() => within('/data', ''), epath(/must not be empty/));
  assert.throws(() => within('/data', 'x'.repeat(256)), epath(/at most 255 bytes/));
  assert.equal(leafProblem('x'.repeat(256), 256), undefined);
});

// Every manifest string that becomes part of a host path, crafted to escape: refused at parse.
test('manifest: hostile names and paths are refused with the field named', () => {
  const rejected = (extra: string, expected: string) => assert.deepEqual(issues(BASE + extra), [expected]);
  assert.deepEqual(issues(BASE.replace('name: hello', 'name: ..')), ["name: must not be '..'"]);
  assert.deepEqual(issues(BASE.replace('name: hello', 'name: ../x')), [`name: invalid character "/": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`]);
  rejected('sockets:\n  ../../etc/evil:\n    type: stream\n    mode: 0\n', "sockets.../../etc/evil: must not contain '/'");
  rejected('sockets:\n  a/b:\n    type: stream\n    mode: 0\n', "sockets.a/b: must not contain '/'");
  rejected('sockets:\n  "..":\n    type: stream\n    mode: 0\n', "sockets...: must not be '..'");
  rejected('sockets:\n  "":\n    type: stream\n    mode: 0\n', 'sockets.: must not be empty');
  rejected(`sockets:\n  ${'s'.repeat(256)}:\n    type: stream\n    mode: 0\n`, `sockets.${'s'.repeat(256)}: must be at most 255 bytes`);
  rejected('network: !namespace ../../proc/1/ns/net\n', "network.namespace: must not contain '/'");
  rejected('network: !namespace ..\n', "network.namespace: must not be '..'");
  rejected("network: !namespace ''\n", 'network.namespace: must not be empty');
  rejected('mounts:\n  /../../etc:\n    type: tmpfs\n    size: 1\n', "mounts./../../etc: mount point must not contain a '..' component");
  rejected('mounts:\n  /a/../../x:\n    type: proc\n', "mounts./a/../../x: mount point must not contain a '..' component");
  rejected('mounts:\n  /r:\n    type: resource\n    name: res\n    version: "*"\n    dir: /a/../../..\n', "mounts./r.dir: must not contain a '..' component");
  rejected('mounts:\n  /r:\n    type: resource\n    name: ../res\n    version: "*"\n    dir: /\n', `mounts./r.name: invalid character "/": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`);
  rejected('cgroups:\n  parent: ../../..\n', "cgroups.parent: must not contain a '.' or '..' component");
  rejected('cgroups:\n  parent: /a/./b\n', "cgroups.parent: must not contain a '.' or '..' component");
  rejected('cgroups:\n  parent: "a\\nb"\n', 'cgroups.parent: must not contain a newline');
  rejected('cgroups:\n  memory:\n    attrs:\n      ../../release_agent: x\n', "cgroups.memory.attrs.../../release_agent: must not contain '/'");
  rejected('cgroups:\n  cpu:\n    attrs:\n      "..": x\n', "cgroups.cpu.attrs...: must not be '..'");
});
