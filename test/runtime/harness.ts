/**
 * A real runtime per test, as upstream's tests do it: own temp dirs (run, data, sockets,
 * repositories), own cgroup, own console on a unix socket; the `northstar` binary runs as
 * a child process (in its private mount namespace) and is shut down after the test.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, writeFileSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Client, type Notification } from '../../src/client/index.js';
import { parseManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { readSigningKey } from '../../src/npk/keys.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
import { UPSTREAM_KEY as KEY, UPSTREAM_PUB as PUB } from '../helpers/fixtures.js';
export { UPSTREAM_EXAMPLES as FIXTURES } from '../helpers/fixtures.js';
export { KEY, PUB };
const NORTHSTAR = join(ROOT, 'dist', 'src', 'cli', 'northstar.js');
export const TEST_CONTAINER_BIN = join(ROOT, 'examples', 'test-container', 'build', 'test-container');

let packed: Promise<Record<string, string>> | undefined;
const PACK_DIR = mkdtempSync(join(tmpdir(), 'ns-npks-'));
process.on('exit', () => rmSync(PACK_DIR, { recursive: true, force: true }));

/** The test container manifest, adapted to this host (no /system, /lib64 binds needed: the binary is static). */
export function testContainerManifest(overrides = ''): string {
  return `name: test-container
version: 0.0.1
init: /test-container
uid: 1000
gid: 1000
sched:
  policy: !fifo
    priority: 11
io:
  stdout: pipe
  stderr: pipe
rlimits:
  nproc:
    soft: 10000
    hard: 20000
seccomp:
  profile: default
  allow:
    delete_module: !args
      index: 1
      values: [1]
      mask: 0x06
    clone: any
    clone3: any
mounts:
  /dev:
    type: dev
  /lib:
    type: bind
    host: /lib
    options: nosuid,nodev
  /system:
    type: bind
    host: /system
    options: nosuid,nodev
  /proc:
    type: proc
  /data:
    type: persist
  /tmpfs:
    type: tmpfs
    size: 20480000
  /resource:
    type: resource
    name: test-resource
    version: '>=0.0.1'
    dir: /
    options: nosuid,nodev,noexec
  /unix-sockets:
    type: sockets
sockets:
  datagram:
    type: datagram
    mode: 0o666
    uid: 1000
    gid: 1000
    passcred: true
  stream:
    type: stream
    mode: 0o666
    uid: 1000
    gid: 1000
    passcred: true
  seq-packet:
    type: seq_packet
    mode: 0o666
    uid: 1000
    gid: 1000
  no_permission:
    type: datagram
    mode: 0o000
${overrides}`;
}

/** Pack a signed NPK from a manifest and files (e.g. a renamed variant of the test resource). */
export async function packOne(name: string, manifestText: string, files: Record<string, { src?: string; text?: string; mode?: number }>): Promise<string> {
  const root = join(PACK_DIR, `root-${name}`);
  mkdirSync(root, { recursive: true });
  for (const [path, f] of Object.entries(files)) {
    const dst = join(root, path);
    if (f.src) copyFileSync(f.src, dst);
    else writeFileSync(dst, f.text ?? '');
    if (f.mode) chmodSync(dst, f.mode);
  }
  const out = join(PACK_DIR, `${name}.npk`);
  await packNpk({ manifest: parseManifest(manifestText), root, key: await readSigningKey(KEY), out });
  return out;
}

/** Signed NPKs of the test container, its resource and variants, packed once per process. */
export function testNpks(): Promise<Record<string, string>> {
  packed ??= (async () => {
    if (!existsSync(TEST_CONTAINER_BIN)) execFileSync('make', ['-s', '-C', join(ROOT, 'examples', 'test-container')]);
    const bin = { src: TEST_CONTAINER_BIN, mode: 0o755 };
    return {
      'test-container': await packOne('test-container', testContainerManifest(), { 'test-container': bin }),
      'test-resource': await packOne('test-resource', 'name: test-resource\nversion: 0.0.1\nuid: 1000\ngid: 1000\n', { hello: { text: 'hello from test-resource\n' } }),
    };
  })();
  return packed;
}

/** Pack an extra NPK with the test-container binary as init. */
export function packTestVariant(name: string, manifestText: string): Promise<string> {
  return packOne(name, manifestText, { 'test-container': { src: TEST_CONTAINER_BIN, mode: 0o755 } });
}

export interface RuntimeOptions {
  /** Extra TOML appended to the config. */
  extraConfig?: string;
  /** Extra top-level TOML keys (before the first table). */
  topConfig?: string;
  /** NPK files copied into the fs repository before start. */
  npks?: string[];
  /** Key for the fs repository (default: the example public key). */
  key?: string | null;
  /** Reuse this directory (a restart); default: a new temp dir removed after the test. */
  dir?: string;
  /** Extra TOML inside [repositories.default]. */
  defaultRepo?: string;
  /** Extra top-level TOML keys (before the first table), e.g. `verity = "kernel"`. */
  globalConfig?: string;
  /** --log-format (default json) and --log-level (default debug) of the runtime. */
  logFormat?: 'human' | 'json';
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /** Extra environment of the runtime process (e.g. NORTHSTAR_FAILPOINTS). */
  env?: NodeJS.ProcessEnv;
  /** The runtime's cgroup name (a restart with the same config); default: a new one. */
  cgroup?: string;
}

export class TestRuntime {
  readonly logs: string[] = [];
  readonly stdout: string[] = [];
  private exitCode: Promise<number | null>;
  constructor(
    readonly dir: string,
    readonly child: ChildProcess,
    readonly consoleUrl: string,
    readonly cgroup: string,
  ) {
    this.exitCode = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const lines = (stream: NodeJS.ReadableStream, into: string[]) => {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          into.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    };
    lines(child.stderr!, this.logs);
    lines(child.stdout!, this.stdout);
  }

  /**
   * Pid of the runtime itself: on Node 20 `node northstar.js` runs it as a child (through
   * unshare) and waits; where it is one process (bin/northstar, Node with process.execve, -d)
   * the child is the runtime and its children are launch cores.
   */
  innerPid(): number {
    const node = readlinkSync(`/proc/${this.child.pid}/exe`);
    const kids = execFileSync('pgrep', ['-P', String(this.child.pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
    return kids.find((k) => {
      try {
        return readlinkSync(`/proc/${k}/exe`) === node;
      } catch {
        return false;
      }
    }) ?? this.child.pid!;
  }

  get repoDir(): string {
    return join(this.dir, 'repo');
  }
  get dataDir(): string {
    return join(this.dir, 'data');
  }
  get socketDir(): string {
    return join(this.dir, 'sockets');
  }

  async client(opts: { subscribe?: boolean } = {}): Promise<Client> {
    return Client.connect(this.consoleUrl, { subscribe: opts.subscribe ?? false, timeout: 30_000 });
  }

  /**
   * Wait until a condition on the runtime's output or host state holds. The deadline is only a
   * bound for a broken runtime, generous for a loaded machine; nothing is asserted on timing.
   */
  async until(ok: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * Wait for a log line (JSON records) whose msg matches: for a container's output, where the
   * output is what the test checks. Not for the runtime's own lines as a signal that
   * something happened: wait on the notification or state, then check the line with logged().
   */
  async waitLog(re: RegExp, timeoutMs = 60_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.logs.find((l) => re.test(l));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no log line matching ${re} within ${timeoutMs} ms; logs:\n${this.logs.slice(-30).join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * The runtime's own log line matching `re`, where the line is the subject (e.g. a warning
   * for the deployer). Call it only after waiting on the notification or state that the
   * runtime reaches after writing the line (an exit notification, a closed connection, the
   * runtime's exit): then only the line's way through the stderr pipe is waited for, which is
   * not ordered with the console socket. Fails if the line is not there.
   */
  async logged(re: RegExp, timeoutMs = 10_000): Promise<string> {
    await this.until(() => this.logs.some((l) => re.test(l)), `the runtime logged a line matching ${re}; last lines:\n${this.logs.slice(-30).join('\n')}\n`, timeoutMs);
    return this.logs.find((l) => re.test(l))!;
  }

  /** SIGTERM and wait; resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited();
  }

  exited(): Promise<number | null> {
    return this.exitCode;
  }
}

export async function startRuntime(t: TestContext, opts: RuntimeOptions = {}): Promise<TestRuntime> {
  const reuse = opts.dir !== undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ns-rt-'));
  for (const d of ['run', 'data', 'sockets', 'repo']) mkdirSync(join(dir, d), { recursive: true });
  for (const npk of opts.npks ?? []) copyFileSync(npk, join(dir, 'repo', `${createHash('sha1').update(npk).digest('hex').slice(0, 8)}.npk`));
  const cgroup = opts.cgroup ?? `northstar-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  const consoleSock = join(dir, 'console.sock');
  const key = opts.key === undefined ? PUB : opts.key;
  const config = `${opts.topConfig ?? ''}
run_dir = "${dir}/run"
data_dir = "${dir}/data"
socket_dir = "${dir}/sockets"
cgroup = "${cgroup}"
shutdown_grace_period = "2s"
${opts.globalConfig ?? ''}

[console.global]
bind = "unix://${consoleSock}"
permissions = "full"

[repositories.default]
type = { fs = { dir = "${dir}/repo" } }
${key ? `key = "${key}"` : ''}
${opts.defaultRepo ?? ''}

[repositories.memory]
type = "mem"
${key ? `key = "${key}"` : ''}
${opts.extraConfig ?? ''}
`;
  writeFileSync(join(dir, 'northstar.toml'), config);
  const child = spawn(process.execPath, [NORTHSTAR, '-c', join(dir, 'northstar.toml'), '--log-format', opts.logFormat ?? 'json', '--log-level', opts.logLevel ?? 'debug'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  const rt = new TestRuntime(dir, child, `unix://${consoleSock}`, cgroup);
  t.after(async () => {
    await rt.stop();
    if (!reuse) rmSync(dir, { recursive: true, force: true });
    // A runtime killed by a test leaves its (empty) cgroups, as upstream's does; remove them.
    execFileSync('sh', ['-c', `for d in /sys/fs/cgroup/*/${cgroup} /sys/fs/cgroup/${cgroup}; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + ; done; true`]);
  });
  // The one wait on the runtime's own log text: no typed signal says that the runtime is up
  // (the console listens before the autostarts, so a connect does not mean it).
  const up = rt.waitLog(/Runtime up and running/, 60_000);
  const died = rt.exited().then((code) => {
    throw new Error(`runtime exited with ${code} before it was up:\n${rt.logs.join('\n')}`);
  });
  await Promise.race([up, died]);
  return rt;
}

/**
 * A runtime with the test container and the test resource installed, and a subscribed
 * client closed after the test.
 */
export async function startWithTestContainers(t: TestContext, opts: RuntimeOptions = {}): Promise<{ rt: TestRuntime; client: Client }> {
  const npks = await testNpks();
  const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!], ...opts });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  return { rt, client };
}

/** The next notification matching `pred` (fails after `timeoutMs`). */
export async function nextNotification(client: Client, pred: (n: Notification) => boolean, timeoutMs = 60_000): Promise<Notification> {
  const it = client[Symbol.asyncIterator]();
  const timer = setTimeout(() => void it.return?.(), timeoutMs);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) throw new Error('notification stream ended');
      if (pred(r.value)) return r.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits until each predicate has matched one notification, in any order. Two containers
 * started together may exit in either order; waiting for them one after the other with
 * nextNotification would discard the second's notification while waiting for the first.
 */
export async function allNotifications(client: Client, preds: ((n: Notification) => boolean)[], timeoutMs = 60_000): Promise<Notification[]> {
  const found: (Notification | undefined)[] = preds.map(() => undefined);
  const it = client[Symbol.asyncIterator]();
  const timer = setTimeout(() => void it.return?.(), timeoutMs);
  try {
    while (found.includes(undefined)) {
      const r = await it.next();
      if (r.done) throw new Error(`notification stream ended with ${found.filter((f) => f === undefined).length} of ${preds.length} awaited notifications missing`);
      const i = preds.findIndex((p, k) => found[k] === undefined && p(r.value));
      if (i >= 0) found[i] = r.value;
    }
    return found as Notification[];
  } finally {
    clearTimeout(timer);
  }
}

/** Matches the exit notification of container `c` (`name:version`). */
export const isExit = (c: string) => (n: Notification) => typeof n === 'object' && 'exit' in n && n.exit[0].toString() === c;
/** Matches the started notification of container `c` (`name:version`). */
export const isStarted = (c: string) => (n: Notification) => typeof n === 'object' && 'started' in n && n.started.toString() === c;
