/**
 * The README's Quickstart from a fresh clone: the first command installs, builds, packs the
 * examples and starts the runtime; `npx nstar ps` then shows them (hello-world autostarted).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRoot, tempDir } from './helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function portInUse(port: number): boolean {
  return spawnSync('sh', ['-c', `ss -Hltn "sport = :${port}" | grep -q .`]).status === 0;
}

test('Quickstart from a fresh clone: runtime up with the examples, nstar ps shows them', { skip: (!isRoot && 'needs root') || (portInUse(4200) && 'port 4200 is in use (a runtime is already running)'), timeout: 900_000 }, (t) => {
  const dir = tempDir(t, 'ns-quickstart-');
  const clone = join(dir, 'northstar');
  execFileSync('git', ['clone', '-q', ROOT, clone]);
  const pidFile = join(clone, 'target', 'northstar', 'northstar.pid');
  // Stopped in `finally`, not in t.after: the temp dir's own after-hook runs first.
  const stop = () => {
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    // Wait for the orderly shutdown (unmounts, cgroups) before the clone is removed.
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        break;
      }
      execFileSync('sleep', ['0.1']);
    }
  };
  try {
    run(clone);
  } finally {
    stop();
  }
});

function run(clone: string): void {
  // The clone's tools are linked into a directory of the test (install.sh honours
  // NORTHSTAR_BIN_DIR), not over the /usr/local/bin links of the checkout under test: the
  // clone is removed afterwards, and those links must keep working.
  const bin = join(clone, '..', 'bin');
  const qs = spawnSync('./scripts/quickstart.sh', { cwd: clone, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NORTHSTAR_BIN_DIR: bin } });
  assert.equal(qs.status, 0, `quickstart failed:\n${qs.stdout}\n${qs.stderr}`);
  assert.match(qs.stdout, /northstar is running \(pid \d+\)/);
  for (const tool of ['nstar', 'sextant', 'northstar']) assert.ok(existsSync(join(bin, tool)), `the Quickstart linked ${tool}`);
  // The pid file names the runtime itself: one Node process in a mount namespace of its own.
  const pid = Number(readFileSync(join(clone, 'target', 'northstar', 'northstar.pid'), 'utf8'));
  assert.equal(readlinkSync(`/proc/${pid}/exe`), realpathSync(process.execPath), 'the pid file names the Node runtime');
  assert.notEqual(readlinkSync(`/proc/${pid}/ns/mnt`), readlinkSync('/proc/self/ns/mnt'), 'the runtime runs in its own mount namespace');
  const ps = spawnSync('npx', ['nstar', 'ps'], { cwd: clone, encoding: 'utf8' });
  assert.equal(ps.status, 0, ps.stderr);
  // Autostarted; it greets for a few seconds and exits 0 (ps then says so).
  assert.match(ps.stdout, /hello-world\s+\|\s+0\.0\.1\s+\|\s+app\s+\|\s+(running|exited \(0\) \d+s ago)/);
  assert.match(ps.stdout, /test-container\s+\|\s+0\.0\.1\s+\|\s+app\s+\|\s+installed/);
  const log = readFileSync(join(clone, 'target', 'northstar', 'northstar.log'), 'utf8');
  assert.match(log, /Started hello-world:0\.0\.1/);

  // Safe by default: full permissions only on the unix socket that only root can open (nstar
  // finds it); TCP, open to every local user and to host-network containers, only reads.
  const socket = join(clone, 'target', 'northstar', 'console.sock');
  assert.equal(statSync(socket).mode & 0o777, 0o600);
  const nstar = (...args: string[]) => spawnSync('npx', ['nstar', ...args], { cwd: clone, encoding: 'utf8' });
  const tcpList = nstar('-u', 'tcp://localhost:4200', 'ls');
  assert.equal(tcpList.status, 0, tcpList.stderr);
  assert.match(tcpList.stdout, /test-container/);
  const tcpMount = nstar('-u', 'tcp://localhost:4200', 'mount', 'test-container');
  assert.equal(tcpMount.status, 1, tcpMount.stdout);
  assert.match(tcpMount.stderr, /permission denied/i);
  const mount = nstar('mount', 'test-container');
  assert.equal(mount.status, 0, mount.stderr);
  assert.match(nstar('-f', 'json', 'ps').stdout, /"test-container"/);

  // The README's day-2 commands, as written there.
  const ok = (...args: string[]): string => {
    const r = nstar(...args);
    assert.equal(r.status, 0, `nstar ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  /** Until the kept output of `c` has `re` (the runtime reads it as the container writes it). */
  const logged = (c: string, re: RegExp): void => {
    const deadline = Date.now() + 60_000;
    while (!re.test(ok('logs', c))) assert.ok(Date.now() < deadline, `nstar logs ${c} never showed ${re}`);
  };
  logged('hello-world', /Hello/);
  ok('start', 'test-container', '<INIT>', 'print', 'hello');
  logged('test-container', /hello/);
  assert.match(ok('logs', '-t', 'test-container'), /^\d{4}-\d\d-\d\dT[\d:.]+Z /m);
  assert.match(ok('exec', 'test-container', '--', '/test-container', 'once', 'inspect'), /^getuid: 1000$/m);
  assert.match(ok('restart', 'test-container'), /restarted test-container:0\.0\.1/);
  assert.match(ok('stop', '-t', '5', 'test-container'), /stopped test-container:0\.0\.1/);
  assert.match(ok('ps'), /test-container .*\| (killed|exited) \(\d+\) \d+s ago/);
}
