/**
 * Runtime benchmark (issue "The runtime daemon and its console"): with a real runtime
 * running, measure
 *  - the latency from a console `start` request to the `started` and to the `exit`
 *    notification for the test container's `exit 0` (median of N), back to back and after
 *    a pause of 100 ms (what a start on a device mostly is: the launch pool is full then),
 *  - the same start -> exit alternating, round by round, with a cold `unshare` of the same
 *    namespaces and a `runc run` of the same binary (bench/reference.ts), and their ratios
 *    (issue 15: ours <= 1.5x unshare, runc >= 5x ours),
 *  - the time to start 100 different containers at once until all are `started`, next to
 *    100 cold unshare runs started at once until all have exited,
 *  - mount time per package (user-space verity with a key, and without a key),
 *  - memory as the user pays for it: PSS and RSS summed over every long-lived process of the
 *    runtime (every Node process of it, and its helpers: pooled launch cores), idle and with
 *    100 sleeping containers, and the per-container processes (launch core + init) apart;
 *    the containers' own apps are not the runtime's and are not counted.
 * Run: `npm run bench -- runtime` (as root). The runtime is started as a user starts it:
 * bin/northstar -c <config>. BENCH_NORTHSTAR=<path> starts another build: a .js file (e.g.
 * an older dist/src/cli/northstar.js) runs as `node <path>`, anything else is executed.
 * BENCH_V8_FLAGS=1 measures instead what each V8 flag of the runtime saves: the memory part
 * once per flag set (all, none, all but one), through bin/northstar's NORTHSTAR_V8_FLAGS.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, type Notification } from '../src/client/index.js';
import { parseManifest } from '../src/manifest/index.js';
import { packNpk } from '../src/npk/builder.js';
import { readSigningKey } from '../src/npk/keys.js';
import { UPSTREAM_EXAMPLES as FIXTURES } from '../test/helpers/fixtures.js';
import { median } from './stats.js';
import { references, type References } from './reference.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'examples', 'test-container', 'build', 'test-container');
const NORTHSTAR = process.env['BENCH_NORTHSTAR'] ?? join(ROOT, 'bin', 'northstar');
/** The runtime's V8 flags, as bin/northstar passes them (V8_FLAGS of src/cli/northstar.ts, and --no-expose-wasm where node has it). */
const V8_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size', '--expose-gc', '--lite-mode', ...(spawnSync(process.execPath, ['--no-expose-wasm', '--version']).status === 0 ? ['--no-expose-wasm'] : [])];
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


interface Mem {
  pss: number;
  rss: number;
  n: number;
}
const mem0 = (): Mem => ({ pss: 0, rss: 0, n: 0 });

/** PSS and RSS (KiB) of one process from /proc/<pid>/smaps_rollup; null when it is gone. */
function smaps(pid: number): { pss: number; rss: number } | null {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0);
    return { pss: f('Pss'), rss: f('Rss') };
  } catch {
    return null;
  }
}

/**
 * The runtime's processes below `root` (the pid its starter got): every Node process and the
 * pooled launch cores are the runtime's own (`runtime`); a launch core that serves a
 * container and its child (the container's init) are `perContainer`; anything deeper is the
 * container's app (not the runtime's cost).
 */
function measure(root: number): { runtime: Mem; perContainer: Mem; nodes: number } {
  const children = new Map<number, number[]>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(e)]);
    } catch {
      // gone
    }
  }
  const runtime = mem0();
  const perContainer = mem0();
  let nodes = 0;
  const add = (into: Mem, pid: number) => {
    const m = smaps(pid);
    if (!m) return;
    into.pss += m.pss;
    into.rss += m.rss;
    into.n++;
  };
  const isNode = (pid: number) => {
    try {
      return /^node/.test(basename(readlinkSync(`/proc/${pid}/exe`)));
    } catch {
      return false;
    }
  };
  const cmdline = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return '';
    }
  };
  const cores = (parent: number) => {
    for (const c of children.get(parent) ?? []) {
      if (isNode(c)) continue;
      if (cmdline(c).startsWith('northstar-forker')) {
        // The forker (the runtime's own) forks the pool's cores: its children are cores.
        add(runtime, c);
        cores(c);
      } else if (cmdline(c).includes('(pooled)')) {
        // A pooled core and its sandbox's init.
        add(runtime, c);
        for (const init of children.get(c) ?? []) add(runtime, init);
      } else {
        add(perContainer, c);
        for (const init of children.get(c) ?? []) add(perContainer, init);
      }
    }
  };
  const walk = (pid: number) => {
    nodes++;
    add(runtime, pid);
    for (const c of children.get(pid) ?? []) if (isNode(c)) walk(c);
    cores(pid);
  };
  walk(root);
  return { runtime, perContainer, nodes };
}

const mib = (kib: number) => (kib / 1024).toFixed(1);

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

interface Session {
  mountTimes: Record<string, number[]>;
  toStarted: number[];
  toExit: number[];
  idleStarted: number[];
  idleExit: number[];
  hundred: number;
  /** Alternating rounds: ours start -> exit, a cold unshare, a runc run (ms each). */
  alt: { ours: number[]; unshare: number[]; unshareNode: number[]; runc: number[] };
  /** 100 cold unshare runs started at once, until all have exited (ms); null without unshare. */
  hundredUnshare: number | null;
  idle: ReturnType<typeof measure>;
  busy: ReturnType<typeof measure>;
  exitCode: number | null;
}

/**
 * One runtime from start to shutdown. `latency`: the mount and start latency rounds too;
 * otherwise (the V8 flag comparison) only 20 start/exit rounds before the idle figure, so the
 * runtime has done what it does before it idles. `v8Flags`: NORTHSTAR_V8_FLAGS for bin/northstar.
 */
async function session(dir: string, names: string[], latency: boolean, v8Flags?: string, refs?: References): Promise<Session> {
  const sock = join(dir, 'console.sock');
  const cmd = NORTHSTAR.endsWith('.js') ? [process.execPath, NORTHSTAR] : [NORTHSTAR];
  const env = v8Flags === undefined ? process.env : { ...process.env, NORTHSTAR_V8_FLAGS: v8Flags };
  const child = spawn(cmd[0]!, [...cmd.slice(1), '-c', join(dir, 'northstar.toml'), '--log-level', process.env['BENCH_LOG_LEVEL'] ?? 'warn'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    await waitFor(() => {
      try {
        readFileSync(sock);
        return false;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === 'ENXIO';
      }
    }, 20_000, 'the console socket');
    const client = await Client.connect(`unix://${sock}`, { subscribe: true, notificationQueue: 100_000 });
    const events = new Notifications(client);

    // Mount time per package.
    const mountTimes: Record<string, number[]> = { signed: [], plain: [] };
    for (let i = 0; i < (latency ? 30 : 0); i++) {
      for (const [repo, c] of [['signed', 'exit0:0.0.1'], ['plain', 'plain:0.0.1']] as const) {
        const t0 = process.hrtime.bigint();
        const [r] = await client.mount([c]);
        mountTimes[repo]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (!r || !('ok' in r)) throw new Error(`mount ${c}: ${JSON.stringify(r)}`);
        await client.umount([c]);
      }
    }
    await client.mount(['exit0:0.0.1']);

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
    // Idle: after the runtime has started containers, settled (its idle collection) for 3 s.
    const warm = await rounds(latency ? 0 : 20, 0);
    await new Promise((r) => setTimeout(r, 3000));
    const idle = measure(child.pid!);
    const { started: toStarted, exit: toExit } = latency ? await rounds(ROUNDS, 0) : warm;
    const { started: idleStarted, exit: idleExit } = latency ? await rounds(Math.max(10, Math.floor(ROUNDS / 4)), 100) : warm;
    // The references, alternating with our start -> exit round by round (issue 15's ratios).
    const alt = { ours: [] as number[], unshare: [] as number[], unshareNode: [] as number[], runc: [] as number[] };
    for (let i = 0; latency && i < Math.max(20, Math.floor(ROUNDS / 2)); i++) {
      alt.ours.push((await rounds(1, 0)).exit[0]!);
      if (refs?.unshare) alt.unshare.push(await refs.unshare());
      if (refs?.unshareFromNode) alt.unshareNode.push(await refs.unshareFromNode());
      if (refs?.runc) alt.runc.push(await refs.runc());
    }
    let hundredUnshare: number | null = null;
    if (latency && refs?.unshare) {
      const one = refs.unshare;
      // Each run timed natively; all started at once here, until all have exited.
      const t = performance.now();
      await Promise.all(Array.from({ length: MANY }, () => one()));
      hundredUnshare = performance.now() - t;
    }

    // 100 different containers at once.
    await client.mount(names.map((n) => `${n}:0.0.1`));
    const allStarted = Promise.all(names.map((n) => events.wait(tagged('started', `${n}:0.0.1`))));
    const t0 = process.hrtime.bigint();
    await Promise.all(names.map((n) => client.start(`${n}:0.0.1`, { args: ['sleep'] })));
    const times = await allStarted;
    const hundred = Number(times.reduce((a, b) => (b > a ? b : a), t0) - t0) / 1e6;
    // Steady state: let the runtime settle (GC) for a few seconds with all 100 asleep.
    await new Promise((r) => setTimeout(r, 3000));
    const busy = measure(child.pid!);
    await client.shutdown();
    const exitCode = await exited;
    return { mountTimes, toStarted, toExit, idleStarted, idleExit, hundred, alt, hundredUnshare, idle, busy, exitCode };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

const IDLE_TARGET = 64 * 1024;
const BUSY_TARGET = 80 * 1024;
const PER_CONTAINER_TARGET = 1024;

function memoryLines(r: Session): string[] {
  const per = r.busy.perContainer.n ? r.busy.perContainer.pss / MANY : 0;
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  return [
    `  runtime processes (Node + pooled cores): idle ${r.idle.runtime.n}, with ${MANY} sleeping ${r.busy.runtime.n}; Node processes ${r.busy.nodes}`,
    `  runtime PSS idle:                  ${mib(r.idle.runtime.pss)} MiB   (RSS ${mib(r.idle.runtime.rss)} MiB)   target <= 64 MiB PSS: ${met(r.idle.runtime.pss <= IDLE_TARGET)}`,
    `  runtime PSS, ${MANY} sleeping:      ${mib(r.busy.runtime.pss)} MiB   (RSS ${mib(r.busy.runtime.rss)} MiB)   target <= 80 MiB PSS: ${met(r.busy.runtime.pss <= BUSY_TARGET)}`,
    `  per-container processes (${r.busy.perContainer.n}: launch core + init of ${MANY}): PSS ${mib(r.busy.perContainer.pss)} MiB = ${(per).toFixed(0)} KiB per container (RSS ${mib(r.busy.perContainer.rss)} MiB)   target <= 1 MiB: ${met(per <= PER_CONTAINER_TARGET)}`,
  ];
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the runtime benchmark needs root');
  const dir = mkdtempSync(join(tmpdir(), 'ns-bench-rt-'));
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

    if (process.env['BENCH_V8_FLAGS']) {
      // What each flag saves: all flags, none, and all but one (--lite-mode goes with
      // --no-expose-wasm, which only says that lite mode has no WebAssembly).
      const sets: [string, string[]][] = [
        ['all flags', V8_FLAGS],
        ['no flags', []],
        ...V8_FLAGS.filter((f) => f !== '--no-expose-wasm').map((f): [string, string[]] => [`without ${f}`, V8_FLAGS.filter((g) => g !== f && !(f === '--lite-mode' && g === '--no-expose-wasm'))]),
      ];
      const rows: string[] = [];
      let all: Session | undefined;
      for (const [label, flags] of sets) {
        const r = await session(dir, names, false, flags.join(' '));
        all ??= r;
        const d = (a: number, b: number) => `${a - b >= 0 ? '+' : ''}${mib(a - b)}`;
        rows.push(
          `  ${label.padEnd(34)} idle PSS ${mib(r.idle.runtime.pss).padStart(5)} MiB (${d(r.idle.runtime.pss, all.idle.runtime.pss).padStart(5)}), RSS ${mib(r.idle.runtime.rss).padStart(5)};` +
            `  ${MANY} sleeping PSS ${mib(r.busy.runtime.pss).padStart(5)} MiB (${d(r.busy.runtime.pss, all.busy.runtime.pss).padStart(5)}), RSS ${mib(r.busy.runtime.rss).padStart(5)};  ${MANY} at once ${r.hundred.toFixed(0)} ms;  20 starts median exit ${median(r.toExit).toFixed(2)} ms`,
        );
        console.log(rows[rows.length - 1]);
      }
      console.log(`V8 flags of the runtime (runtime PSS, difference to all flags: what the flag saves)`);
      for (const r of rows) console.log(r);
      return;
    }

    const r = await session(dir, names, true, undefined, references(dir, BIN, ['exit', '0']));
    console.log(`runtime benchmark (${ROUNDS} rounds; ${MANY} containers; ${NORTHSTAR})`);
    console.log(`  mount, user-space verity (signed): median ${median(r.mountTimes['signed']!).toFixed(1)} ms`);
    console.log(`  mount, no key:                     median ${median(r.mountTimes['plain']!).toFixed(1)} ms  (ratio ${(median(r.mountTimes['signed']!) / median(r.mountTimes['plain']!)).toFixed(2)})`);
    console.log(`  start request -> started:          median ${median(r.toStarted).toFixed(2)} ms`);
    console.log(`  start request -> exit (exit 0):    median ${median(r.toExit).toFixed(2)} ms`);
    console.log(`  after 100 ms idle -> started:      median ${median(r.idleStarted).toFixed(2)} ms`);
    console.log(`  after 100 ms idle -> exit (exit 0): median ${median(r.idleExit).toFixed(2)} ms`);
    const { alt } = r;
    console.log(`  alternating rounds (${alt.ours.length}): start request -> exit ${median(alt.ours).toFixed(2)} ms` +
      (alt.unshare.length ? `, cold unshare ${median(alt.unshare).toFixed(2)} ms (from Node: ${median(alt.unshareNode).toFixed(2)} ms)` : ', unshare not installed') +
      (alt.runc.length ? `, runc run ${median(alt.runc).toFixed(2)} ms` : ', runc not installed'));
    if (alt.unshare.length) {
      const x = median(alt.ours) / median(alt.unshare);
      console.log(`    ours / cold unshare = ${x.toFixed(2)}x   (issue 15: <= 1.5x: ${x <= 1.5 ? 'met' : 'NOT met'}; stretch < 1x: ${x < 1 ? 'met' : 'not met'})`);
      console.log(`    ours / cold unshare spawned from Node = ${(median(alt.ours) / median(alt.unshareNode)).toFixed(2)}x`);
    }
    if (alt.runc.length) {
      const x = median(alt.runc) / median(alt.ours);
      console.log(`    runc / ours         = ${x.toFixed(2)}x   (issue 15: >= 5x: ${x >= 5 ? 'met' : 'NOT met'})`);
    }
    console.log(`  ${MANY} containers at once, all started: ${r.hundred.toFixed(0)} ms` +
      (r.hundredUnshare !== null ? `; ${MANY} cold unshare runs at once, all exited: ${r.hundredUnshare.toFixed(0)} ms (issue 15: within it: ${r.hundred <= r.hundredUnshare ? 'met' : 'NOT met'})` : ''));
    for (const l of memoryLines(r)) console.log(l);
    console.log(`  runtime exit code after shutdown:  ${r.exitCode}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`runtime benchmark failed: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
