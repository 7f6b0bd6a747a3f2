/**
 * The example containers against a real runtime, one runtime per test: upstream's
 * examples tests (upstream-tests.md §3 area M) plus ours (interpreter resource, Node.js
 * app, netns, inspect, seccomp, hello-world autostart). Needs root.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Notification } from '../../src/client/index.js';
import { isRoot, hasCommand } from '../helpers/tmp.js';
import { parseManifest } from '../../src/manifest/index.js';
import { KEY, startRuntime, type TestRuntime } from '../runtime/harness.js';
import { until } from '../helpers/until.js';
import { buildExamples, EXAMPLES, packExample, ROOT } from './pack.js';

/** The next notification matching pred (the stream ends after timeoutMs: a failure, not a timing assertion). */
async function next(client: Client, pred: (n: Notification) => boolean, timeoutMs = 60_000): Promise<Notification> {
  const it = client[Symbol.asyncIterator]();
  const timer = setTimeout(() => void it.return?.(), timeoutMs);
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) throw new Error('notification stream ended before the expected notification');
      if (pred(r.value)) return r.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** The exit status of container c, from its exit notification. */
async function exitOf(client: Client, c: string, timeoutMs?: number): Promise<unknown> {
  const n = await next(client, (x) => typeof x === 'object' && 'exit' in x && x.exit[0].toString() === c, timeoutMs);
  assert.ok(typeof n === 'object' && 'exit' in n);
  return n.exit[1];
}

/** A runtime with these examples in its fs repository and a subscribed client. */
async function runtimeWith(t: import('node:test').TestContext, dirs: string[]): Promise<{ rt: TestRuntime; client: Client }> {
  const npks = await Promise.all(dirs.map((d) => packExample(d)));
  const rt = await startRuntime(t, { npks });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  return { rt, client };
}

/**
 * cpueater's cgroups.parent `cpu-intense` is created by the runtime below its own cgroup
 * (per hierarchy); remove what this test's runtime left of it, once the runtime is down.
 */
function cleanCpuIntense(t: import('node:test').TestContext, rt: TestRuntime): void {
  const existed = new Set(execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '5', '-type', 'd', '-name', 'cpu-intense'], { encoding: 'utf8' }).split('\n').filter(Boolean));
  t.after(async () => {
    await rt.stop();
    const now = execFileSync('find', ['/sys/fs/cgroup', '-maxdepth', '5', '-type', 'd', '-name', 'cpu-intense'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    for (const d of now) if (!existed.has(d)) execFileSync('sh', ['-c', `find "$1" -depth -type d -exec rmdir {} + 2>/dev/null; true`, 'sh', d]);
  });
}

/** The app's stdout/stderr lines are logged by the runtime (debug) as the record's msg. */
function appLines(rt: TestRuntime): string[] {
  return rt.logs.flatMap((l) => {
    try {
      const rec = JSON.parse(l) as { msg?: unknown };
      return typeof rec.msg === 'string' ? [rec.msg] : [];
    } catch {
      return [];
    }
  });
}

test('scripts/pack-examples.mjs packs every example into a signed NPK', { timeout: 300_000 }, (t) => {
  buildExamples();
  const out = mkdtempSync(join(tmpdir(), 'ns-pack-examples-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-examples.mjs'), '--key', KEY, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
  const want = readdirSync(EXAMPLES)
    .filter((d) => existsSync(join(EXAMPLES, d, 'manifest.yaml')))
    .map((d) => {
      const m = parseManifest(readFileSync(join(EXAMPLES, d, 'manifest.yaml'), 'utf8'));
      return `${m.name}-${m.version}.npk`;
    })
    .sort();
  assert.deepEqual(readdirSync(out).sort(), want);
  for (const npk of ['hello-world-0.0.1.npk', 'message-0.0.1.npk', 'message-0.0.2.npk', 'busybox-0.0.1.npk', 'hello-busybox-0.0.1.npk', 'node-0.0.1.npk', 'node-hello-0.0.1.npk']) {
    assert.ok(want.includes(npk), `${npk} is among the examples`);
  }
});

/**
 * Wait until the app printed a line matching re (its output reaches the log through a pipe,
 * possibly after the exit notification); returns every app line so far. The limit only
 * turns a missing line into a failure.
 */
async function waitLine(rt: TestRuntime, re: RegExp, timeoutMs = 60_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const lines = appLines(rt);
    if (lines.some((l) => re.test(l))) return lines;
    if (Date.now() > deadline) assert.fail(`no app line matching ${re}; app lines:\n${lines.slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Its output as `nstar logs` / the `logs` request shows it (ours: the runtime keeps `io: pipe`
 * output per container), once a line matching `re` is in: the lines, `[stream] text`.
 */
async function keptLines(client: Client, c: string, re: RegExp): Promise<string[]> {
  let lines: string[] = [];
  await until(`${c}'s kept output shows ${re}`, async () => {
    lines = (await client.logs(c)).lines.map((l) => `[${l.stream}] ${l.line}`);
    return lines.some((l) => re.test(l));
  });
  return lines;
}

/**
 * An autostarted container has exited (its start precedes any client, so its notifications
 * cannot be awaited): the runtime is up only after its autostarts, so inspect showing no
 * process means it has exited. Its exit status, which only the log has then, is checked last.
 */
async function exitedAtBoot(rt: TestRuntime, client: Client, c: string): Promise<void> {
  await until(`${c} has exited`, async () => (await client.inspect(c)).process === null);
  await rt.logged(new RegExp(`Process ${c.replace(/\./g, '\\.')} exited .* with status Exit\\(0\\)`));
}

describe('examples', { skip: !isRoot && 'needs root (a real runtime: mounts, namespaces, cgroups)', timeout: 600_000 }, () => {
  test('hello-world starts at boot (autostart relaxed), greets with its name and exits 0', async (t) => {
    const npk = await packExample('hello-world');
    const rt = await startRuntime(t, { npks: [npk] });
    await rt.waitLog(/Hello again hello-world:0\.0\.1!/);
    await rt.waitLog(/\.\.\.and hello again #3 hello-world:0\.0\.1 \.\.\./);
    await rt.waitLog(/Goodbye from hello-world:0\.0\.1/);
    const client = await rt.client();
    t.after(() => client.close());
    await exitedAtBoot(rt, client, 'hello-world:0.0.1');
    // The same output through nstar logs (ours), as the README's Quickstart shows it.
    await keptLines(client, 'hello-world:0.0.1', /Goodbye from hello-world:0\.0\.1/);
    const shown = execFileSync(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'nstar.js'), '-u', rt.consoleUrl, 'logs', 'hello-world'], { encoding: 'utf8' });
    assert.match(shown, /^Hello again hello-world:0\.0\.1!\n(.*\n)*Goodbye from hello-world:0\.0\.1\n$/);
  });

  test('all examples in one repository (as in the Quickstart): all installed, hello-world autostarts', async (t) => {
    buildExamples();
    const out = mkdtempSync(join(tmpdir(), 'ns-quickstart-npks-'));
    t.after(() => rmSync(out, { recursive: true, force: true }));
    execFileSync(process.execPath, [join(ROOT, 'scripts', 'pack-examples.mjs'), '--key', KEY, '--out', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    const npks = readdirSync(out).map((f) => join(out, f));
    const rt = await startRuntime(t, { npks });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    const listed = (await client.list()).map(String).sort();
    assert.deepEqual(listed, readdirSync(out).map((f) => f.replace(/-(\d+\.\d+\.\d+)\.npk$/, ':$1')).sort());
    await exitedAtBoot(rt, client, 'hello-world:0.0.1');
    await client.start('hello-busybox:0.0.1');
    assert.deepEqual(await exitOf(client, 'hello-busybox:0.0.1'), { exit: { code: 0 } });
    await waitLine(rt, /^Hello once more from v0\.0\.2!$/);
  });

  test('crashing exits with 101 after a panic line', async (t) => {
    const { rt, client } = await runtimeWith(t, ['crashing']);
    await client.start('crashing:0.0.1');
    assert.deepEqual(await exitOf(client, 'crashing:0.0.1'), { exit: { code: 101 } });
    await waitLine(rt, /^thread 'main' panicked at /);
    // And through nstar logs: the panic on stderr.
    await keptLines(client, 'crashing:0.0.1', /^\[stderr\] thread 'main' panicked at /);
  });

  test('console: ident, list, inspect over the console fd, then a self-kill with SIGTERM; it stays mounted', async (t) => {
    const { rt, client } = await runtimeWith(t, ['console', 'hello-world']);
    await client.start('console:0.0.1');
    assert.deepEqual(await exitOf(client, 'console:0.0.1'), { signalled: { signal: 15 } });
    const lines = await waitLine(rt, /^Killing console:0\.0\.1 with SIGTERM$/);
    assert.ok(lines.includes('We are console:0.0.1'), 'ident');
    assert.ok(lines.some((l) => l.startsWith('Listing repositories is denied: ') && l.includes('"permission_denied":"repositories"')), 'repositories is not permitted');
    assert.ok(lines.includes('console:0.0.1 is started'), 'list and inspect: itself');
    assert.ok(lines.includes('hello-world:0.0.1 is stopped') || lines.includes('hello-world:0.0.1 is started'), 'list and inspect: the other container');
    assert.ok(lines.includes('Killing console:0.0.1 with SIGTERM'));
    const res = await client.umount(['console:0.0.1']);
    assert.ok(res.length === 1 && res[0] && 'ok' in res[0], `umount after the exit: ${JSON.stringify(res)}`);
  });

  test('cpueater eats CPU in a cgroup with cpu.shares 100 below cpu-intense', async (t) => {
    const { rt, client } = await runtimeWith(t, ['cpueater']);
    cleanCpuIntense(t, rt);
    await client.start('cpueater:0.0.1');
    // The app's output is the subject: the threads exist once it says so (they are counted below).
    await rt.waitLog(/Eating CPU with 4 threads/);
    const pid = (await client.inspect('cpueater:0.0.1')).process?.pid;
    assert.ok(pid, 'cpueater runs');
    // The container's cpu cgroup, from its init's /proc/<pid>/cgroup (v1: "<id>:cpu,cpuacct:<path>").
    const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => /^\d+:([^:]*,)?cpu(,[^:]*)?:/.test(l));
    assert.ok(line, 'a cpu cgroup line');
    const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
    assert.match(path, /\/cpu-intense\/cpueater$/);
    const dir = join('/sys/fs/cgroup/cpu', path);
    assert.equal(readFileSync(join(dir, 'cpu.shares'), 'utf8').trim(), '100');
    const tasks = readFileSync(join(dir, 'tasks'), 'utf8').split('\n').filter(Boolean);
    assert.ok(tasks.length >= 5, `the 4 eating threads and main are in the cgroup (${tasks.length} tasks)`);
    await client.kill('cpueater:0.0.1', 'SIGTERM');
    assert.deepEqual(await exitOf(client, 'cpueater:0.0.1'), { signalled: { signal: 15 } });
  });

  test('cpueater refuses a THREADS that is not a number from 1 to 64', async (t) => {
    const { rt, client } = await runtimeWith(t, ['cpueater']);
    cleanCpuIntense(t, rt);
    await client.start('cpueater:0.0.1', { env: { THREADS: 'many' } });
    assert.deepEqual(await exitOf(client, 'cpueater:0.0.1'), { exit: { code: 1 } });
    await rt.waitLog(/cpueater: THREADS must be a number from 1 to 64, not \\"many\\"/);
  });

  test('memeater: the OOM monitor reports the out-of-memory as a c_group notification', async (t) => {
    const { rt, client } = await runtimeWith(t, ['memeater']);
    await client.start('memeater:0.0.1');
    const n = await next(client, (x) => typeof x === 'object' && 'c_group' in x && x.c_group[0].toString() === 'memeater:0.0.1').catch((e: unknown) => {
      throw new Error(`${String(e)}; logs:\n${rt.logs.slice(-40).join('\n')}`);
    });
    assert.ok(typeof n === 'object' && 'c_group' in n);
    const ev = n.c_group[1] as { memory: { oom: unknown; oom_kill: unknown } };
    assert.ok(Number(ev.memory.oom ?? 0) >= 1 || Number(ev.memory.oom_kill ?? 0) >= 1, `an oom event: ${JSON.stringify(n, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
    // The warning for the deployer, written before the notification.
    await rt.logged(/Process memeater:0\.0\.1 memory event/);
    assert.deepEqual(await exitOf(client, 'memeater:0.0.1'), { signalled: { signal: 9 } });
    await waitLine(rt, /^Eaten \d+ MiB$/);
  });

  test('persistence writes Hello! to /data/file and reads it back; uninstall --wipe removes the data', async (t) => {
    const { rt, client } = await runtimeWith(t, ['persistence']);
    await client.start('persistence:0.0.1');
    await rt.waitLog(/Writing Hello! to \/data\/file/);
    await rt.waitLog(/Content of \/data\/file: Hello!/);
    await client.kill('persistence:0.0.1', 15);
    await exitOf(client, 'persistence:0.0.1');
    const dir = join(rt.dataDir, 'persistence');
    assert.equal(readFileSync(join(dir, 'file'), 'utf8'), 'Hello!');
    const st = statSync(dir);
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, 1000);
    await client.uninstall('persistence:0.0.1', { wipe: true });
    assert.equal(existsSync(dir), false, 'the persist dir is wiped');
  });

  test('seccomp runs under the default profile (filter mode)', async (t) => {
    const { rt, client } = await runtimeWith(t, ['seccomp']);
    await client.start('seccomp:0.0.1');
    const lines = await waitLine(rt, /running under the default seccomp profile/);
    assert.ok(lines.some((l) => /^Seccomp:\s+2$/.test(l)), 'Seccomp: 2 in /proc/self/status');
    await client.kill('seccomp:0.0.1', 15);
    assert.deepEqual(await exitOf(client, 'seccomp:0.0.1'), { signalled: { signal: 15 } });
  });

  test('hello-resource prints the highest matching message resource (0.0.2)', async (t) => {
    const { rt, client } = await runtimeWith(t, ['message-0.0.1', 'message-0.0.2', 'hello-resource']);
    await client.start('hello-resource:0.0.1');
    await rt.waitLog(/0: Content of \/message\/hello: Hello once more from v0\.0\.2!/);
    await rt.waitLog(/1: Content of \/message\/hello: Hello once more from v0\.0\.2!/);
    await client.kill('hello-resource:0.0.1', 15);
    await exitOf(client, 'hello-resource:0.0.1');
  });

  test('hello-busybox: an app with no root of its own runs the busybox of a resource on a script of another', async (t) => {
    const { rt, client } = await runtimeWith(t, ['busybox', 'message-0.0.1', 'hello-busybox']);
    await client.start('hello-busybox:0.0.1');
    assert.deepEqual(await exitOf(client, 'hello-busybox:0.0.1'), { exit: { code: 0 } });
    const lines = await waitLine(rt, /^\(printed by the busybox shell/);
    assert.ok(lines.includes('Hello once more from 0.0.1!'), `the message of the resource: ${lines.slice(-10).join(' | ')}`);
    assert.ok(lines.includes('(printed by the busybox shell of hello-busybox:0.0.1)'));
  });

  test('sockets: the app sends Hello! through its manifest socket and receives it', async (t) => {
    const { rt, client } = await runtimeWith(t, ['sockets']);
    await client.start('sockets:0.0.1');
    await rt.waitLog(/Connecting to \/unix-sockets\/sockets:0\.0\.1:hello/);
    await rt.waitLog(/Received Hello!/);
    await client.kill('sockets:0.0.1', 15);
    await exitOf(client, 'sockets:0.0.1');
  });

  test('token: the client gets a token from the runtime, the server verifies it with the runtime', async (t) => {
    const { rt, client } = await runtimeWith(t, ['token-server', 'token-client']);
    await client.start('token-server:0.0.1');
    // The app's output is the subject: the client can connect only once the server listens.
    await rt.waitLog(/Listening on 127\.0\.0\.1:6543/);
    await client.start('token-client:0.0.1');
    assert.deepEqual(await exitOf(client, 'token-client:0.0.1'), { exit: { code: 0 } });
    await rt.waitLog(/Received: yay!/);
    await rt.waitLog(/Token from token-client: Ok/);
    await client.kill('token-server:0.0.1', 15);
    await exitOf(client, 'token-server:0.0.1');
  });

  test('custom reads its own custom manifest section through console inspect', async (t) => {
    const { rt, client } = await runtimeWith(t, ['custom']);
    await client.start('custom:0.0.1');
    assert.deepEqual(await exitOf(client, 'custom:0.0.1'), { exit: { code: 0 } });
    await rt.waitLog(/hello again/);
  });

  test('inspect shows rlimits, supplementary groups, the 10 MB tmpfs and sysfs', async (t) => {
    const { rt, client } = await runtimeWith(t, ['inspect']);
    await client.start('inspect:0.0.1');
    assert.deepEqual(await exitOf(client, 'inspect:0.0.1'), { exit: { code: 0 } });
    const lines = await waitLine(rt, /^inspect: done$/);
    const groups = ['src', 'staff'].map((g) => execFileSync('getent', ['group', g], { encoding: 'utf8' }).split(':')[2]);
    assert.ok(lines.includes(`supplementary groups: ${groups.join(' ')}`), `groups ${groups.join(' ')}: ${lines.filter((l) => l.startsWith('suppl')).join()}`);
    assert.ok(lines.includes('pid 1 uid 1000 gid 1000 euid 1000 egid 1000') || lines.some((l) => /^pid \d+ uid 1000 gid 1000 euid 1000 egid 1000$/.test(l)));
    assert.ok(lines.includes('rlimit nproc: soft 10000 hard 20000'));
    assert.ok(lines.includes('/tmp writable: yes'));
    assert.ok(lines.includes('/ writable: no'));
    const tmp = lines.find((l) => l.startsWith('/tmp: '));
    const bytes = Number(tmp?.split(' ')[1]);
    assert.ok(bytes >= 9_900_000 && bytes <= 10_100_000, `tmpfs of about 10 MB: ${tmp}`);
    assert.ok(lines.some((l) => /^\s*sysfs \/sys sysfs /.test(l)), `sysfs at /sys: ${lines.join('\n')}`);
    assert.ok(lines.some((l) => /^\/sys\/class\/net:.* lo( |$)/.test(l)), 'the sysfs shows the network interfaces');
    assert.ok(lines.some((l) => /^\s*tmpfs \/tmp tmpfs /.test(l)), 'tmpfs at /tmp');
  });

  test('netns: the app joins the named network namespace and sees its interfaces only', async (t) => {
    if (!hasCommand('ip')) return t.skip('ip (iproute2) is not installed');
    const ns = `ns-example-${process.pid}`;
    execFileSync('ip', ['netns', 'add', ns]);
    t.after(() => execFileSync('ip', ['netns', 'del', ns]));
    // An address only this namespace has (no dummy/veth modules needed).
    execFileSync('ip', ['-n', ns, 'addr', 'add', '10.123.45.67/32', 'dev', 'lo']);
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const npk = await packExample('netns', (m) => m.replace('!namespace container', `!namespace ${ns}`));
    const rt = await startRuntime(t, { npks: [npk] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    await client.start('netns:0.0.1');
    assert.deepEqual(await exitOf(client, 'netns:0.0.1'), { exit: { code: 0 } });
    const lines = await waitLine(rt, /^netns: done$/);
    assert.ok(lines.includes('Interfaces in this network namespace:'));
    assert.ok(lines.some((l) => /^1: lo UP LOOPBACK inet 127\.0\.0\.1 inet 10\.123\.45\.67$/.test(l)), `lo with the address of the namespace: ${lines.slice(-6).join(' | ')}`);
    const hostIfs = readdirSync('/sys/class/net').filter((i) => i !== 'lo');
    for (const i of hostIfs) assert.ok(!lines.some((l) => l.includes(`: ${i} `) || l.endsWith(`: ${i}`)), `host interface ${i} is not visible`);
  });

  test('node-hello: a TypeScript app runs on the Node.js of a resource and uses the client library', async (t) => {
    const { rt, client } = await runtimeWith(t, ['node', 'node-hello', 'hello-world']);
    await client.start('node-hello:0.0.1');
    const status = await exitOf(client, 'node-hello:0.0.1', 60_000);
    assert.deepEqual(status, { exit: { code: 0 } }, appLines(rt).slice(-20).join('\n'));
    const lines = await waitLine(rt, /^Inspect node-hello:0\.0\.1: /);
    // Its output through nstar logs too.
    await keptLines(client, 'node-hello:0.0.1', /^\[stdout\] Hello from TypeScript in node-hello:0\.0\.1 on Node\.js /);
    assert.ok(lines.includes(`Hello from TypeScript in node-hello:0.0.1 on Node.js ${process.version}`), lines.slice(-10).join('\n'));
    assert.ok(lines.includes('Installed containers: hello-world:0.0.1, node-hello:0.0.1, node:0.0.1'), lines.slice(-10).join('\n'));
    assert.ok(lines.some((l) => /^Inspect node-hello:0\.0\.1: init \/node\/lib\/ld\.so, pid \d+, repository default$/.test(l)));
  });
});
