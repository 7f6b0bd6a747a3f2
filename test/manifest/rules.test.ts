import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../src/common/errors.js';
import { parseManifest } from '../../src/manifest/index.js';
import { BASE, RESOURCE_BASE, accepts, issues, rejects } from './helpers.js';

const withBase = (extra: string) => BASE + extra;

test('required fields: name, version, uid, gid', () => {
  rejects('init: /x\n', ['name: missing field', 'version: missing field', 'uid: missing field', 'gid: missing field']);
  accepts('name: a\nversion: 1.0.0\nuid: 1\ngid: 1\n');
});

test('name rule', () => {
  rejects(BASE.replace('name: hello', 'name: ..'), ["name: must not be '..'"]);
  rejects(BASE.replace('name: hello', 'name: .'), ["name: must not be '.'"]);
  rejects(BASE.replace('name: hello', 'name: a/b'), [`name: invalid character "/": only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`]);
  rejects(BASE.replace('name: hello', "name: ''"), ['name: must not be empty']);
  rejects(BASE.replace('name: hello', `name: ${'a'.repeat(1025)}`), ['name: must be at most 1024 characters']);
  assert.equal(accepts(BASE.replace('name: hello', `name: ${'a'.repeat(1024)}`)).name.length, 1024);
  assert.equal(accepts(BASE.replace('name: hello', 'name: 123')).name, '123');
});

test('version rule', () => {
  rejects(BASE.replace('0.0.1', 'v1.0.0'), [`version: invalid version "v1.0.0": unexpected character 'v' while parsing major version number`]);
  rejects(BASE.replace('0.0.1', '01.0.0'), ['version: invalid version "01.0.0": invalid leading zero in major version number']);
  rejects(BASE.replace('0.0.1', '1.0'), ['version: invalid version "1.0": unexpected end of input while parsing minor version number']);
  assert.equal(accepts(BASE.replace('0.0.1', '1.2.3-rc.1+build')).version, '1.2.3');
});

test('init rule: 1..=4096 bytes, no nul', () => {
  rejects(BASE.replace('init: /binary', "init: ''"), ['init: must not be empty']);
  rejects(BASE.replace('init: /binary', `init: /${'b'.repeat(4096)}`), ['init: must be at most 4096 bytes']);
  rejects(BASE.replace('init: /binary', 'init: "/a\\0b"'), ['init: must not contain a nul byte']);
  assert.equal(accepts(BASE.replace('init: /binary', `init: /${'b'.repeat(4095)}`)).init?.length, 4096);
  // no absolute-path check, as upstream
  assert.equal(accepts(BASE.replace('init: /binary', 'init: relative')).init, 'relative');
});

test('env rules: reserved names, sizes, count', () => {
  for (const k of ['NORTHSTAR_NAME', 'NORTHSTAR_VERSION', 'NORTHSTAR_CONTAINER', 'NORTHSTAR_CONSOLE']) {
    rejects(withBase(`env:\n  ${k}: x\n`), [`env.${k}: reserved environment variable`]);
  }
  rejects(withBase(`env:\n  ${'K'.repeat(65)}: x\n`), [`env.${'K'.repeat(65)}: name must be at most 64 bytes`]);
  rejects(withBase(`env:\n  K: ${'v'.repeat(1025)}\n`), ['env.K: value must be at most 1024 bytes']);
  const many = Array.from({ length: 65 }, (_, i) => `  K${i}: v\n`).join('');
  rejects(withBase(`env:\n${many}`), ['env: must have at most 64 entries']);
  const ok = accepts(withBase(`env:\n  ${'K'.repeat(64)}: ${'v'.repeat(1024)}\n  LD_LIBRARY_PATH: /lib\n  NORTHSTAR_OTHER: fine\n`));
  assert.equal(Object.keys(ok.env).length, 3);
  assert.equal(accepts(withBase(`env:\n${Array.from({ length: 64 }, (_, i) => `  K${i}: v\n`).join('')}`)).env.K63, 'v');
});

test('uid and gid: u16 and at least 1', () => {
  rejects(BASE.replace('uid: 1000', 'uid: 0'), ['uid: must be at least 1']);
  rejects(BASE.replace('gid: 1001', 'gid: 0'), ['gid: must be at least 1']);
  rejects(BASE.replace('uid: 1000', 'uid: 65536'), ['uid: must be at most 65535']);
  rejects(BASE.replace('uid: 1000', 'uid: -1'), ['uid: must be at least 1']);
  rejects(BASE.replace('uid: 1000', "uid: '1000'"), ['uid: expected an integer, found the string "1000"']);
  const m = accepts(BASE.replace('uid: 1000', 'uid: 65535').replace('gid: 1001', 'gid: 1'));
  assert.equal(m.uid, 65535);
  assert.equal(m.gid, 1);
});

test('sched rules (round_robin valid 1..99, deadline rejected)', () => {
  assert.deepEqual(accepts(withBase('sched:\n  policy: !other\n    nice: -20\n')).sched, { policy: { other: { nice: -20 } } });
  assert.deepEqual(accepts(withBase('sched:\n  policy: !batch\n    nice: 19\n')).sched, { policy: { batch: { nice: 19 } } });
  assert.deepEqual(accepts(withBase('sched:\n  policy: !fifo\n    priority: 99\n')).sched, { policy: { fifo: { priority: 99 } } });
  assert.deepEqual(accepts(withBase('sched:\n  policy: !round_robin\n    priority: 1\n')).sched, { policy: { round_robin: { priority: 1 } } });
  assert.deepEqual(accepts(withBase('sched:\n  policy: idle\n')).sched, { policy: 'idle' });
  rejects(withBase('sched:\n  policy: !other\n    nice: 20\n'), ['sched.policy.other.nice: nice must be between -20 and 19']);
  rejects(withBase('sched:\n  policy: !batch\n    nice: -21\n'), ['sched.policy.batch.nice: nice must be between -20 and 19']);
  rejects(withBase('sched:\n  policy: !fifo\n    priority: 0\n'), ['sched.policy.fifo.priority: priority must be between 1 and 99']);
  rejects(withBase('sched:\n  policy: !round_robin\n    priority: 100\n'), ['sched.policy.round_robin.priority: priority must be between 1 and 99']);
  rejects(withBase('sched:\n  policy: deadline\n'), [
    'sched.policy: deadline scheduling is not supported (it needs sched_setattr parameters the manifest cannot express)',
  ]);
  rejects(withBase('sched:\n  policy: !rt\n    priority: 1\n'), [
    'sched.policy: unknown variant !rt, expected one of idle, deadline, other, fifo, round_robin, batch',
  ]);
  rejects(withBase('sched:\n  policy: fifo\n'), ['sched.policy: variant fifo needs a value: write !fifo …']);
  rejects(withBase('sched: {}\n'), ['sched.policy: missing field']);
});

test('bind mount targets: absolute and not overlapping (upstream adjacent-pair rule)', () => {
  const bind = (p: string) => `  ${p}:\n    type: bind\n    host: /lib\n`;
  rejects(withBase(`mounts:\n${bind('lib')}`), ['mounts.lib: mount point must be an absolute path']);
  rejects(withBase(`mounts:\n${bind('/lib')}${bind('/lib/x')}`), ['mounts./lib/x: mount point overlaps the bind mount at /lib']);
  rejects(withBase(`mounts:\n${bind('/lib')}${bind('/lib/')}`), ['mounts./lib/: mount point overlaps the bind mount at /lib']);
  rejects(withBase(`mounts:\n${bind('/lib/overlapping')}${bind('/lib/non1')}${bind('/lib/non2')}${bind('/lib/overlapping/foo')}`), [
    'mounts./lib/overlapping/foo: mount point overlaps the bind mount at /lib/overlapping',
  ]);
  accepts(withBase(`mounts:\n${bind('/a')}${bind('/a-b')}${bind('/a/c')}`));
  accepts(withBase(`mounts:\n${bind('/other_lib1')}${bind('/lib/non_overlapping1')}${bind('/other_lib2')}${bind('/lib/non_overlapping2')}`));
  accepts(withBase(`mounts:\n${bind('/')}${bind('/lib')}`));
  // Non-bind targets are never checked.
  accepts(withBase('mounts:\n  relative:\n    type: tmpfs\n    size: 1\n  /lib:\n    type: tmpfs\n    size: 1\n  /lib/x:\n    type: proc\n'));
});

test('bind host must be absolute; options are a comma-separated string', () => {
  rejects(withBase('mounts:\n  /data:\n    type: bind\n    host: data\n'), ['mounts./data.host: must be an absolute path']);
  rejects(withBase('mounts:\n  /data:\n    type: bind\n    host: /d\n    options: rw,ro\n'), ['mounts./data.options: invalid mount option "ro", expected rw, noexec, nosuid, nodev, rec']);
  rejects(withBase('mounts:\n  /data:\n    type: bind\n    host: /d\n    options: [rw]\n'), ['mounts./data.options: expected a string, found a sequence']);
  const m = accepts(withBase('mounts:\n  /data:\n    type: bind\n    host: /d\n    options: " rec , rw,nodev,nodev "\n  /e:\n    type: bind\n    host: /e\n    options: ""\n'));
  assert.deepEqual(m.mounts['/data'], { type: 'bind', host: '/d', options: ['rw', 'nodev', 'rec'] });
  assert.deepEqual(m.mounts['/e'], { type: 'bind', host: '/e', options: [] });
});

test('resource mounts: no rec, dir absolute without .., valid name and version requirement', () => {
  const res = (extra: string) => withBase(`mounts:\n  /r:\n    type: resource\n    name: foo\n    version: '>=1.0.0'\n${extra}`);
  const m = accepts(res('    dir: /bin/foo\n    options: noexec\n'));
  const r = m.mounts['/r'];
  assert.ok(r?.type === 'resource');
  assert.deepEqual([r.name, r.version.text, r.dir, r.options], ['foo', '>=1.0.0', '/bin/foo', ['noexec']]);
  rejects(res('    dir: /\n    options: rec\n'), ['mounts./r.options: resource mounts must not be recursive (rec)']);
  rejects(res('    dir: bin/foo\n'), ['mounts./r.dir: must be an absolute path']);
  rejects(res('    dir: /a/../../etc\n'), ["mounts./r.dir: must not contain a '..' component"]);
  rejects(res('    dir: /..\n'), ["mounts./r.dir: must not contain a '..' component"]);
  accepts(res('    dir: /a/..b/c..\n'));
  rejects(res(''), ['mounts./r.dir: missing field']);
  rejects(withBase("mounts:\n  /r:\n    type: resource\n    name: ..\n    version: '1'\n    dir: /\n"), ["mounts./r.name: must not be '..'"]);
  rejects(withBase("mounts:\n  /r:\n    type: resource\n    name: foo\n    version: ''\n    dir: /\n"), [
    'mounts./r.version: invalid version requirement "": unexpected end of input while parsing major version number',
  ]);
  rejects(withBase("mounts:\n  /r:\n    type: resource\n    name: foo\n    version: '1.0'\n    dir: /\n    mode: rw\n"), [
    'mounts./r.mode: unknown field, expected one of type, name, version, dir, options',
  ]);
});

test('tmpfs size: integers or strings with units', () => {
  const size = (s: string) => {
    const m = accepts(withBase(`mounts:\n  /t:\n    type: tmpfs\n    size: ${s}\n`)).mounts['/t'];
    assert.ok(m?.type === 'tmpfs');
    return m.size;
  };
  assert.equal(size('100'), 100n);
  assert.equal(size('100kB'), 100000n);
  assert.equal(size('100MB'), 100000000n);
  assert.equal(size('100GB'), 100000000000n);
  assert.equal(size('10MB'), 10000000n);
  assert.equal(size('1 KiB'), 1024n);
  assert.equal(size('2mib'), 2097152n);
  assert.equal(size('1k'), 1000n);
  assert.equal(size('3b'), 3n);
  assert.equal(size("'42'"), 42n);
  assert.equal(size('0x10'), 16n);
  assert.equal(size('15EiB'), 15n << 60n);
  assert.equal(size('18446744073709551615'), 18446744073709551615n);
  const bad = (s: string, rule: string) => rejects(withBase(`mounts:\n  /t:\n    type: tmpfs\n    size: ${s}\n`), [`mounts./t.size: ${rule}`]);
  bad('1.5MB', 'invalid size "1.5MB": expected an integer with an optional unit such as 10MB or 1 KiB');
  bad('10 XB', 'invalid size "10 XB": unknown unit "XB"');
  bad('16EiB', 'invalid size "16EiB": larger than 18446744073709551615 bytes');
  bad('18446744073709551616', 'must be between 0 and 18446744073709551615 (u64)');
  bad('-1', 'must be between 0 and 18446744073709551615 (u64)');
  bad('1.5', 'expected an integer or a string, found the number 1.5');
  bad('true', 'expected an integer or a string, found the boolean true');
  rejects(withBase('mounts:\n  /t:\n    type: tmpfs\n'), ['mounts./t.size: missing field']);
});

test('mount entries: type tag, unknown types, unit types ignore extra keys, duplicates are an error', () => {
  rejects(withBase('mounts:\n  /x:\n    type: overlay\n'), ['mounts./x.type: unknown variant "overlay", expected one of bind, dev, persist, proc, resource, sockets, sysfs, tmpfs']);
  rejects(withBase('mounts:\n  /x:\n    host: /x\n'), ['mounts./x.type: missing field, expected one of bind, dev, persist, proc, resource, sockets, sysfs, tmpfs']);
  assert.deepEqual(accepts(withBase('mounts:\n  /dev:\n    type: dev\n    extra: 1\n')).mounts['/dev'], { type: 'dev' });
  rejects(withBase('mounts:\n  /dev:\n    type: dev\n  /dev:\n    type: dev\n'), ['mounts./dev: duplicate key']);
  rejects(withBase('mounts:\n  /x:\n    type: bind\n    host: /x\n    size: 1\n'), ['mounts./x.size: unknown field, expected one of type, host, options']);
});

test('autostart, io and console', () => {
  assert.equal(accepts(withBase('autostart: critical\n')).autostart, 'critical');
  assert.equal(accepts(withBase('autostart: relaxed\n')).autostart, 'relaxed');
  rejects(withBase('autostart: always\n'), ['autostart: unknown variant "always", expected one of relaxed, critical']);
  assert.deepEqual(accepts(withBase('io:\n  stdout: inherit\n  stderr: discard\n')).io, { stdout: 'inherit', stderr: 'discard' });
  rejects(withBase('io:\n  stdout: pipe\n'), ['io.stderr: missing field']);
  rejects(withBase('io:\n  stdout: pipe\n  stderr: file\n'), ['io.stderr: unknown variant "file", expected one of discard, pipe, inherit']);
  rejects(withBase('io:\n  stdout: pipe\n  stderr: pipe\n  stdin: pipe\n'), ['io.stdin: unknown field, expected one of stdout, stderr']);
  const full = accepts(withBase('console:\n  permissions: full\n')).console;
  assert.equal(full?.permissions.length, 16);
  assert.deepEqual(accepts(withBase('console:\n  permissions: [shutdown, start, start]\n')).console, { permissions: ['shutdown', 'start'] });
  assert.deepEqual(accepts(withBase('console:\n  permissions: []\n')).console, { permissions: [] });
  rejects(withBase('console:\n  permissions: [reboot]\n'), [
    'console.permissions[0]: unknown variant "reboot", expected one of ident, inspect, install, kill, list, notifications, mount, repositories, shutdown, start, start_command, token_create, token_verification, umount, uninstall, logs, exec',
  ]);
  rejects(withBase('console:\n  permissions: all\n'), ['console.permissions: unknown variant "all", expected one of full']);
  rejects(withBase('console:\n  permissions: full\n  options: {}\n'), ['console.options: unknown field, expected one of permissions']);
  rejects(withBase('console: {}\n'), ['console.permissions: missing field']);
});

test('network: host or a named namespace of at most 256 bytes', () => {
  assert.equal(accepts(withBase('network: host\n')).network, 'host');
  assert.deepEqual(accepts(withBase('network: !namespace container\n')).network, { namespace: 'container' });
  assert.deepEqual(accepts(withBase(`network: !namespace ${'n'.repeat(256)}\n`)).network, { namespace: 'n'.repeat(256) });
  rejects(withBase(`network: !namespace ${'n'.repeat(257)}\n`), ['network.namespace: network namespace must be at most 256 bytes']);
  rejects(withBase('network: container\n'), ['network: unknown variant "container", expected one of host, namespace']);
  rejects(withBase('network:\n  namespace: x\n'), ['network: the map form is not supported in yaml: write a tag, e.g. !namespace …']);
});

test('seccomp rules', () => {
  const s = (allow: string) => withBase(`seccomp:\n  allow:\n${allow}`);
  assert.deepEqual(accepts(s('    fork: any\n    ioctl: !args\n      index: 5\n      mask: 0xff\n')).seccomp, {
    allow: { fork: 'any', ioctl: { args: { index: 5, mask: 255n } } },
  });
  rejects(s('    ioctl: !args\n      index: 6\n      values: [1]\n'), ['seccomp.allow.ioctl.args.index: must be at most 5']);
  rejects(s('    ioctl: !args\n      index: 1\n'), ['seccomp.allow.ioctl.args: needs values or mask']);
  const fifty = Array.from({ length: 50 }, (_, i) => i).join(', ');
  accepts(s(`    ioctl: !args\n      index: 1\n      values: [${fifty}]\n`));
  rejects(s(`    ioctl: !args\n      index: 1\n      values: [${fifty}, 50]\n`), ['seccomp.allow.ioctl.args.values: must have at most 50 values']);
  rejects(s('    ioctl: !args\n      index: 1\n      mask: 1\n      value: 1\n'), ['seccomp.allow.ioctl.args.value: unknown field, expected one of index, values, mask']);
  rejects(withBase('seccomp:\n  profile: strict\n'), ['seccomp.profile: unknown variant "strict", expected one of default']);
  rejects(withBase('seccomp:\n  deny: {}\n'), ['seccomp.deny: unknown field, expected one of profile, allow']);
  rejects(s('    ioctl: all\n'), ['seccomp.allow.ioctl: unknown variant "all", expected one of any, args']);
  // u64 values are exact
  const m = accepts(s('    personality: !args\n      index: 0\n      values: [0xffffffff, 18446744073709551615]\n'));
  assert.deepEqual(m.seccomp?.allow?.personality, { args: { index: 0, values: [0xffffffffn, 18446744073709551615n] } });
  rejects(s('    personality: !args\n      index: 0\n      values: [18446744073709551616]\n'), [
    'seccomp.allow.personality.args.values[0]: must be between 0 and 18446744073709551615 (u64)',
  ]);
});

test('selinux contexts', () => {
  assert.deepEqual(accepts(withBase('selinux:\n  exec: system_u:object_r:container_file_t:s0\n')).selinux, { exec: 'system_u:object_r:container_file_t:s0' });
  assert.deepEqual(accepts(withBase('selinux:\n  exec: null\n  mount_context: ~\n')).selinux, {});
  rejects(withBase('selinux:\n  mount_context: fo@o\n'), ["selinux.mount_context: selinux context may contain only ASCII letters, digits, ':' and '_'"]);
  rejects(withBase("selinux:\n  exec: 's0:c1,c2'\n"), ["selinux.exec: selinux context may contain only ASCII letters, digits, ':' and '_'"]);
  rejects(withBase("selinux:\n  exec: '.'\n"), ["selinux.exec: selinux context may contain only ASCII letters, digits, ':' and '_'"]);
  rejects(withBase("selinux:\n  exec: ''\n"), ['selinux.exec: selinux context must not be empty']);
  rejects(withBase(`selinux:\n  exec: ${'a'.repeat(65536)}\n`), ['selinux.exec: selinux context must be shorter than 65536 bytes']);
  accepts(withBase(`selinux:\n  exec: ${'a'.repeat(65535)}\n`));
  rejects(withBase('selinux:\n  user: x\n'), ['selinux.user: unknown field, expected one of mount_context, exec']);
});

test('capabilities: known names, no duplicates', () => {
  assert.deepEqual(accepts(withBase('capabilities: [CAP_NET_RAW, CAP_MKNOD, CAP_SYS_TIME]\n')).capabilities, ['CAP_NET_RAW', 'CAP_MKNOD', 'CAP_SYS_TIME']);
  rejects(withBase('capabilities: [CAP_SYS_MKNOD]\n'), [
    `capabilities[0]: unknown variant "CAP_SYS_MKNOD", expected one of ${[
      'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
      'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW',
      'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
      'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD',
      'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
      'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
    ].join(', ')}`,
  ]);
  rejects(withBase('capabilities: [CAP_KILL, CAP_KILL]\n'), ['capabilities[1]: duplicate value CAP_KILL']);
});

test('suppl_groups: no duplicates, at most 64 entries of at most 64 bytes', () => {
  assert.deepEqual(accepts(withBase('suppl_groups: [inet, log]\n')).suppl_groups, ['inet', 'log']);
  rejects(withBase('suppl_groups: [foo, foo]\n'), ['suppl_groups[1]: duplicate value "foo"']);
  rejects(withBase(`suppl_groups: [${'g'.repeat(65)}]\n`), ['suppl_groups[0]: must be at most 64 bytes']);
  accepts(withBase(`suppl_groups: [${'g'.repeat(64)}]\n`));
  const list = (n: number) => Array.from({ length: n }, (_, i) => `g${i}`).join(', ');
  accepts(withBase(`suppl_groups: [${list(64)}]\n`));
  rejects(withBase(`suppl_groups: [${list(65)}]\n`), ['suppl_groups: must have at most 64 entries']);
  rejects(withBase('suppl_groups: ["fo\\0o"]\n'), ['suppl_groups[0]: must not contain a nul byte']);
});

test('rlimits: known resources, null or missing = unlimited, duplicates are an error', () => {
  const m = accepts(withBase('rlimits:\n  nofile:\n    soft: 1024\n    hard: null\n  core: {}\n  rttime:\n    hard: 18446744073709551615\n'));
  assert.deepEqual(m.rlimits, { nofile: { soft: 1024n }, core: {}, rttime: { hard: 18446744073709551615n } });
  rejects(withBase('rlimits:\n  files:\n    soft: 1\n'), [
    'rlimits.files: unknown key, expected one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack',
  ]);
  rejects(withBase('rlimits:\n  NOFILE:\n    soft: 1\n'), [
    'rlimits.NOFILE: unknown key, expected one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack',
  ]);
  rejects(withBase('rlimits:\n  nproc:\n    soft: 1\n  nproc:\n    soft: 2\n'), ['rlimits.nproc: duplicate key']);
  rejects(withBase('rlimits:\n  nproc:\n    soft: -1\n'), ['rlimits.nproc.soft: must be between 0 and 18446744073709551615 (u64)']);
});

test('sockets: type, mode required, unknown fields denied, uid 0 accepted as upstream', () => {
  const m = accepts(withBase('sockets:\n  a:\n    type: seq_packet\n    mode: 0o600\n    uid: 0\n'));
  assert.deepEqual(m.sockets, { a: { type: 'seq_packet', mode: 0o600, uid: 0 } });
  rejects(withBase('sockets:\n  a:\n    type: seq-packet\n    mode: 0o600\n'), ['sockets.a.type: unknown variant "seq-packet", expected one of stream, datagram, seq_packet']);
  rejects(withBase('sockets:\n  a:\n    type: stream\n'), ['sockets.a.mode: missing field']);
  rejects(withBase('sockets:\n  a:\n    type: stream\n    mode: 1\n    backlog: 1\n'), ['sockets.a.backlog: unknown field, expected one of type, mode, uid, gid, passcred']);
  rejects(withBase('sockets:\n  a:\n    type: stream\n    mode: 1\n    passcred: yes\n'), ['sockets.a.passcred: expected a boolean, found the string "yes"']);
});

test('cgroups: unknown keys ignored, blkio lists required', () => {
  const m = accepts(withBase('cgroups:\n  parent: p\n  pids: {max: 1}\n  memory:\n    limit_in_bytes: 1\n    memory_hard_limit: -1\n  cpu:\n    cpus: 0,1\n    quota: -1\n    attrs:\n      cpu.x: "1"\n'));
  assert.deepEqual(m.cgroups, {
    parent: 'p',
    memory: { oom_monitor: false, memory_hard_limit: -1n, attrs: {} },
    cpu: { cpus: '0,1', quota: -1n, attrs: { 'cpu.x': '1' } },
  });
  rejects(withBase('cgroups:\n  blkio:\n    weight: 100\n'), [
    'cgroups.blkio.weight_device: missing field',
    'cgroups.blkio.throttle_read_bps_device: missing field',
    'cgroups.blkio.throttle_read_iops_device: missing field',
    'cgroups.blkio.throttle_write_bps_device: missing field',
    'cgroups.blkio.throttle_write_iops_device: missing field',
  ]);
  const b = accepts(withBase('cgroups:\n  blkio:\n    weight_device: [{major: 8, minor: 0, weight: 10}]\n    throttle_read_bps_device: []\n    throttle_read_iops_device: []\n    throttle_write_bps_device: [{major: 8, minor: 0, rate: 1000}]\n    throttle_write_iops_device: []\n'));
  assert.deepEqual(b.cgroups?.blkio?.weight_device, [{ major: 8n, minor: 0n, weight: 10 }]);
  assert.deepEqual(b.cgroups?.blkio?.throttle_write_bps_device, [{ major: 8n, minor: 0n, rate: 1000n }]);
  rejects(withBase('cgroups:\n  blkio:\n    weight: 65536\n    weight_device: []\n    throttle_read_bps_device: []\n    throttle_read_iops_device: []\n    throttle_write_bps_device: []\n    throttle_write_iops_device: []\n'), [
    'cgroups.blkio.weight: must be between 0 and 65535 (u16)',
  ]);
});

test('resource containers: forbidden fields, allowed fields, empty collections count as unset', () => {
  const forbidden: [string, string][] = [
    ['args', 'args: [a]\n'],
    ['env', 'env:\n  A: b\n'],
    ['capabilities', 'capabilities: [CAP_KILL]\n'],
    ['suppl_groups', 'suppl_groups: [a]\n'],
    ['autostart', 'autostart: relaxed\n'],
    ['cgroups', 'cgroups: {}\n'],
    ['io', 'io:\n  stdout: pipe\n  stderr: pipe\n'],
    ['seccomp', 'seccomp: {}\n'],
  ];
  for (const [field, yaml] of forbidden) {
    rejects(RESOURCE_BASE + yaml, [`${field}: not allowed in a resource container (no init)`]);
  }
  accepts(RESOURCE_BASE + 'args: []\nenv: {}\ncapabilities: []\nsuppl_groups: []\n');
  accepts(
    RESOURCE_BASE +
      'console:\n  permissions: full\nsched:\n  policy: idle\nmounts:\n  /a:\n    type: persist\nnetwork: host\nselinux: {}\nrlimits:\n  nproc: {}\nsockets:\n  s: {type: stream, mode: 1}\ncustom: 1\n',
  );
  // all issues are reported together
  assert.deepEqual(issues(RESOURCE_BASE + 'args: [a]\nautostart: critical\n'), [
    'args: not allowed in a resource container (no init)',
    'autostart: not allowed in a resource container (no init)',
  ]);
});

test('custom: any JSON value; YAML tags are refused there', () => {
  assert.deepEqual(accepts(withBase('custom:\n  blah: foo\n  foo: 234\n  n: ~\n  f: 1.5\n  b: true\n  o: 0o10\n  z: 0777\n  test: [one, two]\n')).custom, {
    blah: 'foo', foo: 234, n: null, f: 1.5, b: true, o: 8, z: '0777', test: ['one', 'two'],
  });
  assert.equal(accepts(withBase('custom: 1\n')).custom, 1);
  rejects(withBase('custom:\n  a: !tag 1\n'), ['custom.a: tagged values (!tag) are not supported here']);
  assert.deepEqual(accepts(withBase('custom:\n  a: 1\n  a: 2\n')).custom, { a: 2 });
});

test('unknown and duplicate top-level fields', () => {
  rejects(withBase('sgroups: [a]\n'), [
    'sgroups: unknown field, expected one of name, version, console, init, args, env, uid, gid, sched, mounts, autostart, cgroups, network, seccomp, selinux, capabilities, suppl_groups, rlimits, sockets, io, root, restart, custom',
  ]);
  rejects(withBase('uid: 5\n'), ['uid: duplicate field']);
});

test('every issue is collected, each naming its field path', () => {
  const text = 'name: ..\nversion: x\ninit: /a\nuid: 0\ngid: 0\nenv:\n  NORTHSTAR_NAME: a\nio:\n  stdout: pipe\nmounts:\n  /r:\n    type: resource\n    name: a\n    version: 1\n    dir: /\n';
  try {
    parseManifest(text);
    assert.fail('expected a ValidationError');
  } catch (e) {
    assert.ok(e instanceof ValidationError);
    assert.equal(e.code, 'EINVALID');
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['mounts./r.version', 'name', 'version', 'env.NORTHSTAR_NAME', 'uid', 'gid', 'io.stderr'],
    );
    assert.match(e.message, /^invalid manifest:\n {2}mounts\.\/r\.version: expected a string, found the integer 1 \(quote it\)\n {2}name: must not be '\.\.'/);
  }
});

test('rules across fields still run when other fields fail', () => {
  rejects(
    RESOURCE_BASE.replace('uid: 1000', 'uid: 0') +
      'args: [a]\nmounts:\n  lib:\n    type: bind\n    host: lib\n  /r:\n    type: resource\n    name: x\n    version: 1\n    dir: /../a\n    options: rec\n  /t:\n    type: tmpfs\n    size: 1XB\n',
    [
      'mounts./r.version: expected a string, found the integer 1 (quote it)',
      'uid: must be at least 1',
      'mounts./t.size: invalid size "1XB": unknown unit "XB"',
      'mounts.lib: mount point must be an absolute path',
      'mounts.lib.host: must be an absolute path',
      'mounts./r.options: resource mounts must not be recursive (rec)',
      "mounts./r.dir: must not contain a '..' component",
      'args: not allowed in a resource container (no init)',
    ],
  );
  // an init that failed to decode is not a missing init
  rejects(BASE.replace('init: /binary', 'init: [a]') + 'args: [a]\n', ['init: expected a string, found a sequence']);
});

test('restart (our extension): policy, max_retries, backoff; not for resources; the delays double up to 30 s', async () => {
  const { restartDelayMs } = await import('../../src/manifest/restart.js');
  const r = accepts(withBase('restart:\n  policy: on-failure\n  max_retries: 5\n  backoff: 100ms\n')).restart!;
  assert.deepEqual(r, { policy: 'on-failure', max_retries: 5, backoff: '100ms' });
  assert.deepEqual([1, 2, 3, 9, 10, 40].map((n) => restartDelayMs(r, n)), [100, 200, 400, 25_600, 30_000, 30_000]);
  assert.equal(restartDelayMs(accepts(withBase('restart:\n  policy: always\n')).restart!, 1), 100, 'default backoff 100ms');
  rejects(withBase('restart:\n  policy: sometimes\n'), ['restart.policy: unknown variant "sometimes", expected one of never, on-failure, always']);
  rejects(withBase('restart:\n  policy: always\n  backoff: 100\n'), ['restart.backoff: invalid duration "100": time unit needed, for example 100sec or 100ms']);
  rejects(withBase('restart:\n  policy: always\n  backoff: 1m\n'), ['restart.backoff: must be 1ms..30s, got 1m']);
  rejects(withBase('restart:\n  policy: always\n  max_retries: -1\n'), ['restart.max_retries: must be at least 0']);
  rejects(withBase('restart:\n  policy: always\n  delay: 1s\n'), ['restart.delay: unknown field, expected one of policy, max_retries, backoff']);
  rejects(`${RESOURCE_BASE}restart:\n  policy: always\n`, ['restart: not allowed in a resource container (no init)']);
});
