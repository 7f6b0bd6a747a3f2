/**
 * The launcher: starts containers from launch plans through the C core
 * (`native/build/northstar-launch`), delivers their exits and kills them.
 *
 * Process shape, per container:
 *
 *   runtime (Node) ── spawn ──> northstar-launch (the "launcher" process, host side)
 *                                 └─ clone(NEWPID|NEWNS|NEWIPC|NEWUTS[|NEWNET]) ─> init (PID 1)
 *                                                                                   └─ app
 *
 * or, for a start the pool serves (LauncherOptions.pool > 0; stdio /dev/null or pipes, no
 * socket fds, a new network namespace):
 *
 *   runtime ── spawn once ──> northstar-forker ── fork ──> northstar-launch (sandbox) ─> init ─> app
 *
 * Why a process per container (decided by measurement with `npm run bench -- launch`;
 * figures in docs/design/measurements.md):
 *  - Node cannot pass arbitrary fds to a process that is already running (no SCM_RIGHTS in
 *    `net`), but `child_process.spawn` can hand any fd at any number. A start with fds of
 *    the caller (stdin, manifest sockets) therefore spawns its core with them. A core from
 *    the forker connects its fds back to a socket of ours instead (forker.ts), which serves
 *    pipes and /dev/null only.
 *  - Latency: Node's spawn blocks this thread for milliseconds (it forks the runtime and
 *    waits for the exec); the forker's fork does not. A spawned core is executed from the
 *    runtime's fd of its sealed memfd copy (/proc/self/fd/<n>), a forked one from the
 *    forker's: one exec, no copy per start.
 *  - Memory: the core is linked statically (no ld.so, no shared-library pages) and both
 *    waiting processes drop the mappings of their setup code (native/src/rss.c). The
 *    sealed memfd is one copy shared by all containers started from the same fd.
 *  - Isolation of failures: a crash or a hung setup of one container's core touches no
 *    other container and not the runtime.
 * The launcher process stays alive as init's parent until init has exited: this host has
 * no reaping PID 1 and Node cannot be a subreaper, so an orphaned init would stay a zombie;
 * and its exit tells us exactly when no process of the container is left.
 *
 * fds of the core: 0-2 the container's stdio (/dev/null unless given), 3 reports (core ->
 * runtime), 4 commands (runtime -> core: the plan, EXEC, SIGNAL), 5.. console and sockets.
 * Reports and commands are separate sockets so that a command racing the container's end
 * (EPIPE) never costs a report. The app gets console and sockets renumbered from 3.
 *
 * `pid` is the HOST pid of init (what debug commands need); `appPid` is the app's pid
 * inside the container. Signals go through init over the command socket: init forwards
 * them to the app's process group. Node never forks or unshares itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync } from 'node:fs';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { NorthstarError } from '../common/errors.js';
import { encodePlan, type LaunchPlan } from './plan.js';
import { CMD_EXEC, CMD_SIGNAL, ReportReader, frames, type ExitStatus, type Report } from './records.js';
import { LaunchError } from './launch-error.js';
import { ExecProcess, type ExecOptions } from './exec-process.js';
import { Forker, type CoreChild } from './forker.js';

/** Default location of the C core, relative to this module (dist/src/launch/). */
export const DEFAULT_LAUNCH_BINARY = fileURLToPath(new URL('../../../native/build/northstar-launch', import.meta.url));

export type { ExitStatus } from './records.js';

export { LaunchError } from './launch-error.js';

/**
 * The fds a container gets. Host stdio never reaches a container: an absent stdin,
 * stdout or stderr is /dev/null. Numbers are fds open in this process; they are
 * duplicated into the container and stay owned by the caller. 'pipe' makes the
 * launcher create a socket pair and expose this side on the handle.
 */
export interface LaunchFds {
  stdin?: number;
  stdout?: number | 'pipe';
  stderr?: number | 'pipe';
  /** Required iff `plan.console`. */
  console?: number | 'pipe';
  /** One fd per name in `plan.sockets`. */
  sockets?: Readonly<Record<string, number>>;
  /**
   * Instead of `sockets`: have them created (host side, before the container) by
   * native/build/northstar-sockets, one spec per name in `plan.sockets`, in that order.
   * Node cannot create AF_UNIX datagram or seqpacket sockets itself.
   */
  createSockets?: readonly SocketSpec[];
}

/** A manifest socket to create at `path`; the file gets `mode` and `uid`/`gid`. */
export interface SocketSpec {
  path: string;
  type: 'stream' | 'datagram' | 'seq_packet';
  mode: number;
  uid?: number | undefined;
  gid?: number | undefined;
  passcred?: boolean | undefined;
}

function socketArgs(first: number, specs: readonly SocketSpec[]): string[] {
  const args = [String(first), String(specs.length)];
  for (const s of specs) {
    args.push(s.path, s.type, s.mode.toString(8), s.uid === undefined ? '-' : String(s.uid), s.gid === undefined ? '-' : String(s.gid), s.passcred ? '1' : '0');
  }
  return args;
}

export interface LauncherOptions {
  /** Path of northstar-launch; default: native/build/northstar-launch of this checkout. */
  binary?: string;
  /**
   * Launch cores spawned ahead of time, each with its sandbox, waiting for its plan
   * (default 0). A start whose fds and network allow it (see `spawnCore`) takes one instead
   * of spawning; the pool refills once starts pause.
   */
  pool?: number;
  /**
   * Path of northstar-forker, which forks the pool's cores off this thread (forker.ts);
   * default: next to the core. Without it the pool's cores are spawned from Node.
   */
  forker?: string;
}

/**
 * A core spawned ahead of time: no plan, no cgroup and no mount yet; its init already waits
 * in new PID, IPC, UTS and network namespaces (a sandbox, see native/src/main.c). Used once.
 */
interface Spare {
  readonly child: CoreChild;
  gone: boolean;
}

/** How long starts must pause before the pool refills (see Launcher.queueRefill). */
const REFILL_QUIET_MS = 25;

/** The pooled core's fds: /dev/null, stdout, stderr, reports, commands, console. */
const SPARE_STDIO = ['ignore', 'pipe', 'pipe', 'pipe', 'pipe', 'pipe'] as const;
/**
 * argv[1] of a pooled core until its plan names the container: main.c rewrites the
 * argument area in place to "northstar-launch <container>", so it is padded to hold the
 * longest container name (255 bytes).
 */
const SPARE_NAME = '(pooled)'.padEnd(272, ' ');

type Phase = 'creating' | 'created' | 'starting' | 'running' | 'exited';

/** One container's processes. Obtained from Launcher.create or Launcher.start. */
export class ContainerProcess {
  readonly container: string;
  /** Host pid of init (PID 1 of the container). */
  pid = 0;
  /** Host pid of the launcher process (init's parent). */
  readonly launcherPid: number;
  /** Pid of the app inside the container, once started. */
  appPid: number | null = null;
  /** When init was created (mounts done, parked) and when the app was exec'd. */
  createdAt: Date | null = null;
  startedAt: Date | null = null;
  /** This side of 'pipe' fds. */
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly console: Duplex | null;
  /**
   * Resolves once every process of the container is gone: with the app's exit status,
   * with `{signal}` if it was killed before the app ran, or with null if the app never
   * ran because its start failed. Never rejects.
   */
  readonly exited: Promise<ExitStatus | null>;

  private phase: Phase = 'creating';
  private readonly child: CoreChild;
  /** Reports from the core (fd 3 in the core) and commands to it (fd 4). */
  private readonly control: Duplex;
  private readonly commands: Duplex;
  private readonly reports = new ReportReader();
  private status: ExitStatus | null = null;
  private error: LaunchError | null = null;
  private waiter: { resolve: () => void; reject: (e: Error) => void; want: 'created' | 'running' } | null = null;
  private resolveExited!: (s: ExitStatus | null) => void;
  private childExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  /** @internal called synchronously when init reports CREATED (init is alive then). */
  onCreated: ((initPid: number) => void) | null = null;
  private controlClosed = false;
  /** EXEC was sent with the plan (Launcher.start, or create with `exec`). */
  private execSent = false;

  /** @internal use Launcher.create / Launcher.start */
  constructor(container: string, child: CoreChild, pipes: { stdout: boolean; stderr: boolean; console: number | null }) {
    this.container = container;
    this.child = child;
    this.launcherPid = child.pid ?? 0;
    const reports = child.stdio[3];
    const commands = child.stdio[4];
    if (!reports || !commands) throw new NorthstarError('ELAUNCH', `start ${container}: no control sockets to the launch core`);
    this.control = reports as Duplex;
    this.commands = commands as Duplex;
    // Piped right away: Node drains unread child pipes when the child exits, so a
    // consumer attaching after a fast exit would otherwise lose the output.
    this.stdout = pipes.stdout ? (child.stdio[1] as Readable).pipe(new PassThrough()) : null;
    this.stderr = pipes.stderr ? (child.stdio[2] as Readable).pipe(new PassThrough()) : null;
    // pipe() does not forward errors: hand a read error on a container pipe to the consumer
    // of the PassThrough (which handles 'error') instead of leaving it unhandled.
    (child.stdio[1] as Readable | null)?.on('error', (e: Error) => this.stdout?.destroy(e));
    (child.stdio[2] as Readable | null)?.on('error', (e: Error) => this.stderr?.destroy(e));
    this.console = pipes.console !== null ? (child.stdio[pipes.console] as Duplex) : null;
    this.exited = new Promise((resolve) => {
      this.resolveExited = resolve;
    });
    this.control.on('data', (chunk: Buffer) => this.onData(chunk));
    this.control.resume();
    this.control.on('error', () => {
      // Never written to, so no EPIPE; a reset only means the core is gone (see 'close').
    });
    this.commands.on('error', () => {
      // EPIPE/ECONNRESET: a command raced with the container's end. The reports socket
      // is separate, so every record the core wrote is still read.
    });
    // The container is gone when the launcher process has exited AND every report has
    // been read (EOF on the control socket): 'exit' may overtake the last records.
    this.control.on('close', () => {
      this.controlClosed = true;
      if (this.childExit) this.onGone();
    });
    child.on('exit', (code, signal) => {
      if (this.childExit) return;
      this.childExit = { code, signal };
      if (this.controlClosed) this.onGone();
    });
    child.on('error', (e) => {
      // Only a failed spawn leaves no pid; a failed kill of a live child is not an exit.
      if (child.pid !== undefined || this.childExit) return;
      this.error ??= new LaunchError(container, 'spawn', 0, null, `spawning the launch core failed: ${e.message}`);
      this.childExit = { code: null, signal: null };
      this.destroy();
      this.control.destroy();
      if (this.controlClosed) this.onGone();
    });
  }

  /**
   * For a create that sent EXEC with the plan: resolves once the app's execve succeeded
   * (at once if it already has), rejects like exec().
   */
  started(): Promise<void> {
    if (this.appPid !== null && !this.error) return Promise.resolve();
    if (!this.execSent) return Promise.reject(new NorthstarError('ESTATE', `started ${this.container}: EXEC was not sent with the plan; use exec()`));
    if (this.phase === 'exited') {
      return Promise.reject(this.error ?? new LaunchError(this.container, 'launch', 0, null, `the launch core exited (${describeExit(this.childExit)}) before the container started`));
    }
    return new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject, want: 'running' };
      this.settle();
    });
  }

  /** Exec the app in a created container. Resolves when execve succeeded. */
  exec(): Promise<void> {
    if (this.phase !== 'created') {
      return Promise.reject(new NorthstarError('ESTATE', `exec ${this.container}: container is ${this.phase}, not created`));
    }
    this.phase = 'starting';
    return new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject, want: 'running' };
      this.send(Buffer.from([CMD_EXEC]));
    });
  }

  /**
   * Send a signal to the app's process group (through init). Before the app runs, any
   * signal ends the container. Returns false if the container has already exited.
   */
  kill(signal: NodeJS.Signals | number = 'SIGKILL'): boolean {
    const signo = typeof signal === 'number' ? signal : osConstants.signals[signal];
    if (!Number.isInteger(signo) || signo < 1 || signo > 64) {
      throw new NorthstarError('EARGUMENT', `kill ${this.container}: invalid signal ${String(signal)}`);
    }
    if (this.phase === 'exited' || this.childExit) return false;
    this.send(Buffer.from([CMD_SIGNAL, signo]));
    return true;
  }

  /** Take the container down without a signal to the app first: init kills everything. */
  destroy(): void {
    if (!this.commands.destroyed) this.commands.destroy();
  }

  private send(...payloads: Buffer[]): void {
    if (this.commands.destroyed || !this.commands.writable) return;
    this.commands.write(frames(...payloads));
  }

  /** @internal the plan (and EXEC for a one-call start) in one write, read by the core at once */
  sendPlan(plan: Buffer, exec: boolean): void {
    this.execSent = exec;
    if (exec) this.send(plan, Buffer.from([CMD_EXEC]));
    else this.send(plan);
  }

  /** @internal */
  wait(want: 'created' | 'running'): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiter = { resolve, reject, want };
    });
  }

  private onData(chunk: Buffer): void {
    let reports: Report[];
    try {
      reports = this.reports.push(chunk);
    } catch (e) {
      return this.protocolError(e instanceof Error ? e.message : String(e));
    }
    for (const r of reports) this.onRecord(r);
  }

  private onRecord(r: Report): void {
    switch (r.type) {
      case 'created':
        this.pid = r.pid;
        this.createdAt = new Date();
        this.onCreated?.(this.pid);
        if (this.phase === 'creating') this.phase = this.execSent ? 'starting' : 'created';
        if (this.waiter?.want === 'created') this.settle();
        break;
      case 'started':
        this.appPid = r.pid;
        this.startedAt = new Date();
        this.phase = 'running';
        this.settle();
        break;
      case 'exit':
        this.status = r.status;
        break;
      case 'error':
        this.error ??= new LaunchError(this.container, r.step, r.errno, r.path || null, r.message);
        // The core ends this container itself; closing our side makes sure of it.
        this.destroy();
        break;
    }
  }

  private protocolError(what: string): void {
    this.error ??= new LaunchError(this.container, 'protocol', 0, null, `malformed report from the launch core: ${what}`);
    this.destroy();
    this.control.destroy();
    this.child.kill('SIGKILL');
  }

  /** Resolve a pending create/exec if its phase was reached and no error is known. */
  private settle(): void {
    const w = this.waiter;
    if (!w || this.error) return;
    if (w.want === 'created' && this.phase !== 'creating') {
      this.waiter = null;
      w.resolve();
    } else if (w.want === 'running' && this.phase === 'running') {
      this.waiter = null;
      w.resolve();
    }
  }

  /** The launcher process exited: init and every container process are gone. */
  private onGone(): void {
    if (this.phase === 'exited') return;
    this.phase = 'exited';
    const w = this.waiter;
    this.waiter = null;
    if (w) {
      const err =
        this.error ??
        new LaunchError(this.container, 'launch', 0, null, `the launch core exited (${describeExit(this.childExit)}) before the container ${w.want === 'created' ? 'was created' : 'started'}`);
      w.reject(err);
    }
    let status = this.status;
    if (!status && this.appPid !== null && this.childExit) {
      // init itself was killed from the host: the whole container went with it.
      const sig = this.childExit.code !== null && this.childExit.code > 128 ? this.childExit.code - 128 : null;
      status = sig ? { signal: sig } : { signal: osConstants.signals.SIGKILL };
    }
    this.resolveExited(status);
  }
}

/** Whether a pooled core is still alive: one killed a moment ago is a zombie Node has not reaped yet. */
function waiting(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function describeExit(e: { code: number | null; signal: NodeJS.Signals | null } | null): string {
  if (!e) return 'unknown status';
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

/** Starts containers; one instance per runtime. */
export class Launcher {
  readonly binary: string;
  /**
   * A read-only fd of the sealed memfd copy of the core, taken from the first init
   * (/proc/<pid>/exe). Later starts execute it directly as /proc/self/fd/<n>, so the
   * core neither copies itself nor executes twice. Released by close().
   */
  private sealedFd: number | null = null;
  private closed = false;
  private readonly poolSize: number;
  private readonly spares: Spare[] = [];
  private refillTimer: NodeJS.Timeout | null = null;
  /** The pool's cores forked off this thread; null without a pool or when it could not start. */
  private forker: Forker | null = null;
  private readonly forkerBinary: string;
  /** Cores asked of the forker for the pool and not yet connected. */
  private forking = 0;

  constructor(options: LauncherOptions = {}) {
    this.binary = options.binary ?? DEFAULT_LAUNCH_BINARY;
    this.forkerBinary = options.forker ?? join(dirname(this.binary), 'northstar-forker');
    const pool = options.pool ?? 0;
    if (!Number.isInteger(pool) || pool < 0) throw new NorthstarError('EARGUMENT', `launcher pool: expected an integer >= 0, got ${String(pool)}`);
    this.poolSize = pool;
    this.queueRefill(0);
  }

  /** The forker, started on first use and again after it died; null if it cannot run. */
  private liveForker(): Forker | null {
    if (this.poolSize === 0 || this.closed) return null;
    if (this.forker?.alive) return this.forker;
    this.forker = null;
    if (!existsSync(this.forkerBinary) || !existsSync(this.binary)) return null;
    try {
      this.forker = new Forker(this.forkerBinary, this.binary);
    } catch {
      return null; // the pool's cores are spawned from Node then
    }
    return this.forker;
  }

  /** The forker's pid while it runs (for tests and inspection). */
  get forkerPid(): number | null {
    return this.forker?.alive ? (this.forker.pid ?? null) : null;
  }

  /** Pooled cores waiting for a plan (for tests and the runtime's inspection). */
  get pooled(): number[] {
    return this.spares.filter((s) => !s.gone && s.child.pid !== undefined).map((s) => s.child.pid!);
  }

  /**
   * Create the container: namespaces, mounts, pivot_root, cgroups joined, init parked.
   * Resolves with the handle (pid = init's host pid) or rejects with a LaunchError once
   * no process of the container is left.
   */
  async create(plan: LaunchPlan, fds: LaunchFds = {}, opts: { exec?: boolean } = {}): Promise<ContainerProcess> {
    // `exec`: EXEC goes with the plan, so init runs the app once created, without waiting
    // for a round trip to the runtime; the caller waits for it with started().
    const proc = await this.spawnCore(plan, fds, opts.exec === true);
    await proc.wait('created');
    return proc;
  }

  /** Create and exec in one call. Resolves once the app's execve succeeded. */
  async start(plan: LaunchPlan, fds: LaunchFds = {}): Promise<ContainerProcess> {
    const proc = await this.spawnCore(plan, fds, true);
    await proc.wait('running');
    return proc;
  }

  /** Ours: run a command inside a running container (see exec-process.ts). */
  exec(plan: LaunchPlan, opts: ExecOptions): ExecProcess {
    if (this.closed) throw new NorthstarError('ESTATE', `exec ${plan.container}: the launcher is closed`);
    return new ExecProcess(this.binary, plan, opts);
  }

  /** Release the launcher's own fd (running containers are not affected). */
  close(): void {
    this.closed = true;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    // A pooled core holds no cgroup or mount yet: SIGKILL is all (its sandbox's init
    // follows by its parent-death signal).
    for (const s of this.spares.splice(0)) {
      for (const fd of s.child.stdio) (fd as Duplex | null)?.destroy();
      if (!s.gone) s.child.kill('SIGKILL');
    }
    // The forker forks no more; it stays until the cores it forked have exited.
    this.forker?.close();
    this.forker = null;
    if (this.sealedFd !== null) {
      closeSync(this.sealedFd);
      this.sealedFd = null;
    }
  }

  private adoptSealedCopy(initPid: number): void {
    if (this.sealedFd !== null || this.closed || initPid <= 0) return;
    try {
      // Only ever a memfd made by the core; the core re-checks the seals when it starts.
      if (!readlinkSync(`/proc/${initPid}/exe`).startsWith('/memfd:northstar-init')) return;
      this.sealedFd = openSync(`/proc/${initPid}/exe`, 'r');
    } catch {
      // init may be gone already; the next start tries again
    }
  }

  private async spawnCore(plan: LaunchPlan, fds: LaunchFds, exec: boolean): Promise<ContainerProcess> {
    if (this.closed) throw new NorthstarError('ESTATE', `start ${plan.container}: the launcher is closed`);
    const stdio = this.stdio(plan, fds);
    // A pooled core's sandbox has a new network namespace: `network: host` or a named
    // namespace spawns its own core.
    if (plan.network.mode === 'new' && this.fitsPool(fds)) {
      const spare = this.takeSpare();
      if (spare) return this.useSpare(spare, plan, fds, exec);
      // None waiting: one forked now costs this thread nothing, unlike a spawn.
      const forker = this.liveForker();
      if (forker) {
        let core: CoreChild | null = null;
        try {
          core = await forker.core();
        } catch {
          // the forker is gone: spawn below
        }
        if (core) {
          if (this.closed) {
            core.kill('SIGKILL');
            throw new NorthstarError('ESTATE', `start ${plan.container}: the launcher is closed`);
          }
          return this.useSpare({ child: core, gone: false }, plan, fds, exec);
        }
      }
    }
    const encoded = encodePlan(plan);
    if (!existsSync(this.binary)) {
      throw new NorthstarError('ELAUNCH', `launch core ${this.binary} does not exist (build it with make -C native)`);
    }
    let command = this.command(stdio.length);
    // argv[1] is informational: it names the container in ps and /proc/<pid>/cmdline.
    let args = [plan.container];
    if (fds.createSockets && fds.createSockets.length > 0) {
      // The socket helper execs the core itself (by path: the sealed fd does not survive its exec).
      args = [...socketArgs(stdio.length, fds.createSockets), '--', this.binary, plan.container];
      command = join(dirname(this.binary), 'northstar-sockets');
    }
    let child: ChildProcess;
    try {
      child = spawn(command, args, { stdio, env: {}, argv0: 'northstar-launch', windowsHide: true });
    } catch (e) {
      throw new NorthstarError('ELAUNCH', `start ${plan.container}: spawning the launch core failed: ${(e as Error).message}`, { cause: e });
    }
    return this.handOver(child, plan.container, fds, encoded, exec);
  }

  /**
   * The spawned (or pooled) core as the container's handle; the plan sent. The pool refills
   * later: one that could not be filled, or was emptied by a burst of starts, tries again.
   */
  private handOver(child: CoreChild, container: string, fds: LaunchFds, encoded: Buffer, exec: boolean): ContainerProcess {
    const proc = new ContainerProcess(container, child, {
      stdout: fds.stdout === 'pipe',
      stderr: fds.stderr === 'pipe',
      console: fds.console === 'pipe' ? 5 : null,
    });
    if (this.sealedFd === null) proc.onCreated = (pid) => this.adoptSealedCopy(pid);
    proc.sendPlan(encoded, exec);
    this.queueRefill();
    return proc;
  }

  /** The sealed copy is executed through the fd as the spawned child sees it, before
   * close-on-exec; an fd number among the child's stdio slots would be overwritten. */
  private command(slots: number): string {
    return this.sealedFd !== null && this.sealedFd >= slots ? `/proc/self/fd/${this.sealedFd}` : this.binary;
  }

  /**
   * A pooled core fits fds that are /dev/null or pipes only (stdin /dev/null; stdout,
   * stderr and console absent or 'pipe'; no sockets): it was made with pipes at 1, 2
   * and 5, and the plan's `discard` bits and the core put /dev/null where none is wanted.
   */
  private fitsPool(fds: LaunchFds): boolean {
    const pipeOrNone = (v: unknown): boolean => v === undefined || v === 'pipe';
    if (this.poolSize === 0 || fds.stdin !== undefined || fds.sockets !== undefined || fds.createSockets !== undefined) return false;
    return pipeOrNone(fds.stdout) && pipeOrNone(fds.stderr) && pipeOrNone(fds.console);
  }

  private takeSpare(): Spare | null {
    let spare: Spare | undefined;
    while ((spare = this.spares.shift())) {
      if (!spare.gone && spare.child.pid !== undefined && spare.child.exitCode === null && spare.child.signalCode === null && waiting(spare.child.pid)) break;
    }
    return spare ?? null;
  }

  private useSpare(spare: Spare, plan: LaunchPlan, fds: LaunchFds, exec: boolean): ContainerProcess {
    const { child } = spare;
    const encoded = encodePlan(plan, { discardStdout: fds.stdout !== 'pipe', discardStderr: fds.stderr !== 'pipe' });
    child.ref();
    for (const s of child.stdio) (s as Socket | null)?.ref();
    // Our ends of the pipes the container does not get: the core closes or replaces its own.
    if (fds.stdout !== 'pipe') child.stdio[1]?.destroy();
    if (fds.stderr !== 'pipe') child.stdio[2]?.destroy();
    if (fds.console !== 'pipe') (child.stdio as unknown as (Duplex | null | undefined)[])[5]?.destroy();
    return this.handOver(child, plan.container, fds, encoded, exec);
  }

  /**
   * Refill the pool once starts pause. A spare made while a start is under way competes with
   * it for the CPU and the kernel's namespace locks, even from the forker: measured with
   * `npm run bench -- runtime`, a refill at once made starts 2-3 ms slower than one after a
   * quiet REFILL_QUIET_MS. Without the forker each spare is also spawned from Node, which
   * blocks this thread for milliseconds. Each start pushes the refill back; a start that
   * finds the pool empty gets a core forked for it (or spawned, without the forker).
   */
  private queueRefill(delay = REFILL_QUIET_MS): void {
    if (this.poolSize === 0 || this.closed) return;
    if (this.refillTimer) clearTimeout(this.refillTimer);
    this.refillTimer = setTimeout(() => {
      this.refillTimer = null;
      this.refill();
    }, delay);
    this.refillTimer.unref();
  }

  private refill(): void {
    this.spares.splice(0, this.spares.length, ...this.spares.filter((s) => !s.gone));
    const forker = this.liveForker();
    if (forker) {
      while (this.spares.length + this.forking < this.poolSize) {
        this.forking++;
        forker.core().then(
          (core) => {
            this.forking--;
            if (this.closed) core.kill('SIGKILL');
            else this.addSpare(core);
          },
          () => {
            // The forker is gone: the next refill starts another or spawns from Node.
            this.forking--;
          },
        );
      }
      return;
    }
    while (!this.closed && this.spares.length < this.poolSize && existsSync(this.binary)) {
      let child: ChildProcess;
      try {
        // NSL_SANDBOX: the core clones its init into new PID, IPC, UTS and network namespaces
        // before its plan comes (native/src/main.c), off the start's path.
        child = spawn(this.command(SPARE_STDIO.length), [SPARE_NAME], { stdio: [...SPARE_STDIO], env: { NSL_SANDBOX: '1' }, argv0: 'northstar-launch', windowsHide: true });
      } catch {
        return; // the next start spawns its own core and reports why that fails
      }
      if (child.pid === undefined) {
        child.on('error', () => {});
        return;
      }
      this.addSpare(child);
    }
  }

  private addSpare(child: CoreChild): void {
    const spare: Spare = { child, gone: false };
    const gone = (): void => {
      spare.gone = true;
    };
    child.once('exit', gone);
    child.once('error', gone);
    // Until taken, nothing of a pooled core keeps the runtime's event loop alive, and a
    // reset of its sockets (it died) is only noted.
    child.unref();
    for (const s of child.stdio) {
      (s as Socket | null)?.unref();
      s?.on('error', gone);
    }
    this.spares.push(spare);
  }

  private stdio(plan: LaunchPlan, fds: LaunchFds): (number | 'pipe' | 'ignore')[] {
    const fd = (what: string, v: unknown): number => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
        throw new NorthstarError('EARGUMENT', `start ${plan.container}: ${what} must be an open fd number, got ${String(v)}`);
      }
      return v;
    };
    const io = (what: string, v: number | 'pipe' | undefined): number | 'pipe' | 'ignore' =>
      v === undefined ? 'ignore' : v === 'pipe' ? 'pipe' : fd(what, v);
    const stdio: (number | 'pipe' | 'ignore')[] = [
      fds.stdin === undefined ? 'ignore' : fd('stdin', fds.stdin),
      io('stdout', fds.stdout),
      io('stderr', fds.stderr),
      'pipe', // 3: reports
      'pipe', // 4: commands
    ];
    if (plan.console) {
      if (fds.console === undefined) throw new NorthstarError('EARGUMENT', `start ${plan.container}: the plan has a console but no console fd was given`);
      stdio.push(fds.console === 'pipe' ? 'pipe' : fd('console', fds.console));
    } else if (fds.console !== undefined) {
      throw new NorthstarError('EARGUMENT', `start ${plan.container}: a console fd was given but the plan has no console`);
    }
    if (fds.createSockets) {
      const names = fds.createSockets.length;
      if (names !== plan.sockets.length || fds.sockets) {
        throw new NorthstarError('EARGUMENT', `start ${plan.container}: ${names} socket specs for the plan's ${plan.sockets.length} sockets`);
      }
      return stdio;
    }
    const given = Object.keys(fds.sockets ?? {}).sort();
    const wanted = [...plan.sockets].sort();
    if (given.join('\0') !== wanted.join('\0')) {
      throw new NorthstarError('EARGUMENT', `start ${plan.container}: socket fds [${given.join(', ')}] do not match the plan's sockets [${wanted.join(', ')}]`);
    }
    for (const name of plan.sockets) stdio.push(fd(`socket ${name}`, fds.sockets?.[name]));
    return stdio;
  }
}
