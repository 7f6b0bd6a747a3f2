/**
 * Shared helpers for the launch core tests (test/launch/core*.test.ts): a container root
 * made of busybox in a temp dir, a hand-built plan, and helpers to run a container and
 * to find its processes on the host.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { Launcher, type ContainerProcess, type ExitStatus, type LaunchFds } from '../../src/launch/launcher.js';
import type { LaunchPlan } from '../../src/launch/plan.js';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const BUSYBOX = '/bin/busybox';

const APPLETS = ['sh', 'cat', 'id', 'hostname', 'ls', 'readlink', 'sleep', 'true', 'false', 'kill', 'grep', 'echo', 'wc', 'ps', 'ip', 'stat', 'touch', 'mkdir', 'head', 'tr', 'env', 'stty'];

/** Why launch tests cannot run here, or null. */
export function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'launch core tests need root (namespaces, mounts)';
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} is missing (apt-get install busybox-static)`;
  return null;
}

let built = false;
/** Build native/ once per process (a no-op when up to date). */
export function buildCore(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', join(REPO, 'native')], { stdio: 'inherit' });
  built = true;
}

/** A root directory with busybox and its applets, removed after the test. */
export function makeRoot(t: TestContext, extraDirs: string[] = []): string {
  const root = mkdtempSync(join(tmpdir(), 'nsl-root-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  chmodSync(root, 0o755);
  for (const d of ['bin', 'proc', 'dev', 'tmp', 'mnt', 'etc', 'sys', ...extraDirs]) mkdirSync(join(root, d), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
  return root;
}

let seq = 0;
/** A unique container name so its processes can be found by cmdline. */
export function uniqueName(prefix = 'c'): string {
  seq += 1;
  return `${prefix}${process.pid}x${seq}:0.0.1`;
}

export const PROC_MOUNT = { source: 'proc', target: 'proc', fstype: 'proc', flags: 0x1 | 0x2 | 0x4 | 0x8, data: null };

/** A plan running `sh -c script` as uid/gid 1000 with /proc mounted and no capabilities. */
export function shPlan(root: string, script: string, over: Partial<LaunchPlan> = {}): LaunchPlan {
  const container = over.container ?? uniqueName();
  return {
    container,
    hostname: container.split(':')[0]!,
    root,
    mounts: [PROC_MOUNT],
    network: { mode: 'new' },
    uid: 1000,
    gid: 1000,
    groups: [],
    rlimits: [],
    capabilities: [],
    seccomp: { enabled: false, rules: [] },
    path: '/bin/sh',
    argv: ['sh', '-c', script],
    envp: ['PATH=/bin'],
    cgroupProcs: [],
    console: false,
    sockets: [],
    ...over,
  };
}

export interface RunResult {
  status: ExitStatus | null;
  stdout: string;
  stderr: string;
  proc: ContainerProcess;
}

export function collect(stream: NodeJS.ReadableStream | null): Promise<string> {
  if (!stream) return Promise.resolve('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

/** Start a plan with stdout/stderr piped, wait for its exit and return everything. */
export async function run(launcher: Launcher, plan: LaunchPlan, fds: LaunchFds = {}): Promise<RunResult> {
  const proc = await launcher.start(plan, { stdout: 'pipe', stderr: 'pipe', ...fds });
  const [stdout, stderr, status] = await Promise.all([collect(proc.stdout), collect(proc.stderr), proc.exited]);
  return { status, stdout, stderr, proc };
}

/**
 * Host pids of every process of a container (launcher, init and app share its cmdline;
 * a pooled core's is rewritten to one string, "northstar-launch <container>").
 */
export function containerPids(container: string): number[] {
  const want = [`northstar-launch\0${container}\0`, `northstar-launch ${container}\0`];
  const pids: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (want.includes(readFileSync(`/proc/${e}/cmdline`, 'latin1'))) pids.push(Number(e));
    } catch {
      // the process went away meanwhile
    }
  }
  return pids;
}

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}
