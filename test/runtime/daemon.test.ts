/**
 * The daemon around the state machine: autostart, mount_on_start, io modes, debug
 * commands, the OOM monitor, bad packages at startup and install, a restart after a
 * SIGKILL, and no leaks over many start/stop cycles (upstream-tests.md §3.N).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError } from '../../src/client/index.js';
import { isRoot } from '../helpers/tmp.js';
import { packTestVariant, startRuntime, testContainerManifest, testNpks, type TestRuntime } from './harness.js';
import { nextNotification, isExit, isStarted } from './harness.js';

const TC = 'test-container:0.0.1';

const next = nextNotification;

function variant(name: string, extra: string, replace: [string, string][] = []): string {
  let m = testContainerManifest(extra).replace('name: test-container', `name: ${name}`);
  for (const [a, b] of replace) m = m.replace(a, b);
  return m;
}

/** What a runtime holds: its fds, its mounts, loop devices, cgroup dirs, socket files. */
function resources(rt: TestRuntime): { fds: number; mounts: number; loops: number; cgroups: number; sockets: number } {
  const pid = rt.innerPid();
  const mounts = readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').filter((l) => l.includes(rt.dir)).length;
  const loops = execFileSync('losetup', ['-a'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(rt.dir)).length;
  let cgroups = 0;
  for (const ctrl of ['memory', 'cpu']) {
    const out = execFileSync('find', ['/sys/fs/cgroup/' + ctrl, '-type', 'd', '-path', `*${rt.cgroup}*`], { encoding: 'utf8' });
    cgroups += out.split('\n').filter(Boolean).length;
  }
  return { fds: readdirSync(`/proc/${pid}/fd`).length, mounts, loops, cgroups, sockets: readdirSync(rt.socketDir).length };
}

describe('runtime daemon', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  test('autostart relaxed starts at boot; mount_on_start mounts at boot', async (t) => {
    const auto = await packTestVariant('auto', variant('auto', 'autostart: relaxed\n'));
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [auto, npks['test-container']!, npks['test-resource']!], defaultRepo: 'mount_on_start = true' });
    const client = await rt.client();
    t.after(() => client.close());
    // The runtime is up only once its autostarts are done: auto runs by now.
    assert.ok((await client.inspect('auto:0.0.1')).process);
    assert.equal((await client.inspect(TC)).mounted, true);
    assert.equal((await client.inspect(TC)).process, null);
  });

  test('a critical autostart that fails at boot keeps the runtime from coming up', async (t) => {
    const bad = await packTestVariant('crit-boot', variant('crit-boot', 'autostart: critical\n', [["name: test-resource", 'name: not-installed']]));
    await assert.rejects(startRuntime(t, { npks: [bad] }), /runtime exited with 1 before it was up[\s\S]*autostart of crit-boot:0\.0\.1 failed/);
  });

  test('a critical container that exits non-zero shuts the runtime down with exit 1', async (t) => {
    const crit = await packTestVariant('crit', variant('crit', 'autostart: critical\n'));
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [crit, npks['test-resource']!] });
    const client = await rt.client({ subscribe: true });
    await client.kill('crit:0.0.1', 15);
    assert.deepEqual(JSON.parse(JSON.stringify((await next(client, isExit('crit:0.0.1'))) as object)), { exit: ['crit:0.0.1', { signalled: { signal: 15 } }] });
    await next(client, (n) => n === 'shutdown');
    assert.equal(await rt.exited(), 1);
    // The log says why the runtime went down (no client is left to be told), and that the
    // shutdown ran to its end (the console is closed by then).
    await rt.logged(/critical container crit:0\.0\.1/);
    await rt.logged(/Shutdown complete/);
  });

  test('io: pipe logs lines with the container as target, inherit copies to the runtime, discard drops', async (t) => {
    const npks = await testNpks();
    const inherit = await packTestVariant('inherit', variant('inherit', '', [['stdout: pipe', 'stdout: inherit'], ['stderr: pipe', 'stderr: discard']]));
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!, inherit] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    await client.start(TC, { args: ['print', '--io', 'stderr', 'hello stderr'] });
    const line = await rt.waitLog(/hello stderr/);
    assert.equal(JSON.parse(line).target, TC);
    await client.kill(TC, 15);
    await next(client, isExit(TC));
    await client.start('inherit:0.0.1', { args: ['print', 'hello inherited'] });
    await rt.until(() => rt.stdout.some((l) => l.includes('hello inherited')), 'inherited stdout reaches the runtime stdout');
    await client.kill('inherit:0.0.1', 15);
    await next(client, isExit('inherit:0.0.1'));
    await client.start('inherit:0.0.1', { args: ['print', '--io', 'stderr', 'never seen'] });
    // The command echo ("Executing ...") goes to the inherited stdout; the message itself went to the discarded stderr.
    await rt.until(() => rt.stdout.some((l) => l.startsWith('Executing') && l.includes('never seen')), 'the command echo on the inherited stdout');
    await client.kill('inherit:0.0.1', 15);
    await next(client, isExit('inherit:0.0.1'));
    assert.ok(!rt.stdout.some((l) => l === 'never seen') && !rt.logs.some((l) => l.includes('"msg":"never seen"')));
  });

  test('debug commands run with <PID> and <CONTAINER> substituted before the app starts', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, {
      npks: [npks['test-container']!, npks['test-resource']!],
      extraConfig: '[debug]\ncommands = ["/bin/echo pid=<PID> container=<CONTAINER>"]\n',
    });
    const client = await rt.client();
    t.after(() => client.close());
    await client.start(TC, { args: ['sleep'] });
    const pid = (await client.inspect(TC)).process!.pid;
    await rt.waitLog(new RegExp(`pid=${pid} container=test-container:0\\.0\\.1`));
  });

  test('the OOM monitor sends a c_group memory notification', async (t) => {
    const npks = await testNpks();
    const eater = await packTestVariant(
      'eater',
      variant('eater', 'cgroups:\n  memory:\n    oom_monitor: true\n    memory_hard_limit: 32000000\n    swappiness: 0\n', [['size: 20480000', 'size: 100000000']]),
    );
    const rt = await startRuntime(t, { npks: [npks['test-resource']!, eater] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    await client.start('eater:0.0.1', { args: ['fill', '/tmpfs/big', '64000000'] });
    const n = await next(client, (x) => typeof x === 'object' && 'c_group' in x, 60_000);
    assert.equal((n as { c_group: [unknown, unknown] }).c_group[0]!.toString(), 'eater:0.0.1');
    // The warning for the deployer, written before the notification.
    await rt.logged(/eater:0\.0\.1.*memory event/);
  });

  test('tampered and wrongly signed packages: skipped at startup, refused at install', async (t) => {
    const npks = await testNpks();
    const tampered = join(mkdtempSync(join(tmpdir(), 'ns-tamper-')), 'tampered.npk');
    t.after(() => rmSync(join(tampered, '..'), { recursive: true, force: true }));
    const bytes = readFileSync(npks['test-container']!);
    const at = bytes.indexOf('init: /test-container');
    bytes[at + 7] = bytes[at + 7]! ^ 1;
    writeFileSync(tampered, bytes);
    const rt = await startRuntime(t, { npks: [tampered, npks['test-resource']!] });
    const client = await rt.client();
    t.after(() => client.close());
    assert.deepEqual((await client.list()).map(String), ['test-resource:0.0.1']);
    assert.ok(rt.logs.some((l) => /skip|corrupt|failed to load|refus/i.test(l) && /"level":50/.test(l)), 'an error is logged for the bad package');
    await assert.rejects(client.install(tampered, 'memory'), (e: unknown) => e instanceof RuntimeError && 'unexpected' in e.error);
    await assert.rejects(client.install(tampered, 'default'), (e: unknown) => e instanceof RuntimeError && 'unexpected' in e.error);
    assert.deepEqual((await client.list()).map(String), ['test-resource:0.0.1']);
    assert.ok(readdirSync(rt.repoDir).every((f) => !f.includes('test-container')), 'nothing of the refused install is left');
  });

  test('a second start after a SIGKILL of the first comes up clean', async (t) => {
    const npks = await testNpks();
    const dir = mkdtempSync(join(tmpdir(), 'ns-restart-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const first = await startRuntime(t, { dir, npks: [npks['test-container']!, npks['test-resource']!] });
    const c1 = await first.client();
    // The answer to the start means the container runs.
    await c1.start(TC, { args: ['sleep'] });
    process.kill(first.innerPid(), 'SIGKILL');
    await first.exited();
    const second = await startRuntime(t, { dir });
    const c2 = await second.client({ subscribe: true });
    t.after(() => c2.close());
    await c2.start(TC, { args: ['sleep'] });
    await next(c2, isStarted(TC));
    await c2.kill(TC, 15);
    assert.deepEqual(JSON.parse(JSON.stringify((await next(c2, isExit(TC))) as object)), { exit: [TC, { signalled: { signal: 15 } }] });
  });

  test('200 start/stop cycles leave no mount, loop device, cgroup, socket file or fd behind', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    // Warm up once (first mounts, lazily opened fds), then count.
    await client.start(TC, { args: ['exit', '0'] });
    await next(client, isExit(TC));
    await client.umount([TC, 'test-resource:0.0.1']);
    const before = resources(rt);
    for (let i = 0; i < 200; i++) {
      await client.start(TC, { args: i % 2 ? ['exit', '0'] : ['crash'] });
      await next(client, isExit(TC));
    }
    await client.umount([TC, 'test-resource:0.0.1']);
    // Loop devices and cgroups may take a moment to go after the umount answer: wait for the
    // count to come back, then compare exactly.
    await rt.until(() => isDeepStrictEqual(resources(rt), before), `resources back to ${JSON.stringify(before)}`).catch(() => undefined);
    assert.deepEqual(resources(rt), before);
    assert.ok(!existsSync(join(rt.dir, 'run', TC)) || readdirSync(join(rt.dir, 'run', TC)).length === 0);
  });
});

