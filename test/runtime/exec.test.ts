/**
 * `exec` (ours): a command inside a running container, through a real runtime and the test
 * container: the container's root, ids, cgroups and seccomp filter; its exit code; refusals
 * with their cause; the command ends with the container and with its connection; the
 * permission; and `nstar exec` with its exit code, stdin and terminal.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isRoot } from '../helpers/tmp.js';
import { until } from '../helpers/until.js';
import { cgroupIno, runCgroupGone } from '../helpers/cgroup.js';
import { isExit, isStarted, nextNotification, startWithTestContainers } from './harness.js';
import { NSTAR, nstar } from '../nstar/run.js';
import { RuntimeError } from '../../src/client/errors.js';
import { permissionSet } from '../../src/console/permissions.js';
import { parseManifest } from '../../src/manifest/index.js';

const TC = 'test-container:0.0.1';
const BIN = '/test-container';
// `once <command>`: the test container ends where the command would sleep.

function text(b: Buffer): string {
  return b.toString('utf8');
}

/** The container's cgroup directories, from a process's /proc/<pid>/cgroup as seen inside. */
function cgroupDirs(procCgroup: string): string[] {
  const dirs: string[] = [];
  for (const line of procCgroup.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (!path || path === '/') continue;
    if (controllers === '') dirs.push(`/sys/fs/cgroup${path}`);
    else if (controllers === 'pids' || controllers === 'memory' || controllers === 'cpu,cpuacct') dirs.push(`/sys/fs/cgroup/${controllers}${path}`);
  }
  return dirs;
}

describe('exec', { skip: !isRoot && 'needs root (the runtime starts containers)', timeout: 600_000 }, () => {
  test('a command runs with the container\'s root, ids, cgroups and seccomp filter, and its exit code', async (t) => {
    const { client } = await startWithTestContainers(t);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));

    const inspect = await client.execCapture(TC, [BIN, 'once', 'inspect']);
    assert.deepEqual(inspect.status, { exit: { code: 0 } }, text(inspect.stderr));
    const out = text(inspect.stdout);
    assert.match(out, /^getuid: 1000$/m);
    assert.match(out, /^getgid: 1000$/m);
    assert.match(out, /^exe: \/test-container$/m, 'the container\'s root');
    assert.match(out, /^pwd: \/$/m);
    // The container's pid namespace: its pids are small, the host's are not.
    const pid = Number(/^getpid: (\d+)$/m.exec(out)?.[1]);
    assert.ok(pid > 1 && pid < 1000, `pid ${pid}`);
    // Its realtime scheduling (the manifest's sched) and capabilities (none) too.
    assert.match(out, /^sched_getscheduler: 1$/m);

    const cg = await client.execCapture(TC, [BIN, 'once', 'cat', '/proc/self/cgroup']);
    const dirs = cgroupDirs(text(cg.stdout));
    assert.ok(dirs.length > 0 && dirs.every((d) => d.includes('test-container')), `the container's cgroups: ${text(cg.stdout)}`);

    assert.deepEqual((await client.execCapture(TC, [BIN, 'exit', '5'])).status, { exit: { code: 5 } });
    // The manifest's seccomp filter: delete_module with flags 7 is outside it.
    assert.deepEqual((await client.execCapture(TC, [BIN, 'call-delete-module', '7'])).status, { signalled: { signal: 31 } });
    // Environment: the container's, plus the request's.
    const env = await client.execCapture(TC, [BIN, 'once', 'cat', '/proc/self/environ'], { env: { EXTRA: 'yes' } });
    assert.match(text(env.stdout), /(\n|\0)EXTRA=yes\0/);
    assert.match(text(env.stdout), /(\n|\0)NORTHSTAR_CONTAINER=test-container:0\.0\.1\0/);
  });

  test('refusals name the cause: a missing program, a stopped container, one exec per connection', async (t) => {
    const { client } = await startWithTestContainers(t);
    await assert.rejects(client.execCapture(TC, [BIN, 'once', 'inspect']), (e: unknown) => e instanceof RuntimeError && /container test-container:0\.0\.1 is not started/.test(e.message));
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    await assert.rejects(client.execCapture(TC, ['no-such-tool']), /no-such-tool: command not found in the container/);
    await assert.rejects(client.execCapture(TC, ['/etc/passwd']), /\/etc\/passwd (does not exist in the container|is not executable)/);
    const x = await client.exec(TC, [BIN, 'sleep']);
    await assert.rejects(client.exec(TC, [BIN, 'once', 'inspect']), /an exec is running on this connection/);
    await x.signal('SIGKILL');
    assert.deepEqual(await x.exit, { signalled: { signal: 9 } });
    // The container itself is untouched by all of it.
    assert.deepEqual((await client.execCapture(TC, [BIN, 'exit', '0'])).status, { exit: { code: 0 } });
  });

  test('the command ends with the container (its cgroups go) and with its connection', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    const dirs = cgroupDirs(text((await client.execCapture(TC, [BIN, 'once', 'cat', '/proc/self/cgroup'])).stdout));
    const procs = (): number => readFileSync(`${dirs[0]}/cgroup.procs`, 'utf8').trim().split('\n').filter(Boolean).length;
    const before = procs();
    const inos = dirs.map((d) => cgroupIno(d));

    // A second connection's exec: closing the connection ends it.
    const other = await rt.client();
    const gone = await other.exec(TC, [BIN, 'sleep']);
    await until('the exec in the container cgroup', () => procs() > before);
    await other.close();
    await assert.rejects(gone.exit);
    await until('the exec of a closed connection is gone', () => procs() === before);

    const x = await client.exec(TC, [BIN, 'sleep']);
    await until('the exec in the container cgroup', () => procs() > before);
    await client.kill(TC, 9);
    assert.deepEqual(await x.exit, { signalled: { signal: 9 } });
    await nextNotification(client, isExit(TC));
    // Removed after the exit (a fresh one may be made for the next start: cgroups.prepare).
    for (const [i, d] of dirs.entries()) await until(`${d} removed after the exit`, () => runCgroupGone(d, inos[i]));
  });

  test('the permission: in the config\'s "full", not in a manifest\'s "full" unless listed', () => {
    assert.ok(permissionSet('full').has('exec'));
    const m = (perms: string): string[] => parseManifest(`name: a\nversion: 0.0.1\ninit: /a\nuid: 1000\ngid: 1000\nconsole:\n  permissions: ${perms}\n`).console!.permissions;
    assert.ok(!m('full').includes('exec'));
    assert.ok(m('[exec, list]').includes('exec'));
  });

  test('nstar exec: output, exit code, stdin with -i, a terminal with -t', async (t) => {
    const { rt, client } = await startWithTestContainers(t);
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    const u = ['-u', rt.consoleUrl];
    const r = await nstar(...u, 'exec', 'test-container', '--', BIN, 'once', 'inspect');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^getuid: 1000$/m);
    assert.equal((await nstar(...u, 'exec', 'test-container', '--', BIN, 'exit', '3')).code, 3);
    assert.equal((await nstar(...u, 'exec', 'test-container', '--', BIN, 'call-delete-module', '7')).code, 128 + 31);
    const missing = await nstar(...u, 'exec', 'test-container', '--', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error: .*nope: command not found in the container/m);

    // -i: stdin reaches the command (cat of its stdin), and its end ends the command.
    const child = spawn(process.execPath, [NSTAR, ...u, 'exec', '-i', 'test-container', '--', BIN, 'once', 'cat', '/proc/self/fd/0'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let got = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (got += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.end('hello from stdin\n');
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(code, 0, err);
    assert.match(got, /hello from stdin/);

    // -t: the command has a terminal (its output has the terminal's \r\n line ends).
    const tty = await nstar(...u, 'exec', '-t', 'test-container', '--', BIN, 'once', 'inspect');
    assert.equal(tty.code, 0, tty.stderr);
    assert.match(tty.stdout, /getuid: 1000\r\n/);
  });
});
