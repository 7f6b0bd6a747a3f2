/**
 * Runtime benchmark (issue "The runtime daemon and its console"): with a real runtime
 * running, measure
 *  - the latency from a console `start` request to the `started` and to the `exit`
 *    notification for the test container's `exit 0` (median of N), back to back and after
 *    a pause of 100 ms (what a start on a device mostly is: the launch pool is full then),
 *  - the time to start 100 different containers at once until all are `started`,
 *  - mount time per package (user-space verity with a key, and without a key),
 *  - the runtime's RSS idle and with 100 sleeping containers.
 * Run: `npm run bench -- runtime` (as root). BENCH_NORTHSTAR=<path of dist/src/cli/northstar.js>
 * runs the same rounds against another build, for a before/after figure in one run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Client, type Notification } from '../src/client/index.js';
import { parseManifest } from '../src/manifest/index.js';
import { packNpk } from '../src/npk/builder.js';
import { readSigningKey } from '../src/npk/keys.js';
import { UPSTREAM_EXAMPLES as FIXTURES } from '../test/helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'examples', 'test-container', 'build', 'test-container');
const NORTHSTAR = process.env['BENCH_NORTHSTAR'] ?? join(ROOT, 'dist', 'src', 'cli', 'northstar.js');
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 200);
const MANY = 100;

function manifest(name: string): string {
  return `name: ${name}
version: 0.0.1
init: /test-container
uid: 1000
gid: 1000
mounts:
  /dev:
    type: dev
  /proc:
    type: proc
`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

class Notifications {
  private readonly waiters: { pred: (n: Notification) => boolean; resolve: (t: bigint) => void }[] = [];
  constructor(client: Client) {
    void (async () => {
      for await (const n of client) {
        const t = process.hrtime.bigint();
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          if (this.waiters[i]!.pred(n)) {
            this.waiters[i]!.resolve(t);
            this.waiters.splice(i, 1);
          }
        }
      }
    })();
  }
  wait(pred: (n: Notification) => boolean): Promise<bigint> {
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }
}

const tagged = (tag: 'started' | 'exit', c: string) => (n: Notification) =>
  typeof n === 'object' && tag in n && (tag === 'started' ? String((n as { started: unknown }).started) === c : String((n as unknown as { exit: [unknown] }).exit[0]) === c);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the runtime benchmark needs root');
  const dir = mkdtempSync(join(tmpdir(), 'ns-bench-rt-'));
  let child: ChildProcess | undefined;
  try {
    for (const d of ['run', 'data', 'sockets', 'signed', 'plain', 'roots']) mkdirSync(join(dir, d));
    const key = await readSigningKey(join(FIXTURES, 'northstar.key'));
    // 100 signed containers (+ the `exit 0` one), and one unsigned for the mount figure.
    const rootDir = join(dir, 'roots', 'r');
    mkdirSync(rootDir);
    copyFileSync(BIN, join(rootDir, 'test-container'));
    chmodSync(join(rootDir, 'test-container'), 0o755);
    const names = Array.from({ length: MANY }, (_, i) => `bench-${String(i).padStart(3, '0')}`);
    for (const name of ['exit0', ...names]) {
      await packNpk({ manifest: parseManifest(manifest(name)), root: rootDir, key, out: join(dir, 'signed', `${name}.npk`) });
    }
    await packNpk({ manifest: parseManifest(manifest('plain')), root: rootDir, out: join(dir, 'plain', 'plain.npk') });
    const sock = join(dir, 'console.sock');
    writeFileSync(
      join(dir, 'northstar.toml'),
      `run_dir = "${dir}/run"\ndata_dir = "${dir}/data"\nsocket_dir = "${dir}/sockets"\ncgroup = "northstar-bench-${process.pid}"\n` +
        `notification_buffer_size = 1024\n[console.global]\nbind = "unix://${sock}"\npermissions = "full"\n` +
        `[repositories.signed]\ntype = { fs = { dir = "${dir}/signed" } }\nkey = "${join(FIXTURES, 'northstar.pub')}"\n` +
        `[repositories.plain]\ntype = { fs = { dir = "${dir}/plain" } }\n`,
    );
    child = spawn(process.execPath, [NORTHSTAR, '-c', join(dir, 'northstar.toml'), '--log-level', process.env['BENCH_LOG_LEVEL'] ?? 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitFor(() => {
      try {
        readFileSync(sock);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ENXIO';
      }
    }, 20_000, 'the console socket');
    const inner = Number(execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim().split('\n')[0]);
    const client = await Client.connect(`unix://${sock}`, { subscribe: true, notificationQueue: 100_000 });
    const events = new Notifications(client);

    // Mount time per package.
    const mountTimes: Record<string, number[]> = { signed: [], plain: [] };
    for (let i = 0; i < 30; i++) {
      for (const [repo, c] of [['signed', 'exit0:0.0.1'], ['plain', 'plain:0.0.1']] as const) {
        const t0 = process.hrtime.bigint();
        const [r] = await client.mount([c]);
        mountTimes[repo]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (!r || !('ok' in r)) throw new Error(`mount ${c}: ${JSON.stringify(r)}`);
        await client.umount([c]);
      }
    }
    await client.mount(['exit0:0.0.1']);
    await new Promise((r) => setTimeout(r, 3000));
    const idleRss = rssKiB(inner);

    // start → started / exit latency, back to back and after a pause of `pauseMs`.
    const rounds = async (n: number, pauseMs: number): Promise<{ started: number[]; exit: number[] }> => {
      const out = { started: [] as number[], exit: [] as number[] };
      for (let i = 0; i < n; i++) {
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
        const started = events.wait(tagged('started', 'exit0:0.0.1'));
        const exited = events.wait(tagged('exit', 'exit0:0.0.1'));
        const t0 = process.hrtime.bigint();
        await client.start('exit0:0.0.1', { args: ['exit', '0'] });
        out.started.push(Number((await started) - t0) / 1e6);
        out.exit.push(Number((await exited) - t0) / 1e6);
      }
      return out;
    };
    const { started: toStarted, exit: toExit } = await rounds(ROUNDS, 0);
    const { started: idleStarted, exit: idleExit } = await rounds(Math.max(10, Math.floor(ROUNDS / 4)), 100);

    // 100 different containers at once.
    await client.mount(names.map((n) => `${n}:0.0.1`));
    const allStarted = Promise.all(names.map((n) => events.wait(tagged('started', `${n}:0.0.1`))));
    const t0 = process.hrtime.bigint();
    await Promise.all(names.map((n) => client.start(`${n}:0.0.1`, { args: ['sleep'] })));
    const times = await allStarted;
    const hundred = Number(times.reduce((a, b) => (b > a ? b : a), t0) - t0) / 1e6;
    // Steady state: let the runtime settle (GC) for a few seconds with all 100 asleep.
    await new Promise((r) => setTimeout(r, 3000));
    const busyRss = rssKiB(inner);

    console.log(`runtime benchmark (${ROUNDS} rounds; ${MANY} containers)`);
    console.log(`  mount, user-space verity (signed): median ${median(mountTimes['signed']!).toFixed(1)} ms`);
    console.log(`  mount, no key:                     median ${median(mountTimes['plain']!).toFixed(1)} ms  (ratio ${(median(mountTimes['signed']!) / median(mountTimes['plain']!)).toFixed(2)})`);
    console.log(`  start request -> started:          median ${median(toStarted).toFixed(2)} ms`);
    console.log(`  start request -> exit (exit 0):    median ${median(toExit).toFixed(2)} ms   (target <= 10 ms)`);
    console.log(`  after 100 ms idle -> started:      median ${median(idleStarted).toFixed(2)} ms`);
    console.log(`  after 100 ms idle -> exit (exit 0): median ${median(idleExit).toFixed(2)} ms`);
    console.log(`  ${MANY} containers at once, all started: ${hundred.toFixed(0)} ms   (target <= 1500 ms)`);
    console.log(`  runtime RSS idle:                  ${(idleRss / 1024).toFixed(1)} MiB`);
    console.log(`  runtime RSS, ${MANY} sleeping:      ${(busyRss / 1024).toFixed(1)} MiB   (target <= 80 MiB)`);
    await client.shutdown();
    await new Promise<void>((r) => child!.once('exit', () => r()));
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`runtime benchmark failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
