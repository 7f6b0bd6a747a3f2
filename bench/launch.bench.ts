/**
 * Launch latency and memory of the launch core, against `unshare` and `runc` in the same run.
 *
 * Each round starts and reaps one trivial static container (the test container's
 * `exit 0`, or busybox `true` when the test container is not built) three ways, in
 * interleaved order so that machine noise hits all of them alike:
 *   - ours:    Launcher.start(plan) until `exited` resolves (new pid/mnt/ipc/uts/net
 *              namespaces, /proc mounted, pivot_root, ids, caps, fd sweep, exec);
 *   - unshare: `unshare --pid --mount --ipc --uts --net --fork --mount-proc <binary>`;
 *   - runc:    `runc run` of the same root with the config of `runc spec` (root only);
 * both timed by a small native spawner (bench/reference.ts); unshare also from Node.
 * Then one sleeping container's runtime-side processes (launcher + init, not the app) are
 * measured: VmRSS from /proc/<pid>/status.
 *
 * Targets (issue 15): ours <= 1.5x unshare, runc >= 5x ours; launcher + init <= 1 MiB VmRSS.
 * Run: npm run bench -- launch   (LAUNCH_BENCH_ROUNDS=200 by default)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Launcher } from '../src/launch/launcher.js';
import type { LaunchPlan } from '../src/launch/plan.js';
import { median } from './stats.js';
import { references } from './reference.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const ROUNDS = Number(process.env.LAUNCH_BENCH_ROUNDS ?? 200);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** A root with one static program; returns its path inside the root and the argv for "exit 0". */
function makeRoot(dir: string): { root: string; program: string; argv: string[]; sleepArgv: string[]; what: string } {
  const root = join(dir, 'rootfs');
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'bin']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(dir, 0o755);
  const tc = join(REPO, 'examples/test-container');
  if (existsSync(join(tc, 'Makefile'))) {
    try {
      execFileSync('make', ['-s', '-C', tc], { stdio: 'inherit' });
    } catch {
      // fall back to busybox below
    }
  }
  const tcBin = join(tc, 'build/test-container');
  if (existsSync(tcBin)) {
    copyFileSync(tcBin, join(root, 'bin/test-container'));
    chmodSync(join(root, 'bin/test-container'), 0o755);
    return {
      root,
      program: '/bin/test-container',
      argv: ['test-container', 'exit', '0'],
      sleepArgv: ['test-container', 'sleep'],
      what: 'test-container exit 0',
    };
  }
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  symlinkSync('busybox', join(root, 'bin/true'));
  symlinkSync('busybox', join(root, 'bin/sleep'));
  return { root, program: '/bin/true', argv: ['true'], sleepArgv: ['sleep', '1000'], what: 'busybox true' };
}

function rssKiB(pid: number): { rss: number; anon: number; file: number; shmem: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string): number => Number(/(\d+) kB/.exec(s.split('\n').find((l) => l.startsWith(k)) ?? '')?.[1] ?? NaN);
  return { rss: field('VmRSS'), anon: field('RssAnon'), file: field('RssFile'), shmem: field('RssShmem') };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('launch bench: needs root (namespaces); skipped');
    return;
  }
  execFileSync('make', ['-s', '-C', join(REPO, 'native')], { stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'nsl-bench-'));
  try {
    const { root, program, argv, sleepArgv, what } = makeRoot(dir);
    const launcher = new Launcher();
    const plan = (args: string[]): LaunchPlan => ({
      container: 'bench:0.0.1',
      hostname: 'bench',
      root,
      mounts: [{ source: 'proc', target: 'proc', fstype: 'proc', flags: 0xf, data: null }],
      network: { mode: 'new' },
      uid: 1000,
      gid: 1000,
      groups: [],
      rlimits: [],
      capabilities: [],
      seccomp: { enabled: false, rules: [] },
      path: program,
      argv: args,
      envp: [],
      cgroupProcs: [],
      console: false,
      sockets: [],
    });
    const exitPlan = plan(argv);

    // The references, spawned and waited for like ours (bench/reference.ts).
    const refs = references(dir, join(root, program), argv.slice(1));

    // As the runtime runs it ([launch] pool = 2): a core spawned ahead, refilled once starts pause.
    const pooled = new Launcher({ pool: 2 });
    const ours: number[] = [];
    const oursPooled: number[] = [];
    const uns: number[] = [];
    const unsNode: number[] = [];
    const rc: number[] = [];
    // warm-up: page cache, first spawn
    await (await launcher.start(exitPlan)).exited;
    if (refs.unshare) await refs.unshare();
    for (let i = 0; i < ROUNDS; i++) {
      const t = performance.now();
      const c = await launcher.start(exitPlan);
      const status = await c.exited;
      ours.push(performance.now() - t);
      if (!status || !('code' in status) || status.code !== 0) throw new Error(`container exited with ${JSON.stringify(status)}`);
      const tp = performance.now();
      const pstatus = await (await pooled.start(exitPlan)).exited;
      oursPooled.push(performance.now() - tp);
      if (!pstatus || !('code' in pstatus) || pstatus.code !== 0) throw new Error(`container exited with ${JSON.stringify(pstatus)}`);
      if (refs.unshare) uns.push(await refs.unshare());
      if (refs.unshareFromNode) unsNode.push(await refs.unshareFromNode());
      if (refs.runc) rc.push(await refs.runc());
    }

    const fmt = (x: number): string => `${x.toFixed(2)} ms`;
    console.log(`launch: ${ROUNDS} rounds of start-to-exit of a static container (${what}), interleaved`);
    pooled.close();
    console.log(`  ours (Launcher.start -> exited), core spawned at the start: median ${fmt(median(ours))}  p90 ${fmt(pct(ours, 90))}`);
    console.log(`  ours, pooled core (the runtime's default, [launch] pool = 2): median ${fmt(median(oursPooled))}  p90 ${fmt(pct(oursPooled, 90))}`);
    if (uns.length) {
      console.log(`  unshare --pid --mount --ipc --uts --net --fork --mount-proc: median ${fmt(median(uns))}  p90 ${fmt(pct(uns, 90))}  (posix_spawn from C; spawned from Node: ${fmt(median(unsNode))})`);
    }
    else console.log('  unshare: not installed');
    if (rc.length) console.log(`  runc run: median ${fmt(median(rc))}  p90 ${fmt(pct(rc, 90))}`);
    else console.log('  runc: not installed');
    for (const [label, xs] of [['spawned', ours], ['pooled', oursPooled]] as const) {
      if (uns.length) {
        const r = median(xs) / median(uns);
        console.log(`  ours (${label}) / unshare = ${r.toFixed(2)}x  (target <= 1.5x: ${r <= 1.5 ? 'met' : 'MISSED'}; against unshare spawned from Node ${(median(xs) / median(unsNode)).toFixed(2)}x)`);
      }
      if (rc.length) {
        const r = median(rc) / median(xs);
        console.log(`  runc / ours (${label})    = ${r.toFixed(2)}x  (target >= 5x: ${r >= 5 ? 'met' : 'MISSED'})`);
      }
    }

    const sleeper = await launcher.start(plan(sleepArgv));
    try {
      // a sleeping container: let the launcher process reach its wait, too
      await new Promise((r) => setTimeout(r, 200));
      const l = rssKiB(sleeper.launcherPid);
      const n = rssKiB(sleeper.pid);
      const total = l.rss + n.rss;
      console.log('memory of one sleeping container, runtime side (VmRSS from /proc/<pid>/status):');
      console.log(`  launcher ${l.rss} KiB (anon ${l.anon}, file ${l.file}, shmem ${l.shmem}); init ${n.rss} KiB (anon ${n.anon}, file ${n.file}, shmem ${n.shmem})`);
      console.log(`  total ${total} KiB  (target <= 1024 KiB: ${total <= 1024 ? 'met' : 'MISSED'})`);
    } finally {
      sleeper.kill('SIGKILL');
      await sleeper.exited;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
