/**
 * Container cgroups (runtime.md §6): the top-level cgroup at start, one cgroup per
 * container (`<top or manifest parent>/<name>`, no version) with the manifest settings
 * written, the cgroup.procs files init joins before exec, statistics for inspect, the
 * OOM monitor and removal.
 *
 * OOM monitor:
 * - v1: upstream registers an eventfd through cgroup.event_control. Node has no
 *   eventfd(2) and the C core offers none, so we poll `memory.oom_control` (its
 *   `oom_kill` counter and `under_oom` flag) on one shared timer (default every 100 ms);
 *   each rise yields an event with `oom: 1` and the `oom_kill` count.
 * - v2: `fs.watch` (inotify IN_MODIFY, which cgroup2 raises on change) on
 *   `memory.events`; each change re-reads the file and yields its counters. Unknown
 *   keys are ignored (upstream panics).
 * Events carry exactly the wire shape of the `c_group` notification's memory payload.
 */
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { access, mkdir, readFile, readdir, rmdir, statfs, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { MemoryNotification } from '../../api/model.js';
import { NorthstarError, errorMessage } from '../../common/errors.js';
import type { CGroups } from '../../manifest/index.js';
import type { Log } from '../logger.js';
import { CGROUP2_SUPER_MAGIC, cgroupComponents, cgroupDir, detectCgroupLayout, resolveCgroupPath, V2_CONTROLLERS, type CgroupLayout } from './layout.js';
import { CgroupOwnership, killCgroupTasks } from './ownership.js';
import { cgroupWrites, type CgroupWrite, type Controller } from './settings.js';

/** A counter: a number when exact in JS, a bigint above 2^53, or a word such as "max". */
export type Count = number | bigint | string;
/** JSON-shaped values (the console model's JsonValue is structurally the same). */
export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };
export type StatTable = { [key: string]: Json };

/** Statistics for inspect: `{memory: {memory, kmem, kmem_tcp}, cpu, blkio}`, free-form below that. */
export type CgroupStatistics = {
  memory: { memory: StatTable; kmem: StatTable; kmem_tcp: StatTable };
  cpu: StatTable;
  blkio: StatTable;
};

/** What a container's cgroup settings come from: the manifest (only `cgroups` is read). */
export interface CgroupSource {
  cgroups?: CGroups | undefined;
}

export interface ContainerCgroup {
  /** The container name (cgroups have no version). */
  readonly name: string;
  /** The cgroup path relative to the hierarchy root ("/…/name"). */
  readonly path: string;
  /** The cgroup directories (v1: one per controller hierarchy; v2: one). */
  readonly dirs: readonly string[];
  /** What the launch plan's `cgroupProcs` needs: init's pid goes into each before exec. */
  readonly procs: readonly string[];
  /** Pids currently in the cgroup. */
  pids(): Promise<number[]>;
  statistics(): Promise<CgroupStatistics>;
  /** Stop the monitor, SIGKILL leftover tasks, remove the directories. */
  destroy(): Promise<void>;
  /**
   * Ours: what `destroy` does, but resolves once no task is left; the directories are
   * removed afterwards, in the background (a `create` of the same name waits for that).
   * For an exit: it is reported without waiting for the kernel to free the cgroup.
   */
  release?(): Promise<void>;
}

export interface Cgroups {
  readonly version: 1 | 2;
  /** The top-level cgroup path ("/…"). */
  readonly top: string;
  /**
   * Create `<top or manifest cgroups.parent>/<name>` and write the manifest's settings.
   * With `cgroups.memory.oom_monitor` and a callback, memory events are reported.
   */
  create(name: string, manifest: CgroupSource, onMemoryNotification?: (e: MemoryNotification) => void): Promise<ContainerCgroup>;
  /**
   * Ours (warm starts): make `name`'s cgroup ahead of its start, in the background. A later
   * `create` of the same name with the same settings takes it instead of making one; with
   * other settings it is removed and made again. Failures are logged, never thrown: the
   * start then makes its own. Absent or a no-op: every start makes its cgroup.
   */
  prepare?(name: string, manifest: CgroupSource): void;
  /** Ours: remove a prepared cgroup of `name` (its container was unmounted). */
  discard?(name: string): Promise<void>;
  /** Destroy remaining container cgroups and remove the top level (and parents we made). */
  shutdown(): Promise<void>;
}

export interface CgroupManagerOptions {
  /** The config's `cgroup`. */
  name: string;
  log: Log;
  /** Detected when absent. */
  layout?: CgroupLayout;
  /** v1 OOM poll interval in ms (default 100). */
  oomPollInterval?: number;
  /** How long destroy() waits for killed tasks to vanish (default 5000 ms). */
  killTimeout?: number;
  /**
   * The config's `run_dir`: where the record of the cgroups this runtime made is kept, so
   * that a crashed run's cgroups are removed at the next start (see ownership.ts).
   * Absent: the record is kept in memory only.
   */
  runDir?: string;
  /** `pids.max` of every container cgroup (the config's `cgroups.pids_max`); absent = not limited. */
  pidsMax?: number | 'max';
  /** The config's `cgroups.prepare` (default true): whether `prepare` makes cgroups ahead of starts. */
  prepare?: boolean;
}

function count(text: string): Count {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return t;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : BigInt(t);
}

function big(v: Count | Json | undefined): bigint | null {
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'bigint') return v;
  return null;
}

function parseKeyed(text: string): StatTable {
  const out: StatTable = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = count(v);
  }
  return out;
}

async function readOpt(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One timer for all v1 OOM monitors. */
class OomPoller {
  private readonly watched = new Map<string, { last: number; under: boolean; emit: (e: MemoryNotification) => void }>();
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private polling = false;

  constructor(private readonly interval: number) {}

  async add(file: string, emit: (e: MemoryNotification) => void): Promise<void> {
    const t = parseKeyed((await readOpt(file)) ?? '');
    this.watched.set(file, { last: Number(t['oom_kill'] ?? 0), under: t['under_oom'] === 1, emit });
    if (!this.timer) {
      // Referenced: it runs only while some cgroup is monitored, and destroy() stops it.
      this.timer = setInterval(() => {
        if (!this.polling) {
          this.polling = true;
          void this.poll().finally(() => (this.polling = false));
        }
      }, this.interval);
    }
  }

  remove(file: string): void {
    this.watched.delete(file);
    if (this.watched.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Check every monitored cgroup once (also used to flush before a removal). */
  poll(): Promise<void> {
    // One pass at a time; a caller arriving during a pass waits for it and then runs its own.
    this.current = (this.current ?? Promise.resolve()).then(() => this.pass());
    return this.current;
  }

  private async pass(): Promise<void> {
    for (const [file, w] of [...this.watched]) {
      const text = await readOpt(file);
      if (text === undefined) continue;
      const t = parseKeyed(text);
      const kills = Number(t['oom_kill'] ?? 0);
      const under = t['under_oom'] === 1;
      if (kills > w.last || (under && !w.under)) {
        w.emit({ low: null, high: null, max: null, oom: 1n, oom_kill: BigInt(kills) });
      }
      w.last = kills;
      w.under = under;
    }
  }
}

/** v2: watch memory.events. */
class EventsWatcher {
  private watcher: FSWatcher | undefined;
  private last = '';
  private reading = Promise.resolve();

  constructor(private readonly file: string, private readonly emit: (e: MemoryNotification) => void, private readonly log: Log) {}

  async start(): Promise<void> {
    this.last = (await readOpt(this.file)) ?? '';
    try {
      this.watcher = watch(this.file, () => {
        this.reading = this.reading.then(() => this.check());
      });
      this.watcher.on('error', (e) => this.log.warn(`oom monitor ${this.file}: ${errorMessage(e)}`));
    } catch (e) {
      this.log.warn(`oom monitor: cannot watch ${this.file}: ${errorMessage(e)}`);
    }
  }

  async check(): Promise<void> {
    const text = await readOpt(this.file);
    if (text === undefined || text === this.last) return;
    this.last = text;
    const t = parseKeyed(text);
    this.emit({ low: big(t['low']), high: big(t['high']), max: big(t['max']), oom: big(t['oom']), oom_kill: big(t['oom_kill']) });
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    await this.reading;
  }
}

export class CgroupManager implements Cgroups {
  private readonly live = new Map<string, ContainerCgroupImpl>();
  /** Cgroups made ahead of their container's start (prepare), by name, with their settings' key. */
  private readonly prepared = new Map<string, { cg: ContainerCgroupImpl; key: string }>();
  /**
   * Per container name, the tail of its cgroup operations (create, prepare, the background
   * removal after an exit, discard): they run one after the other, so a start never finds
   * the directory of the last run still being removed, nor races a preparation.
   */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** `cgroups.prepare`; off from shutdown on. */
  private preparing: boolean;
  /** Directories this manager created for the top level and parents, in creation order. */
  private readonly created: string[] = [];
  /** Parent cgroups (per hierarchy) known to exist: not walked again at each create. */
  private readonly parents = new Set<string>();
  readonly top: string;
  private readonly poller: OomPoller;
  private v2Controllers: string[] = [];

  private constructor(readonly layout: CgroupLayout, private readonly opts: CgroupManagerOptions, private readonly owned: CgroupOwnership) {
    const own = layout.version === 2 ? layout.own : (layout.own.memory ?? layout.own.cpu ?? '/');
    this.top = resolveCgroupPath(own, opts.name, 'cgroup');
    this.poller = new OomPoller(opts.oomPollInterval ?? 100);
    this.preparing = opts.prepare !== false;
  }

  get version(): 1 | 2 {
    return this.layout.version;
  }

  /**
   * Detect the hierarchy, remove the cgroups a crashed earlier run made (recorded in
   * `runDir`, see ownership.ts) and create the top-level cgroup.
   */
  static async open(opts: CgroupManagerOptions): Promise<CgroupManager> {
    const layout = opts.layout ?? (await detectCgroupLayout());
    if (opts.runDir !== undefined) {
      try {
        await mkdir(opts.runDir, { recursive: true });
      } catch (e) {
        throw new NorthstarError('ECGROUP', `run_dir ${opts.runDir}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`, { cause: e });
      }
    }
    const { ownership, leftovers } = await CgroupOwnership.open(opts.runDir, opts.log);
    await ownership.cleanLeftovers(leftovers, opts.killTimeout ?? 5000);
    const m = new CgroupManager(layout, opts, ownership);
    await m.createTop();
    return m;
  }

  /** @internal The record of the directories this runtime made. */
  get ownership(): CgroupOwnership {
    return this.owned;
  }

  /** Per hierarchy: [mount, own cgroup path, controllers in it]. v1 hierarchies shared by cpu and cpuacct are listed once. */
  private hierarchies(): { mount: string; own: string; controllers: Controller[] }[] {
    const L = this.layout;
    if (L.version === 2) return [{ mount: L.root, own: L.own, controllers: ['cpu', 'io', 'memory', 'pids'] }];
    const byMount = new Map<string, { mount: string; own: string; controllers: Controller[] }>();
    for (const [c, mount] of Object.entries(L.mounts) as [Controller, string][]) {
      const h = byMount.get(mount) ?? { mount, own: L.own[c] ?? '/', controllers: [] };
      h.controllers.push(c);
      byMount.set(mount, h);
    }
    return [...byMount.values()];
  }

  /** The cgroup path for this hierarchy: relative config paths are below its own cgroup. */
  private pathIn(h: { own: string }, path: string, what: string): string {
    return resolveCgroupPath(h.own, path, what);
  }

  private async mkdirs(mount: string, cgPath: string, track: string[] | undefined, v2Enable: boolean): Promise<void> {
    const parts = cgPath.split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const parent = cur;
      cur = posix.join(cur, parts[i]!);
      const dir = cgroupDir(mount, cur);
      if (v2Enable) await this.enableControllers(cgroupDir(mount, parent));
      if (await this.makeDir(dir)) track?.push(dir);
      else if (track && !track.includes(dir) && (await this.owned.owns(dir))) track.push(dir); // ours, kept by a failed removal
    }
  }

  /**
   * mkdir `dir`, recorded as ours before and after; true when made, false when it existed
   * (then it is not ours unless the record says so, and is never removed or killed).
   */
  private async makeDir(dir: string, fresh = false, recorded = false): Promise<boolean> {
    // `fresh`: expected not to exist (a container's directory), so no check before.
    // `recorded`: the intent is recorded and the caller records the result (a batch).
    if (!fresh && (await access(dir).then(() => true, () => false))) return false;
    if (!recorded) await this.owned.intend(dir);
    try {
      await mkdir(dir);
    } catch (e) {
      if (!(await this.owned.owns(dir))) await this.owned.forget(dir);
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new NorthstarError('ECGROUP', `cannot create cgroup ${dir}: ${errorMessage(e)}`, { cause: e });
    }
    if (!recorded) await this.owned.made(dir);
    return true;
  }

  /** v2: turn on the used controllers for the children of `dir` (errors ignored, like upstream). */
  private async enableControllers(dir: string): Promise<void> {
    if (this.layout.version !== 2) return;
    const avail = ((await readOpt(`${dir}/cgroup.controllers`)) ?? '').split(/\s+/).filter((c) => (V2_CONTROLLERS as readonly string[]).includes(c));
    for (const c of avail) {
      try {
        await writeFile(`${dir}/cgroup.subtree_control`, `+${c}`);
      } catch (e) {
        this.opts.log.debug(`cgroup: cannot enable ${c} in ${dir}: ${errorMessage(e)}`);
      }
    }
  }

  private async createTop(): Promise<void> {
    const L = this.layout;
    if (L.version === 2) {
      this.v2Controllers = ((await readOpt(`${L.root}/cgroup.controllers`)) ?? '').split(/\s+/).filter((c) => (V2_CONTROLLERS as readonly string[]).includes(c));
    }
    for (const h of this.hierarchies()) {
      const top = this.pathIn(h, this.opts.name, 'cgroup');
      await this.mkdirs(h.mount, top, this.created, L.version === 2);
      // A top level this runtime did not make (a delegated or foreign cgroup) is used as
      // the parent of the containers but never removed; our crash leftovers were removed
      // before (open()).
      const dir = cgroupDir(h.mount, top);
      if (!this.created.includes(dir)) this.opts.log.info(`cgroup: ${dir} exists and was not made by this runtime: it is used but never removed`);
    }
    const hasPids = L.version === 2 ? this.v2Controllers.includes('pids') : L.mounts.pids !== undefined;
    if (this.opts.pidsMax !== undefined && !hasPids) {
      this.opts.log.warn(`cgroup: no pids controller${L.version === 2 ? ' in cgroup.controllers' : ' hierarchy mounted'}: the number of processes of a container is not limited (cgroups.pids_max)`);
    }
    this.opts.log.info(`cgroup: v${L.version} top level ${this.top}${L.version === 2 ? ` (controllers: ${this.v2Controllers.join(' ') || 'none'})` : ''}`);
  }

  /** Run `fn` after every earlier cgroup operation on `name` (see `chains`). */
  serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.chains.get(name) ?? Promise.resolve()).then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.chains.set(name, tail);
    void tail.then(() => {
      if (this.chains.get(name) === tail) this.chains.delete(name);
    });
    return run;
  }

  create(name: string, manifest: CgroupSource, onMemoryNotification?: (e: MemoryNotification) => void): Promise<ContainerCgroup> {
    return this.serial(name, async () => {
      if (this.live.has(name)) throw new NorthstarError('ECGROUP', `cgroup of ${name} exists already (another version is running)`);
      const cg = (await this.takePrepared(name, manifest)) ?? (await this.make(name, manifest));
      try {
        if (manifest.cgroups?.memory?.oom_monitor && onMemoryNotification) await cg.startMonitor(onMemoryNotification);
      } catch (e) {
        await cg.destroy().catch(() => undefined);
        throw e;
      }
      this.live.set(name, cg);
      return cg;
    });
  }

  prepare(name: string, manifest: CgroupSource): void {
    if (!this.preparing || wantsRealtime(manifest)) return;
    void this.serial(name, async () => {
      if (this.live.has(name) || this.prepared.has(name)) return;
      const cg = await this.make(name, manifest);
      this.prepared.set(name, { cg, key: settingsKey(manifest, this.opts.pidsMax) });
      this.opts.log.debug(`cgroup of ${name} prepared`);
    }).catch((e: unknown) => this.opts.log.warn(`preparing the cgroup of ${name} ahead of its start failed (its start makes one): ${errorMessage(e)}`));
  }

  discard(name: string): Promise<void> {
    return this.serial(name, async () => {
      const p = this.prepared.get(name);
      if (!p) return;
      this.prepared.delete(name);
      await p.cg.destroy();
    });
  }

  /** The prepared cgroup of `name` if it fits these settings and still exists; one that does not fit is removed. */
  private async takePrepared(name: string, manifest: CgroupSource): Promise<ContainerCgroupImpl | undefined> {
    const p = this.prepared.get(name);
    if (!p) return undefined;
    this.prepared.delete(name);
    // Removed behind our back (or an empty directory left by a foreign tool): made afresh.
    const present = p.cg.dirs.every((d) => existsSync(`${d}/cgroup.procs`));
    if (p.key === settingsKey(manifest, this.opts.pidsMax) && present) return p.cg;
    await p.cg.destroy().catch((e: unknown) => this.opts.log.warn(`cgroup of ${name}: removing the prepared one failed: ${errorMessage(e)}`));
    return undefined;
  }

  /** @internal Whether `name` has a prepared cgroup (for tests). */
  hasPrepared(name: string): boolean {
    return this.prepared.has(name);
  }

  /** Make and configure the cgroup of `name` (not yet live, no monitor). */
  private async make(name: string, manifest: CgroupSource): Promise<ContainerCgroupImpl> {
    const container = name;
    const settings = manifest.cgroups;
    cgroupComponents(name, 'container name');
    if (name.includes('/') || name === '') throw new NorthstarError('ECGROUP', `invalid cgroup name ${JSON.stringify(name)}`);
    const base = settings?.parent ?? this.opts.name;
    const what = settings?.parent !== undefined ? `${container}: cgroups.parent` : 'cgroup';
    // The hierarchies are independent: their directories are made concurrently, recorded as
    // ours in one write before and one after; if one fails, the ones made are removed again.
    const targets = this.hierarchies().map((h) => {
      const parent = this.pathIn(h, base, what);
      const path = posix.join(parent, name);
      return { h, parent, path, parentDir: cgroupDir(h.mount, parent), dir: cgroupDir(h.mount, path) };
    });
    await this.owned.intend(...targets.map((t) => t.dir));
    const made = await Promise.allSettled(
      targets.map(async ({ h, parent, path, parentDir, dir }) => {
        if (!this.parents.has(parentDir)) await this.makeParent(h.mount, parent);
        let fresh: boolean;
        try {
          fresh = await this.makeContainerDir(container, dir);
        } catch (e) {
          // The parent was removed behind our back: make it again, once.
          if ((e as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw e;
          this.parents.delete(parentDir);
          await this.makeParent(h.mount, parent);
          fresh = await this.makeContainerDir(container, dir);
        }
        return { dir, path, mount: h.mount, controllers: h.controllers, fresh };
      }),
    );
    await this.owned.made(...made.flatMap((r) => (r.status === 'fulfilled' && r.value.fresh ? [r.value.dir] : [])));
    const dirs = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      // Intents of directories never made (a parent failed first) go; ours stay recorded.
      for (const t of targets) {
        if (!dirs.some((d) => d.dir === t.dir) && !(await this.owned.owns(t.dir))) await this.owned.forget(t.dir);
      }
      await this.undoDirs(dirs);
      throw failed.reason;
    }
    const path = dirs[dirs.length - 1]?.path ?? '';
    for (const d of dirs) {
      if (this.layout.version === 1 && d.controllers.includes('cpu') && wantsRealtime(manifest)) {
        try {
          await this.ensureRtBudget(d.mount, d.path, realtimeRuntime(settings));
        } catch (e) {
          await this.undoDirs(dirs);
          throw e;
        }
      }
    }
    const cg = new ContainerCgroupImpl(this, container, path, dirs, this.opts.log, this.opts.killTimeout ?? 5000);
    try {
      if (this.opts.pidsMax !== undefined) await cg.limitPids(this.opts.pidsMax);
      const plan = cgroupWrites(settings, this.layout.version);
      await cg.apply(plan.writes);
      if (plan.skipped.length) this.opts.log.debug(`${container}: cgroup settings without a file on v${this.layout.version}: ${plan.skipped.join(', ')}`);
    } catch (e) {
      await cg.destroy().catch(() => undefined);
      throw e;
    }
    return cg;
  }

  /** Make (or find) a parent cgroup of containers, and remember it exists. */
  private async makeParent(mount: string, parent: string): Promise<void> {
    await this.mkdirs(mount, parent, this.created, this.layout.version === 2);
    const dir = cgroupDir(mount, parent);
    if (this.layout.version === 2) await this.enableControllers(dir);
    this.parents.add(dir);
  }

  /**
   * A container's cgroup directory must be new: one that exists and is not ours (a foreign
   * cgroup with the container's name) is refused, never joined, killed or removed. One of
   * ours that an earlier removal failed to delete is emptied and made again. A plain
   * directory (a test layout, not a cgroup filesystem) holds no tasks and is used as it is.
   */
  private async makeContainerDir(container: string, dir: string): Promise<boolean> {
    // Its intent is recorded (create); the caller records what was made fresh.
    if (await this.makeDir(dir, true, true)) return true;
    if (await this.owned.owns(dir)) {
      this.opts.log.warn(`${container}: removing the stale cgroup ${dir} this runtime made before`);
      if (!(await killCgroupTasks(dir, this.opts.killTimeout ?? 5000))) throw new NorthstarError('ECGROUP', `${container}: stale cgroup ${dir} still has tasks`);
      await removeCgroupDir(dir, this.opts.log);
      await this.owned.forget(dir);
      if (await this.makeDir(dir)) return false; // recorded by makeDir itself
    }
    if (!(await isCgroupFs(dir))) return false;
    throw new NorthstarError(
      'ECGROUP',
      `${container}: cgroup ${dir} exists and was not made by this runtime; it is left alone: remove it or choose another cgroup or cgroups.parent`,
    );
  }

  /** Remove container directories made so far by a create that failed. */
  private async undoDirs(dirs: { dir: string }[]): Promise<void> {
    const removed: string[] = [];
    for (const d of dirs) await rmdir(d.dir).then(() => removed.push(d.dir), () => undefined);
    await this.owned.forget(...removed);
  }

  /**
   * With RT group scheduling (v1 `cpu.rt_runtime_us`), a cgroup whose budget is 0 may run
   * no SCHED_FIFO/RR task, and new cgroups start at 0. Give the container its manifest
   * `cgroups.cpu.realtime_runtime` or 10 ms per second, and raise each level above it
   * (top-down, a child never exceeds its parent) to the sum its children now need.
   */
  private async ensureRtBudget(mount: string, path: string, want: number): Promise<void> {
    if ((await readOpt(`${mount}/cpu.rt_runtime_us`)) === undefined) return; // no RT group scheduling
    const parts = path.split('/').filter(Boolean);
    const dirs = parts.map((_, i) => cgroupDir(mount, '/' + parts.slice(0, i + 1).join('/')));
    const budget = async (dir: string): Promise<number> => Number((await readOpt(`${dir}/cpu.rt_runtime_us`))?.trim() ?? '0') || 0;
    const childrenSum = async (dir: string): Promise<number> => {
      let sum = 0;
      for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) sum += await budget(`${dir}/${e.name}`);
      }
      return sum;
    };
    // Bottom-up: what each level must hold; then write top-down.
    const req: number[] = new Array<number>(dirs.length);
    req[dirs.length - 1] = want;
    for (let i = dirs.length - 2; i >= 0; i--) {
      const cur = await budget(dirs[i]!);
      const child = await budget(dirs[i + 1]!);
      req[i] = Math.max(cur, (await childrenSum(dirs[i]!)) - child + req[i + 1]!);
    }
    for (let i = 0; i < dirs.length; i++) {
      const file = `${dirs[i]}/cpu.rt_runtime_us`;
      if ((await budget(dirs[i]!)) >= req[i]!) continue;
      try {
        await writeFile(file, String(req[i]));
      } catch (e) {
        throw new NorthstarError(
          'ECGROUP',
          `realtime scheduling needs a cpu.rt_runtime_us budget: writing ${req[i]} to ${file} failed: ${errorMessage(e)}`,
          { cause: e },
        );
      }
    }
  }

  /** @internal */
  forget(cg: ContainerCgroupImpl): void {
    if (this.live.get(cg.name) === cg) this.live.delete(cg.name);
    if (this.prepared.get(cg.name)?.cg === cg) this.prepared.delete(cg.name);
  }

  /** @internal */
  get oomPoller(): OomPoller {
    return this.poller;
  }

  async shutdown(): Promise<void> {
    // Background removals and preparations first; then nothing new is prepared.
    this.preparing = false;
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
    for (const cg of [...this.live.values(), ...[...this.prepared.values()].map((p) => p.cg)]) {
      await cg.destroy().catch((e: unknown) => this.opts.log.warn(`cgroup ${cg.path}: ${errorMessage(e)}`));
    }
    for (const dir of [...this.created].reverse()) {
      try {
        await rmdir(dir);
        await this.owned.forget(dir);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') await this.owned.forget(dir);
        else this.opts.log.warn(`cgroup: cannot remove ${dir}: ${code ?? errorMessage(e)}`);
      }
    }
    this.created.length = 0;
    this.parents.clear();
    await this.owned.close();
  }
}

/** The distinct pids of `cgroup.procs` texts (one per hierarchy; undefined: unreadable, none). */
function pidsIn(texts: readonly (string | undefined)[]): number[] {
  const all = new Set<number>();
  for (const text of texts) {
    for (const l of (text ?? '').split('\n')) if (l.trim()) all.add(Number(l));
  }
  return [...all];
}

/** What a prepared cgroup was configured from: a create with another key makes a new one. */
function settingsKey(manifest: CgroupSource, pidsMax: number | 'max' | undefined): string {
  return JSON.stringify([manifest.cgroups ?? null, pidsMax ?? null], (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
}

function wantsRealtime(manifest: CgroupSource): boolean {
  const policy = (manifest as { sched?: { policy?: unknown } }).sched?.policy;
  return typeof policy === 'object' && policy !== null && ('fifo' in policy || 'round_robin' in policy);
}

function realtimeRuntime(settings: CgroupSource['cgroups']): number {
  const v = (settings?.cpu as { realtime_runtime?: number | bigint } | undefined)?.realtime_runtime;
  return v !== undefined && Number(v) > 0 ? Number(v) : 10_000;
}

class ContainerCgroupImpl implements ContainerCgroup {
  private monitor: EventsWatcher | string | undefined;
  private destroyed = false;

  constructor(
    private readonly manager: CgroupManager,
    readonly name: string,
    readonly path: string,
    private readonly hier: { dir: string; controllers: Controller[] }[],
    private readonly log: Log,
    private readonly killTimeout: number,
  ) {}

  get dirs(): string[] {
    return this.hier.map((h) => h.dir);
  }

  /** Name used in messages. */
  private get container(): string {
    return this.name;
  }

  get procs(): string[] {
    return this.hier.map((h) => `${h.dir}/cgroup.procs`);
  }

  private dirOf(c: Controller): string | undefined {
    if (this.manager.version === 2) return this.hier[0]?.dir;
    return this.hier.find((h) => h.controllers.includes(c))?.dir;
  }

  async apply(writes: CgroupWrite[]): Promise<void> {
    for (const w of writes) {
      const dir = this.dirOf(w.controller);
      if (!dir) {
        this.log.debug(`${this.container}: no ${w.controller} hierarchy, skipping ${w.file}`);
        continue;
      }
      const file = `${dir}/${w.file}`;
      let value = w.value;
      try {
        if (w.merge) {
          const cur = ((await readOpt(file)) ?? 'max 100000').trim().split(/\s+/);
          value = w.merge === 'cpu.max.quota' ? `${w.value} ${cur[1] ?? '100000'}` : `${cur[0] ?? 'max'} ${w.value}`;
        }
        await writeFile(file, value);
        if (w.onError === 'verify') {
          const back = ((await readOpt(file)) ?? '').trim();
          if (back !== value.trim()) {
            throw new NorthstarError('ECGROUP', `${this.container}: cgroup ${file}: wrote ${JSON.stringify(value)}, read back ${JSON.stringify(back)}`);
          }
        }
      } catch (e) {
        if (w.onError === 'ignore') {
          this.log.warn(`${this.container}: cgroup ${file} = ${JSON.stringify(value)}: ${errorMessage(e)}`);
          continue;
        }
        if (e instanceof NorthstarError) throw e;
        throw new NorthstarError('ECGROUP', `${this.container}: cgroup ${file} = ${JSON.stringify(value)}: ${errorMessage(e)}`, { cause: e });
      }
    }
  }

  /** Write `pids.max` (read back; a failure fails the start). Without a pids controller here: a warning. */
  async limitPids(max: number | 'max'): Promise<void> {
    const dir = this.dirOf('pids');
    if (!dir) return; // no pids hierarchy: warned once at start
    try {
      await this.apply([{ controller: 'pids', file: 'pids.max', value: String(max), onError: 'verify' }]);
    } catch (e) {
      if ((e as { cause?: NodeJS.ErrnoException }).cause?.code !== 'ENOENT') throw e;
      this.log.warn(`${this.container}: no pids controller in cgroup ${this.path}: its number of processes is not limited`);
    }
  }

  async startMonitor(emit: (e: MemoryNotification) => void): Promise<void> {
    const dir = this.dirOf('memory');
    if (!dir) {
      this.log.warn(`${this.container}: oom_monitor requested but there is no memory cgroup`);
      return;
    }
    if (this.manager.version === 1) {
      const file = `${dir}/memory.oom_control`;
      await this.manager.oomPoller.add(file, emit);
      this.monitor = file;
    } else {
      const w = new EventsWatcher(`${dir}/memory.events`, emit, this.log);
      await w.start();
      this.monitor = w;
    }
  }

  /** pids(), read synchronously (small in-memory cgroupfs files). */
  private pidsNow(): number[] {
    return pidsIn(
      this.procs.map((file) => {
        try {
          return readFileSync(file, 'utf8');
        } catch {
          return undefined; // gone: no tasks
        }
      }),
    );
  }

  async pids(): Promise<number[]> {
    return pidsIn(await Promise.all(this.procs.map(readOpt)));
  }

  async statistics(): Promise<CgroupStatistics> {
    const mem = this.dirOf('memory');
    const cpu = this.dirOf('cpu');
    const acct = this.dirOf('cpuacct');
    const blk = this.dirOf(this.manager.version === 1 ? 'blkio' : 'io');
    const stats: CgroupStatistics = { memory: { memory: {}, kmem: {}, kmem_tcp: {} }, cpu: {}, blkio: {} };
    const put = async (t: StatTable, key: string, file: string | undefined) => {
      if (!file) return;
      const v = await readOpt(file);
      if (v !== undefined) t[key] = count(v);
    };
    if (this.manager.version === 1) {
      if (mem) {
        for (const [t, pre] of [[stats.memory.memory, 'memory'], [stats.memory.kmem, 'memory.kmem'], [stats.memory.kmem_tcp, 'memory.kmem.tcp']] as const) {
          for (const k of ['usage_in_bytes', 'max_usage_in_bytes', 'limit_in_bytes', 'failcnt']) await put(t, k, `${mem}/${pre}.${k}`);
        }
        await put(stats.memory.memory, 'soft_limit_in_bytes', `${mem}/memory.soft_limit_in_bytes`);
        await put(stats.memory.memory, 'swappiness', `${mem}/memory.swappiness`);
        const st = await readOpt(`${mem}/memory.stat`);
        if (st !== undefined) stats.memory.memory.stat = parseKeyed(st);
        const oom = await readOpt(`${mem}/memory.oom_control`);
        if (oom !== undefined) stats.memory.memory['oom_kill'] = parseKeyed(oom)['oom_kill'] ?? 0;
      }
      if (cpu) {
        for (const k of ['shares', 'cfs_period_us', 'cfs_quota_us']) await put(stats.cpu, k, `${cpu}/cpu.${k}`);
        const st = await readOpt(`${cpu}/cpu.stat`);
        if (st !== undefined) stats.cpu.stat = parseKeyed(st);
      }
      if (acct) await put(stats.cpu, 'usage', `${acct}/cpuacct.usage`);
      if (blk) {
        for (const f of ['blkio.throttle.io_service_bytes', 'blkio.throttle.io_serviced']) {
          const v = await readOpt(`${blk}/${f}`);
          if (v !== undefined) stats.blkio[f.replace('blkio.throttle.', '')] = v.trim().split('\n').filter((l) => /^\d+:\d+ /.test(l));
        }
      }
    } else {
      if (mem) {
        await put(stats.memory.memory, 'current', `${mem}/memory.current`);
        await put(stats.memory.memory, 'max', `${mem}/memory.max`);
        await put(stats.memory.memory, 'low', `${mem}/memory.low`);
        await put(stats.memory.memory, 'swap_current', `${mem}/memory.swap.current`);
        const st = await readOpt(`${mem}/memory.stat`);
        if (st !== undefined) {
          stats.memory.memory.stat = parseKeyed(st);
          const k = stats.memory.memory.stat['kernel'] ?? stats.memory.memory.stat['kernel_stack'];
          if (k !== undefined) stats.memory.kmem['usage'] = k;
          const sock = stats.memory.memory.stat['sock'];
          if (sock !== undefined) stats.memory.kmem_tcp['usage'] = sock;
        }
        const ev = await readOpt(`${mem}/memory.events`);
        if (ev !== undefined) stats.memory.memory['events'] = parseKeyed(ev);
      }
      if (cpu) {
        await put(stats.cpu, 'weight', `${cpu}/cpu.weight`);
        await put(stats.cpu, 'max', `${cpu}/cpu.max`);
        const st = await readOpt(`${cpu}/cpu.stat`);
        if (st !== undefined) stats.cpu.stat = parseKeyed(st);
      }
      if (blk) {
        const v = await readOpt(`${blk}/io.stat`);
        if (v !== undefined) stats.blkio['io_stat'] = v.trim().split('\n').filter(Boolean);
      }
    }
    return stats;
  }

  private async stopMonitor(): Promise<void> {
    const m = this.monitor;
    this.monitor = undefined;
    if (typeof m === 'string') {
      await this.manager.oomPoller.poll(); // deliver an OOM that happened just before the exit
      this.manager.oomPoller.remove(m);
    } else if (m) {
      await m.check();
      await m.stop();
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.empty();
    await this.remove();
  }

  async release(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.empty();
    // Until removed, the name stays taken (live): a create waits for this in its chain.
    void this.manager.serial(this.name, () => this.remove()).catch((e: unknown) => this.log.warn(`${this.container}: ${errorMessage(e)}`));
  }

  /** Stop the monitor and kill what is left, so that no task of the container remains. */
  private async empty(): Promise<void> {
    await this.stopMonitor();
    // Leftover tasks (an init that escaped its reaper, a debug command) are killed first.
    // Read at once: on the exit's path, and cgroupfs files are in memory.
    const pids = this.pidsNow();
    if (pids.length > 0) {
      this.log.warn(`${this.container}: killing ${pids.length} leftover task(s) in cgroup ${this.path}`);
      for (const { dir } of this.hier) {
        if (!(await killCgroupTasks(dir, this.killTimeout))) {
          throw new NorthstarError('ECGROUP', `${this.container}: cgroup ${this.path} still has tasks ${(await this.pids()).join(' ')}`);
        }
      }
    }
  }

  /** Remove the (empty) directories. */
  private async remove(): Promise<void> {
    // Give a realtime budget back first: a removed cgroup's budget stays counted against
    // its parent until the kernel frees the group, which would refuse the next start's.
    for (const { dir, controllers } of this.hier) {
      if (this.manager.version !== 1 || !controllers.includes('cpu')) continue;
      const rt = `${dir}/cpu.rt_runtime_us`;
      if (((await readOpt(rt)) ?? '0').trim() !== '0') await writeFile(rt, '0').catch(() => undefined);
    }
    // Every hierarchy is tried even if one fails, so one busy directory does not leave the others.
    let first: unknown;
    const removed: string[] = [];
    await Promise.all(
      this.hier.map(({ dir }) =>
        removeCgroupDir(dir, this.log).then(
          () => removed.push(dir),
          (e: unknown) => {
            first ??= e;
          },
        ),
      ),
    );
    await this.manager.ownership.forget(...removed);
    this.manager.forget(this);
    if (first) throw first;
  }
}

/** rmdir a cgroup; the kernel may report EBUSY for a moment after the last task exited. */
async function removeCgroupDir(dir: string, log: Log): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code === 'EBUSY' && i < 100) {
        await sleep(10);
        continue;
      }
      log.warn(`cgroup: cannot remove ${dir}: ${code ?? errorMessage(e)}`);
      throw new NorthstarError('ECGROUP', `cannot remove cgroup ${dir}: ${code ?? errorMessage(e)}`, { cause: e });
    }
  }
}

const CGROUP_SUPER_MAGIC = 0x27e0eb;

/** cgroupfs (v1) or cgroup2; anything else is a plain directory layout (tests). */
async function isCgroupFs(dir: string): Promise<boolean> {
  const t = Number((await statfs(dir).catch(() => ({ type: 0 }))).type);
  return t === CGROUP_SUPER_MAGIC || t === CGROUP2_SUPER_MAGIC;
}
