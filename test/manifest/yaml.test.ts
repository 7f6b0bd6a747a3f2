import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, accepts, rejects, issues } from './helpers.js';

const withBase = (extra: string) => BASE + extra;

test('string fields take any plain scalar as its raw text (serde_yaml deserialize_str)', () => {
  const m = accepts(withBase('env:\n  THREADS: 4\n  HEX: 0x10\n  T: true\n  N: ~\n  E:\n  F: 1.50\n  O: 0777\n  4: four\nargs: [1, true, null, 0o7]\n'));
  assert.deepEqual(m.env, { THREADS: '4', HEX: '0x10', T: 'true', N: '~', E: '', F: '1.50', O: '0777', '4': 'four' });
  assert.deepEqual(m.args, ['1', 'true', 'null', '0o7']);
  assert.equal(accepts(BASE.replace('name: hello', 'name: 1.5')).name, '1.5');
  assert.equal(accepts(BASE.replace('0.0.1', '0.0.1 # comment')).version, '0.0.1');
  assert.equal(accepts(withBase('cgroups:\n  cpu:\n    cpus: 0,1\n')).cgroups?.cpu?.cpus, '0,1');
});

test('integers: decimal, 0x, 0o, 0b; 0777 is a string so an integer field rejects it', () => {
  const mode = (s: string) => accepts(withBase(`sockets:\n  s:\n    type: stream\n    mode: ${s}\n`)).sockets.s!.mode;
  assert.equal(mode('0o777'), 0o777);
  assert.equal(mode('0x1ff'), 0o777);
  assert.equal(mode('0b111'), 7);
  assert.equal(mode('511'), 511);
  assert.equal(mode('+8'), 8);
  assert.equal(mode('0'), 0);
  rejects(withBase('sockets:\n  s:\n    type: stream\n    mode: 0777\n'), ['sockets.s.mode: expected an integer, found the string "0777" (write octal as 0o777)']);
  rejects(withBase("sockets:\n  s:\n    type: stream\n    mode: '511'\n"), ['sockets.s.mode: expected an integer, found the string "511"']);
  rejects(withBase('sockets:\n  s:\n    type: stream\n    mode: 1.0\n'), ['sockets.s.mode: expected an integer, found the number 1.0']);
  rejects(withBase('sockets:\n  s:\n    type: stream\n    mode: 1_000\n'), ['sockets.s.mode: expected an integer, found the string "1_000"']);
});

test('mount entries are not coerced: quote resource versions and paths that look like numbers', () => {
  const res = (v: string) => withBase(`mounts:\n  /r:\n    type: resource\n    name: foo\n    version: ${v}\n    dir: /\n`);
  rejects(res('1'), ['mounts./r.version: expected a string, found the integer 1 (quote it)']);
  rejects(res('1.0'), ['mounts./r.version: expected a string, found the number 1.0 (quote it)']);
  const v = accepts(res("'1'")).mounts['/r'];
  assert.ok(v?.type === 'resource');
  assert.equal(v.version.text, '1');
  const plain = accepts(res('1.0.0')).mounts['/r'];
  assert.ok(plain?.type === 'resource');
  assert.equal(plain.version.text, '1.0.0');
  rejects(withBase('mounts:\n  /b:\n    type: bind\n    host: true\n'), ['mounts./b.host: expected a string, found the boolean true (quote it)']);
  rejects(withBase('mounts:\n  /b:\n    type: bind\n    host: ~\n'), ['mounts./b.host: expected a string, found null (quote it)']);
  // the same scalar outside mounts is fine
  assert.equal(accepts(withBase('init2: 1\n'.replace('init2: 1\n', 'env:\n  V: 1\n'))).env.V, '1');
});

test('externally tagged enums: tags for data variants, plain scalars for unit variants, no map form in YAML', () => {
  assert.deepEqual(accepts(withBase('sched:\n  policy:\n    !fifo\n      priority: 11\n')).sched, { policy: { fifo: { priority: 11 } } });
  assert.deepEqual(accepts(withBase('sched:\n  policy: !other {nice: 0}\n')).sched, { policy: { other: { nice: 0 } } });
  // serde_yaml also reads a unit variant written as an empty tag
  assert.deepEqual(accepts(withBase('sched:\n  policy: !idle\n')).sched, { policy: 'idle' });
  assert.deepEqual(accepts(withBase('seccomp:\n  allow:\n    fork: !any\n')).seccomp, { allow: { fork: 'any' } });
  rejects(withBase('sched:\n  policy: !idle 1\n'), ['sched.policy: unit variant !idle takes no value']);
  rejects(withBase('sched:\n  policy:\n    fifo:\n      priority: 11\n'), ['sched.policy: the map form is not supported in yaml: write a tag, e.g. !fifo …']);
  rejects(withBase('seccomp:\n  allow:\n    x:\n      args: {index: 1, mask: 1}\n'), ['seccomp.allow.x: the map form is not supported in yaml: write a tag, e.g. !args …']);
  rejects(withBase('seccomp:\n  allow:\n    x: args\n'), ['seccomp.allow.x: variant args needs a value: write !args …']);
  rejects(withBase('sched:\n  policy: !idle {}\n'), ['sched.policy: unit variant !idle takes no value']);
  // Elsewhere serde_yaml ignores tags; inside a mount entry serde's buffering refuses them.
  assert.deepEqual(accepts(withBase('io: !io {stdout: pipe, stderr: pipe}\n')).io, { stdout: 'pipe', stderr: 'pipe' });
  rejects(withBase('io: {stdout: pipe, stderr: !x pipe}\n'), ['io.stderr: unknown variant "x", expected one of discard, pipe, inherit']);
  rejects(withBase('io: {stdout: pipe, stderr: !pipe pipe}\n'), ['io.stderr: unit variant !pipe takes no value']);
  assert.equal(accepts(withBase('autostart: !critical\n')).autostart, 'critical');
  rejects(withBase('mounts:\n  /b:\n    type: bind\n    host: !path /x\n'), ['mounts./b.host: unexpected tag !path']);
});

test('duplicate keys: an error for fields, mounts, rlimits, capabilities, suppl_groups; env and sockets keep the last', () => {
  rejects(withBase('gid: 2\n'), ['gid: duplicate field']);
  rejects(withBase('mounts:\n  /a:\n    type: dev\n  /a:\n    type: proc\n'), ['mounts./a: duplicate key']);
  rejects(withBase('rlimits:\n  core: {}\n  core: {}\n'), ['rlimits.core: duplicate key']);
  rejects(withBase('capabilities: [CAP_KILL, CAP_KILL]\n'), ['capabilities[1]: duplicate value CAP_KILL']);
  rejects(withBase('suppl_groups: [a, a]\n'), ['suppl_groups[1]: duplicate value "a"']);
  rejects(withBase('io:\n  stdout: pipe\n  stdout: pipe\n  stderr: pipe\n'), ['io.stdout: duplicate field']);
  assert.deepEqual(accepts(withBase('env:\n  A: 1\n  A: 2\n')).env, { A: '2' });
  assert.deepEqual(accepts(withBase('sockets:\n  s: {type: stream, mode: 1}\n  s: {type: datagram, mode: 2}\n')).sockets, { s: { type: 'datagram', mode: 2 } });
});

test('documents: a --- header is fine, several documents and syntax errors are reported, anchors resolve', () => {
  assert.equal(accepts('---\n' + BASE).name, 'hello');
  assert.deepEqual(issues(BASE + '---\n' + BASE), ['invalid yaml: more than one document']);
  assert.match(issues('name: [hello\n')[0]!, /^invalid yaml at line \d+, column \d+: /);
  const m = accepts(withBase('env:\n  A: &v shared\n  B: *v\n'));
  assert.deepEqual(m.env, { A: 'shared', B: 'shared' });
  // An empty text is an empty TOML table (upstream reports TOML's verdict too).
  rejects('', ['name: missing field', 'version: missing field', 'uid: missing field', 'gid: missing field']);
  rejects('- a\n', ['expected a map, found a sequence']);
});

test('empty and null: Option fields take both, collections only the empty scalar', () => {
  const m = accepts(withBase('args:\nenv:\ncapabilities:\nmounts:\n'));
  assert.deepEqual([m.args, m.env, m.capabilities, m.mounts], [[], {}, [], {}]);
  rejects(withBase('args: ~\n'), ['args: expected a sequence, found null']);
  rejects(withBase('env: null\n'), ['env: expected a map, found null']);
  rejects(withBase("args: ''\n"), ['args: expected a sequence, found the string ""']);
  rejects(withBase('cgroups:\n  memory:\n    oom_monitor: ~\n'), ['cgroups.memory.oom_monitor: expected a boolean, found null']);
  const b = accepts(withBase('cgroups:\n  blkio:\n    weight_device:\n    throttle_read_bps_device:\n    throttle_read_iops_device:\n    throttle_write_bps_device:\n    throttle_write_iops_device:\n'));
  assert.deepEqual(b.cgroups?.blkio?.weight_device, []);
  assert.deepEqual(accepts(withBase('custom:\n  a: 00.5\n  b: 1e3\n  c: .inf_x\n  d: 1.\n')).custom, { a: 0.5, b: 1000, c: '.inf_x', d: 1 });
});

test('null for an optional field means absent; strings may be quoted any way', () => {
  const m = accepts(withBase('sched: ~\ncgroups: null\nnetwork:\nio: ~\n'));
  assert.equal(m.sched, undefined);
  assert.equal(m.cgroups, undefined);
  assert.equal(m.network, undefined);
  assert.equal(accepts(BASE.replace('init: /binary', 'init: "/bin\\tary"')).init, '/bin\tary');
  assert.equal(accepts(BASE.replace('init: /binary', "init: '/it''s'")).init, "/it's");
  assert.equal(accepts(BASE.replace('init: /binary', 'init: |-\n  /block')).init, '/block');
});
