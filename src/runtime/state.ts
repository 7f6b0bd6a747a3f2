/**
 * The container state machine (runtime.md §3): installed → mounted → started, and the
 * operations the console asks for. One owner of the state: every operation that changes a
 * container runs under the lock of its name (and of the names it depends on), so two
 * requests never race on it, while unrelated containers proceed in parallel.
 *
 * The await rule (docs/design/state-locking.md): after any `await`, the world may have
 * changed unless the lock of every name involved is held. Whatever is read before an await
 * and used after it is either taken into a local first (a snapshot), or re-read and
 * re-checked after the await, or protected by holding the lock.
 */
import type { ContainerData, ExecRequest, JsonValue, LastExit, MemoryNotification, ModelError, Notification } from '../api/model.js';
import { Container, compareContainers } from '../common/container.js';
import { NorthstarError, errorMessage } from '../common/errors.js';
import { describeModelError } from '../api/describe.js';
import { within } from '../common/paths.js';
import type { Manifest } from '../manifest/index.js';
import type { ExitStatus } from '../launch/launcher.js';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { CgroupPort, LauncherPort } from './ports.js';
import type { Mounter } from './mount/mounter.js';
import type { Repository, RepositoryEntry } from './repository/types.js';
import { startContainer, type Running, type ServeContainerConsole, type StartDeps, type StartRequest, type StartResource } from './start.js';
import { OpError, formatDuration, invalidSignal, toModelError, unexpected } from './op-error.js';
import { removeTree } from './fs-safe.js';
import { RESTART_RESET_AFTER_MS, restartDelayMs } from '../manifest/restart.js';
import { failpoint } from '../common/failpoint.js';
import { settledWithin } from '../common/deadline.js';
import { DEFAULT_LOG_BUFFER_SIZE, LogBuffer, type LogFollower, type LogLine } from './logs.js';
import { execPlan, serveExec, type ExecControl, type ExecSink } from './exec.js';
import { toWireExit } from './wire-exit.js';

export { OpError, toModelError, unexpected, formatDuration };
export type { Running };

interface Entry {
  container: Container;
  repo: Repository;
  pkg: RepositoryEntry;
  /** Mount point while mounted. */
  root: string | undefined;
  running: Running | undefined;
  /** The last start request (arguments, environment): a restart repeats it. */
  lastStart?: StartRequest;
  /** The run a console kill was sent to: its exit never triggers a restart. */
  stopping?: Running;
  /** Settles once the exit of the current or last run has been handled (teardown, `exit` sent). */
  exitHandled?: Promise<void>;
  /** How it last ended (inspect's `last_exit`, ours). */
  lastExit?: LastExit;
  /** Restart policy (manifest `restart`, ours): restarts in a row, all restarts, the pending one. */
  restart?: { inRow: number; total: number; timer: NodeJS.Timeout | undefined };
  /** A failed start's unmount of this entry that failed itself (EMFILE, say): retried later. */
  rollback?: NodeJS.Timeout;
  /** Ours (logs): its recent `io: pipe` output; kept across its runs, dropped with the entry. */
  logs?: LogBuffer;
  /** A console `restart` of it is under way (its follows wait for the next run). */
  restarting?: boolean;
}

/** After an exit, how long the end of its piped output is waited for before follows end. */
const OUTPUT_END_WAIT_MS = 1000;

/** What a `logs` request gets (the wire's `logs.ok` without the container). */
export interface LogsAnswer {
  io: { stdout: 'pipe' | 'inherit' | 'discard'; stderr: 'pipe' | 'inherit' | 'discard' };
  lines: LogLine[];
  buffer: { lines: bigint; bytes: bigint; capacity: bigint; dropped: bigint };
}

export interface StateDeps {
  config: Config;
  repositories: ReadonlyMap<string, Repository>;
  mounter: Mounter;
  cgroups: CgroupPort;
  launcher: LauncherPort;
  log: Logger;
  /** SELinux on the host (`/sys/fs/selinux/enforce` exists). */
  selinux?: boolean;
  /** Serves the runtime's end of a container console (the console server, from runtime.ts). */
  serveConsole: ServeContainerConsole;
  /** A critical container failed: the runtime shuts down with a non-zero exit. */
  onCritical?: (container: Container, status: ExitStatus) => void;
}

export class State {
  private readonly entries = new Map<string, Entry>();
  /** Per-name locks: the tail of the queue of operations on each container name. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly listeners = new Set<(n: Notification) => void>();
  private shuttingDown = false;
  private stopped: Promise<void> | undefined;
  /** Exit handlers under way (cgroup removal, socket unlinks): shutdown waits for them. */
  private readonly exiting = new Set<Promise<void>>();

  constructor(readonly deps: StateDeps) {}

  get log(): Logger {
    return this.deps.log;
  }

  // --- notifications ------------------------------------------------------------------

  subscribe(listener: (n: Notification) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(n: Notification): void {
    for (const l of [...this.listeners]) {
      try {
        l(n);
      } catch (e) {
        this.log.error(`notification listener failed: ${errorMessage(e)}`);
      }
    }
  }

  // --- locking -------------------------------------------------------------------------

  /**
   * Run `fn` once every earlier operation on these names has finished. The keys are
   * container names (every version of a name shares one lock). All keys are taken at once,
   * when this is called: two calls wait for each other in call order, so there is no
   * lock-order deadlock. `fn` must not wait for another `locked` call on one of its keys.
   */
  private async locked<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)].sort();
    const before = unique.map((k) => this.locks.get(k) ?? Promise.resolve());
    const run = Promise.allSettled(before).then(fn);
    const done = run.then(
      () => undefined,
      () => undefined,
    );
    for (const k of unique) this.locks.set(k, done);
    void done.then(() => {
      for (const k of unique) if (this.locks.get(k) === done) this.locks.delete(k);
    });
    return run;
  }

  // --- loading -------------------------------------------------------------------------

  /**
   * Take the packages of every repository (repositories in id order; a container already
   * known from an earlier repository is skipped with a warning), then mount the
   * containers of `mount_on_start` repositories.
   */
  async load(): Promise<void> {
    const ids = [...this.deps.repositories.keys()].sort();
    for (const id of ids) {
      const repo = this.deps.repositories.get(id)!;
      for (const pkg of repo.list()) {
        const key = pkg.container.toString();
        const known = this.entries.get(key);
        if (known) {
          this.log.warn(`skipping ${key} in repository ${id}: already provided by repository ${known.repo.id}`);
          continue;
        }
        this.entries.set(key, { container: pkg.container, repo, pkg, root: undefined, running: undefined });
      }
    }
    const toMount = [...this.entries.values()].filter((e) => e.repo.mountOnStart).map((e) => e.container);
    if (toMount.length > 0) {
      const results = await this.mount(toMount);
      for (const r of results) {
        if ('error' in r) throw new NorthstarError('EMOUNT', `mount on start of ${r.error.container} failed: ${describeModelError(r.error.error)}`);
      }
    }
  }

  // --- queries -------------------------------------------------------------------------

  list(): Container[] {
    return [...this.entries.values()].map((e) => e.container).sort((a, b) => compareContainers(a, b));
  }

  repositories(): string[] {
    return [...this.deps.repositories.keys()].sort();
  }

  manifest(c: Container): Manifest | undefined {
    return this.entries.get(c.toString())?.pkg.npk.manifest;
  }

  isRunning(c: Container): boolean {
    return this.entries.get(c.toString())?.running !== undefined;
  }

  /** The lock key of a container: its name (all versions share it). */
  private static lockOf(c: Container): string {
    return String(c.name);
  }

  private entry(c: Container): Entry {
    const e = this.entries.get(c.toString());
    if (!e) throw new OpError({ invalid_container: { container: c } });
    return e;
  }

  async inspect(c: Container): Promise<ContainerData> {
    const e = this.entry(c);
    // A snapshot taken before the await: the container may exit (e.running goes), be
    // unmounted or uninstalled while the statistics are read; the answer describes the
    // state at the moment of the request.
    const running = e.running;
    const data = {
      manifest: e.pkg.npk.manifest,
      repository: e.repo.id,
      mounted: e.root !== undefined,
      ...(e.lastExit ? { last_exit: e.lastExit } : {}),
      ...(e.restart?.total ? { restarts: e.restart.total } : {}),
    };
    if (!running) return { ...data, process: null };
    const uptime = process_uptime(running.startedAt);
    let statistics: Record<string, JsonValue> = {};
    try {
      statistics = ((await running.cgroup?.statistics()) ?? {}) as Record<string, JsonValue>;
    } catch (err) {
      this.log.warn(`statistics of ${c}: ${errorMessage(err)}`);
    }
    return { ...data, process: { pid: running.proc.pid, uptime, statistics } };
  }

  // --- logs (ours) ----------------------------------------------------------------------

  /** The buffer size of the runtime config (0: no output is kept). */
  private get logBufferSize(): number {
    return this.deps.config.logs?.bufferSize ?? DEFAULT_LOG_BUFFER_SIZE;
  }

  /** The log buffer of `e`, made on first use (undefined when logs are off). */
  private logBuffer(e: Entry): LogBuffer | undefined {
    const size = this.logBufferSize;
    if (size === 0) return undefined;
    return (e.logs ??= new LogBuffer(size));
  }

  /**
   * Ours: run `req.command` inside the running container `c` with the container's own
   * privileges (see exec.ts). Resolves once the command runs, with the control of it; its
   * output and exit go to `sink`. Rejects (OpError) when `c` does not run or the command
   * cannot be started (the reason from the launch core).
   */
  async exec(c: Container, req: ExecRequest, sink: ExecSink): Promise<ExecControl> {
    const e = this.entry(c);
    const running = e.running;
    if (!running) throw new OpError({ stop_container_not_started: { container: c } });
    if (!this.deps.launcher.exec) throw new OpError({ unexpected: { error: 'exec is not supported by this launcher' } });
    const what = req.command.join(' ');
    const proc = this.deps.launcher.exec(execPlan(running.plan, req), {
      launcherPid: running.proc.launcherPid,
      tty: req.tty,
      stdin: req.stdin,
      size: req.size ?? undefined,
    });
    running.execs.add(proc);
    void proc.exited.then(() => running.execs.delete(proc));
    let pid: number;
    try {
      pid = await proc.started;
    } catch (err) {
      this.log.warn(`exec in ${c} (${what}) failed: ${errorMessage(err)}`);
      throw new OpError({ invalid_arguments: { cause: errorMessage(err) } });
    }
    this.log.info(`exec in ${c}: ${what} (${pid}${req.tty ? ', tty' : ''})`);
    return serveExec(c, proc, sink, this.log, what);
  }

  /**
   * The last `tail` lines of `c`'s output (all for null) and, with `follower`, every later
   * line of the current run until its exit has been delivered. Synchronous: nothing comes
   * between the snapshot and the start of the follow. A stopped container's follow ends at
   * once (`not_running`).
   */
  logs(c: Container, tail: number | null, follower?: LogFollower): { ok: LogsAnswer & { container: Container }; stop: () => void } {
    const e = this.entry(c);
    const buf = this.logBuffer(e);
    if (!buf) throw new OpError({ configuration: { context: 'logs are off: logs.buffer_size is 0 in the runtime configuration' } });
    const io = e.pkg.npk.manifest.io ?? { stdout: 'discard', stderr: 'discard' };
    const st = buf.stats();
    const ok = {
      container: c,
      io: { stdout: io.stdout, stderr: io.stderr },
      lines: buf.tail(tail ?? undefined),
      buffer: { lines: BigInt(st.lines), bytes: BigInt(st.bytes), capacity: BigInt(st.capacity), dropped: BigInt(st.dropped) },
    };
    let stop = (): void => undefined;
    if (follower) {
      if (e.running) stop = buf.follow(follower, e.running);
      // Between the runs of a restart: the follow begins with the next run.
      else if (e.restart?.timer || e.restarting) stop = buf.follow(follower, e);
      else follower.end('not_running');
    }
    return { ok, stop };
  }

  // --- install / uninstall ------------------------------------------------------------

  async install(repository: string, size: number, payload: AsyncIterable<Uint8Array>): Promise<Container> {
    const repo = this.deps.repositories.get(repository);
    if (!repo) {
      await drain(payload);
      throw new OpError({ invalid_repository: { repository } });
    }
    if (this.shuttingDown) {
      await drain(payload);
      throw unexpected('the runtime is shutting down');
    }
    let pkg: RepositoryEntry;
    try {
      pkg = await repo.install(payload, size);
    } catch (e) {
      throw unexpected(e);
    }
    const key = pkg.container.toString();
    return this.locked([State.lockOf(pkg.container)], async () => {
      const known = this.entries.get(key);
      if (known) {
        // Already in another repository: the new copy goes again.
        await repo.remove(pkg.container).catch((e: unknown) => this.log.error(`removing duplicate ${key} from ${repo.id}: ${errorMessage(e)}`));
        throw new OpError({ install_duplicate: { container: pkg.container } });
      }
      this.entries.set(key, { container: pkg.container, repo, pkg, root: undefined, running: undefined });
      this.log.info(`installed ${key} into repository ${repo.id}`);
      this.notify({ install: pkg.container });
      return pkg.container;
    });
  }

  async uninstall(c: Container, wipe: boolean): Promise<void> {
    // A wipe removes <data_dir>/<name>, which every version of the name shares: the lock
    // of the name (all versions share it) keeps every version from starting meanwhile.
    await this.locked([State.lockOf(c)], async () => {
      const e = this.entry(c);
      if (e.running) throw new OpError({ umount_busy: { container: c } });
      const user = this.resourceUser(c);
      if (user) throw new OpError({ umount_busy: { container: user } });
      if (wipe) {
        const other = [...this.entries.values()].find((x) => x.running && String(x.container.name) === String(c.name));
        if (other) {
          this.log.warn(`uninstall ${c} with wipe refused: ${other.container} runs and uses ${within(this.deps.config.dataDir, String(c.name), 'name')}`);
          throw new OpError({ umount_busy: { container: other.container } });
        }
      }
      if (e.root) await this.umountEntry(e);
      try {
        await e.repo.remove(c);
      } catch (err) {
        throw unexpected(err);
      }
      this.entries.delete(c.toString());
      if (e.restart?.timer) clearTimeout(e.restart.timer);
      this.cancelRollback(e);
      // Its output goes with it; whoever follows it is told.
      e.logs?.endFollowers('uninstall');
      e.logs = undefined;
      if (wipe) {
        const dir = within(this.deps.config.dataDir, String(c.name), 'name');
        // The persist dir belongs to the container's uid, which may have planted symlinks in
        // it: remove it fd-relative without following anything (data_dir must be root's).
        await removeTree(dir, { anyOwner: true }).catch((err: unknown) => this.log.warn(`wipe of ${dir} failed: ${errorMessage(err)}`));
      }
      this.log.info(`uninstalled ${c}`);
      this.notify({ uninstall: c });
    });
  }

  // --- mount / umount ------------------------------------------------------------------

  /** A running container that uses `c` as a resource. */
  private resourceUser(c: Container): Container | undefined {
    const key = c.toString();
    for (const e of this.entries.values()) {
      if (e.running?.resources.some((r) => r.toString() === key)) return e.container;
    }
    return undefined;
  }

  mountPoint(c: Container): string {
    return this.deps.mounter.target(c);
  }

  /** Mount one entry (the caller holds the lock of its name). */
  async mountEntry(e: Entry): Promise<void> {
    const m = await this.deps.mounter.mount({ container: e.container, npk: e.pkg.npk, path: e.pkg.path });
    e.root = m.target;
    this.log.info(`mounted ${e.container} from ${m.device} (verity: ${m.verity}) in ${m.durationMs.toFixed(1)} ms`);
    this.prepareCgroup(e);
  }

  /**
   * Ours (warm starts): a mounted container that can start gets its cgroup made ahead of
   * time, in the background (`cgroups.prepare`); its start then only takes it.
   */
  private prepareCgroup(e: Entry): void {
    const m = e.pkg.npk.manifest;
    if (this.shuttingDown || !e.root || m.init === undefined || m.init === null) return;
    this.deps.cgroups.prepare?.(String(m.name), m);
  }

  private async umountEntry(e: Entry): Promise<void> {
    if (!e.root) return;
    try {
      await this.deps.mounter.umount(e.container);
    } catch (err) {
      throw unexpected(err);
    }
    e.root = undefined;
    this.log.info(`unmounted ${e.container}`);
    // Its prepared cgroup goes, unless another version of the name is still mounted.
    const name = String(e.container.name);
    if (![...this.entries.values()].some((x) => x !== e && x.root && String(x.container.name) === name)) {
      void this.deps.cgroups.discard?.(name).catch((err: unknown) => this.log.warn(`removing the prepared cgroup of ${name}: ${errorMessage(err)}`));
    }
  }

  async mount(containers: readonly Container[]): Promise<({ ok: { container: Container } } | { error: { container: Container; error: ModelError } })[]> {
    return Promise.all(
      containers.map(async (c) => {
        try {
          await this.locked([State.lockOf(c)], async () => {
            const e = this.entry(c);
            if (this.shuttingDown) throw unexpected('the runtime is shutting down');
            if (e.root) throw new OpError({ invalid_container: { container: c } });
            try {
              await this.mountEntry(e);
            } catch (err) {
              throw err instanceof OpError ? err : unexpected(err);
            }
          });
          return { ok: { container: c } };
        } catch (err) {
          return { error: { container: c, error: toModelError(err) } };
        }
      }),
    );
  }

  async umount(containers: readonly Container[]): Promise<({ ok: { container: Container } } | { error: { container: Container; error: ModelError } })[]> {
    return Promise.all(
      containers.map(async (c) => {
        try {
          await this.locked([State.lockOf(c)], async () => {
            const e = this.entry(c);
            if (!e.root || e.running) throw new OpError({ umount_busy: { container: c } });
            const user = this.resourceUser(c);
            if (user) throw new OpError({ umount_busy: { container: user } });
            await this.umountEntry(e);
          });
          return { ok: { container: c } };
        } catch (err) {
          return { error: { container: c, error: toModelError(err) } };
        }
      }),
    );
  }

  // --- start / kill / exit -------------------------------------------------------------

  async start(c: Container, req: StartRequest = {}, why: 'request' | 'restart' = 'request'): Promise<void> {
    if (this.shuttingDown) throw unexpected('the runtime is shutting down');
    const first = this.entry(c);
    // A start asked for by a client replaces a pending restart and begins a new count.
    if (why === 'request' && first.restart) {
      if (first.restart.timer) clearTimeout(first.restart.timer);
      first.restart.timer = undefined;
      first.restart.inRow = 0;
    }
    let keys = State.startLocks(first);
    // Lock the name (one version per name runs; every version shares the lock) and the
    // names of the resources the manifest asks for: the start resolves and mounts them, and
    // nothing may unmount or uninstall them (or mount them twice) until it is done.
    for (;;) {
      const held = keys;
      const outcome = await this.locked(held, async (): Promise<string[] | undefined> => {
        // Re-read after the wait: the entry may have been uninstalled, or uninstalled and
        // installed again from another package, and the runtime may be shutting down.
        const e = this.entries.get(c.toString());
        if (!e) throw new OpError({ invalid_container: { container: c } });
        const need = State.startLocks(e);
        if (need.some((k) => !held.includes(k))) return need; // another manifest: lock again
        this.canStart(e);
        try {
          await this.startLocked(e, req);
          e.lastStart = req;
        } catch (err) {
          // Every client, and whoever reads the log, learns why: not only the one that asked.
          this.log.warn(`start of ${c} failed: ${errorMessage(err)}`);
          // Follows waiting for this run end, unless a restart (which settles them) goes on.
          if (why === 'request') this.settleWaitingFollows(e);
          throw err;
        }
        return undefined;
      });
      if (outcome === undefined) return;
      keys = outcome;
    }
  }

  /** Whether `e` may start now: not shutting down, and no version of its name running. */
  private canStart(e: Entry): void {
    const c = e.container;
    if (this.shuttingDown) throw unexpected('the runtime is shutting down');
    if (e.running) throw new OpError({ start_container_started: { container: c } });
    for (const other of this.entries.values()) {
      if (other !== e && other.running && other.container.name === c.name) {
        throw new OpError({ start_container_started: { container: other.container } }, c);
      }
    }
  }

  /** The start of `e` under the locks of its name and its resources' names. */
  private async startLocked(e: Entry, req: StartRequest): Promise<void> {
    const c = e.container;
    const resources = this.resolveResources(e);
    // Mount the container and its resources; what this start mounted is unmounted again
    // if it fails.
    const mounted = await this.mountForStart([e, ...new Set([...resources.values()].map((r) => r.entry))]);
    failpoint('start.after-mount');
    let running: Running | undefined;
    const buf = this.logBuffer(e);
    let outputEnded!: () => void;
    const outputDone = new Promise<void>((resolve) => (outputEnded = resolve));
    try {
      running = await startContainer(this.startDeps, {
        container: c,
        manifest: e.pkg.npk.manifest,
        root: this.mountPoint(c),
        resources: new Map([...resources].map(([name, r]) => [name, { container: r.entry.container, root: this.mountPoint(r.entry.container) } satisfies StartResource])),
        request: req,
        onRunning: (r) => {
          running = r;
          e.running = r;
          // Follows carried over from the last run (a restart) follow this one.
          buf?.retag(e, r);
        },
        output: { line: (stream, text) => buf?.push(stream, text), ended: outputEnded },
      });
    } catch (err) {
      if (running && e.running === running) e.running = undefined;
      // A follow of this run (one that began while it counted as started, or carried over
      // from the last run) waits for the next run; start() or the restart settles it.
      if (running) buf?.retag(running, e);
      await this.rollbackMounts(mounted);
      throw err;
    }
    // Mounted for a run now: the mounts stay (no pending rollback of an earlier failed start).
    for (const x of [e, ...[...resources.values()].map((r) => r.entry)]) this.cancelRollback(x);
    this.notify({ started: c });
    const started = running;
    const exit = started.proc.exited
      .then((status) => this.onExit(e, started, status, outputDone))
      .catch((err: unknown) => this.log.error(`exit of ${c}: ${errorMessage(err)}`));
    this.exiting.add(exit);
    e.exitHandled = exit;
    void exit.finally(() => this.exiting.delete(exit));
    this.idleCollect();
  }

  /** What a start needs from the runtime. */
  private get startDeps(): StartDeps {
    const d = this.deps;
    return {
      config: d.config,
      cgroups: d.cgroups,
      launcher: d.launcher,
      log: d.log,
      selinux: d.selinux ?? false,
      serveConsole: d.serveConsole,
      onMemoryEvent: (c, ev) => this.memoryEvent(c, ev),
    };
  }

  /**
   * The resources of `e`'s manifest: per resource name, the highest installed version that
   * satisfies the requirement (spec README item 3). The caller holds their names' locks.
   */
  private resolveResources(e: Entry): Map<string, { entry: Entry }> {
    const out = new Map<string, { entry: Entry }>();
    for (const m of Object.values(e.pkg.npk.manifest.mounts)) {
      if (m.type !== 'resource') continue;
      let best: Entry | undefined;
      for (const x of this.entries.values()) {
        if (x.container.name !== m.name || !m.version.matches(x.container.version)) continue;
        if (!best || compareContainers(x.container, best.container) > 0) best = x;
      }
      if (!best) {
        throw new OpError({ start_container_missing_resource: { container: e.container, resource: m.name, version: m.version.toString() } });
      }
      out.set(String(m.name), { entry: best });
    }
    return out;
  }

  /** The locks a start of `e` takes: its name and the names of its resources. */
  private static startLocks(e: Entry): string[] {
    const keys = [State.lockOf(e.container)];
    for (const m of Object.values(e.pkg.npk.manifest.mounts)) {
      if (m.type === 'resource') keys.push(String(m.name));
    }
    return [...new Set(keys)];
  }

  /** Mount several entries in parallel for a start; returns what this call mounted. */
  private async mountForStart(list: Entry[]): Promise<Entry[]> {
    const todo = list.filter((x) => !x.root);
    const results = await Promise.allSettled(todo.map((x) => this.mountEntry(x)));
    const mounted = todo.filter((_, i) => results[i]!.status === 'fulfilled');
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      await this.rollbackMounts(mounted);
      throw unexpected((failed as PromiseRejectedResult).reason);
    }
    return mounted;
  }

  private async rollbackMounts(list: Entry[]): Promise<void> {
    for (const x of list) {
      await this.umountEntry(x).catch((err: unknown) => {
        this.log.error(`rollback: unmounting ${x.container} failed: ${errorMessage(err)}; retried until it succeeds`);
        this.retryRollback(x, 100);
      });
    }
  }

  /**
   * Retry the rollback unmount of `x` that failed (under EMFILE the umount(8) spawn fails
   * like the mount did) after `delay` ms, doubling up to 10 s, until it succeeds or is moot:
   * `x` unmounted or uninstalled meanwhile, used by a start that succeeded (its mounts stay,
   * as after any run), or the runtime shutting down (which unmounts everything).
   */
  private retryRollback(x: Entry, delay: number): void {
    this.cancelRollback(x);
    const timer = setTimeout(() => {
      void this.locked([State.lockOf(x.container)], async () => {
        if (x.rollback !== timer) return;
        x.rollback = undefined;
        if (this.shuttingDown || this.entries.get(x.container.toString()) !== x || !x.root || x.running || this.resourceUser(x.container)) return;
        try {
          await this.umountEntry(x);
        } catch (err) {
          this.log.warn(`rollback: unmounting ${x.container} failed again: ${errorMessage(err)}`);
          this.retryRollback(x, Math.min(delay * 2, 10_000));
        }
      });
    }, delay);
    timer.unref();
    x.rollback = timer;
  }

  private cancelRollback(x: Entry): void {
    if (x.rollback) clearTimeout(x.rollback);
    x.rollback = undefined;
  }

  /**
   * No lock: the check and the signal happen in one step with no await between them, so
   * kill sees one consistent state; and it must not queue behind a long start, mount or a
   * shutdown (which holds every lock while it stops the containers).
   */
  async kill(c: Container, signal: number): Promise<void> {
    if (!Number.isInteger(signal) || signal < 1 || signal > 64) {
      throw invalidSignal(c, signal);
    }
    const e = this.entry(c);
    if (!e.running && e.restart?.timer) {
      // Waiting for a restart: the kill stops it for good.
      clearTimeout(e.restart.timer);
      e.restart.timer = undefined;
      e.restart.inRow = 0;
      this.log.info(`restart of ${c} cancelled by a kill`);
      this.settleWaitingFollows(e);
      return;
    }
    if (!e.running) throw new OpError({ stop_container_not_started: { container: c } });
    failpoint('kill.request');
    e.stopping = e.running;
    e.running.proc.kill(signal);
  }

  /**
   * Ours (the `restart` request): SIGTERM; after `timeoutMs` without an exit, the whole
   * container is killed; once its exit has been handled (cgroup and sockets gone, `exit`
   * notified), it starts again with the request it last ran with. A stopped container is
   * just started. No lock while it waits (like kill); the start takes the locks, so a start
   * by another client in between wins and this one answers `start_container_started`.
   */
  async restart(c: Container, timeoutMs: number): Promise<void> {
    const e = this.entry(c);
    e.restarting = true;
    try {
      await this.restartOnce(e, c, timeoutMs);
    } finally {
      e.restarting = false;
      this.settleWaitingFollows(e);
    }
  }

  private async restartOnce(e: Entry, c: Container, timeoutMs: number): Promise<void> {
    const running = e.running;
    if (running) {
      e.stopping = running;
      running.proc.kill(15);
      const exited = await settledWithin(running.proc.exited.then(() => true), timeoutMs, false);
      if (!exited) {
        this.log.warn(`restart of ${c}: no exit within ${timeoutMs} ms of SIGTERM: SIGKILL`);
        running.proc.destroy();
      }
      await e.exitHandled;
    }
    await this.start(c, e.lastStart ?? {});
  }

  private async onExit(e: Entry, running: Running, status: ExitStatus | null, outputDone: Promise<void>): Promise<void> {
    const st: ExitStatus = status ?? { signal: 9 };
    const t0 = process.hrtime.bigint();
    // Exec'd commands died with the pid namespace; their cores leave the cgroups as they end.
    for (const x of running.execs) x.kill();
    await Promise.all([...running.execs].map((x) => x.exited));
    const t1 = process.hrtime.bigint();
    // The console, the writable root, the cgroup, the socket files: what the start made.
    await running.teardown.run(true);
    const ms = (a: bigint, b: bigint): string => (Number(b - a) / 1e6).toFixed(2);
    this.log.debug(`exit phases of ${e.container} (ms): execs ${ms(t0, t1)}, ${running.teardown.took.join(', ')}, teardown ${ms(t1, process.hrtime.bigint())}`);
    if (e.running === running) e.running = undefined;
    const ran = process.hrtime.bigint() - running.startedAt;
    e.lastExit = { status: toWireExit(st), time: BigInt(Date.now()), duration: ran };
    const took = formatDuration(ran);
    this.log.info(`Process ${e.container} exited after ${took} with status ${'code' in st ? `Exit(${st.code})` : `Signalled(${st.signal})`}`);
    this.notify({ exit: [e.container, toWireExit(st)] });
    // The next start (a restart, or the next request) finds its cgroup made.
    if (this.entries.get(e.container.toString()) === e) this.prepareCgroup(e);
    this.endLogFollows(e, running, outputDone);
    const critical = e.pkg.npk.manifest.autostart === 'critical';
    if (critical && !this.shuttingDown && !('code' in st && st.code === 0)) {
      this.log.error(`critical container ${e.container} exited with ${JSON.stringify(st)}: shutting down`);
      this.deps.onCritical?.(e.container, st);
    }
    const stopped = e.stopping === running;
    if (stopped) e.stopping = undefined;
    if (!stopped) this.scheduleRestart(e, `exited with ${'code' in st ? `code ${st.code}` : `signal ${st.signal}`}`, !('code' in st && st.code === 0), Number(process.hrtime.bigint() - running.startedAt) / 1e6);
  }

  /**
   * The follows of this run end once its exit has been delivered and its last output lines
   * are in (the pipes end when the last process of the container is gone; waited for at
   * most OUTPUT_END_WAIT_MS, so a follow always ends).
   */
  private endLogFollows(e: Entry, running: Running, outputDone: Promise<void>): void {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, OUTPUT_END_WAIT_MS);
      timer.unref();
    });
    void Promise.race([outputDone, late]).then(() => {
      clearTimeout(timer);
      const buf = e.logs;
      if (!buf) return;
      // Across a restart (the policy's or a console `restart`) a follow goes on with the next run.
      if (e.running && e.running !== running) buf.retag(running, e.running);
      else if (!e.running && (e.restart?.timer || e.restarting)) buf.retag(running, e);
      else buf.endFollowers('exit', running);
    });
  }

  /** Follows waiting for a next run (tagged with the entry) end when none is coming. */
  private settleWaitingFollows(e: Entry): void {
    if (!e.running && !e.restart?.timer && !e.restarting) e.logs?.endFollowers('exit', e);
  }

  /**
   * The manifest's restart policy (ours) after the container ended by itself (`failed`: a
   * code other than 0 or a signal) or a restart failed to start: the same start request
   * again after backoff * 2^(n-1) (capped at 30 s), unless the runtime shuts down, the
   * container was uninstalled, or `max_retries` restarts in a row were made. A run of
   * RESTART_RESET_AFTER_MS or more starts the count afresh.
   */
  private scheduleRestart(e: Entry, what: string, failed: boolean, ranMs: number): void {
    const policy = e.pkg.npk.manifest.restart;
    if (!policy || policy.policy === 'never' || this.shuttingDown) return;
    if (this.entries.get(e.container.toString()) !== e) return;
    const r = (e.restart ??= { inRow: 0, total: 0, timer: undefined });
    if (ranMs >= RESTART_RESET_AFTER_MS) r.inRow = 0;
    if (policy.policy === 'on-failure' && !failed) {
      r.inRow = 0;
      return;
    }
    if (policy.max_retries !== undefined && r.inRow >= policy.max_retries) {
      this.log.warn(`${e.container} ${what} after ${r.inRow} restarts in a row (restart.max_retries): it stays stopped`);
      r.inRow = 0;
      return;
    }
    r.inRow += 1;
    const delay = restartDelayMs(policy, r.inRow);
    const of = policy.max_retries === undefined ? '' : ` of ${policy.max_retries}`;
    this.log.info(`${e.container} ${what}: restart ${r.inRow}${of} in ${delay} ms (restart.policy ${policy.policy})`);
    if (r.timer) clearTimeout(r.timer);
    r.timer = setTimeout(() => {
      r.timer = undefined;
      if (this.shuttingDown || this.entries.get(e.container.toString()) !== e || e.running) {
        this.settleWaitingFollows(e);
        return;
      }
      r.total += 1;
      this.start(e.container, e.lastStart ?? {}, 'restart').catch((err: unknown) => {
        if (err instanceof OpError && 'start_container_started' in err.error) {
          this.log.info(`restart of ${e.container} dropped: ${describeModelError(err.error)}`);
        } else {
          // Already logged by start at warn; a restart that cannot start counts as a failure.
          this.scheduleRestart(e, `could not be restarted (${err instanceof OpError ? describeModelError(err.error) : errorMessage(err)})`, true, 0);
        }
        this.settleWaitingFollows(e);
      });
    }, delay);
    r.timer.unref();
  }

  private collectTimer: NodeJS.Timeout | undefined;

  /**
   * After a burst of starts, give memory back: a full collection once things have been
   * quiet for a second (only when node runs with --expose-gc, as the daemon does).
   */
  private idleCollect(): void {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) return;
    if (this.collectTimer) clearTimeout(this.collectTimer);
    this.collectTimer = setTimeout(() => {
      this.collectTimer = undefined;
      gc();
    }, 1000);
    this.collectTimer.unref();
  }

  memoryEvent(c: Container, event: MemoryNotification): void {
    this.log.warn(`Process ${c} memory event: ${JSON.stringify(event, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v))}`);
    this.notify({ c_group: [c, { memory: event }] });
  }

  // --- autostart and shutdown ---------------------------------------------------------

  /**
   * Start every container with `autostart` (in name order). A `relaxed` failure is
   * logged; a `critical` one is thrown (the runtime does not come up).
   */
  async autostart(): Promise<void> {
    const list = [...this.entries.values()].filter((e) => e.pkg.npk.manifest.autostart).sort((a, b) => compareContainers(a.container, b.container));
    for (const e of list) {
      try {
        await this.start(e.container);
      } catch (err) {
        const msg = `autostart of ${e.container} failed: ${err instanceof OpError ? describeModelError(err.error) : errorMessage(err)}`;
        if (e.pkg.npk.manifest.autostart === 'critical') throw new NorthstarError('ECRITICAL', msg, { cause: err });
        this.log.warn(msg);
      }
    }
  }

  /**
   * Orderly shutdown: SIGTERM to every container, wait up to `grace` ms, SIGKILL what is
   * left, wait for their exits, unmount everything, remove the cgroups.
   */
  shutdown(grace: number): Promise<void> {
    // Once: a critical exit and a failing init may both ask for it.
    this.stopped ??= this.shutdownOnce(grace);
    return this.stopped;
  }

  private async shutdownOnce(grace: number): Promise<void> {
    // From here on starts and mounts are refused (also those already waiting for a lock).
    this.shuttingDown = true;
    failpoint('shutdown.begin');
    for (const e of this.entries.values()) {
      if (e.restart?.timer) clearTimeout(e.restart.timer);
      this.cancelRollback(e);
    }
    // Starts are refused from here on: the pooled launch cores are not needed any more.
    this.deps.launcher.close?.();
    // Every name's lock: operations under way finish first (a start in flight ends with a
    // running container, which is then stopped here like the others).
    const names = [...this.entries.values()].map((e) => State.lockOf(e.container));
    await this.locked(names, async () => {
      const running = [...this.entries.values()].filter((e) => e.running);
      const exits = running.map((e) => e.running!.proc.exited.then(() => undefined));
      for (const e of running) e.running?.proc.kill(15);
      const all = Promise.all(exits);
      const timedOut = await settledWithin(all.then(() => false), grace, true);
      if (timedOut) {
        for (const e of running) {
          if (e.running) {
            this.log.warn(`${e.container} did not exit within ${grace} ms: SIGKILL`);
            e.running.proc.destroy();
          }
        }
        await all;
      }
      // The exit handlers (cgroups, sockets) finish before anything is unmounted.
      await Promise.all([...this.exiting]);
      failpoint('shutdown.after-stop');
      for (const e of this.entries.values()) {
        if (e.root) await this.umountEntry(e).catch((err: unknown) => this.log.error(`unmounting ${e.container}: ${errorMessage(err)}`));
      }
    });
    await this.deps.cgroups.shutdown().catch((err: unknown) => this.log.error(`removing the runtime cgroup: ${errorMessage(err)}`));
    for (const repo of this.deps.repositories.values()) await repo.close().catch(() => undefined);
  }

}

export type { Entry };



function process_uptime(startedAt: bigint): bigint {
  return process.hrtime.bigint() - startedAt;
}


async function drain(payload: AsyncIterable<Uint8Array>): Promise<void> {
  try {
    for await (const _chunk of payload) {
      // discard
    }
  } catch {
    // a short or stalled upload: nothing more to read
  }
}
