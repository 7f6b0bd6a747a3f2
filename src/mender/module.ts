/**
 * The Mender Update Module `northstar-npk` (protocol v3, docs/fleet.md): Mender calls it with
 * a state and the payload's work directory (`<tree>`: header/, files/ with the payload's
 * files, tmp/ for us). It installs every `*.npk` of the payload through the runtime's
 * console, starts what should run, checks at commit that what it started still runs after
 * the health-gate seconds (else Mender rolls back), and on rollback brings back the versions
 * that ran before. Its progress is in `<tree>/tmp/northstar-npk.json` (state.ts), written
 * before each action, so every state can be run again after a crash of the module, the
 * runtime or the device. It never touches repository files: only console requests.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client, RuntimeError, type ContainerData, type ExitStatus } from '../client/index.js';
import { NorthstarError, errorMessage } from '../common/errors.js';
import { Npk } from '../npk/reader.js';
import { isResourceContainer } from '../manifest/index.js';
import { loadSettings, type Settings } from './settings.js';
import { readState, statePath, writeState, type Item, type PayloadState } from './state.js';

/** What the module does to the world besides the console: tests give their own. */
export interface ModuleIo {
  env: NodeJS.ProcessEnv;
  /** One line to stderr (Mender puts it into the deployment log). */
  log(line: string): void;
  /** The answer of a query state (stdout). */
  answer(line: string): void;
  sleep(ms: number): Promise<void>;
}

/** How long a container gets after SIGTERM before SIGKILL, and after SIGKILL before we give up. */
const STOP_GRACE_MS = 10_000;
const KILL_WAIT_MS = 10_000;
const POLL_MS = 100;

class ModuleFailure extends NorthstarError {}

/** `name:version` */
const key = (name: string, version: string): string => `${name}:${version}`;

function describeExit(s: ExitStatus): string {
  return 'exit' in s ? `exit code ${s.exit.code}` : `signal ${s.signalled.signal}`;
}

/** Run one state; resolves with the exit code (0 ok, 1 failed: Mender rolls back or reports). */
export async function runState(state: string | undefined, tree: string | undefined, io: ModuleIo): Promise<number> {
  const log = (line: string): void => io.log(`northstar-npk ${state}: ${line}`);
  switch (state) {
    case 'NeedsArtifactReboot':
      io.answer('No');
      return 0;
    case 'SupportsRollback':
      io.answer('Yes');
      return 0;
    case 'ArtifactInstall':
    case 'ArtifactCommit':
    case 'ArtifactRollback':
    case 'ArtifactFailure':
    case 'Cleanup':
      break;
    default:
      // Download (Mender stores the files itself), the reboot states, and states of later
      // protocol versions: nothing to do, as the protocol asks of a module.
      return 0;
  }
  if (!tree) {
    io.log(`northstar-npk ${state}: error: no payload directory given (usage: northstar-npk STATE DIRECTORY, as Mender calls it)`);
    return 1;
  }
  try {
    if (state === 'ArtifactFailure') {
      log('the device stays as the rollback left it');
      return 0;
    }
    if (state === 'Cleanup') {
      rmSync(statePath(tree), { force: true });
      log('module state removed');
      return 0;
    }
    const settings = loadSettings(io.env);
    const m = new Module(tree, settings, log, io);
    try {
      if (state === 'ArtifactInstall') await m.install();
      else if (state === 'ArtifactCommit') await m.commit();
      else await m.rollback();
    } finally {
      await m.close();
    }
    return 0;
  } catch (e) {
    log(`error: ${errorMessage(e)}`);
    return 1;
  }
}

class Module {
  private client: Client | undefined;
  constructor(
    private readonly tree: string,
    private readonly settings: Settings,
    private readonly log: (line: string) => void,
    private readonly io: ModuleIo,
  ) {}

  private async console(): Promise<Client> {
    if (!this.client) {
      try {
        this.client = await Client.connect(this.settings.url, { timeout: 10_000 });
      } catch (e) {
        throw new ModuleFailure('ECONNECT', `cannot reach the runtime's console ${this.settings.url}: ${errorMessage(e)} (set url in ${this.settings.file ?? '/etc/mender/northstar-npk.conf'} or NORTHSTAR_URL)`, { cause: e });
      }
    }
    return this.client;
  }

  async close(): Promise<void> {
    await this.client?.close();
  }

  private save(st: PayloadState): void {
    writeState(this.tree, st);
  }

  /** Inspect, or undefined when name:version is not installed. */
  private async data(k: string): Promise<ContainerData | undefined> {
    const c = await this.console();
    try {
      return await c.inspect(k);
    } catch (e) {
      if (e instanceof RuntimeError && e.kind === 'invalid_container') return undefined;
      throw e;
    }
  }

  private async installed(): Promise<Set<string>> {
    const c = await this.console();
    return new Set((await c.list()).map((x) => x.toString()));
  }

  /** The payload's NPKs with their manifests (not verified here: the runtime verifies at install). */
  private async plan(): Promise<PayloadState> {
    const files = join(this.tree, 'files');
    let names: string[];
    try {
      names = readdirSync(files).filter((n) => n.endsWith('.npk')).sort();
    } catch (e) {
      throw new ModuleFailure('EINSTALL', `${files}: cannot read the payload's files: ${errorMessage(e)}`);
    }
    if (names.length === 0) throw new ModuleFailure('EINSTALL', `${files}: the payload has no .npk file (make the artifact with -f <file>.npk)`);
    const installed = await this.installed();
    const items: Item[] = [];
    for (const file of names) {
      let npk: Npk;
      try {
        npk = await Npk.open(join(files, file), { name: file });
      } catch (e) {
        throw new ModuleFailure('EINSTALL', `${file}: not an npk: ${errorMessage(e)}`, { cause: e });
      }
      const { name, version } = { name: npk.manifest.name, version: npk.manifest.version.toString() };
      const twin = items.find((i) => i.name === name);
      if (twin) throw new ModuleFailure('EINSTALL', `${file} and ${twin.file} are both ${name} (${version}, ${twin.version}): an artifact holds one version of a container`);
      const preexisting = installed.has(key(name, version));
      const replaced = [];
      if (!preexisting) {
        for (const other of installed) {
          const [n, v] = [other.slice(0, other.indexOf(':')), other.slice(other.indexOf(':') + 1)];
          if (n !== name) continue;
          const d = await this.data(other);
          replaced.push({ version: v, wasRunning: d?.process != null });
        }
      }
      const start = !preexisting && !isResourceContainer(npk.manifest) && (npk.manifest.autostart !== undefined || replaced.some((r) => r.wasRunning));
      items.push({ file, name, version, preexisting, replaced, start });
    }
    return { version: 1, phase: 'installing', repository: this.settings.repository, items };
  }

  async install(): Promise<void> {
    const s = this.settings;
    this.log(`console ${s.url}, repository ${s.repository}, health gate ${s.healthSeconds} s${s.file ? ` (settings ${s.file})` : ''}`);
    let st = readState(this.tree);
    if (st && st.phase !== 'installing') {
      this.log(`already ${st.phase}: nothing to do`);
      return;
    }
    if (!st) {
      st = await this.plan();
      this.save(st);
    }
    const c = await this.console();
    // Every package first: a package the runtime refuses fails the state before anything was stopped.
    let have = await this.installed();
    for (const it of st.items) {
      const k = key(it.name, it.version);
      if (it.preexisting) {
        this.log(`${k} is installed already: left as it is`);
        continue;
      }
      if (have.has(k)) continue;
      try {
        await c.install(join(this.tree, 'files', it.file), st.repository);
      } catch (e) {
        throw new ModuleFailure('EINSTALL', `installing ${it.file} (${k}) into ${st.repository} failed: ${errorMessage(e)}`, { cause: e });
      }
      this.log(`installed ${k} into ${st.repository}`);
    }
    have = await this.installed();
    for (const it of st.items) {
      for (const r of it.replaced) {
        const old = key(it.name, r.version);
        if (!have.has(old)) continue;
        const d = await this.data(old);
        if (d?.process != null) await this.stop(old);
      }
    }
    for (const it of st.items) {
      if (!it.start) continue;
      const k = key(it.name, it.version);
      const d = await this.data(k);
      if (d?.process != null) continue;
      await this.start(k);
      this.log(`started ${k}`);
    }
    st.phase = 'installed';
    this.save(st);
  }

  /** Start k; one that runs already (the runtime's autostart came first) is fine. */
  private async start(k: string): Promise<void> {
    const c = await this.console();
    try {
      await c.start(k);
    } catch (e) {
      if (e instanceof RuntimeError && e.kind === 'start_container_started') return;
      throw new ModuleFailure('ESTART', `starting ${k} failed: ${errorMessage(e)}`, { cause: e });
    }
  }

  /** SIGTERM, SIGKILL after the grace period; resolves once the runtime reports no process. */
  private async stop(k: string): Promise<void> {
    const c = await this.console();
    const gone = async (ms: number): Promise<ContainerData | undefined | null> => {
      const deadline = Date.now() + ms;
      for (;;) {
        const d = await this.data(k);
        if (d?.process == null) return d;
        if (Date.now() > deadline) return null;
        await this.io.sleep(POLL_MS);
      }
    };
    const notRunning = (e: unknown): void => {
      // It ended between our look and the signal: that is what we wanted.
      if (!(e instanceof RuntimeError && e.kind === 'stop_container_not_started')) throw e;
    };
    await c.kill(k, 15).catch(notRunning);
    let d = await gone(STOP_GRACE_MS);
    let how = 'SIGTERM';
    if (d === null) {
      await c.kill(k, 9).catch(notRunning);
      how = 'SIGKILL';
      d = await gone(KILL_WAIT_MS);
      if (d === null) throw new ModuleFailure('ETIMEOUT', `stopping ${k}: it still runs ${KILL_WAIT_MS / 1000} s after SIGKILL`);
    }
    const ended = d?.last_exit ? `, ${describeExit(d.last_exit.status)}` : '';
    this.log(`stopped ${k} (${how}${ended})`);
  }

  async commit(): Promise<void> {
    const st = readState(this.tree);
    if (!st) {
      this.log('no install of this payload is recorded: nothing to commit');
      return;
    }
    if (st.phase === 'installing') throw new ModuleFailure('ESTATE', 'the install did not finish: not committed');
    if (st.phase === 'rolledback') throw new ModuleFailure('ESTATE', 'this payload was rolled back: not committed');
    const c = await this.console();
    if (st.phase === 'installed') {
      const gated = st.items.filter((i) => i.start);
      const pids = new Map<string, number>();
      for (const it of gated) {
        const k = key(it.name, it.version);
        let d = await this.data(k);
        if (!d) throw new ModuleFailure('ESTATE', `health gate: ${k} is not installed any more`);
        if (d.process == null) {
          if (d.last_exit) throw new ModuleFailure('ESTATE', `health gate: ${k} ended (${describeExit(d.last_exit.status)}) after the install started it`);
          // Installed, never ended since the runtime started: the runtime restarted since the install.
          await this.start(k);
          this.log(`started ${k} again (the runtime restarted since the install)`);
          d = await this.data(k);
          if (d?.process == null) throw new ModuleFailure('ESTATE', `health gate: ${k} ended right after it was started again`);
        }
        pids.set(k, d.process.pid);
      }
      if (gated.length > 0) {
        this.log(`health gate: ${[...pids.keys()].join(', ')} must keep running for ${this.settings.healthSeconds} s`);
        await this.io.sleep(this.settings.healthSeconds * 1000);
        for (const [k, pid] of pids) {
          const d = await this.data(k);
          if (!d) throw new ModuleFailure('ESTATE', `health gate failed: ${k} was uninstalled`);
          if (d.process == null) {
            const how = d.last_exit ? describeExit(d.last_exit.status) : 'no exit status';
            throw new ModuleFailure('ESTATE', `health gate failed: ${k} ended (${how}) within ${this.settings.healthSeconds} s`);
          }
          if (d.process.pid !== pid) throw new ModuleFailure('ESTATE', `health gate failed: ${k} was restarted within ${this.settings.healthSeconds} s (pid ${pid} -> ${d.process.pid})`);
        }
        this.log('health gate passed');
      }
      // From here on there is no way back: the replaced versions go.
      st.phase = 'committing';
      this.save(st);
    }
    if (st.phase === 'committing') {
      for (const it of st.items) {
        for (const r of it.replaced) {
          const old = key(it.name, r.version);
          const d = await this.data(old);
          if (!d) continue;
          if (d.process != null) await this.stop(old);
          try {
            await c.uninstall(old);
          } catch (e) {
            // The new versions passed the gate: a version left behind (e.g. a resource still
            // mounted by another container) does not undo that.
            if (!(e instanceof RuntimeError)) throw e;
            this.log(`warning: ${old} stays installed, the runtime refused to uninstall it: ${errorMessage(e)} (nstar uninstall ${old} once it is free)`);
            continue;
          }
          this.log(`uninstalled ${old} (replaced by ${it.version})`);
        }
      }
      st.phase = 'committed';
      this.save(st);
    }
    this.log(`committed: ${st.items.map((i) => key(i.name, i.version)).join(', ')}`);
  }

  async rollback(): Promise<void> {
    const st = readState(this.tree);
    if (!st) {
      this.log('nothing to roll back: the install did not begin');
      return;
    }
    if (st.phase === 'committing' || st.phase === 'committed') {
      throw new ModuleFailure('ESTATE', `cannot roll back: the payload was ${st.phase === 'committed' ? 'committed' : 'being committed'} and the versions it replaced are uninstalled`);
    }
    const c = await this.console();
    for (const it of [...st.items].reverse()) {
      if (it.preexisting) continue;
      const k = key(it.name, it.version);
      const d = await this.data(k);
      if (!d) continue;
      if (d.process != null) await this.stop(k);
      await c.uninstall(k);
      this.log(`uninstalled ${k}`);
    }
    for (const it of st.items) {
      for (const r of it.replaced) {
        if (!r.wasRunning) continue;
        const old = key(it.name, r.version);
        const d = await this.data(old);
        if (!d) {
          this.log(`${old} is not installed: cannot start it again`);
          continue;
        }
        if (d.process != null) continue;
        await this.start(old);
        this.log(`started ${old} again`);
      }
    }
    st.phase = 'rolledback';
    this.save(st);
    this.log('rolled back');
  }
}
