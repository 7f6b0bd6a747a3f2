/**
 * Where a start and an exit spend their time (issue 15, step 1: measure first). A real
 * runtime at debug level logs, for every start, `start phases of <c> (ms): cgroup …, plan …,
 * create …, exec …` and, for every exit, `exit phases of <c> (ms): execs …, <each undo> …,
 * teardown …`; this bench starts the test container's `exit 0` N times back to back through
 * the console, reads those lines and prints the median of each phase next to the console
 * round trip (start request → `started`, → `exit`), and, interleaved in the same run, a cold
 * `unshare --pid --mount --ipc --uts --net --fork --mount-proc` of the same binary as the
 * reference the issue names (bench/reference.ts: timed natively, and spawned from Node). What the phases do not cover (the console, the state lock, the
 * notification, the core's own exit path) is the difference to the round trip.
 *
 * Run: npm run bench -- phases   (as root; BENCH_ROUNDS=100 by default)
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Client, type Notification } from '../src/client/index.js';
import { parseManifest } from '../src/manifest/index.js';
import { packNpk } from '../src/npk/builder.js';
import { readSigningKey } from '../src/npk/keys.js';
import { UPSTREAM_EXAMPLES as FIXTURES } from '../test/helpers/fixtures.js';
import { median } from './stats.js';
import { references } from './reference.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'examples', 'test-container', 'build', 'test-container');
const NORTHSTAR = process.env['BENCH_NORTHSTAR'] ?? join(ROOT, 'dist', 'src', 'cli', 'northstar.js');
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 100);
const C = 'exit0:0.0.1';


/** `phase value, phase value, …` of a phases line, into the table. */
function collect(into: Map<string, number[]>, text: string): void {
  for (const part of text.split(', ')) {
    const m = /^(.*) (\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m) continue;
    const list = into.get(m[1]!) ?? [];
    list.push(Number(m[2]));
    into.set(m[1]!, list);
  }
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the phases benchmark needs root');
  const dir = mkdtempSync(join(tmpdir(), 'ns-bench-phases-'));
  let child: ChildProcess | undefined;
  try {
    for (const d of ['run', 'data', 'sockets', 'repo', 'root']) mkdirSync(join(dir, d));
    const root = join(dir, 'root');
    for (const d of ['dev', 'proc']) mkdirSync(join(root, d));
    copyFileSync(BIN, join(root, 'test-container'));
    chmodSync(join(root, 'test-container'), 0o755);
    const manifest = `name: exit0\nversion: 0.0.1\ninit: /test-container\nuid: 1000\ngid: 1000\nmounts:\n  /dev:\n    type: dev\n  /proc:\n    type: proc\n`;
    const key = await readSigningKey(join(FIXTURES, 'northstar.key'));
    await packNpk({ manifest: parseManifest(manifest), root, key, out: join(dir, 'repo', 'exit0.npk') });
    const sock = join(dir, 'console.sock');
    writeFileSync(
      join(dir, 'northstar.toml'),
      `run_dir = "${dir}/run"\ndata_dir = "${dir}/data"\nsocket_dir = "${dir}/sockets"\ncgroup = "northstar-bench-phases-${process.pid}"\n` +
        `[console.global]\nbind = "unix://${sock}"\npermissions = "full"\n` +
        `[repositories.default]\ntype = { fs = { dir = "${dir}/repo" } }\nkey = "${join(FIXTURES, 'northstar.pub')}"\n`,
    );
    child = spawn(process.execPath, [NORTHSTAR, '-c', join(dir, 'northstar.toml'), '--log-level', 'debug', '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const start = new Map<string, number[]>();
    const exit = new Map<string, number[]>();
    let up: () => void;
    const isUp = new Promise<void>((r) => (up = r));
    createInterface({ input: child.stderr! }).on('line', (line) => {
      let msg: unknown;
      try {
        msg = (JSON.parse(line) as { msg?: unknown }).msg;
      } catch {
        return;
      }
      if (typeof msg !== 'string') return;
      if (msg.includes('Runtime up and running')) up();
      const s = /^start phases of exit0:0\.0\.1 \(ms\): (.*)$/.exec(msg);
      if (s) collect(start, s[1]!);
      const x = /^exit phases of exit0:0\.0\.1 \(ms\): (.*)$/.exec(msg);
      if (x) collect(exit, x[1]!);
    });
    await isUp;
    const client = await Client.connect(`unix://${sock}`, { subscribe: true, notificationQueue: 100_000 });
    await client.mount([C]);
    const waiters: { tag: string; resolve: (t: bigint) => void }[] = [];
    void (async () => {
      for await (const n of client as AsyncIterable<Notification>) {
        const t = process.hrtime.bigint();
        const tag = typeof n === 'object' ? Object.keys(n)[0]! : n;
        const i = waiters.findIndex((w) => w.tag === tag);
        if (i >= 0) waiters.splice(i, 1)[0]!.resolve(t);
      }
    })();
    const wait = (tag: string): Promise<bigint> => new Promise((resolve) => waiters.push({ tag, resolve }));

    // The cold unshare reference (bench/reference.ts): the same binary, the same namespaces.
    const refs = references(dir, BIN, ['exit', '0']);
    if (!refs.unshare || !refs.unshareFromNode) throw new Error('the phases benchmark needs unshare (util-linux)');
    const toStarted: number[] = [];
    const toExit: number[] = [];
    const unshare: number[] = [];
    const unshareNode: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const started = wait('started');
      const exited = wait('exit');
      const t0 = process.hrtime.bigint();
      await client.start(C, { args: ['exit', '0'] });
      toStarted.push(Number((await started) - t0) / 1e6);
      toExit.push(Number((await exited) - t0) / 1e6);
      unshare.push(await refs.unshare());
      unshareNode.push(await refs.unshareFromNode());
    }
    await client.close();
    const row = (what: string, v: number): string => `  ${what.padEnd(34)} ${v.toFixed(2).padStart(8)} ms`;
    console.log(`phases of a start and an exit (${ROUNDS} rounds, medians; the test container's exit 0)`);
    console.log(row('start request -> started', median(toStarted)));
    console.log(row('start request -> exit', median(toExit)));
    console.log(row('cold unshare (reference, native)', median(unshare)));
    console.log(row('cold unshare spawned from Node', median(unshareNode)));
    console.log(`  ratio start -> exit / unshare:     ${(median(toExit) / median(unshare)).toFixed(2)}x   (issue 15's goal: <= 1.5x)`);
    console.log('  start phases (runtime log, debug):');
    let sum = 0;
    for (const [k, v] of start) {
      sum += median(v);
      console.log(row(`  ${k}`, median(v)));
    }
    console.log(row('  (sum of the medians)', sum));
    console.log('  exit phases (from the core\'s exit seen by the runtime to the notification):');
    for (const [k, v] of exit) console.log(row(`  ${k}`, median(v)));
    console.log(`  machine: ${execFileSync('nproc', { encoding: 'utf8' }).trim()} cores, load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
