/**
 * Ours: a command run inside a running container (`nstar exec`), by an exec core: the launch
 * core in its join mode (native/src/join.c). It joins the container's namespaces, cgroups and
 * root and runs the command with the container's ids, capabilities, rlimits and seccomp
 * filter, never more; the kernel kills it with the container's init.
 *
 * fds of the exec core: 0 the command's stdin (a pipe, or /dev/null), 1 stdout, 2 stderr
 * (with `tty`: 0 and 1 carry the terminal's input and output through the core, 2 is unused),
 * 3 reports, 4 commands (the JOIN frame, the plan, then SIGNAL and RESIZE). Closing the
 * command socket kills the command.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { NorthstarError } from '../common/errors.js';
import { LaunchError } from './launch-error.js';
import { encodePlan, type LaunchPlan } from './plan.js';
import { CMD_JOIN, CMD_RESIZE, CMD_SIGNAL, ReportReader, frames, type ExitStatus } from './records.js';

export interface ExecOptions {
  /** Host pid of the container's launcher process (ContainerProcess.launcherPid). */
  launcherPid: number;
  /** A pseudo terminal for the command: its stdin/stdout/stderr, relayed by the core. */
  tty: boolean;
  /** Whether the command gets a stdin pipe (else /dev/null; with `tty` the terminal's). */
  stdin: boolean;
  /** Initial terminal size (with `tty`). */
  size?: { rows: number; cols: number } | undefined;
}

/** One exec'd command. `started` settles first; `exited` never rejects. */
export class ExecProcess {
  readonly container: string;
  /** The command's input (absent without `stdin` and `tty`), output, and error output (absent with `tty`). */
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  /** Resolves with the command's host pid once its execve succeeded; rejects with the failed step. */
  readonly started: Promise<number>;
  /** How the command ended; null when it never ran (see `started`). */
  readonly exited: Promise<ExitStatus | null>;

  private readonly child: ChildProcess;
  private readonly commands: Duplex;
  private readonly reports = new ReportReader();
  private status: ExitStatus | null = null;
  private error: LaunchError | null = null;
  private running = false;
  private resolveStarted!: (pid: number) => void;
  private rejectStarted!: (e: Error) => void;

  constructor(binary: string, plan: LaunchPlan, opts: ExecOptions) {
    this.container = plan.container;
    if (!existsSync(binary)) throw new NorthstarError('ELAUNCH', `launch core ${binary} does not exist (build it with make -C native)`);
    if (!Number.isInteger(opts.launcherPid) || opts.launcherPid < 2) throw new NorthstarError('EARGUMENT', `exec ${plan.container}: no launcher pid`);
    const encoded = encodePlan(plan);
    const stdio = [opts.stdin || opts.tty ? 'pipe' : 'ignore', 'pipe', opts.tty ? 'ignore' : 'pipe', 'pipe', 'pipe'] as const;
    this.started = new Promise((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    // A failure before `started` is the caller's to see; nobody need await it otherwise.
    this.started.catch(() => undefined);
    try {
      this.child = spawn(binary, [`exec:${plan.container}`], { stdio: [...stdio], env: {}, argv0: 'northstar-launch', windowsHide: true });
    } catch (e) {
      throw new NorthstarError('ELAUNCH', `exec ${plan.container}: spawning the launch core failed: ${(e as Error).message}`, { cause: e });
    }
    const child = this.child;
    this.stdin = (child.stdio[0] as Writable | null) ?? null;
    this.stdin?.on('error', () => {
      // EPIPE: the command closed its input or ended.
    });
    // Piped right away, as for containers: a fast exit must not lose the output.
    this.stdout = (child.stdio[1] as Readable).pipe(new PassThrough());
    this.stderr = opts.tty ? null : (child.stdio[2] as Readable).pipe(new PassThrough());
    (child.stdio[1] as Readable).on('error', (e: Error) => this.stdout.destroy(e));
    (child.stdio[2] as Readable | null)?.on('error', (e: Error) => this.stderr?.destroy(e));
    const control = child.stdio[3] as Duplex;
    this.commands = child.stdio[4] as Duplex;
    this.commands.on('error', () => {
      // The core is gone; its reports say why.
    });
    control.on('error', () => undefined);
    control.on('data', (chunk: Buffer) => this.onData(chunk));
    let controlClosed = false;
    let childExit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let resolveExited!: (s: ExitStatus | null) => void;
    this.exited = new Promise((r) => (resolveExited = r));
    const gone = (): void => {
      if (!controlClosed || !childExit) return;
      if (!this.running) {
        const how = childExit.signal ? `signal ${childExit.signal}` : `code ${childExit.code}`;
        this.rejectStarted(this.error ?? new LaunchError(plan.container, 'launch', 0, null, `the exec core exited (${how}) before the command ran`, 'exec'));
      }
      this.stdin?.destroy();
      resolveExited(this.running ? (this.status ?? { signal: 9 }) : null);
    };
    control.on('close', () => {
      controlClosed = true;
      gone();
    });
    child.on('exit', (code, signal) => {
      childExit ??= { code, signal };
      gone();
    });
    child.on('error', (e) => {
      if (child.pid !== undefined || childExit) return;
      this.error ??= new LaunchError(plan.container, 'spawn', 0, null, `spawning the launch core failed: ${e.message}`, 'exec');
      childExit = { code: null, signal: null };
      control.destroy();
      gone();
    });
    // The JOIN frame: the launcher's pid, tty, and the terminal's initial size (set before
    // the command runs).
    const join = Buffer.alloc(10);
    join[0] = CMD_JOIN;
    join.writeUInt32LE(opts.launcherPid, 1);
    join[5] = opts.tty ? 1 : 0;
    if (opts.tty && opts.size) {
      join.writeUInt16LE(clampU16(opts.size.rows), 6);
      join.writeUInt16LE(clampU16(opts.size.cols), 8);
    }
    this.commands.write(frames(join, encoded));
  }

  /** Send a signal to the command's process group (with a tty: the terminal's foreground group). */
  signal(signo: number): void {
    if (!Number.isInteger(signo) || signo < 1 || signo > 64) throw new NorthstarError('EARGUMENT', `exec ${this.container}: invalid signal ${signo}`);
    this.send(Buffer.from([CMD_SIGNAL, signo]));
  }

  /** The terminal's size (tty only; otherwise ignored by the core). */
  resize(rows: number, cols: number): void {
    this.send(resizeFrame(rows, cols));
  }

  /** End the command (SIGKILL from the core); `exited` settles once it is gone. */
  kill(): void {
    if (!this.commands.destroyed) this.commands.destroy();
  }

  private send(payload: Buffer): void {
    if (this.commands.destroyed || !this.commands.writable) return;
    this.commands.write(frames(payload));
  }

  private onData(chunk: Buffer): void {
    try {
      for (const r of this.reports.push(chunk)) {
        if (r.type === 'started') {
          this.running = true;
          this.resolveStarted(r.pid);
        } else if (r.type === 'exit') {
          this.status = r.status;
        } else if (r.type === 'error') {
          this.error ??= new LaunchError(this.container, r.step, r.errno, r.path || null, r.message, 'exec');
        } else {
          throw new Error(`unexpected ${r.type} record from an exec core`);
        }
      }
    } catch (e) {
      this.error ??= new LaunchError(this.container, 'protocol', 0, null, `malformed report from the exec core: ${e instanceof Error ? e.message : String(e)}`, 'exec');
      this.kill();
      this.child.kill('SIGKILL');
    }
  }
}

function clampU16(n: number): number {
  return Math.max(0, Math.min(0xffff, Math.trunc(n) || 0));
}

function resizeFrame(rows: number, cols: number): Buffer {
  const b = Buffer.alloc(5);
  b[0] = CMD_RESIZE;
  b.writeUInt16LE(clampU16(rows), 1);
  b.writeUInt16LE(clampU16(cols), 3);
  return b;
}
