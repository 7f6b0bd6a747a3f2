/**
 * Starting one container (runtime.md §5.1, with our fixes): resolve init and resources,
 * mount what is not mounted, set up io, console, sockets, persist dir and cgroup, build the
 * launch plan, create the container with init parked, run the debug commands, start the
 * app. Every failure rolls back everything this start created: processes, cgroup, socket
 * files, console, pipes and the mounts it made (spec README item 6).
 */
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { existsSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Container } from '../common/container.js';
import { errorMessage } from '../common/errors.js';
import { LineSplitter } from '../common/line-splitter.js';
import { within } from '../common/paths.js';
import { buildPlan, StartError } from '../launch/plan-builder.js';
import type { ContainerProcess, LaunchFds, SocketSpec } from '../launch/launcher.js';
import { LaunchError } from '../launch/launcher.js';
import type { Manifest, Mount, Socket } from '../manifest/index.js';
import { fsErrorText } from './repository/storage-error.js';
import { OpError, unexpected, formatDuration, type Entry, type Running, type State } from './state.js';
import type { CgroupHandle } from './ports.js';
import type { ModelError } from '../api/model.js';
import { mountWritableRoot } from '../recipe/overlay.js';
import { failpoint } from '../common/failpoint.js';

export interface StartRequest {
  /** Replaces the manifest init; `<INIT>` inside it is the manifest init. */
  init?: string | null;
  /** Non-empty: replaces the manifest args. */
  args?: readonly string[];
  /** Non-empty: replaces the manifest env. */
  env?: Readonly<Record<string, string>>;
}

const RESERVED_ENV = ['NORTHSTAR_NAME', 'NORTHSTAR_VERSION', 'NORTHSTAR_CONTAINER', 'NORTHSTAR_CONSOLE'];

/** Hooks the runtime provides for a start: the console end and io logging. */
export interface StartHooks {
  /** Serve the runtime's end of a container console. Returns a closer. */
  serveConsole?: (container: Container, manifest: Manifest, stream: NodeJS.ReadWriteStream & { destroy(): void }) => () => void;
}

let hooks: StartHooks = {};
export function setStartHooks(h: StartHooks): void {
  hooks = h;
}

function resourceMounts(m: Manifest): { name: string; req: { matches(v: unknown): boolean; toString(): string } }[] {
  const out: { name: string; req: { matches(v: unknown): boolean; toString(): string } }[] = [];
  for (const mount of Object.values(m.mounts as Record<string, Mount>)) {
    if (mount.type === 'resource') out.push({ name: String(mount.name), req: mount.version as unknown as { matches(v: unknown): boolean; toString(): string } });
  }
  return out;
}

/**
 * Log the output of a container or debug command line by line, bounded: a line without a
 * newline is cut into pieces (LineSplitter), so a container cannot make the runtime buffer
 * without limit. A read error only ends the output; it never reaches the top level.
 */
function pipeLines(stream: Readable | null, log: (line: string) => void, onError: (e: Error) => void): void {
  if (!stream) return;
  const lines = new LineSplitter(log);
  stream.on('data', (chunk: Buffer | string) => lines.push(chunk));
  stream.once('end', () => lines.end());
  stream.on('error', (e: Error) => {
    lines.end();
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

export async function startContainer(state: State, e: Entry, req: StartRequest, onRunning: (r: Running | undefined) => void): Promise<Running> {
  const began = process.hrtime.bigint();
  // Phase durations for the debug log line of each start.
  const phases: string[] = [];
  let mark = began;
  const phase = (name: string) => {
    const now = process.hrtime.bigint();
    phases.push(`${name} ${(Number(now - mark) / 1e6).toFixed(2)}`);
    mark = now;
  };
  const c = e.container;
  const manifest = e.pkg.npk.manifest;
  const { config } = state.deps;

  // 1. Arguments.
  const env = req.env ?? {};
  if (Object.keys(env).some((k) => RESERVED_ENV.includes(k))) {
    throw new OpError({
      invalid_arguments: { cause: 'env contains reserved key NORTHSTAR_NAME or NORTHSTAR_VERSION or NORTHSTAR_CONTAINER or NORTHSTAR_CONSOLE' },
    });
  }
  const manifestInit = manifest.init ?? null;
  const init = req.init != null ? req.init.replace(/<INIT>/g, manifestInit ?? '') : manifestInit;
  if (init === null || init === '') throw new OpError({ start_container_resource: { container: c } });

  // 2. Resources: the highest installed version that matches.
  const resources: Entry[] = [];
  const resourcePaths: Record<string, string> = {};
  for (const r of resourceMounts(manifest)) {
    const found = state.resolveResource(r.name as never, (x) => String(x.name) === r.name && r.req.matches(x.version));
    if (!found) {
      throw new OpError({ start_container_missing_resource: { container: c, resource: r.name as never, version: r.req.toString() } });
    }
    const entry = state.entryOf(found)!;
    // Two mounts of one resource (e.g. two of its dirs) mount it once.
    if (!resources.includes(entry)) resources.push(entry);
    resourcePaths[r.name] = state.mountPoint(found);
  }

  // 3. Mount the container and its resources (rolled back on failure).
  const mountedHere = await state.mountForStart([e, ...resources]);
  phase('mount');
  failpoint('start.after-mount');

  const cleanups: (() => Promise<void> | void)[] = [];
  const rollback = async () => {
    for (const f of cleanups.reverse()) {
      try {
        await f();
      } catch (err) {
        state.log.error(`rollback of ${c}: ${errorMessage(err)}`);
      }
    }
    await state.rollbackMounts(mountedHere);
  };

  let cgroup: CgroupHandle | undefined;
  let proc: ContainerProcess | undefined;
  try {
    // 4. Persist dir, owned by the container's uid/gid.
    const mounts = Object.values(manifest.mounts as Record<string, Mount>);
    if (mounts.some((m) => m.type === 'persist')) {
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

    // 5. Sockets of the manifest: created host side by the launch helper, in name order,
    //    at <socket_dir>/<name>:<version>:<socket>, unlinked again when the container exits.
    const sockets = (manifest.sockets ?? {}) as Record<string, Socket>;
    const socketNames = Object.keys(sockets).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const socketSpecs: SocketSpec[] = socketNames.map((name) => {
      const s = sockets[name]!;
      return {
        path: within(config.socketDir, `${c}:${name}`, `sockets.${name}`),
        type: s.type,
        mode: Number(s.mode),
        uid: s.uid === undefined || s.uid === null ? undefined : Number(s.uid),
        gid: s.gid === undefined || s.gid === null ? undefined : Number(s.gid),
        passcred: s.passcred === true,
      };
    });
    const socketPaths = socketSpecs.map((s) => s.path);
    cleanups.push(async () => {
      for (const p of socketPaths) await rm(p, { force: true });
    });

    // 6. cgroup.
    cgroup = await state.deps.cgroups.create(String(manifest.name), manifest, (ev) => state.memoryEvent(c, ev));
    phase('cgroup');
    failpoint('start.after-cgroup');
    const cg = cgroup;
    cleanups.push(() => cg.destroy());

    // 6b. Writable root (our extension, manifest `root.writable`): an overlay of the image
    //     with a tmpfs upper layer, removed at exit (before the exit is reported) or on failure.
    let root = state.mountPoint(c);
    if (manifest.root?.writable) {
      const wr = await mountWritableRoot(root, join(config.runDir, 'writable-roots'), manifest.root.size, String(manifest.name));
      cleanups.push(() => wr.teardown());
      root = wr.root;
      const inner = cg;
      const teardown = () => wr.teardown().catch((err: unknown) => state.log.error(`removing the writable root of ${c}: ${errorMessage(err)}`));
      cgroup = Object.assign(Object.create(inner) as CgroupHandle, { destroy: async () => { await teardown(); await inner.destroy(); } });
    }

    // 7. Launch plan and fds.
    const plan = buildPlan(manifest as never, {
      root,
      dataDir: config.dataDir,
      socketDir: config.socketDir,
      runDir: config.runDir,
      resources: resourcePaths,
      console: manifest.console !== undefined,
      sockets: socketNames,
      init,
      args: req.args && req.args.length > 0 ? req.args : null,
      env: Object.keys(env).length > 0 ? env : null,
      cgroupProcs: cgroup.procs,
      selinux: state.deps.selinux ?? false,
      seccompDefault: config.seccomp?.default ?? 'deny-dangerous',
      log: (msg) => state.log.warn(`${c}: ${msg}`),
    });
    const io = manifest.io ?? { stdout: 'discard', stderr: 'discard' };
    // The launcher duplicates these fds into the container at spawn; ours close right after.
    const devNull = openSync('/dev/null', 'r+');
    const fds: LaunchFds = {
      stdin: devNull,
      stdout: io.stdout === 'discard' ? devNull : 'pipe',
      stderr: io.stderr === 'discard' ? devNull : 'pipe',
      ...(manifest.console !== undefined ? { console: 'pipe' as const } : {}),
      ...(socketSpecs.length > 0 ? { createSockets: socketSpecs } : {}),
    };
    try {
      phase('plan');
      proc = await state.deps.launcher.create(plan, fds);
      phase('create');
      failpoint('start.after-create');
    } finally {
      closeSync(devNull);
    }
    const p = proc;
    cleanups.push(async () => {
      p.destroy();
      await p.exited;
    });

    // 8. io and console.
    const target = c.toString();
    const child = state.log.child({ target });
    for (const [stream, mode, name] of [
      [p.stdout, io.stdout, 'stdout'],
      [p.stderr, io.stderr, 'stderr'],
    ] as const) {
      const onError = (err: Error) => child.debug(`${name}: ${errorMessage(err)}`);
      if (mode === 'pipe') pipeLines(stream, (line) => child.debug(line), onError);
      else if (mode === 'inherit' && stream) pipeInherit(stream, name === 'stdout' ? process.stdout : process.stderr, onError);
    }
    let closeConsole: (() => void) | undefined;
    if (p.console && hooks.serveConsole) {
      closeConsole = hooks.serveConsole(c, manifest, p.console as never);
    }

    // 9. Debug commands, while init is parked.
    for (const cmd of config.debug.commands) {
      await runDebugCommand(state, cmd, p.pid, target);
    }

    // 10. The app. The container counts as started from here on: the app may talk to
    //     the runtime (console) before exec() resolves.
    const running: Running = {
      proc: p,
      startedAt: began,
      cgroup,
      socketPaths,
      resources: resources.map((r) => r.container),
      release: () => {
        closeConsole?.();
        p.console?.destroy();
      },
    };
    onRunning(running);
    cleanups.push(() => onRunning(undefined));
    await p.exec();
    phase('exec');
    failpoint('start.after-exec');
    state.log.debug(`start phases of ${c} (ms): ${phases.join(', ')}`);
    state.log.info(`Started ${c} (${p.pid}) in ${formatDuration(process.hrtime.bigint() - began)}`);
    return running;
  } catch (err) {
    await rollback();
    if (err instanceof OpError) throw err;
    throw new OpError(startError(c, err));
  }
}

function startError(c: Container, err: unknown): ModelError {
  if (err instanceof StartError) {
    if (err.code === 'start_container_missing_resource') {
      return { start_container_missing_resource: { container: c, resource: (err.details['resource'] ?? '') as never, version: err.details['version'] ?? '' } };
    }
    if (err.code === 'start_container_resource') return { start_container_resource: { container: c } };
    if (err.code === 'invalid_arguments') return { invalid_arguments: { cause: err.message } };
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

/** A debug command: `<PID>` and `<CONTAINER>` substituted, split on whitespace, no shell. */
function runDebugCommand(state: State, command: string, pid: number, container: string): Promise<void> {
  const argv = command.replace(/<PID>/g, String(pid)).replace(/<CONTAINER>/g, container).split(/\s+/).filter(Boolean);
  const log = state.log.child({ target: container });
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

export { unexpected };
