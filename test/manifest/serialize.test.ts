import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { parseManifest, serializeManifest, manifestToJson, yamlString, CONSOLE_PERMISSIONS } from '../../src/manifest/index.js';
import { BASE, accepts } from './helpers.js';

const withBase = (extra: string) => BASE + extra;

function roundTrip(text: string): string {
  const m = accepts(text);
  const yaml = serializeManifest(m);
  assert.deepEqual(parseManifest(yaml), m, `yaml round trip of:\n${yaml}`);
  assert.deepEqual(parseManifest(serializeManifest(m, 'json')), m, 'json round trip');
  assert.deepEqual(parseManifest(serializeManifest(m, 'json'), 'json'), m, 'strict json round trip');
  return yaml;
}

test('strings that would read back as something else are quoted', () => {
  const tricky = [
    '4', '0777', '0o17', '0x1f', '0b1', '1.5', '1e3', '.5', '-1', '+1', 'true', 'False', 'yes', 'No', 'on', 'OFF', 'y', '~',
    'null', 'NULL', '', ' lead', 'trail ', 'a: b', 'a #b', '#c', '- x', '-', '?', ':', '[a]', '{a}', '*a', '&a', '!a', '|', '>',
    "'q'", '"q"', '%x', '@x', '`x', 'tab\there', 'line\nbreak', 'nul\0byte', 'del\x7f', 'bom\ufeff', '.inf', '-.inf', '.NaN',
    '12:30', '2001-12-14', '1_000', '<<', 'a:', 'ünïcödé', '/plain/path', '0.0.1', '>=0.0.1', 'CAP_KILL', '0,1',
  ];
  for (const s of tricky) {
    const y = yamlString(s);
    assert.equal(parseYaml(`k: ${y}\n`).k, s, `yaml package reads ${JSON.stringify(y)} back as ${JSON.stringify(s)}`);
    if (!s.includes('\0')) {
      const m = accepts(withBase(`env:\n  V: ${y}\nmounts:\n  /m:\n    type: bind\n    host: ${yamlString('/' + s)}\n`));
      assert.equal(m.env.V, s, `our parser reads ${JSON.stringify(y)} back as ${JSON.stringify(s)}`);
    }
  }
  assert.equal(yamlString('/plain/path'), '/plain/path');
  assert.equal(yamlString('0.0.1'), '0.0.1');
  assert.equal(yamlString('>=0.0.1'), "'>=0.0.1'");
  assert.equal(yamlString('4'), "'4'");
  assert.equal(yamlString("it's"), "it's");
  assert.equal(yamlString("'it'"), "'''it'''");
});

test('upstream exceptions: selinux and rlimits emit null, blkio lists and oom_monitor are always written', () => {
  const yaml = roundTrip(
    withBase(
      'selinux:\n  exec: a_t\nrlimits:\n  core: {}\ncgroups:\n  memory:\n    swappiness: 1\n  blkio:\n    weight_device:\n    throttle_read_bps_device: []\n    throttle_read_iops_device: []\n    throttle_write_bps_device: []\n    throttle_write_iops_device: []\n',
    ),
  );
  assert.match(yaml, /\nselinux:\n {2}mount_context: null\n {2}exec: a_t\n/);
  assert.match(yaml, /\nrlimits:\n {2}core:\n {4}soft: null\n {4}hard: null\n/);
  assert.match(yaml, /\n {2}memory:\n {4}oom_monitor: false\n {4}swappiness: 1\n/);
  assert.match(yaml, /\n {2}blkio:\n {4}weight_device: \[\]\n {4}throttle_read_bps_device: \[\]\n/);
});

test('absent options and empty collections are omitted; enums use tags; console full', () => {
  const yaml = roundTrip(withBase('args: []\nenv: {}\nmounts: {}\nconsole:\n  permissions: full\nnetwork: host\nsched:\n  policy: !batch\n    nice: -3\n'));
  assert.equal(yaml, 'name: hello\nversion: 0.0.1\nconsole:\n  permissions: full\ninit: /binary\nuid: 1000\ngid: 1001\nsched:\n  policy: !batch\n    nice: -3\nnetwork: host\n');
  const list = roundTrip(withBase('console:\n  permissions: [list, ident]\n'));
  assert.match(list, /\nconsole:\n {2}permissions:\n {2}- ident\n {2}- list\n/);
  // A manifest's "full" is every permission but exec (ours): the list of those is written as
  // "full", a list with exec stays a list.
  const all = roundTrip(withBase(`console:\n  permissions: [${CONSOLE_PERMISSIONS.filter((p) => p !== 'exec').join(', ')}]\n`));
  assert.match(all, /\n {2}permissions: full\n/);
  const withExec = roundTrip(withBase(`console:\n  permissions: [${CONSOLE_PERMISSIONS.join(', ')}]\n`));
  assert.match(withExec, /\n {2}- logs\n {2}- exec\n/);
});

test('every field round-trips, in upstream field order, with exact 64-bit integers', () => {
  const text = `name: all
version: 1.2.3
console:
  permissions: [ident]
init: /bin/all
args: [one, '2']
env:
  A: '1'
  B: x y
uid: 10
gid: 20
sched:
  policy: !other
    nice: 5
mounts:
  /dev:
    type: dev
  /proc:
    type: proc
  /sys:
    type: sysfs
  /data:
    type: persist
  /sockets:
    type: sockets
  /lib:
    type: bind
    host: /lib
    options: rw,rec
  /res:
    type: resource
    name: r
    version: '>=1.0.0, <2'
    dir: /share
  /tmp:
    type: tmpfs
    size: 1 KiB
autostart: critical
cgroups:
  parent: group
  blkio:
    weight: 100
    leaf_weight: 50
    weight_device: [{major: 8, minor: 0, weight: 1, leaf_weight: 2}]
    throttle_read_bps_device: [{major: 8, minor: 0, rate: 18446744073709551615}]
    throttle_read_iops_device: []
    throttle_write_bps_device: []
    throttle_write_iops_device: []
    attrs: {blkio.x: '1'}
  cpu:
    cpus: 0-3
    mems: '0'
    shares: 1024
    quota: -9223372036854775808
    period: 100000
    realtime_runtime: 1
    realtime_period: 2
  memory:
    oom_monitor: true
    kernel_memory_limit: 1
    memory_hard_limit: 2
    memory_soft_limit: 3
    kernel_tcp_memory_limit: 4
    memory_swap_limit: 9223372036854775807
    swappiness: 60
    attrs:
      memory.x: y
network: !namespace net
seccomp:
  profile: default
  allow:
    read: any
    ioctl: !args
      index: 0
      values: [0, 18446744073709551615]
      mask: 0xffffffffffffffff
selinux:
  mount_context: a_t
  exec: b_t
capabilities: [CAP_SYS_ADMIN, CAP_KILL]
suppl_groups: [audio, video]
rlimits:
  nofile:
    soft: 1
    hard: 18446744073709551615
sockets:
  s:
    type: seq_packet
    mode: 0o640
    uid: 1
    gid: 2
    passcred: false
io:
  stdout: inherit
  stderr: discard
custom:
  nested: {list: [1, 2.5, 'three', null, true], empty: {}}
`;
  const yaml = roundTrip(text);
  const keys = yaml.split('\n').filter((l) => /^[a-z_]+:/.test(l)).map((l) => l.split(':')[0]);
  assert.deepEqual(keys, [
    'name', 'version', 'console', 'init', 'args', 'env', 'uid', 'gid', 'sched', 'mounts', 'autostart', 'cgroups', 'network',
    'seccomp', 'selinux', 'capabilities', 'suppl_groups', 'rlimits', 'sockets', 'io', 'custom',
  ]);
  assert.match(yaml, /\n +rate: 18446744073709551615\n/);
  assert.match(yaml, /\n {4}quota: -9223372036854775808\n/);
  assert.match(yaml, /\n {6}mask: 18446744073709551615\n/);
  assert.match(yaml, /\n {4}version: '>=1\.0\.0, <2'\n/);
  assert.match(yaml, /\n {4}size: 1024\n/);
  assert.match(yaml, /\n {4}mode: 416\n/);
  assert.match(yaml, /\n {4}options: rw,rec\n/);
  assert.match(yaml, /\nargs:\n- one\n- '2'\n/);
  const json = manifestToJson(accepts(text));
  assert.deepEqual(json.network, { namespace: 'net' });
  assert.deepEqual(json.sched, { policy: { other: { nice: 5 } } });
  assert.equal((json.mounts as Record<string, { size?: number }>)['/tmp']!.size, 1024);
  assert.match(serializeManifest(accepts(text), 'json'), /"hard": 18446744073709551615/);
});
