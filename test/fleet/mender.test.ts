/**
 * Fleet updates through Mender (issue 14), with the real Debian `mender` client (standalone
 * mode, its own --config and --data directories) and the real `mender-artifact`, against a
 * real runtime: the update module packaging/mender/northstar-npk installs, health-gates,
 * commits and rolls back NPKs. The module must be in Mender's fixed modules directory
 * (/usr/share/mender/modules/v3) and a first install needs /etc/mender/artifact_info: both
 * are put there for this file and restored afterwards.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '../../src/client/index.js';
import { Npk } from '../../src/npk/reader.js';
import { hasCommand, isRoot } from '../helpers/tmp.js';
import { isStarted, nextNotification, packTestVariant, startRuntime, testContainerManifest, testNpks, type TestRuntime } from '../runtime/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MODULE = join(ROOT, 'packaging', 'mender', 'northstar-npk');
const MODULES_DIR = '/usr/share/mender/modules/v3';
const MODULE_LINK = join(MODULES_DIR, 'northstar-npk');
const ARTIFACT_INFO = '/etc/mender/artifact_info';
const DEVICE_TYPE = 'northstar-test-device';
const V1 = 'test-container:0.0.1';
const V2 = 'test-container:0.0.2';

const skip = !isRoot ? 'needs root (a real runtime, and Mender\'s modules directory)' : !hasCommand('mender') || !hasCommand('mender-artifact') ? 'needs mender-client and mender-artifact (./scripts/install.sh installs them)' : false;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A Mender device: its own config and data directory, our runtime's console. */
class Device {
  readonly conf: string;
  readonly data: string;
  constructor(
    readonly dir: string,
    public url: string,
    readonly health = 1,
  ) {
    this.conf = join(dir, 'mender.conf');
    this.data = join(dir, 'data');
    mkdirSync(this.data);
    this.configure({});
    writeFileSync(join(this.data, 'device_type'), `device_type=${DEVICE_TYPE}\n`);
  }
  /** mender.conf with these keys (e.g. ArtifactVerifyKey). */
  configure(keys: Record<string, unknown>): void {
    writeFileSync(this.conf, `${JSON.stringify({ UpdateLogPath: this.dir, ...keys }, null, 2)}\n`);
  }
  env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, NORTHSTAR_URL: this.url, NORTHSTAR_REPOSITORY: 'default', NORTHSTAR_HEALTH_SECONDS: String(this.health) };
    // Not the machine's settings file, nor another checkout.
    env['NORTHSTAR_NPK_CONFIG'] = join(this.dir, 'no-such-settings.conf');
    delete env['NORTHSTAR_HOME'];
    return env;
  }
  mender(...args: string[]): Promise<Run> {
    return run('mender', ['--no-syslog', '--log-level', 'info', '--config', this.conf, '--fallback-config', join(this.dir, 'none.conf'), '--data', this.data, ...args], this.env());
  }
  async artifact(): Promise<string> {
    const r = await this.mender('show-artifact');
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  }
}

/** An artifact of type northstar-npk for our device type, made by the real mender-artifact. */
async function artifact(dir: string, name: string, npks: string[], signingKey?: string): Promise<string> {
  const out = join(dir, `${name}.mender`);
  const files = npks.flatMap((f) => ['-f', f]);
  const sign = signingKey ? ['-k', signingKey] : [];
  const r = await run('mender-artifact', ['write', 'module-image', '-T', 'northstar-npk', '-t', DEVICE_TYPE, '-n', name, ...files, ...sign, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  return out;
}

/** The module's own lines in Mender's output. */
function moduleLines(r: Run): string[] {
  return (r.stdout + r.stderr).split('\n').filter((l) => l.includes('northstar-npk '));
}

async function installedSet(c: Client): Promise<string[]> {
  return (await c.list()).map((x) => x.toString()).filter((x) => x.startsWith('test-container:')).sort();
}

async function pid(c: Client, k: string): Promise<number | null> {
  return (await c.inspect(k)).process?.pid ?? null;
}

/** Wait until `k` runs (a restarted runtime's autostart, a start in flight). */
async function running(c: Client, k: string): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const p = await pid(c, k);
    if (p !== null) return p;
    if (Date.now() > deadline) throw new Error(`${k} does not run`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let baseName = 'northstar-base';
let v2npk: string;
let v2exit: string;

describe('fleet updates through Mender (real mender client, standalone)', { skip, timeout: 900_000 }, () => {
  const restore: (() => void)[] = [];
  const scratch: string[] = [];
  before(async () => {
    // The module into Mender's fixed modules directory (a link into this checkout); what was there comes back.
    mkdirSync(MODULES_DIR, { recursive: true });
    if (lexists(MODULE_LINK)) {
      const saved = `${MODULE_LINK}.northstar-test-${process.pid}`;
      renameSync(MODULE_LINK, saved);
      restore.push(() => renameSync(saved, MODULE_LINK));
    }
    symlinkSync(MODULE, MODULE_LINK);
    restore.unshift(() => rmSync(MODULE_LINK, { force: true }));
    // Mender names the installed artifact from this file until its database has a name.
    if (existsSync(ARTIFACT_INFO)) {
      baseName = /artifact_name=(.*)/.exec(readFileSync(ARTIFACT_INFO, 'utf8'))?.[1]?.trim() ?? baseName;
    } else {
      mkdirSync('/etc/mender', { recursive: true });
      writeFileSync(ARTIFACT_INFO, `artifact_name=${baseName}\n`);
      restore.push(() => rmSync(ARTIFACT_INFO, { force: true }));
    }
    v2npk = await packTestVariant('test-container-v2', testContainerManifest().replace('version: 0.0.1', 'version: 0.0.2'));
    // A new version that exits at once: it starts, then fails the health gate.
    v2exit = await packTestVariant('test-container-v2-exits', testContainerManifest('args:\n  - exit\n  - "0"\n').replace('version: 0.0.1', 'version: 0.0.2'));
  });
  after(() => {
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
    for (const r of restore) r();
  });

  /** A runtime with test-container 0.0.1 (running when `runV1`) and a device for it. */
  async function scene(t: TestContext, opts: { runV1?: boolean } = {}): Promise<{ rt: TestRuntime; c: Client; dev: Device; dir: string; cgroup: string }> {
    const npks = await testNpks();
    const dir = mkdtempSync(join(tmpdir(), 'ns-fleet-'));
    // Removed after every test's runtimes stopped (a test's own after hooks run first-in, first-out).
    scratch.push(dir);
    const cgroup = `northstar-fleet-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
    mkdirSync(join(dir, 'rt'), { recursive: true });
    const rt = await startRuntime(t, { dir: join(dir, 'rt'), cgroup, npks: [npks['test-container']!, npks['test-resource']!] });
    const c = await rt.client({ subscribe: true });
    t.after(() => c.close());
    if (opts.runV1) {
      await c.start(V1);
      await nextNotification(c, isStarted(V1));
    }
    mkdirSync(join(dir, 'device'), { recursive: true });
    const dev = new Device(join(dir, 'device'), rt.consoleUrl);
    return { rt, c, dev, dir, cgroup };
  }

  test('install + commit of a new container with autostart: installed, started, gated, committed; the same containers again are a no-op', async (t) => {
    const { c, dev, dir } = await scene(t);
    const app = await packTestVariant('fleet-app', testContainerManifest('autostart: relaxed\n').replace('name: test-container', 'name: fleet-app'));
    assert.equal(await dev.artifact(), baseName);
    const art = await artifact(dir, 'release-1', [app]);
    const inst = await dev.mender('install', art);
    assert.equal(inst.code, 0, inst.stderr);
    assert.ok(moduleLines(inst).some((l) => /ArtifactInstall: installed fleet-app:0\.0\.1 into default/.test(l)), inst.stderr);
    assert.ok(moduleLines(inst).some((l) => /ArtifactInstall: started fleet-app:0\.0\.1/.test(l)), inst.stderr);
    const p = await pid(c, 'fleet-app:0.0.1');
    assert.notEqual(p, null, 'started at install (autostart)');
    assert.equal(await dev.artifact(), baseName, 'not committed yet');

    const com = await dev.mender('commit');
    assert.equal(com.code, 0, com.stderr);
    assert.ok(moduleLines(com).some((l) => /ArtifactCommit: health gate passed/.test(l)), com.stderr);
    assert.equal(await dev.artifact(), 'release-1');
    assert.equal(await pid(c, 'fleet-app:0.0.1'), p, 'still the same process');

    // The same NPK in a second artifact: nothing is installed, stopped or started again.
    const again = await dev.mender('install', await artifact(dir, 'release-1b', [app]));
    assert.equal(again.code, 0, again.stderr);
    assert.ok(moduleLines(again).some((l) => /fleet-app:0\.0\.1 is installed already: left as it is/.test(l)), again.stderr);
    const com2 = await dev.mender('commit');
    assert.equal(com2.code, 0, com2.stderr);
    assert.equal(await dev.artifact(), 'release-1b');
    assert.equal(await pid(c, 'fleet-app:0.0.1'), p, 'untouched by the second install');
  });

  test('upgrade: the running old version is stopped, the new one runs, the old one is uninstalled at commit', async (t) => {
    const { c, dev, dir } = await scene(t, { runV1: true });
    const inst = await dev.mender('install', await artifact(dir, 'release-2', [v2npk]));
    assert.equal(inst.code, 0, inst.stderr);
    assert.deepEqual(await installedSet(c), [V1, V2], 'the old version stays installed until commit');
    assert.equal(await pid(c, V1), null, 'old stopped');
    assert.notEqual(await pid(c, V2), null, 'new started (the old one ran)');
    assert.ok(moduleLines(inst).some((l) => l.includes(`stopped ${V1} (SIGTERM`)), inst.stderr);

    const com = await dev.mender('commit');
    assert.equal(com.code, 0, com.stderr);
    assert.deepEqual(await installedSet(c), [V2]);
    assert.notEqual(await pid(c, V2), null);
    assert.ok(moduleLines(com).some((l) => l.includes(`uninstalled ${V1} (replaced by 0.0.2)`)), com.stderr);
    assert.equal(await dev.artifact(), 'release-2');
  });

  test('an app that exits at once fails the health gate: Mender rolls back, the previous version runs, show-artifact names the previous artifact', async (t) => {
    const { c, dev, dir } = await scene(t, { runV1: true });
    const inst = await dev.mender('install', await artifact(dir, 'release-bad', [v2exit]));
    assert.equal(inst.code, 0, inst.stderr);
    const com = await dev.mender('commit');
    assert.notEqual(com.code, 0, 'the commit fails');
    assert.ok(moduleLines(com).some((l) => new RegExp(`health gate.*${V2} ended \\(exit code 0\\)`).test(l)), `${com.stdout}\n${com.stderr}`);
    assert.deepEqual(await installedSet(c), [V1], 'the new version is gone');
    await running(c, V1);
    assert.equal(await dev.artifact(), baseName);
  });

  test('a tampered NPK in an artifact: the install fails with the runtime\'s reason, nothing changed', async (t) => {
    const { c, dev, dir } = await scene(t, { runV1: true });
    const before = await pid(c, V1);
    const probe = await Npk.open(v2npk);
    const bad = join(dir, basename(v2npk));
    const buf = Buffer.from(readFileSync(v2npk));
    buf[probe.fsImg.offset + 4096 + 123] = buf[probe.fsImg.offset + 4096 + 123]! ^ 0x5a;
    writeFileSync(bad, buf);
    const inst = await dev.mender('install', await artifact(dir, 'release-tampered', [bad]));
    assert.notEqual(inst.code, 0, 'the install fails');
    assert.ok(moduleLines(inst).some((l) => /ArtifactInstall: error: installing .* failed: .*fs\.img: verity/.test(l)), `${inst.stdout}\n${inst.stderr}`);
    assert.deepEqual(await installedSet(c), [V1]);
    assert.equal(await pid(c, V1), before, 'the old version was never stopped');
    assert.equal(await dev.artifact(), baseName);
  });

  test('install, then an explicit mender rollback: the new version is uninstalled, the old one runs again', async (t) => {
    const { c, dev, dir } = await scene(t, { runV1: true });
    const inst = await dev.mender('install', await artifact(dir, 'release-3', [v2npk]));
    assert.equal(inst.code, 0, inst.stderr);
    assert.equal(await pid(c, V1), null);
    const rb = await dev.mender('rollback');
    assert.equal(rb.code, 0, rb.stderr);
    assert.deepEqual(await installedSet(c), [V1]);
    await running(c, V1);
    assert.ok(moduleLines(rb).some((l) => l.includes(`ArtifactRollback: started ${V1} again`)), rb.stderr);
    assert.equal(await dev.artifact(), baseName);
    // No update in progress any more: Mender's exit code 2.
    assert.equal((await dev.mender('commit')).code, 2);
  });

  test('the module\'s rollback is idempotent: a second ArtifactRollback (as after a partial install) changes nothing', async (t) => {
    const { c, dev, dir } = await scene(t, { runV1: true });
    // The payload directory as Mender lays it out: files/ and tmp/.
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'files'), { recursive: true });
    mkdirSync(join(tree, 'tmp'));
    cpSync(v2npk, join(tree, 'files', 'app.npk'));
    const mod = (state: string): Promise<Run> => run(MODULE, [state, tree], dev.env());
    assert.equal((await mod('SupportsRollback')).stdout, 'Yes\n');
    assert.equal((await mod('NeedsArtifactReboot')).stdout, 'No\n');
    const inst = await mod('ArtifactInstall');
    assert.equal(inst.code, 0, inst.stderr);
    assert.deepEqual(await installedSet(c), [V1, V2]);
    for (const round of [1, 2]) {
      const rb = await mod('ArtifactRollback');
      assert.equal(rb.code, 0, `round ${round}: ${rb.stderr}`);
      assert.deepEqual(await installedSet(c), [V1], `round ${round}`);
      assert.notEqual(await running(c, V1), null);
    }
    // Every line names its state; one line per action.
    const rb2 = await mod('ArtifactRollback');
    assert.deepEqual(rb2.stderr.trim().split('\n'), ['northstar-npk ArtifactRollback: rolled back']);
    // A commit after the rollback is refused.
    assert.notEqual((await mod('ArtifactCommit')).code, 0);
    assert.equal((await mod('Cleanup')).code, 0);
    assert.equal(existsSync(join(tree, 'tmp', 'northstar-npk.json')), false);
  });

  test('signed artifacts: with ArtifactVerifyKey set, an unsigned artifact is refused before the module runs; a signed one installs', { skip: !hasCommand('openssl') && 'needs openssl (the artifact signing key)' }, async (t) => {
    const { c, dev, dir } = await scene(t, { runV1: true });
    const key = join(dir, 'artifact.key');
    const pub = join(dir, 'artifact.pub');
    // mender-artifact 3.9 takes PKCS#1 RSA keys (openssl genrsa -traditional).
    for (const [cmd, args] of [['openssl', ['genrsa', '-traditional', '-out', key, '2048']], ['openssl', ['rsa', '-in', key, '-pubout', '-out', pub]]] as const) {
      const r = await run(cmd, [...args]);
      assert.equal(r.code, 0, r.stderr);
    }
    dev.configure({ ArtifactVerifyKey: pub });
    const before = await pid(c, V1);
    const unsigned = await dev.mender('install', await artifact(dir, 'release-unsigned', [v2npk]));
    assert.notEqual(unsigned.code, 0, 'refused');
    assert.deepEqual(moduleLines(unsigned), [], 'the module never ran');
    assert.deepEqual(await installedSet(c), [V1]);
    assert.equal(await pid(c, V1), before);
    const signed = await dev.mender('install', await artifact(dir, 'release-signed', [v2npk], key));
    assert.equal(signed.code, 0, signed.stderr);
    assert.deepEqual(await installedSet(c), [V1, V2]);
    assert.equal((await dev.mender('commit')).code, 0);
    assert.equal(await dev.artifact(), 'release-signed');
  });

  for (const then of ['commit', 'rollback'] as const) {
    test(`SIGKILL of the runtime between install and commit, restart, then ${then}: one consistent version runs`, async (t) => {
      const s = await scene(t, { runV1: true });
      const inst = await s.dev.mender('install', await artifact(s.dir, `release-kill-${then}`, [v2npk]));
      assert.equal(inst.code, 0, inst.stderr);
      await s.c.close();
      s.rt.child.kill('SIGKILL');
      await s.rt.exited();
      // The same directories (repository, data); a new cgroup, so that the killed runtime's cleanup does not meet this one.
      const rt2 = await startRuntime(t, { dir: join(s.dir, 'rt') });
      const c2 = await rt2.client();
      t.after(() => c2.close());
      s.dev.url = rt2.consoleUrl;
      const r = await s.dev.mender(then);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      if (then === 'commit') {
        assert.deepEqual(await installedSet(c2), [V2]);
        await running(c2, V2);
        assert.equal(await s.dev.artifact(), `release-kill-${then}`);
      } else {
        assert.deepEqual(await installedSet(c2), [V1]);
        await running(c2, V1);
        assert.equal(await s.dev.artifact(), baseName);
      }
    });
  }
});

/** Whether anything (a dangling link too) is at p. */
function lexists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
