import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError, NorthstarError } from '../../src/common/errors.js';
import {
  parseConfig, parseByteSize, parseHumantime, parseBindUrl, prepareConfigDirs, modeAllowsReadWrite,
  resolveVerityMode, DEFAULT_CONSOLE_OPTIONS,
} from '../../src/runtime/config.js';
import { CONSOLE_PERMISSIONS } from '../../src/manifest/index.js';
import { tempDir } from '../helpers/tmp.js';

const BASE = `run_dir = "/tmp/run"
data_dir = "/tmp/data"
socket_dir = "/tmp/sockets"
cgroup = "northstar"
`;

/** The issues of a rejected config, as "path: rule" lines. */
function rejected(toml: string): string[] {
  try {
    parseConfig(toml);
  } catch (e) {
    assert.ok(e instanceof ValidationError, `expected a ValidationError, got ${String(e)}`);
    assert.equal(e.code, 'EINVALID');
    assert.doesNotMatch(e.message, /\n\s+at /, 'no stack trace in the message');
    return e.issues.map((i) => (i.path ? `${i.path}: ${i.rule}` : i.rule));
  }
  assert.fail('config was accepted');
}

test('upstream northstar.toml (the example) parses with the documented values', () => {
  const c = parseConfig(`run_dir = "target/northstar/run"
data_dir = "target/northstar/data"
socket_dir = "target/northstar/sockets"
cgroup = "northstar"

[console.options]
max_requests_per_sec = 10
max_request_size = "1M"
max_npk_install_size = "256MB"
npk_stream_timeout = "5s"

[repositories.memory]
type = "mem"
key = "examples/northstar.pub"

[repositories.default]
type = { fs = { dir = "target/northstar/repository" } }
key = "examples/northstar.pub"
`);
  assert.equal(c.runDir, 'target/northstar/run');
  assert.equal(c.cgroup, 'northstar');
  assert.equal(c.console.global, undefined);
  assert.deepEqual(c.console.options, {
    tokenValidity: 60_000, maxRequestsPerSec: 10, maxRequestSize: 1_000_000, maxNpkInstallSize: 256_000_000, npkStreamTimeout: 5000,
  });
  assert.deepEqual([...c.repositories.keys()], ['memory', 'default']);
  assert.deepEqual(c.repositories.get('memory'), {
    id: 'memory', type: { kind: 'mem' }, key: 'examples/northstar.pub', mountOnStart: false, capacityNum: undefined, capacitySize: undefined,
  });
  assert.deepEqual(c.repositories.get('default')?.type, { kind: 'fs', dir: 'target/northstar/repository' });
});

test('defaults are exactly the spec values', () => {
  const c = parseConfig(BASE);
  assert.equal(c.eventBufferSize, 256);
  assert.equal(c.notificationBufferSize, 128);
  assert.equal(c.loopDeviceTimeout, 10_000);
  assert.equal(c.shutdownGracePeriod, 5_000);
  assert.equal(c.verity, 'auto');
  assert.deepEqual(c.console.options, DEFAULT_CONSOLE_OPTIONS);
  assert.deepEqual(DEFAULT_CONSOLE_OPTIONS, {
    tokenValidity: 60_000, maxRequestsPerSec: 1000, maxRequestSize: 1048576, maxNpkInstallSize: 268435456, npkStreamTimeout: 10_000,
  });
  assert.equal(c.repositories.size, 0);
  assert.deepEqual(c.debug.commands, []);
});

test('every key set', () => {
  const c = parseConfig(`${BASE}
event_buffer_size = 128
notification_buffer_size = 64
loop_device_timeout = "1m 30s"
shutdown_grace_period = "500ms"
verity = "user"

[console.global]
bind = "tcp://127.0.0.1"
permissions = ["list", "ident", "inspect"]
future_key = "ignored like upstream"

[console.global.options]
token_validity = "2m"
max_requests_per_sec = 5
max_request_size = "2KiB"
max_npk_install_size = "1GiB"
npk_stream_timeout = "1s"

[console.options]
max_request_size = "512"

[repositories.fs]
type.fs.dir = "/srv/repo"
mount_on_start = true
capacity_num = 3
capacity_size = "100MB"

[repositories.limited]
type = "mem"
capacity_size = "1MiB"

[debug]
commands = ["strace -c -p <PID>"]
`);
  assert.equal(c.eventBufferSize, 128);
  assert.equal(c.notificationBufferSize, 64);
  assert.equal(c.loopDeviceTimeout, 90_000);
  assert.equal(c.shutdownGracePeriod, 500);
  assert.equal(c.verity, 'user');
  assert.deepEqual(c.console.global, {
    bind: { scheme: 'tcp', host: '127.0.0.1', port: 4200, url: 'tcp://127.0.0.1' },
    listeners: [{ bind: { scheme: 'tcp', host: '127.0.0.1', port: 4200, url: 'tcp://127.0.0.1' }, permissions: ['ident', 'inspect', 'list'] }],
    permissions: ['ident', 'inspect', 'list'],
    options: { tokenValidity: 120_000, maxRequestsPerSec: 5, maxRequestSize: 2048, maxNpkInstallSize: 2 ** 30, npkStreamTimeout: 1000 },
  });
  assert.equal(c.console.options.maxRequestSize, 512);
  assert.equal(c.console.options.tokenValidity, 60_000);
  assert.deepEqual(c.repositories.get('fs'), {
    id: 'fs', type: { kind: 'fs', dir: '/srv/repo' }, key: undefined, mountOnStart: true, capacityNum: 3, capacitySize: 100_000_000,
  });
  assert.equal(c.repositories.get('limited')?.capacitySize, 1 << 20);
  assert.deepEqual(c.debug.commands, ['strace -c -p <PID>']);
});

test('console.global: "full" permissions, unix bind, tcp port', () => {
  const c = parseConfig(`${BASE}[console.global]\nbind = "unix:///run/northstar/console"\npermissions = "full"\n`);
  assert.deepEqual(c.console.global?.bind, { scheme: 'unix', path: '/run/northstar/console', url: 'unix:///run/northstar/console' });
  assert.deepEqual(c.console.global?.permissions, [...CONSOLE_PERMISSIONS]);
  assert.deepEqual(parseBindUrl('tcp://localhost:4201'), { scheme: 'tcp', host: 'localhost', port: 4201, url: 'tcp://localhost:4201' });
  assert.deepEqual(parseBindUrl('tcp://[::1]:99'), { scheme: 'tcp', host: '::1', port: 99, url: 'tcp://[::1]:99' });
});

test('unknown keys are refused with their path (except inside console.global)', () => {
  assert.deepEqual(rejected(`${BASE}log_dir = "/x"\n`), ['log_dir: unknown key, expected one of `run_dir`, `data_dir`, `socket_dir`, `cgroup`, `event_buffer_size`, `notification_buffer_size`, `loop_device_timeout`, `console`, `repositories`, `debug`, `shutdown_grace_period`, `verity`, `cgroups`, `oom_score_adj`, `seccomp`, `launch`, `logs`']);
  assert.match(rejected(`${BASE}[repositories.default]\ntype = "mem"\ncapacity = 3\n`)[0]!, /^repositories\.default\.capacity: unknown key/);
  assert.match(rejected(`${BASE}[console.options]\ntimeout = "1s"\n`)[0]!, /^console\.options\.timeout: unknown key/);
  assert.match(rejected(`${BASE}[console.global]\nbind = "tcp://a"\npermissions = "full"\n[console.global.options]\nx = 1\n`)[0]!, /^console\.global\.options\.x: unknown key/);
  assert.match(rejected(`${BASE}[debug]\nstrace = true\n`)[0]!, /^debug\.strace: unknown key/);
  assert.match(rejected(`${BASE}[repositories.x]\ntype = { fs = { dir = "/a", mode = 1 } }\n`)[0]!, /^repositories\.x\.type\.fs\.mode: unknown key/);
});

test('bad values name the key', () => {
  assert.deepEqual(rejected(`${BASE}[repositories.default]\ntype = "mem"\ncapacity_size = 1000\n`), [
    'repositories.default.capacity_size: expected a byte size string like "100MB", found an integer',
  ]);
  assert.deepEqual(rejected(`${BASE}[repositories.default]\ntype = "mem"\ncapacity_size = "12 parsecs"\n`), [
    'repositories.default.capacity_size: invalid byte size "12 parsecs": unknown unit "parsecs"',
  ]);
  assert.deepEqual(rejected(`${BASE}[repositories.r]\ntype = "mem"\ncapacity_num = -1\n`), ['repositories.r.capacity_num: -1 is out of range 0..=4294967295']);
  assert.deepEqual(rejected(`${BASE}[repositories.r]\ntype = "mem"\ncapacity_num = 4294967296\n`), ['repositories.r.capacity_num: 4294967296 is out of range 0..=4294967295']);
  assert.deepEqual(rejected(`${BASE}[repositories.r]\ntype = "disk"\n`), ['repositories.r.type: expected "mem" or { fs = { dir = "…" } }, found "disk"']);
  assert.deepEqual(rejected(`${BASE}[repositories.r]\nkey = "/k"\n`), ['repositories.r.type: missing required key']);
  assert.deepEqual(rejected(`${BASE}[repositories.r]\ntype = { fs = {} }\n`), ['repositories.r.type.fs.dir: missing required key']);
  assert.deepEqual(rejected(`${BASE}[repositories.r]\ntype = "mem"\nmount_on_start = "yes"\n`), ['repositories.r.mount_on_start: expected a boolean, found a string']);
  assert.deepEqual(rejected(`${BASE}loop_device_timeout = 10\n`), ['loop_device_timeout: expected a duration string like "10s", found an integer']);
  assert.deepEqual(rejected(`${BASE}loop_device_timeout = "10"\n`), ['loop_device_timeout: invalid duration "10": time unit needed, for example 10sec or 10ms']);
  assert.deepEqual(rejected(`${BASE}shutdown_grace_period = "5 fortnights"\n`), ['shutdown_grace_period: invalid duration "5 fortnights": unknown time unit "fortnights"']);
  assert.deepEqual(rejected(`${BASE}verity = "maybe"\n`), ['verity: expected "kernel", "user" or "auto", found "maybe"']);
  assert.deepEqual(rejected(`${BASE}event_buffer_size = 1.5\n`), ['event_buffer_size: expected an unsigned integer, found a float']);
  assert.deepEqual(rejected(`${BASE}event_buffer_size = 0\n`), ['event_buffer_size: must be at least 1']);
  assert.deepEqual(rejected(`${BASE}[console.global]\nbind = "http://x"\npermissions = "full"\n`), ['console.global.bind: invalid url "http://x": unsupported scheme "http", expected tcp or unix']);
  assert.deepEqual(rejected(`${BASE}[console.global]\nbind = "tcp://x"\n`), ['console.global.permissions: missing required key']);
  assert.deepEqual(rejected(`${BASE}[console.global]\npermissions = "full"\n`), ['console.global.bind: missing required key']);
  // also_bind (our extension): more addresses for the global console.
  const two = parseConfig(`${BASE}[console.global]\nbind = "tcp://127.0.0.1:4300"\nalso_bind = ["unix:///run/ns.sock"]\npermissions = "full"\n`);
  assert.deepEqual(two.console.global!.listeners.map((l) => [l.bind.url, l.permissions.length]), [['tcp://127.0.0.1:4300', 17], ['unix:///run/ns.sock', 17]]);
  // An also_bind entry may carry permissions of its own (a read-only TCP listener).
  const own = parseConfig(`${BASE}[console.global]\nbind = "unix:///run/ns.sock"\npermissions = "full"\nalso_bind = [{ url = "tcp://127.0.0.1", permissions = ["list", "inspect"] }, "unix:///run/b.sock"]\n`);
  assert.deepEqual(own.console.global!.listeners.map((l) => [l.bind.url, l.permissions.length === 17 ? 'full' : l.permissions]), [
    ['unix:///run/ns.sock', 'full'],
    ['tcp://127.0.0.1', ['inspect', 'list']],
    ['unix:///run/b.sock', 'full'],
  ]);
  const bad = rejected(`${BASE}[console.global]\nbind = "tcp://x"\npermissions = "full"\nalso_bind = [{ url = "tcp://y", permissions = ["fly"] }, { permissions = "full" }, { url = "tcp://z", perms = 1 }]\n`);
  assert.equal(bad.length, 3);
  assert.match(bad[0]!, /^console\.global\.also_bind\[0\]\.permissions\[0\]: unknown permission "fly", expected one of ident, /);
  assert.equal(bad[1], 'console.global.also_bind[1].url: missing required key');
  assert.equal(bad[2], 'console.global.also_bind[2].perms: unknown key, expected one of `url`, `permissions`');
  assert.deepEqual(rejected(`${BASE}[console.global]\nbind = "tcp://x"\nalso_bind = ["ftp://y"]\npermissions = "full"\n`), [
    'console.global.also_bind[0]: invalid url "ftp://y": unsupported scheme "ftp", expected tcp or unix',
  ]);
  assert.match(rejected(`${BASE}[console.global]\nbind = "tcp://x"\npermissions = ["list", "fly"]\n`)[0]!, /^console\.global\.permissions\[1\]: unknown permission "fly", expected one of ident, /);
  assert.deepEqual(rejected(`${BASE}[console.global]\nbind = "tcp://x"\npermissions = "some"\n`), ['console.global.permissions: expected "full" or a list of permissions, found "some"']);
  assert.deepEqual(rejected(`${BASE}[debug]\ncommands = "strace"\n`), ['debug.commands: expected an array of strings, found a string']);
  assert.deepEqual(rejected(`${BASE}[debug]\ncommands = ["ok", 3]\n`), ['debug.commands[1]: expected a string, found an integer']);
  assert.deepEqual(rejected(`${BASE}repositories = 3\n`), ['repositories: expected a table, found an integer']);
  assert.deepEqual(rejected(`${BASE}[repositories.a]\ntype.fs.dir = "/r"\n[repositories.b]\ntype.fs.dir = "/r"\n`), ['repositories.b.type.fs.dir: /r is also the directory of repository "a"']);
  assert.deepEqual(rejected(BASE.replace('cgroup = "northstar"', 'cgroup = "a/../b"')), ['cgroup: must not contain `.` or `..` components']);
  assert.deepEqual(rejected(BASE.replace('cgroup = "northstar"', 'cgroup = "/"')), ['cgroup: must name a cgroup, not the hierarchy root']);
});

test('missing required keys are all reported at once', () => {
  assert.deepEqual(rejected('cgroup = "x"\n'), [
    'run_dir: missing required key', 'data_dir: missing required key', 'socket_dir: missing required key',
  ]);
  assert.deepEqual(rejected(''), [
    'run_dir: missing required key', 'data_dir: missing required key', 'socket_dir: missing required key', 'cgroup: missing required key',
  ]);
});

test('invalid TOML is one clear issue with line and column', () => {
  const issues = rejected('run_dir = = "x"\n');
  assert.equal(issues.length, 1);
  assert.match(issues[0]!, /^line 1, column \d+: invalid toml: /);
  assert.match(rejected('x = 99999999999999999999\n')[0]!, /^line 1, column \d+: invalid toml: integer value cannot be represented losslessly/);
});

test('humantime', () => {
  const cases: [string, number][] = [
    ['10s', 10_000], ['1m 30s', 90_000], ['1m30s', 90_000], ['500ms', 500], ['2h', 7_200_000], ['1day', 86_400_000],
    ['3 min', 180_000], ['1sec 5msec', 1005], ['250us', 0.25], ['7ns', 7e-6], ['1w', 604_800_000], ['0s', 0],
    ['1hour 1minute 1second', 3_661_000], ['1M', 2_630_016_000], ['1y', 31_557_600_000],
  ];
  for (const [text, ms] of cases) assert.equal(parseHumantime(text), ms, text);
  for (const bad of ['', '10', 's', '1.5s', '-1s', '10 parsecs', '1s x']) assert.throws(() => parseHumantime(bad), Error, bad);
});

test('bytesize: decimal K/M/MB, binary Ki/MiB, case-insensitive units', () => {
  const cases: [string, number][] = [
    ['100MB', 1e8], ['1MiB', 2 ** 20], ['1M', 1e6], ['1 KiB', 1024], ['1000', 1000], ['1000 B', 1000], ['2kb', 2000],
    ['1.5 KiB', 1536], ['1GiB', 2 ** 30], ['1gb', 1e9], ['256MB', 256e6], ['1Ti', 2 ** 40], ['0', 0],
  ];
  for (const [text, n] of cases) assert.equal(parseByteSize(text), n, text);
  for (const bad of ['', 'MB', '-1MB', '1 MBB', '1e6', '0x10']) assert.throws(() => parseByteSize(bad), Error, bad);
});

test('mode-bit rule: owner, then group, then other bits; root is not special', () => {
  assert.equal(modeAllowsReadWrite({ mode: 0o700, uid: 0, gid: 0 }, 0, 0), true);
  assert.equal(modeAllowsReadWrite({ mode: 0o500, uid: 0, gid: 0 }, 0, 0), false, 'root gets no bypass');
  assert.equal(modeAllowsReadWrite({ mode: 0o077, uid: 0, gid: 0 }, 0, 0), false, 'owner bits apply even if others allow');
  assert.equal(modeAllowsReadWrite({ mode: 0o060, uid: 5, gid: 7 }, 1, 7), true);
  assert.equal(modeAllowsReadWrite({ mode: 0o006, uid: 5, gid: 7 }, 1, 2), true);
  assert.equal(modeAllowsReadWrite({ mode: 0o664, uid: 5, gid: 7 }, 1, 2), false);
});

test('prepareConfigDirs creates missing dirs and refuses unusable ones with the key named', async (t) => {
  const dir = tempDir(t);
  const c = parseConfig(`run_dir = "${dir}/a/run"\ndata_dir = "${dir}/data"\nsocket_dir = "${dir}/s"\ncgroup = "x"\n`);
  await prepareConfigDirs(c);
  for (const d of ['a/run', 'data', 's']) assert.ok(statSync(join(dir, d)).isDirectory());

  writeFileSync(join(dir, 'file'), '');
  mkdirSync(join(dir, 'ro'));
  chmodSync(join(dir, 'ro'), 0o500);
  const bad = parseConfig(`run_dir = "${dir}/file"\ndata_dir = "${dir}/ro"\nsocket_dir = "${dir}/s"\ncgroup = "x"\n[repositories.r]\ntype = "mem"\nkey = "${dir}/nokey.pub"\n`);
  await assert.rejects(prepareConfigDirs(bad), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    assert.deepEqual(e.issues.map((i) => i.path), ['run_dir', 'data_dir', 'repositories.r.key']);
    assert.match(e.issues[0]!.rule, /EEXIST|ENOTDIR|not a directory/);
    assert.match(e.issues[1]!.rule, /is not read and writeable \(mode 0500\)/);
    assert.match(e.issues[2]!.rule, /nokey\.pub: ENOENT/);
    return true;
  });
});

test('verity mode resolution', () => {
  assert.equal(resolveVerityMode('auto', true), 'kernel');
  assert.equal(resolveVerityMode('auto', false), 'user');
  assert.equal(resolveVerityMode('user', true), 'user');
  assert.equal(resolveVerityMode('kernel', true), 'kernel');
  assert.throws(() => resolveVerityMode('kernel', false), (e: unknown) => e instanceof NorthstarError && e.code === 'ENODM');
});

test('[seccomp] default: "deny-dangerous" unless set to "none"; other values refused', () => {
  assert.deepEqual(parseConfig(BASE).seccomp, { default: 'deny-dangerous' });
  assert.deepEqual(parseConfig(`${BASE}[seccomp]\ndefault = "none"\n`).seccomp, { default: 'none' });
  assert.deepEqual(parseConfig(`${BASE}[seccomp]\ndefault = "deny-dangerous"\n`).seccomp, { default: 'deny-dangerous' });
  assert.deepEqual(rejected(`${BASE}[seccomp]\ndefault = "allow"\n`), ['seccomp.default: expected "deny-dangerous" or "none", found "allow"']);
  assert.deepEqual(rejected(`${BASE}[seccomp]\ndefault = 1\n`), ['seccomp.default: expected "deny-dangerous" or "none", found an integer']);
  assert.deepEqual(rejected(`${BASE}[seccomp]\nprofile = "x"\n`), ['seccomp.profile: unknown key, expected one of `default`']);
});

test('[launch] pool: 2 launch cores ahead of time unless set; 0..=64; other values refused', () => {
  assert.deepEqual(parseConfig(BASE).launch, { pool: 2 });
  assert.deepEqual(parseConfig(`${BASE}[launch]\npool = 0\n`).launch, { pool: 0 });
  assert.deepEqual(parseConfig(`${BASE}[launch]\npool = 64\n`).launch, { pool: 64 });
  assert.deepEqual(rejected(`${BASE}[launch]\npool = 65\n`), ['launch.pool: 65 is out of range 0..=64 (0 spawns every launch core at its start)']);
  assert.deepEqual(rejected(`${BASE}[launch]\npool = -1\n`), ['launch.pool: -1 is out of range 0..=64 (0 spawns every launch core at its start)']);
  assert.deepEqual(rejected(`${BASE}[launch]\npool = "2"\n`), ['launch.pool: expected an integer 0..=64, found a string']);
  assert.deepEqual(rejected(`${BASE}[launch]\nsize = 2\n`), ['launch.size: unknown key, expected one of `pool`']);
});
