import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { UPSTREAM_EXAMPLES } from '../helpers/fixtures.js';
import { parseManifest, serializeManifest, isResourceContainer, manifestToJson, type Manifest } from '../../src/manifest/index.js';

const DIR = UPSTREAM_EXAMPLES;

function fixtures(): [string, string][] {
  return readdirSync(DIR)
    .filter((d) => existsSync(join(DIR, d, 'manifest.yaml')))
    .sort()
    .map((d) => [d, readFileSync(join(DIR, d, 'manifest.yaml'), 'utf8')]);
}

function load(name: string): Manifest {
  return parseManifest(readFileSync(join(DIR, name, 'manifest.yaml'), 'utf8'));
}

test('every upstream example manifest parses, validates and round-trips through YAML and JSON', () => {
  const all = fixtures();
  assert.ok(all.length >= 22, `expected the 22 upstream examples, found ${all.length}`);
  for (const [name, text] of all) {
    const m = parseManifest(text);
    const yaml = serializeManifest(m);
    assert.deepEqual(parseManifest(yaml), m, `${name}: yaml round trip`);
    assert.deepEqual(parseManifest(yaml, 'yaml'), m, `${name}: yaml round trip with hint`);
    const json = serializeManifest(m, 'json');
    assert.deepEqual(parseManifest(json), m, `${name}: json round trip`);
    assert.deepEqual(parseManifest(JSON.stringify(manifestToJson(m))), m, `${name}: manifestToJson round trip`);
    assert.ok(!yaml.startsWith('---'), `${name}: no document header`);
  }
});

test('resource containers are the ones without init', () => {
  const resources = fixtures()
    .filter(([, text]) => isResourceContainer(parseManifest(text)))
    .map(([n]) => n);
  assert.deepEqual(resources, ['ferris', 'message-0.0.1', 'message-0.0.2', 'test-resource']);
});

test('test-container: sched, seccomp, sockets, mounts, rlimits, selinux', () => {
  const m = load('test-container');
  assert.equal(m.name, 'test-container');
  assert.equal(m.version, '0.0.1');
  assert.equal(m.init, '/test-container');
  assert.deepEqual(m.sched, { policy: { fifo: { priority: 11 } } });
  assert.deepEqual(m.seccomp, {
    profile: 'default',
    allow: {
      delete_module: { args: { index: 1, values: [1n], mask: 6n } },
      clone: 'any',
      clone3: 'any',
    },
  });
  assert.deepEqual(m.sockets, {
    datagram: { type: 'datagram', mode: 0o666, uid: 1000, gid: 1000, passcred: true },
    stream: { type: 'stream', mode: 0o666, uid: 1000, gid: 1000, passcred: true },
    'seq-packet': { type: 'seq_packet', mode: 0o666, uid: 1000, gid: 1000, passcred: true },
    no_permission: { type: 'datagram', mode: 0, passcred: false },
  });
  assert.deepEqual(m.mounts['/tmpfs'], { type: 'tmpfs', size: 20480000n });
  assert.deepEqual(m.mounts['/data'], { type: 'persist' });
  assert.deepEqual(m.mounts['/lib'], { type: 'bind', host: '/lib', options: ['nosuid', 'nodev'] });
  const res = m.mounts['/resource'];
  assert.ok(res?.type === 'resource');
  assert.equal(res.name, 'test-resource');
  assert.equal(res.version.text, '>=0.0.1');
  assert.equal(res.dir, '/');
  assert.deepEqual(res.options, ['noexec', 'nosuid', 'nodev']);
  assert.deepEqual(m.rlimits, { nproc: { soft: 10000n, hard: 20000n } });
  assert.deepEqual(m.selinux, { mount_context: 'unconfined_u:object_r:user_home_t:s0', exec: 'unconfined_u:object_r:test_container_t:s0' });
  assert.deepEqual(m.io, { stdout: 'pipe', stderr: 'pipe' });
});

test('inspect, cpueater, memeater, netns, console, custom, hello-ferris: specific values', () => {
  const inspect = load('inspect');
  assert.deepEqual(inspect.mounts['/tmp'], { type: 'tmpfs', size: 10000000n });
  assert.deepEqual(inspect.mounts['/sys'], { type: 'sysfs' });
  assert.deepEqual(inspect.suppl_groups, ['src', 'inet']);
  assert.deepEqual(inspect.io, { stdout: 'pipe', stderr: 'discard' });

  const cpueater = load('cpueater');
  assert.deepEqual(cpueater.env, { THREADS: '4' });
  assert.equal(cpueater.cgroups?.parent, 'cpu-intense');
  assert.equal(cpueater.cgroups?.cpu?.shares, 100n);

  const memeater = load('memeater');
  assert.equal(memeater.cgroups?.memory?.oom_monitor, true);
  assert.equal(memeater.cgroups?.memory?.memory_hard_limit, 10000000n);
  assert.equal(memeater.cgroups?.memory?.swappiness, 0n);

  assert.deepEqual(load('crashing').env, { RUST_BACKTRACE: '1' });
  assert.deepEqual(load('netns').network, { namespace: 'container' });
  assert.deepEqual(load('netns').args, ['netns']);
  assert.equal(load('redis-server').name, 'redis');
  assert.equal(load('redis-client').network, 'host');
  assert.deepEqual(load('console').console, { permissions: ['ident', 'inspect', 'kill', 'list', 'notifications'] });
  assert.deepEqual(load('token-server').console, { permissions: ['ident', 'token_verification'] });
  assert.deepEqual(load('custom').custom, { properties: { hello: 'again' } });
  assert.deepEqual(load('seccomp').seccomp, { profile: 'default' });
  assert.deepEqual(load('sockets').sockets, { hello: { type: 'datagram', mode: 0o777, uid: 1000, gid: 1000 } });

  const ferris = load('hello-ferris');
  assert.equal(ferris.init, '/bin/ferris');
  const bin = ferris.mounts['/bin'];
  assert.ok(bin?.type === 'resource');
  assert.equal(bin.name, 'ferris');
  assert.deepEqual(bin.options, ['nosuid', 'nodev']);
  assert.equal(load('message-0.0.2').version, '0.0.2');
});

test('serialised YAML looks like serde_yaml output', () => {
  const yaml = serializeManifest(load('test-container'));
  assert.match(yaml, /^name: test-container\nversion: 0\.0\.1\ninit: \/test-container\nuid: 1000\ngid: 1000\nsched:\n {2}policy: !fifo\n {4}priority: 11\n/);
  assert.match(yaml, /\n {4}version: '>=0\.0\.1'\n/);
  assert.match(yaml, /\n {4}delete_module: !args\n {6}index: 1\n {6}values:\n {6}- 1\n {6}mask: 6\n/);
  assert.match(yaml, /\n {4}mode: 438\n/);
  assert.match(yaml, /\n {4}size: 20480000\n/);
  assert.match(yaml, /\nrlimits:\n {2}nproc:\n {4}soft: 10000\n {4}hard: 20000\n/);
  assert.match(serializeManifest(load('netns')), /\nnetwork: !namespace container\n/);
  assert.match(serializeManifest(load('cpueater')), /\nenv:\n {2}THREADS: '4'\n/);
  assert.match(serializeManifest(load('inspect')), /\n {4}size: 10000000\n/);
  // field order of upstream's struct
  const keys = yaml.split('\n').filter((l) => /^[a-z_]+:/.test(l)).map((l) => l.split(':')[0]);
  assert.deepEqual(keys, ['name', 'version', 'init', 'uid', 'gid', 'sched', 'mounts', 'seccomp', 'selinux', 'rlimits', 'sockets', 'io']);
});
