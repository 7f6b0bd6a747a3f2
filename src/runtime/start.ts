/**
 * Starting one container, top to bottom (runtime.md §5.1, with our fixes). `State` has
 * already checked that the start may happen, resolved the resources and mounted the image
 * and its resources, all under the locks of their names; this module creates everything
 * else, one named step at a time:
 *
 *   command         the init, arguments and environment (plan-builder `startCommand`): a bad
 *                   request fails here, before anything exists
 *   persist dir     <data_dir>/<name>, owned by the container's uid/gid
 *   sockets         the manifest's sockets: made by the launch core, unlinked on teardown
 *   cgroup          made and configured
 *   writable root   an overlay of the image on a tmpfs (manifest `root.writable`)
 *   plan            the launch plan (`buildPlan`)
 *   process         the launch core creates the container with init parked
 *   io              stdout/stderr logged or copied, the container console served
 *   debug commands  the config's commands, while init is parked
 *   exec            the app runs; from here on the container counts as started
 *
 * Each step pushes its undo onto one teardown stack. A failed start runs the stack at once;
 * a started container's exit runs it (State.onExit): both leave nothing behind (spec README
 * item 6). This module does not know `State`: what it needs comes in as `StartDeps`.
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import type { MemoryNotification, ModelError } from '../api/model.js';
import type { Container } from '../common/container.js';
import { errorMessage } from '../common/errors.js';
import { failpoint } from '../common/failpoint.js';
import { LineSplitter } from '../common/line-splitter.js';
import type { Name } from '../common/name.js';
import { within } from '../common/paths.js';
import { LaunchError, type ContainerProcess, type LaunchFds, type SocketSpec } from '../launch/launcher.js';
import type { LaunchPlan } from '../launch/plan.js';
import type { ExecProcess } from '../launch/exec-process.js';
import { buildPlan, startCommand, StartError } from '../launch/plan-builder.js';
import type { Manifest, Socket } from '../manifest/index.js';
import { mountWritableRoot } from './mount/overlay.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import { OpError, formatDuration } from './op-error.js';
import type { CgroupHandle, CgroupPort, LauncherPort } from './ports.js';
import { fsErrorText } from './repository/storage-error.js';

export interface StartRequest {
  /** Replaces the manifest init; `<INIT>` inside it is the manifest init. */
  init?: string | null;
  /** Non-empty: replaces the manifest args. */
  args?: readonly string[];
  /** Non-empty: replaces the manifest env. */
  env?: Readonly<Record<string, string>>;
}

/** Serves the runtime's end of a container's console; returns its closer. */
export type ServeContainerConsole = (container: Container, manifest: Manifest, stream: Duplex) => () => void;

/** What a start needs from the runtime (wired by runtime.ts; unit tests pass fakes). */
export interface StartDeps {
  readonly config: Config;
  readonly cgroups: CgroupPort;
  readonly launcher: LauncherPort;
  readonly log: Logger;
  /** SELinux on the host: `selinux.exec` is applied. */
  readonly selinux: boolean;
  readonly serveConsole: ServeContainerConsole;
  readonly onMemoryEvent: (container: Container, event: MemoryNotification) => void;
}

/** A resource resolved and mounted for this start. */
export interface StartResource {
  readonly container: Container;
  /** Where it is mounted. */
  readonly root: string;
}

/** One start, as State hands it over. */
export interface StartJob {
  readonly container: Container;
  readonly manifest: Manifest;
  /** Where the container's image is mounted. */
  readonly root: string;
  /** Resource name → the version chosen for this start, mounted. */
  readonly resources: ReadonlyMap<string, StartResource>;
  readonly request: StartRequest;
  /** The container counts as started: its app may talk to the runtime before exec resolves. */
  readonly onRunning: (running: Running) => void;
  /** Ours (logs): every `pipe` line besides its debug log, and the end of all piped output. */
  readonly output?: OutputSink;
}

/** Where `io: pipe` lines go besides the debug log (the container's log buffer). */
export interface OutputSink {
  line(stream: 'stdout' | 'stderr', text: string): void;
  /** Once every piped stream has ended (at once when none is piped). */
  ended(): void;
}

/** What is running for a started container. */
export interface Running {
  readonly proc: ContainerProcess;
  /** process.hrtime.bigint() when the start began. */
  readonly startedAt: bigint;
  readonly cgroup: CgroupHandle;
  /** Resources of this start: they cannot be unmounted or uninstalled while it runs. */
  readonly resources: readonly Container[];
  /** Everything this start created, undone in reverse order at exit. */
  readonly teardown: Teardown;
  /** The plan the container runs with (ours: an exec runs with the same). */
  readonly plan: LaunchPlan;
  /** Ours: commands exec'd into it that have not ended; waited for before the teardown. */
  readonly execs: Set<ExecProcess>;
}

/** Undo actions in reverse order of creation; each failure is logged, the rest still run. */
export class Teardown {
  private readonly steps: { what: string; undo: (exit: boolean) => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly log: Logger, private readonly container: Container) {}

  /** `undo(exit)`: `exit` is true for a started container's exit, false for a failed start. */
  push(what: string, undo: (exit: boolean) => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** How long each undo took (ms), in the order they ran: the exit's phase line. */
  readonly took: string[] = [];

  /** Run the stack once (`exit`: for a started container's exit); later calls wait for the same run. */
  run(exit = false): Promise<void> {
    this.running ??= (async () => {
      for (const { what, undo } of this.steps.reverse()) {
        const t0 = process.hrtime.bigint();
        try {
          await undo(exit);
        } catch (err) {
          this.log.error(`${this.container}: undoing ${what} failed: ${errorMessage(err)}`);
        }
        this.took.push(`${what} ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2)}`);
      }
      this.steps.length = 0;
    })();
    return this.running;
  }
}

/** Start a container (see the file comment). Throws OpError; a failure leaves nothing behind. */
export async function startContainer(deps: StartDeps, job: StartJob): Promise<Running> {
  const began = process.hrtime.bigint();
  const c = job.container;
  const phases = new Phases();
  const teardown = new Teardown(deps.log, c);
  try {
    // A bad request fails before anything exists (buildPlan computes the same again).
    startCommand(job.manifest, job.request);
    await persistDir(deps.config, job.manifest);
    const sockets = socketSpecs(deps.config, c, job.manifest);
    teardown.push('socket files', () => removeFiles(sockets.map((s) => s.path)));
    const cgroup = await deps.cgroups.create(String(job.manifest.name), job.manifest, (ev) => deps.onMemoryEvent(c, ev));
    // At an exit, the exit is reported once no task is left; the directories go afterwards
    // (a start of the same name waits for that). A failed start removes them at once.
    teardown.push('cgroup', (exit) => (exit && cgroup.release ? cgroup.release() : cgroup.destroy()));
    phases.mark('cgroup');
    failpoint('start.after-cgroup');
    const root = await writableRoot(deps.config, job, teardown);
    const plan = launchPlan(deps, job, { root, cgroupProcs: cgroup.procs, sockets: sockets.map((s) => s.name) });
    phases.mark('plan');
    // Without debug commands to run while init is parked, the app is started as soon as
    // the container is created: its output and console wait in their pipes until served
    // below, which happens in the same turn as onRunning.
    const execAtOnce = deps.config.debug.commands.length === 0;
    const proc = await createProcess(deps.launcher, plan, job.manifest, sockets, execAtOnce);
    teardown.push('container process', async () => {
      proc.destroy();
      await proc.exited;
    });
    phases.mark('create');
    failpoint('start.after-create');
    serveIo(deps, job, proc, teardown);
    for (const cmd of deps.config.debug.commands) await runDebugCommand(deps.log, cmd, proc.pid, c.toString());
    const running: Running = { proc, startedAt: began, cgroup, resources: [...job.resources.values()].map((r) => r.container), teardown, plan, execs: new Set() };
    job.onRunning(running);
    await (execAtOnce ? proc.started() : proc.exec());
    phases.mark('exec');
    failpoint('start.after-exec');
    deps.log.debug(`start phases of ${c} (ms): ${phases}`);
    deps.log.info(`Started ${c} (${proc.pid}) in ${formatDuration(process.hrtime.bigint() - began)}`);
    return running;
  } catch (err) {
    await teardown.run();
    if (err instanceof OpError) throw err;
    throw new OpError(startError(c, err));
  }
}

/** Durations of the steps, for the debug line of each start. */
class Phases {
  private readonly parts: string[] = [];
  private last = process.hrtime.bigint();
  mark(name: string): void {
    const now = process.hrtime.bigint();
    this.parts.push(`${name} ${(Number(now - this.last) / 1e6).toFixed(2)}`);
    this.last = now;
  }
  toString(): string {
    return this.parts.join(', ');
  }
}

// --- steps ---------------------------------------------------------------------------

/** Persist dir: <data_dir>/<name>, mode 0700, owned by the container's uid/gid. Kept at exit. */
async function persistDir(config: Config, manifest: Manifest): Promise<void> {
  if (!Object.values(manifest.mounts).some((m) => m.type === 'persist')) return;
  const dir = within(config.dataDir, String(manifest.name), 'name');
  // Not `recursive`: Node's recursive mkdir reports ENOSPC (a full data_dir) as ENOENT.
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') return;
    const hint = err.code === 'ENOSPC' || err.code === 'EDQUOT' ? `: free space (blocks and inodes) in data_dir ${config.dataDir}` : '';
    throw new Error(`persist dir ${dir}: ${fsErrorText(err)}${hint}`, { cause: err });
  });
  await chmod(dir, 0o700);
  await chown(dir, manifest.uid, manifest.gid);
}

/**
 * The manifest's sockets, in name order (their fd order), at
 * <socket_dir>/<name>:<version>:<socket>; the launch core creates the files.
 */
function socketSpecs(config: Config, c: Container, manifest: Manifest): (SocketSpec & { name: string })[] {
  const sockets: Readonly<Record<string, Socket>> = manifest.sockets;
  return Object.keys(sockets)
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((name) => {
      const s = sockets[name]!;
      return {
        name,
        path: within(config.socketDir, `${c}:${name}`, `sockets.${name}`),
        type: s.type,
        mode: Number(s.mode),
        uid: s.uid == null ? undefined : Number(s.uid),
        gid: s.gid == null ? undefined : Number(s.gid),
        passcred: s.passcred === true,
      };
    });
}

async function removeFiles(paths: readonly string[]): Promise<void> {
  for (const p of paths) await rm(p, { force: true });
}

/** The root the container gets: the image, or (`root.writable`) an overlay of it on a tmpfs. */
async function writableRoot(config: Config, job: StartJob, teardown: Teardown): Promise<string> {
  const writable = job.manifest.root;
  if (!writable?.writable) return job.root;
  const wr = await mountWritableRoot(job.root, join(config.runDir, 'writable-roots'), writable.size, String(job.manifest.name));
  teardown.push('writable root', () => wr.teardown());
  return wr.root;
}

function launchPlan(deps: StartDeps, job: StartJob, at: { root: string; cgroupProcs: readonly string[]; sockets: string[] }): LaunchPlan {
  const { config } = deps;
  const req = job.request;
  return buildPlan(job.manifest, {
    root: at.root,
    dataDir: config.dataDir,
    socketDir: config.socketDir,
    runDir: config.runDir,
    resources: Object.fromEntries([...job.resources].map(([name, r]) => [name, r.root])),
    console: job.manifest.console !== undefined,
    sockets: at.sockets,
    init: req.init ?? null,
    args: req.args && req.args.length > 0 ? req.args : null,
    env: req.env && Object.keys(req.env).length > 0 ? req.env : null,
    cgroupProcs: at.cgroupProcs,
    selinux: deps.selinux,
    seccompDefault: config.seccomp?.default ?? 'deny-dangerous',
    log: (msg) => deps.log.warn(`${job.container}: ${msg}`),
  });
}

/** The container with init parked. stdin is /dev/null; `discard` output too. */
async function createProcess(launcher: LauncherPort, plan: LaunchPlan, manifest: Manifest, sockets: SocketSpec[], exec: boolean): Promise<ContainerProcess> {
  const io = manifest.io ?? { stdout: 'discard', stderr: 'discard' };
  // Absent fds are /dev/null; with only /dev/null and pipes a pooled core can serve the start.
  const fds: LaunchFds = {
    ...(io.stdout === 'discard' ? {} : { stdout: 'pipe' as const }),
    ...(io.stderr === 'discard' ? {} : { stderr: 'pipe' as const }),
    ...(manifest.console !== undefined ? { console: 'pipe' as const } : {}),
    ...(sockets.length > 0 ? { createSockets: sockets } : {}),
  };
  return launcher.create(plan, fds, { exec });
}

/** stdout/stderr logged (`pipe`) or copied (`inherit`); the container console served. */
function serveIo(deps: StartDeps, job: StartJob, proc: ContainerProcess, teardown: Teardown): void {
  const io = job.manifest.io ?? { stdout: 'discard', stderr: 'discard' };
  const log = deps.log.child({ target: job.container.toString() });
  const out = job.output;
  let open = 0;
  const ended = (): void => {
    if (--open === 0) out?.ended();
  };
  for (const [stream, mode, name] of [
    [proc.stdout, io.stdout, 'stdout'],
    [proc.stderr, io.stderr, 'stderr'],
  ] as const) {
    const onError = (err: Error) => log.debug(`${name}: ${errorMessage(err)}`);
    if (mode === 'pipe' && stream) {
      open += 1;
      pipeLines(stream, (line) => {
        log.debug(line);
        out?.line(name, line);
      }, onError, ended);
    } else if (mode === 'inherit' && stream) pipeInherit(stream, name === 'stdout' ? process.stdout : process.stderr, onError);
  }
  if (open === 0) out?.ended();
  const console = proc.console;
  if (console) {
    const close = deps.serveConsole(job.container, job.manifest, console);
    teardown.push('console', () => {
      close();
      console.destroy();
    });
  }
}

// --- io ------------------------------------------------------------------------------

/**
 * Log the output of a container or debug command line by line, bounded: a line without a
 * newline is cut into pieces (LineSplitter), so a container cannot make the runtime buffer
 * without limit. A read error only ends the output; it never reaches the top level.
 */
function pipeLines(stream: Readable | null, log: (line: string) => void, onError: (e: Error) => void, onEnd?: () => void): void {
  if (!stream) return;
  const lines = new LineSplitter(log);
  let done = false;
  // The last line is out once the stream ended, failed or closed (once, whichever is first).
  const finish = (): void => {
    if (done) return;
    done = true;
    lines.end();
    onEnd?.();
  };
  stream.on('data', (chunk: Buffer | string) => lines.push(chunk));
  stream.once('end', finish);
  stream.once('close', finish);
  stream.on('error', (e: Error) => {
    finish();
    onError(e);
  });
}

/** Our stdout or stderr as an `io: inherit` target: failed for good, and what is piped into it. */
interface InheritTarget {
  broken: boolean;
  sources: Set<Readable>;
}
const inheritTargets = new WeakMap<NodeJS.WriteStream, InheritTarget>();

/**
 * `io: inherit`: copy into our own stdout/stderr. An error on either side ends the copy
 * only: EPIPE on our stdout (its reader gone) must not crash the runtime, and the
 * container output is drained and dropped from then on, so its writes do not block forever.
 */
function pipeInherit(stream: Readable, to: NodeJS.WriteStream, onError: (e: Error) => void): void {
  let target = inheritTargets.get(to);
  if (!target) {
    const t: InheritTarget = { broken: false, sources: new Set() };
    // process.stdout/stderr are never destroyed, so this is the only sign of failure.
    to.on('error', () => {
      t.broken = true;
      for (const src of t.sources) {
        src.unpipe(to);
        src.resume();
      }
      t.sources.clear();
    });
    inheritTargets.set(to, t);
    target = t;
  }
  stream.on('error', onError);
  if (target.broken) {
    stream.resume();
    return;
  }
  const t = target;
  t.sources.add(stream);
  stream.once('close', () => t.sources.delete(stream));
  stream.pipe(to, { end: false });
}

// --- debug commands ------------------------------------------------------------------

/** A debug command: `<PID>` and `<CONTAINER>` substituted, split on whitespace, no shell. */
function runDebugCommand(logger: Logger, command: string, pid: number, container: string): Promise<void> {
  const argv = command.replace(/<PID>/g, String(pid)).replace(/<CONTAINER>/g, container).split(/\s+/).filter(Boolean);
  const log = logger.child({ target: container });
  return new Promise((resolve, reject) => {
    if (argv.length === 0) return resolve();
    const [cmd, ...args] = argv as [string, ...string[]];
    if (!cmd.includes('/') && !existsSyncInPath(cmd)) {
      reject(new Error(`debug command ${cmd}: not found`));
      return;
    }
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
    // 'on', not 'once': an error after the spawn (a failed kill) must not be unhandled.
    child.on('error', (e) => reject(new Error(`debug command ${cmd}: ${e.message}`)));
    child.once('spawn', () => {
      const onError = (e: Error) => log.info(`debug command ${cmd}: ${errorMessage(e)}`);
      pipeLines(child.stdout, (l) => log.info(l), onError);
      pipeLines(child.stderr, (l) => log.info(l), onError);
      child.once('exit', (code, signal) => log.info(`debug command ${cmd} exited with ${signal ?? code}`));
      resolve();
    });
  });
}

function existsSyncInPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => existsSync(join(d, cmd)));
}

// --- errors --------------------------------------------------------------------------

/** The console error variant of a failed start. */
function startError(c: Container, err: unknown): ModelError {
  if (err instanceof StartError) {
    if (err.variant === 'start_container_missing_resource') {
      return { start_container_missing_resource: { container: c, resource: (err.details['resource'] ?? '') as Name, version: err.details['version'] ?? '' } };
    }
    if (err.variant === 'start_container_resource') return { start_container_resource: { container: c } };
    if (err.variant === 'invalid_arguments') return { invalid_arguments: { cause: err.message } };
  }
  if (err instanceof LaunchError) {
    return {
      start_container_failed: {
        container: c,
        error: `${err.step}${err.path ? ` ${err.path}` : ''}: ${err.detail}${err.errnoName ? ` (${err.errnoName})` : ''}`,
      },
    };
  }
  return { start_container_failed: { container: c, error: errorMessage(err) } };
}
