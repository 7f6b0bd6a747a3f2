/**
 * In-container tests: real containers, as root, started through the launcher with plans
 * from the plan builder, running the test container (examples/test-container). Behaviour
 * is asserted from inside: the test container prints what it sees.
 *
 * The container root is a real NPK: the test container binary plus the mount points the
 * tests need, packed with our NPK packer and loop-mounted read-only like the runtime does.
 * A `test-resource` NPK is packed and mounted the same way for resource mounts.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Launcher, LaunchError, type ContainerProcess, type ExitStatus, type LaunchFds } from '../../src/launch/launcher.js';
import { parseName } from '../../src/common/name.js';
import { buildPlan, type PlanSettings } from '../../src/launch/plan-builder.js';
import type { LaunchPlan } from '../../src/launch/plan.js';
import { parseManifest, type Capability, type Manifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const TC_DIR = join(REPO, 'examples/test-container');
const TC_BIN = join(TC_DIR, 'build/test-container');
const NATIVE_DIR = join(REPO, 'native');

/** Mount points in the image besides the manifest's (pseudo entries add those). */
const EXTRA_DIRS = ['bind-ro', 'bind-rw', 'nest', 'sys', 'tmp'];

// ------------------------------------------------------------------------------------------
// Environment: built once for the file
// ------------------------------------------------------------------------------------------

interface Env {
  work: string;
  root: string;
  resource: string;
  dataDir: string;
  socketDir: string;
  runDir: string;
  hostDir: string;
  base: Manifest;
  launcher: Launcher;
}

let env: Env | null = null;
let skip: string | null = null;
const cleanups: (() => void)[] = [];

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function whySkip(): string | null {
  if (process.platform !== 'linux') return 'containers need Linux';
  if (process.getuid?.() !== 0) return 'in-container tests need root (namespaces, loop mounts)';
  for (const [dir, what] of [
    [TC_DIR, 'the test container'],
    [NATIVE_DIR, 'the launch core'],
  ] as const) {
    const r = spawnSync('make', ['-s', '-C', dir], { encoding: 'utf8' });
    if (r.status !== 0) return `building ${what} failed: ${(r.stderr || r.error?.message || '').trim()}`;
  }
  return null;
}

/** Pack `manifest` + `rootDir` into an NPK and loop-mount its fs.img read-only at `at`. */
async function mountNpk(manifestYaml: string, rootDir: string, npk: string, at: string): Promise<void> {
  const packed = await packNpk({ manifest: parseManifest(manifestYaml), root: rootDir, out: npk });
  mkdirSync(at, { recursive: true });
  sh('mount', ['-t', 'squashfs', '-o', `ro,nosuid,loop,offset=${packed.fsImg.offset},sizelimit=${packed.fsImg.size}`, npk, at]);
  cleanups.push(() => {
    spawnSync('umount', [at]);
  });
}

before(async () => {
  skip = whySkip();
  if (skip) return;
  const work = mkdtempSync('/tmp/ns-container-test-');
  chmodSync(work, 0o755);
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const manifestYaml = readFileSync(join(TC_DIR, 'manifest.yaml'), 'utf8');

  // the test container image
  const imageDir = join(work, 'image');
  mkdirSync(imageDir);
  copyFileSync(TC_BIN, join(imageDir, 'test-container'));
  chmodSync(join(imageDir, 'test-container'), 0o755);
  for (const d of EXTRA_DIRS) mkdirSync(join(imageDir, d));
  const runDir = join(work, 'run');
  const root = join(runDir, 'test-container:0.0.1');
  await mountNpk(manifestYaml, imageDir, join(work, 'test-container.npk'), root);

  // the test resource: one file, `hello`
  const resDir = join(work, 'resource-root');
  mkdirSync(resDir);
  writeFileSync(join(resDir, 'hello'), 'hello from test resource');
  const resource = join(runDir, 'test-resource:0.0.1');
  await mountNpk('name: test-resource\nversion: 0.0.1\nuid: 1000\ngid: 1000\n', resDir, join(work, 'test-resource.npk'), resource);

  const dataDir = join(work, 'data');
  const socketDir = join(work, 'sockets');
  const hostDir = join(work, 'host');
  for (const d of [dataDir, socketDir, hostDir, join(hostDir, 'inner')]) mkdirSync(d, { recursive: true });
  writeFileSync(join(hostDir, 'file'), 'a host file');
  chmodSync(hostDir, 0o777);

  const base = parseManifest(manifestYaml);
  env = { work, root, resource, dataDir, socketDir, runDir, hostDir, base, launcher: new Launcher() };
});

after(() => {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      // best effort: the next cleanup still runs
    }
  }
});

/** The environment, or skips the test with the reason it cannot run here. */
function need(t: TestContext): Env | null {
  if (!env) {
    t.skip(skip ?? 'the test environment could not be set up');
    return null;
  }
  return env;
}

// ------------------------------------------------------------------------------------------
// Running containers
// ------------------------------------------------------------------------------------------

let seq = 0;
/** A fresh container name per start, so processes and persist dirs never collide. */
function uniqueName(): string {
  seq += 1;
  return `tc${process.pid}-${seq}`;
}

/** The test container manifest with the given changes; by default without sockets. */
function manifest(e: Env, over: Partial<Manifest> = {}): Manifest {
  return { ...e.base, name: parseName(uniqueName()), sockets: {}, ...over };
}

/** The named sockets of the test container manifest. */
function sockets(e: Env, ...names: string[]): Manifest['sockets'] {
  return Object.fromEntries(Object.entries(e.base.sockets).filter(([name]) => names.includes(name)));
}

function settings(e: Env, over: Partial<PlanSettings> = {}): PlanSettings {
  return {
    root: e.root,
    dataDir: e.dataDir,
    socketDir: e.socketDir,
    runDir: e.runDir,
    resources: { 'test-resource': 'test-resource:0.0.1' },
    resolveGroup: (n) => ({ audio: 29, video: 44, 'nstest-big': 60001 })[n],
    ...over,
  };
}

/** What the runtime does before a start with a persist mount: <data_dir>/<name>, 0700, uid:gid. */
function preparePersist(e: Env, m: Manifest): void {
  const dir = join(e.dataDir, m.name);
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o700);
  chownSync(dir, m.uid, m.gid);
}

interface Run {
  status: ExitStatus | null;
  stdout: string;
  stderr: string;
  plan: LaunchPlan;
  proc: ContainerProcess;
}

function collect(stream: NodeJS.ReadableStream | null): { text: () => string; done: Promise<void> } {
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve) => {
    if (!stream) return resolve();
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', resolve);
    stream.on('error', () => resolve());
  });
  return { text: () => Buffer.concat(chunks).toString('utf8'), done };
}

/**
 * Start the test container with `args` and wait for its exit. With `untilSleeping`, the
 * container is sent SIGTERM once it printed `Sleeping...` (upstream commands park).
 */
async function run(
  t: TestContext,
  e: Env,
  m: Manifest,
  args: string[],
  opts: { settings?: Partial<PlanSettings>; fds?: LaunchFds; untilSleeping?: boolean; signal?: NodeJS.Signals } = {},
): Promise<Run> {
  if (Object.values(m.mounts).some((x) => x.type === 'persist')) preparePersist(e, m);
  const plan = buildPlan(m, settings(e, { args, ...opts.settings }));
  const proc = await e.launcher.start(plan, { stdout: 'pipe', stderr: 'pipe', ...opts.fds });
  t.after(async () => {
    proc.kill('SIGKILL');
    await proc.exited;
  });
  const out = collect(proc.stdout);
  const err = collect(proc.stderr);
  if (opts.untilSleeping) {
    const sleeping = new Promise<void>((resolve) => {
      const check = (): void => {
        if (out.text().includes('Sleeping...')) resolve();
      };
      proc.stdout?.on('data', check);
      check();
      void proc.exited.then(() => resolve());
    });
    await sleeping;
    proc.kill(opts.signal ?? 'SIGTERM');
  }
  const status = await proc.exited;
  await Promise.all([out.done, err.done]);
  return { status, stdout: out.text(), stderr: err.text(), plan, proc };
}

/** `key: value` lines of the report command, every value per key. */
function report(stdout: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf(': ');
    const key = i < 0 ? line.replace(/:$/, '') : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 2);
    if (key === '') continue;
    map.set(key, [...(map.get(key) ?? []), value]);
  }
  return map;
}

function one(r: Map<string, string[]>, key: string): string {
  const v = r.get(key);
  assert.ok(v && v.length === 1, `exactly one ${key} line, got ${JSON.stringify(v)}`);
  return v[0]!;
}

/** /proc/self/mounts lines of a report as {target, fstype, options}. */
function mounts(r: Map<string, string[]>): { source: string; target: string; fstype: string; options: string[] }[] {
  return (r.get('mount') ?? []).map((l) => {
    const [source, target, fstype, options] = l.split(' ');
    return { source: source!, target: target!, fstype: fstype!, options: options!.split(',') };
  });
}

async function reportOf(t: TestContext, e: Env, m: Manifest, opts: Parameters<typeof run>[4] = {}): Promise<Map<string, string[]>> {
  const r = await run(t, e, m, ['report'], opts);
  assert.deepEqual(r.status, { code: 0 }, `report exits 0; stderr: ${r.stderr}`);
  return report(r.stdout);
}

/** Host processes that belong to container `name` (its launcher and init carry the name). */
function processesOf(name: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'latin1');
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (cmdline.includes(name) || (ppid === process.pid && stat.includes('(northstar-launc'))) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

// ------------------------------------------------------------------------------------------
// Tests
// ------------------------------------------------------------------------------------------

describe('identity and isolation', { timeout: 300_000 }, () => {
  test('the app is PID 1\'s child with ppid 1 and sid 1; no host process is visible', async (t) => {
    const e = need(t);
    if (!e) return;
    const r = await run(t, e, manifest(e), ['inspect'], { untilSleeping: true });
    assert.deepEqual(r.status, { signal: 15 });
    assert.match(r.stdout, /^Executing "Inspect"$/m);
    assert.match(r.stdout, /^getppid: 1$/m);
    assert.match(r.stdout, /^getsid: 1$/m);
    assert.match(r.stdout, /^pwd: \/$/m);
    assert.match(r.stdout, /^exe: \/test-container$/m);
    const rep = await reportOf(t, e, manifest(e));
    assert.equal(one(rep, 'ppid'), '1');
    assert.equal(one(rep, 'sid'), '1');
    assert.equal(one(rep, 'pids'), '1 2', 'only init and the app');
  });

  test('uid, gid and supplementary groups as in the manifest, for several uids', async (t) => {
    const e = need(t);
    if (!e) return;
    for (const uid of [10, 1000, 3000]) {
      const gid = uid + 1;
      const m = manifest(e, { uid, gid, suppl_groups: ['video', 'audio', 'no-such-group'] });
      const rep = await reportOf(t, e, m);
      assert.equal(one(rep, 'uid'), `${uid} ${uid} ${uid}`);
      assert.equal(one(rep, 'gid'), `${gid} ${gid} ${gid}`);
      assert.equal(one(rep, 'groups'), '29 44');
    }
    const plain = await run(t, e, manifest(e, { uid: 3000, gid: 3000 }), ['inspect'], { untilSleeping: true });
    assert.match(plain.stdout, /^getuid: 3000$/m);
    assert.match(plain.stdout, /^getgid: 3000$/m);
    assert.match(plain.stdout, /^getgroups: \[\]$/m);
  });

  test('the hostname is the container name and the environment carries the NORTHSTAR_* variables', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, { env: { FOO: 'bar baz' } });
    const rep = await reportOf(t, e, m);
    assert.equal(one(rep, 'hostname'), m.name);
    const envs = rep.get('env') ?? [];
    for (const v of ['FOO=bar baz', `NORTHSTAR_NAME=${m.name}`, 'NORTHSTAR_VERSION=0.0.1', `NORTHSTAR_CONTAINER=${m.name}:0.0.1`]) {
      assert.ok(envs.includes(v), `${v} in ${JSON.stringify(envs)}`);
    }
    const replaced = await reportOf(t, e, m, { settings: { env: { ONLY: 'this' } } });
    assert.ok(!(replaced.get('env') ?? []).some((l) => l.startsWith('FOO=')), 'a request env replaces the manifest env');
    assert.ok((replaced.get('env') ?? []).includes('ONLY=this'));
  });

  test('exactly the listed capabilities, and empty sets when none', async (t) => {
    const e = need(t);
    if (!e) return;
    const none = await run(t, e, manifest(e), ['inspect'], { untilSleeping: true });
    for (const set of ['ambient', 'bounding', 'effective', 'inheritable', 'permitted']) {
      assert.match(none.stdout, new RegExp(`^caps ${set}: \\{\\}$`, 'm'), set);
    }
    const caps: Capability[] = ['CAP_SYS_NICE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
    const rep = await reportOf(t, e, manifest(e, { capabilities: caps }));
    for (const set of ['ambient', 'bounding', 'effective', 'inheritable', 'permitted']) {
      assert.equal(one(rep, `cap_${set}`), 'CAP_KILL,CAP_NET_BIND_SERVICE,CAP_SYS_NICE', set);
    }
    assert.equal(one(rep, 'no_new_privs'), '1');
  });

  test('rlimits as set; a missing value is unlimited', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, { rlimits: { nproc: { soft: 10000n, hard: 20000n }, nofile: { soft: 100n, hard: 200n }, core: {} } });
    const insp = await run(t, e, m, ['inspect'], { untilSleeping: true });
    assert.match(insp.stdout, /Max processes {13}10000 {16}20000 {16}processes/);
    const rep = await reportOf(t, e, m);
    assert.equal(one(rep, 'rlimit_nproc'), '10000 20000');
    assert.equal(one(rep, 'rlimit_nofile'), '100 200');
    assert.equal(one(rep, 'rlimit_core'), 'unlimited unlimited');
  });

  test('scheduling policy fifo, round_robin, idle, other and batch as set', async (t) => {
    const e = need(t);
    if (!e) return;
    const cases: [Manifest['sched'], number, number, number][] = [
      [{ policy: { fifo: { priority: 11 } } }, 1, 11, 0],
      [{ policy: { round_robin: { priority: 42 } } }, 2, 42, 0],
      [{ policy: 'idle' }, 5, 0, 0],
      [{ policy: { other: { nice: 0 } } }, 0, 0, 0],
      [{ policy: { other: { nice: 7 } } }, 0, 0, 7],
      [{ policy: { batch: { nice: 3 } } }, 3, 0, 3],
    ];
    for (const [sched, policy, priority, nice] of cases) {
      const r = await run(t, e, manifest(e, { sched }), ['inspect'], { untilSleeping: true });
      const what = JSON.stringify(sched);
      assert.match(r.stdout, new RegExp(`^sched_getscheduler: ${policy}$`, 'm'), what);
      assert.match(r.stdout, new RegExp(`^sched_priority: ${priority}$`, 'm'), what);
      assert.match(r.stdout, new RegExp(`^getpriority: ${nice}$`, 'm'), what);
    }
  });
});

describe('filesystem', { timeout: 300_000 }, () => {
  test('/proc is read-only with nosuid, nodev, noexec; the root is read-only', async (t) => {
    const e = need(t);
    if (!e) return;
    const insp = await run(t, e, manifest(e), ['inspect'], { untilSleeping: true });
    assert.match(insp.stdout, /proc \/proc proc ro,/);
    const rep = await reportOf(t, e, manifest(e));
    const proc = mounts(rep).find((x) => x.target === '/proc');
    assert.ok(proc && proc.fstype === 'proc');
    for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) assert.ok(proc.options.includes(o), `/proc ${o}`);
    const root = mounts(rep).find((x) => x.target === '/');
    assert.ok(root && root.fstype === 'squashfs' && root.options[0] === 'ro', `root ${JSON.stringify(root)}`);
    const w = await run(t, e, manifest(e), ['try-write', '/new-file', '/proc/sys/kernel/hostname']);
    assert.match(w.stdout, /^try-write \/new-file: EROFS$/m);
    assert.match(w.stdout, /^try-write \/proc\/sys\/kernel\/hostname: EROFS$/m);
  });

  test('bind mounts carry nosuid/nodev/noexec/ro as asked; a missing host path is skipped', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, {
      mounts: {
        ...e.base.mounts,
        '/bind-ro': { type: 'bind', host: e.hostDir, options: [] },
        '/bind-rw': { type: 'bind', host: e.hostDir, options: ['rw', 'nosuid', 'noexec'] },
      },
    });
    const r = await run(t, e, m, ['statvfs', '/lib', '/bind-ro', '/bind-rw', '/system']);
    assert.deepEqual(r.status, { code: 0 }, r.stderr);
    assert.match(r.stdout, /^statvfs \/lib: ro nosuid nodev$/m);
    assert.match(r.stdout, /^statvfs \/bind-ro: ro$/m);
    assert.match(r.stdout, /^statvfs \/bind-rw: nosuid noexec$/m);
    const rep = await reportOf(t, e, m);
    assert.ok(!mounts(rep).some((x) => x.target === '/system'), 'the missing /system bind is skipped');
    const w = await run(t, e, m, ['try-write', '/bind-ro/x', '/bind-rw/written']);
    assert.match(w.stdout, /^try-write \/bind-ro\/x: EROFS$/m);
    assert.match(w.stdout, /^try-write \/bind-rw\/written: ok$/m);
    assert.ok(existsSync(join(e.hostDir, 'written')));
  });

  test('mounts are applied parents first, whatever the manifest order', async (t) => {
    const e = need(t);
    if (!e) return;
    // the child comes first in the map: mounted first, the parent bind would hide it
    const m = manifest(e, {
      mounts: {
        '/nest/inner': { type: 'tmpfs', size: 65536n },
        '/nest': { type: 'bind', host: e.hostDir, options: [] },
        '/proc': { type: 'proc' },
      },
    });
    const rep = await reportOf(t, e, m);
    const inner = mounts(rep).find((x) => x.target === '/nest/inner');
    assert.ok(inner && inner.fstype === 'tmpfs', JSON.stringify(mounts(rep)));
    const targets = mounts(rep).map((x) => x.target);
    assert.ok(targets.indexOf('/nest') < targets.indexOf('/nest/inner'));
  });

  test('tmpfs: size enforced, mode 1777, nodev/nosuid/noexec', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, { mounts: { '/proc': { type: 'proc' }, '/tmpfs': { type: 'tmpfs', size: 1048576n } } });
    const r = await run(t, e, m, ['fill', '/tmpfs/big', '4194304']);
    const fill = /^fill \/tmpfs\/big: wrote (\d+) errno (\S+)$/m.exec(r.stdout);
    assert.ok(fill, r.stdout);
    assert.equal(fill[2], 'ENOSPC');
    assert.ok(Number(fill[1]) <= 1048576 && Number(fill[1]) > 0, `wrote ${fill[1]}`);
    const rep = await reportOf(t, e, m);
    const tmpfs = mounts(rep).find((x) => x.target === '/tmpfs');
    assert.ok(tmpfs && tmpfs.fstype === 'tmpfs');
    // the kernel shows mode= only when it differs from tmpfs' default 1777
    for (const o of ['rw', 'nosuid', 'nodev', 'noexec', 'size=1024k']) assert.ok(tmpfs.options.includes(o), `tmpfs ${o}: ${tmpfs.options}`);
    const st = await run(t, e, m, ['stat', '/tmpfs']);
    assert.match(st.stdout, /^stat \/tmpfs: mode=1777 uid=0 gid=0$/m);
  });

  test('resource mounts are read-only with the manifest flags', async (t) => {
    const e = need(t);
    if (!e) return;
    const cat = await run(t, e, manifest(e), ['cat', '/resource/hello'], { untilSleeping: true });
    assert.match(cat.stdout, /^Executing "Cat \{ path: "\/resource\/hello" \}"$/m);
    assert.match(cat.stdout, /^hello from test resource$/m);
    const insp = await run(t, e, manifest(e), ['inspect'], { untilSleeping: true });
    assert.match(insp.stdout, /\/.* \/resource \w+ ro,(\w+,)*nosuid,(\w+,)*nodev,(\w+,)*noexec/);
    const w = await run(t, e, manifest(e), ['try-write', '/resource/x']);
    assert.match(w.stdout, /^try-write \/resource\/x: EROFS$/m);
  });

  test('the persist dir is writable, nodev/nosuid/noexec, and kept across starts', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e);
    const first = await run(t, e, m, ['put', '/data/file', 'kept across starts']);
    assert.match(first.stdout, /^put \/data\/file: ok$/m);
    const second = await run(t, e, m, ['get', '/data/file']);
    assert.match(second.stdout, /^get \/data\/file: kept across starts$/m);
    assert.equal(readFileSync(join(e.dataDir, m.name, 'file'), 'utf8'), 'kept across starts');
    const s = await run(t, e, m, ['statvfs', '/data']);
    assert.match(s.stdout, /^statvfs \/data: nosuid nodev noexec$/m);
    const st = await run(t, e, m, ['stat', '/data']);
    assert.match(st.stdout, /^stat \/data: mode=0700 uid=1000 gid=1000$/m);
  });

  test('the old root is unreachable: only the container mounts exist, host paths do not', async (t) => {
    const e = need(t);
    if (!e) return;
    const rep = await reportOf(t, e, manifest(e));
    const targets = mounts(rep).map((x) => x.target).sort();
    // the dev mount: a tmpfs at /dev; its device nodes are made in it, not mounted
    const dev = ['/dev'];
    const expected = ['/', '/data', ...dev, '/lib', '/lib64', '/proc', '/resource', '/tmpfs', '/unix-sockets'].filter((x) => x !== '/lib64' || existsSync('/lib64'));
    assert.deepEqual(targets, expected.sort());
    const r = await run(t, e, manifest(e), ['exists', e.work, '/work', '/proc/1/root' + e.work, '/etc/passwd', '/test-container']);
    assert.match(r.stdout, new RegExp(`^exists ${e.work}: no$`, 'm'));
    assert.match(r.stdout, /^exists \/etc\/passwd: no$/m);
    assert.match(r.stdout, /^exists \/test-container: yes$/m);
    assert.doesNotMatch(r.stdout, /^exists \/proc\/1\/root.*: yes$/m);
  });
});

describe('network', { timeout: 300_000 }, () => {
  test('default network: only lo, and it is down', async (t) => {
    const e = need(t);
    if (!e) return;
    const rep = await reportOf(t, e, manifest(e));
    assert.deepEqual(rep.get('netdev'), ['lo down']);
  });

  test('host network: the host interfaces', async (t) => {
    const e = need(t);
    if (!e) return;
    const rep = await reportOf(t, e, manifest(e, { network: 'host' }));
    const inside = (rep.get('netdev') ?? []).map((l) => l.split(' ')[0]).sort();
    assert.deepEqual(inside, readdirSync('/sys/class/net').sort());
  });

  test('a named network namespace is joined', async (t) => {
    const e = need(t);
    if (!e) return;
    const ns = `nstc${process.pid}`;
    const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
    if (add.status !== 0) return t.skip(`ip netns add failed: ${add.stderr.trim()}`);
    t.after(() => {
      spawnSync('ip', ['netns', 'del', ns]);
    });
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const rep = await reportOf(t, e, manifest(e, { network: { namespace: ns } }));
    assert.deepEqual(rep.get('netdev'), ['lo up'], 'lo is up in the joined namespace, unlike in a new one');
  });
});

describe('sockets', { timeout: 120_000 }, () => {
  test('the sockets mount shows the socket dir; a socket without permission cannot be connected', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, { sockets: sockets(e, 'no_permission') });
    const path = join(e.socketDir, `${m.name}:0.0.1:no_permission`);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    chmodSync(path, 0o000);
    const fd = openSync('/dev/null', 'r');
    t.after(() => closeSync(fd));
    const seen = await run(t, e, m, ['exists', `/unix-sockets/${m.name}:0.0.1:no_permission`], { fds: { sockets: { no_permission: fd } } });
    assert.match(seen.stdout, /: yes$/m);
    const r = await run(t, e, m, ['socket', 'no_permission'], { fds: { sockets: { no_permission: fd } } });
    assert.match(r.stdout, new RegExp(`^Connecting to /unix-sockets/${m.name}:0\\.0\\.1:no_permission$`, 'm'));
    assert.deepEqual(r.status, { code: 0 }, r.stderr);
  });
});

describe('file descriptors', { timeout: 300_000 }, () => {
  test('only 0, 1, 2 and the manifest sockets (upstream: total 7)', async (t) => {
    const e = need(t);
    if (!e) return;
    const fds: Record<string, number> = {};
    for (const s of ['datagram', 'no_permission', 'seq-packet', 'stream']) {
      fds[s] = openSync('/dev/null', 'r');
      const fd = fds[s];
      t.after(() => closeSync(fd));
    }
    const m = manifest(e, { sockets: e.base.sockets });
    const r = await run(t, e, m, ['inspect'], { untilSleeping: true, fds: { sockets: fds } });
    assert.match(r.stdout, /^ {4}\/proc\/self\/fd\/0: \/dev\/null$/m);
    assert.match(r.stdout, /^ {4}\/proc\/self\/fd\/1: /m);
    assert.match(r.stdout, /^ {4}\/proc\/self\/fd\/2: /m);
    assert.match(r.stdout, /^ {4}total: 7$/m);
  });

  test('with a console: 0, 1, 2, the console and the sockets, published in the environment', async (t) => {
    const e = need(t);
    if (!e) return;
    const fd = openSync('/dev/null', 'r');
    t.after(() => closeSync(fd));
    const m = manifest(e, { sockets: sockets(e, 'stream'), console: { permissions: ['ident'] } });
    const rep = await reportOf(t, e, m, { settings: { console: true }, fds: { console: 'pipe', sockets: { stream: fd } } });
    const open = (rep.get('fd') ?? []).map((l) => Number(l.split(' ')[0]));
    const envs = rep.get('env') ?? [];
    const consoleFd = Number(envs.find((v) => v.startsWith('NORTHSTAR_CONSOLE='))?.split('=')[1]);
    const socketFd = Number(envs.find((v) => v.startsWith('NORTHSTAR_SOCKET_stream='))?.split('=')[1]);
    assert.ok(Number.isInteger(consoleFd) && Number.isInteger(socketFd), JSON.stringify(envs));
    assert.deepEqual(open, [0, 1, 2, consoleFd, socketFd].sort((a, b) => a - b));
  });
});

describe('seccomp', { timeout: 300_000 }, () => {
  test('an allowed value and a value inside the mask pass; a value outside is killed with signal 31', async (t) => {
    const e = need(t);
    if (!e) return;
    for (const flags of ['1', '4']) {
      const r = await run(t, e, manifest(e), ['call-delete-module', flags], { untilSleeping: true });
      assert.match(r.stdout, /^delete_module syscall was successful \(-1\)$/m, `flags ${flags}`);
      assert.deepEqual(r.status, { signal: 15 });
    }
    const killed = await run(t, e, manifest(e), ['call-delete-module', '7']);
    assert.deepEqual(killed.status, { signal: 31 });
    assert.doesNotMatch(killed.stdout, /successful/);
  });

  test('a rule with several values allows every one of them', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, { seccomp: { profile: 'default', allow: { delete_module: { args: { index: 1, values: [1n, 2n, 3n] } } } } });
    for (const flags of ['1', '2', '3']) {
      const r = await run(t, e, m, ['syscall', 'delete_module', '0', flags]);
      assert.deepEqual(r.status, { code: 0 }, `value ${flags}: ${r.stdout}`);
      assert.match(r.stdout, /^syscall delete_module: ret=-1 errno=E[A-Z]+$/m, "ran and failed (no module), not killed");
    }
    assert.deepEqual((await run(t, e, m, ['syscall', 'delete_module', '0', '4'])).status, { signal: 31 });
    // the default profile's personality rule: its last value works too
    const p = await run(t, e, m, ['syscall', 'personality', '0xffffffff']);
    assert.deepEqual(p.status, { code: 0 });
    assert.deepEqual((await run(t, e, m, ['syscall', 'personality', '1'])).status, { signal: 31 });
  });

  test('default profile: no clone without capabilities, masked clone with some, never clone3', async (t) => {
    const e = need(t);
    if (!e) return;
    const plain = { profile: 'default' as const };
    const fork = ['syscall', 'clone', '17'];
    assert.deepEqual((await run(t, e, manifest(e, { seccomp: plain }), fork)).status, { signal: 31 }, 'empty caps: no clone');
    const withCaps = manifest(e, { seccomp: plain, capabilities: ['CAP_KILL'] });
    const ok = await run(t, e, withCaps, fork);
    assert.deepEqual(ok.status, { code: 0 }, ok.stderr);
    assert.match(ok.stdout, /^syscall clone: ret=\d+ errno=0$/m);
    assert.deepEqual((await run(t, e, withCaps, ['syscall', 'clone', String(0x20000 | 17)])).status, { signal: 31 }, 'CLONE_NEWNS');
    const admin = manifest(e, { seccomp: plain, capabilities: ['CAP_SYS_ADMIN'] });
    assert.deepEqual((await run(t, e, admin, ['syscall', 'clone3', '0', '0'])).status, { signal: 31 }, 'clone3');
    assert.deepEqual((await run(t, e, admin, ['syscall', 'getpid'])).status, { code: 0 });
  });

  test('no seccomp section: no filter', async (t) => {
    const e = need(t);
    if (!e) return;
    const rep = await reportOf(t, e, manifest(e, { seccomp: undefined }));
    assert.equal(one(rep, 'seccomp'), '0');
    const filtered = await reportOf(t, e, manifest(e));
    assert.equal(one(filtered, 'seccomp'), '2');
  });
});

describe('exit status', { timeout: 300_000 }, () => {
  test('exit codes 0, 1, 10, 127, 128, 255 are reported exactly', async (t) => {
    const e = need(t);
    if (!e) return;
    for (const code of [0, 1, 10, 127, 128, 255]) {
      const r = await run(t, e, manifest(e), ['exit', String(code)]);
      assert.deepEqual(r.status, { code }, `exit ${code}`);
      assert.match(r.stdout, new RegExp(`^Executing "Exit \\{ code: ${code} \\}"$`, 'm'));
    }
  });

  test('crash exits 101 with the panic text', async (t) => {
    const e = need(t);
    if (!e) return;
    const r = await run(t, e, manifest(e), ['crash']);
    assert.deepEqual(r.status, { code: 101 });
    assert.match(r.stderr, /witness me!/);
  });

  test('signals are reported exactly, raised inside or sent by kill', async (t) => {
    const e = need(t);
    if (!e) return;
    for (const sig of [6, 9, 11, 15]) {
      const r = await run(t, e, manifest(e), ['raise', String(sig)]);
      assert.deepEqual(r.status, { signal: sig }, `raise ${sig}`);
    }
    for (const [name, num] of [['SIGTERM', 15], ['SIGUSR1', 10], ['SIGKILL', 9]] as const) {
      const r = await run(t, e, manifest(e), ['sleep'], { untilSleeping: true, signal: name });
      assert.deepEqual(r.status, { signal: num }, name);
      assert.match(r.stdout, /^Executing "Sleep"$/m);
    }
  });

  test('print --io writes to the chosen stream', async (t) => {
    const e = need(t);
    if (!e) return;
    const out = await run(t, e, manifest(e), ['print', '--io', 'stdout', 'hello stdout'], { untilSleeping: true });
    assert.match(out.stdout, /^hello stdout$/m);
    const err = await run(t, e, manifest(e), ['print', '--io', 'stderr', 'hello stderr'], { untilSleeping: true });
    assert.match(err.stderr, /^hello stderr$/m);
    assert.doesNotMatch(err.stdout, /^hello stderr$/m);
  });
});

describe('failures', { timeout: 300_000 }, () => {
  test('a bind source that cannot be mounted is a step error and leaves no process behind', async (t) => {
    const e = need(t);
    if (!e) return;
    // a regular file onto a directory: mount(2) fails with ENOTDIR
    const m = manifest(e, { mounts: { '/bind-ro': { type: 'bind', host: join(e.hostDir, 'file'), options: [] } } });
    const plan = buildPlan(m, settings(e, { args: ['sleep'] }));
    await assert.rejects(e.launcher.start(plan, {}), (err: unknown) => {
      assert.ok(err instanceof LaunchError, String(err));
      assert.equal(err.errnoName, 'ENOTDIR', err.message);
      assert.match(err.message, /bind-ro|file/);
      return true;
    });
    assert.deepEqual(processesOf(m.name), []);
  });

  test('a missing named network namespace is a step error and leaves no process behind', async (t) => {
    const e = need(t);
    if (!e) return;
    const m = manifest(e, { network: { namespace: `missing-${process.pid}` } });
    const plan = buildPlan(m, settings(e, { args: ['sleep'] }));
    await assert.rejects(e.launcher.start(plan, {}), (err: unknown) => {
      assert.ok(err instanceof LaunchError, String(err));
      assert.equal(err.errnoName, 'ENOENT', err.message);
      assert.match(err.message, new RegExp(`missing-${process.pid}`));
      return true;
    });
    assert.deepEqual(processesOf(m.name), []);
  });
});
