/**
 * The runtime daemon: configuration → repositories, mounter, cgroups, launcher, state,
 * console; autostart; orderly shutdown on a signal, a `shutdown` request or a critical
 * container's failure.
 */
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, realpath, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, NorthstarError } from '../common/errors.js';
import { ConsoleServer } from '../console/server.js';
import { Launcher } from '../launch/launcher.js';
import { prepareConfigDirs, type Config } from './config.js';
import { StateHandle } from './handle.js';
import type { Logger } from './logger.js';
import { removeTree } from './fs-safe.js';
import { LoopMounter } from './mount/mounter.js';
import type { CgroupPort } from './ports.js';
import { openRepositories } from './repository/index.js';
import { State } from './state.js';
import { CONSOLE_PERMISSIONS } from '../manifest/index.js';
import { umount } from './mount/overlay.js';
import { closeStdioOfFailedSpawns } from '../common/spawn-fds.js';

// A failed spawn under EMFILE/ENFILE must not leak its stdio pipes (src/common/spawn-fds.ts).
closeStdioOfFailedSpawns();

export interface RuntimeOptions {
  config: Config;
  log: Logger;
  cgroups: CgroupPort;
  /** Path of the launch core (tests). */
  launchBinary?: string;
}

export class Runtime {
  private state!: State;
  private console!: ConsoleServer;
  private stopping: Promise<number> | undefined;
  private exitCode = 0;
  private resolveDone!: (code: number) => void;
  /** Resolves with the exit code once the runtime has shut down. */
  readonly done: Promise<number> = new Promise((r) => (this.resolveDone = r));
  /** Addresses the global console listens on. */
  readonly addresses: string[] = [];

  private constructor(private readonly opts: RuntimeOptions) {}

  static async start(opts: RuntimeOptions): Promise<Runtime> {
    const rt = new Runtime(opts);
    await rt.init();
    return rt;
  }

  private async init(): Promise<void> {
    const { config, log } = this.opts;
    const began = process.hrtime.bigint();
    await protectFromOomKiller(config.oomScoreAdj, log);
    await prepareConfigDirs(config);
    await removeWritableRootLeftovers(config.runDir, log);
    await removeSocketLeftovers(config.socketDir, log);
    await removeMountPointLeftovers(config.runDir, log);
    const repositories = await openRepositories(config.repositories.values(), { log, memDir: join(config.runDir, 'mem') });
    const mounter = new LoopMounter({ runDir: config.runDir, verity: config.verity, loopDeviceTimeout: config.loopDeviceTimeout, log });
    log.info(mounter.verityDescription);
    this.state = new State({
      config,
      repositories,
      mounter,
      cgroups: this.opts.cgroups,
      launcher: new Launcher({ ...(this.opts.launchBinary ? { binary: this.opts.launchBinary } : {}), pool: config.launch.pool }),
      log,
      selinux: existsSync('/sys/fs/selinux/enforce'),
      // The console server is made below (it needs the state): used only once containers start.
      serveConsole: (c, manifest, stream) => {
        const cc = this.console.serveContainer(stream, c, manifest.console?.permissions ?? [], config.console.options);
        return () => cc.close();
      },
      onCritical: (c, status) => {
        log.error(`critical container ${c} failed (${JSON.stringify(status)})`);
        void this.shutdown(1);
      },
    });
    const handle = new StateHandle(this.state, () => void this.shutdown(0));
    this.console = new ConsoleServer({ handle, logger: log, notificationBufferSize: config.notificationBufferSize });
    try {
      await this.state.load();
      const global = config.console.global;
      for (const l of global?.listeners ?? []) {
        const bound = await this.console.listen(l.bind.url, l.permissions, global!.options);
        this.addresses.push(bound);
        log.info(`console listening on ${bound} (${l.permissions.length === CONSOLE_PERMISSIONS.length ? 'full' : l.permissions.join(', ')})`);
      }
      await this.state.autostart();
    } catch (e) {
      await this.state.shutdown(0).catch(() => undefined);
      await this.console.close(0).catch(() => undefined);
      throw e;
    }
    log.info(`Runtime up and running in ${(Number(process.hrtime.bigint() - began) / 1e6).toFixed(1)} ms`);
  }

  /** Orderly shutdown; idempotent. Resolves with the exit code. */
  shutdown(code = 0): Promise<number> {
    if (this.stopping) return this.stopping;
    this.exitCode = code;
    const { log, config } = this.opts;
    this.stopping = (async () => {
      log.info('shutting down');
      this.state.notify('shutdown');
      // Let the notification and the shutdown response reach the clients.
      await new Promise((r) => setTimeout(r, 20));
      await this.console.close(200).catch((e: unknown) => log.error(`closing the console: ${errorMessage(e)}`));
      try {
        await this.state.shutdown(config.shutdownGracePeriod);
      } catch (e) {
        log.error(`shutdown: ${errorMessage(e)}`);
        this.exitCode = this.exitCode || 1;
      }
      log.info('Shutdown complete');
      this.resolveDone(this.exitCode);
      return this.exitCode;
    })();
    return this.stopping;
  }
}

/** A mount point from /proc/self/mountinfo (octal escapes like \040 decoded). */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Writable roots of a runtime that crashed (`<run_dir>/writable-roots/<name>-…`, see
 * mountWritableRoot): unmount whatever is still mounted there (newest first; usually
 * nothing, the crashed runtime's mount namespace is gone) and remove the tree with the
 * no-follow helper. What cannot be unmounted is not crossed (the helper refuses) and stays.
 */
async function removeWritableRootLeftovers(runDir: string, log: Logger): Promise<void> {
  let dir: string;
  try {
    dir = await realpath(join(runDir, 'writable-roots'));
  } catch {
    return; // none
  }
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const points = mountinfo
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescapeMountPath)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  for (const p of points.reverse()) {
    log.warn(`unmounting ${p}, left over by a writable root of a runtime that is gone`);
    await umount(p).catch((e: unknown) => log.error(`cannot unmount ${p}: ${errorMessage(e)}`));
  }
  log.info(`removing ${dir} (writable roots of an earlier run)`);
  await removeTree(dir).catch((e: unknown) => log.error(`cannot remove ${dir}: ${errorMessage(e)}`));
}

/**
 * Socket files of containers of an earlier run that did not end in order (a SIGKILL, a
 * power cut): while the runtime runs, each container's manifest sockets are unlinked at its
 * exit, but a killed runtime leaves them. No container runs yet, so every socket named like
 * ours (`<name>:<version>:<socket>`, start.ts) in socket_dir is stale and is unlinked;
 * unlink(2) follows no link, and other files (and sockets named otherwise) are left alone.
 */
async function removeSocketLeftovers(socketDir: string, log: Logger): Promise<void> {
  let names: string[];
  try {
    names = await readdir(socketDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^[^:]+:[^:]+:[^:]+$/.test(name)) continue;
    const path = join(socketDir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isSocket()) continue;
    log.warn(`removing ${path}, a socket file left over by a container of an earlier run`);
    await unlink(path).catch((e: unknown) => log.error(`cannot remove ${path}: ${errorMessage(e)}`));
  }
}

/**
 * Mount point directories (`<run_dir>/<name>:<version>`, mount/mounter.ts) of an earlier run
 * that did not end in order: the mounts went with its namespace, the empty directories
 * stayed, and one of a package that is no longer installed (a mem repository's, say) would
 * stay for good. Nothing is mounted yet, so each such real directory is removed with
 * rmdir(2): a non-empty or still mounted one is refused by the kernel and left, with a warning.
 */
async function removeMountPointLeftovers(runDir: string, log: Logger): Promise<void> {
  let names: string[];
  try {
    names = await readdir(runDir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^[^:]+:[^:]+$/.test(name)) continue;
    const path = join(runDir, name);
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    log.debug(`removing ${path}, a mount point left over by an earlier run`);
    await rmdir(path).catch((e: unknown) => log.warn(`cannot remove ${path}: ${errorMessage(e)}`));
  }
}

/**
 * Write the config's `oom_score_adj` (default -900) for the runtime process, so that under
 * memory pressure the kernel kills a container before the runtime that supervises them.
 * With CAP_SYS_RESOURCE this also sets the floor below which the process may not go
 * without that capability; the launch core writes 0 for each container before init is
 * cloned (native/src/ns.c), so containers neither inherit the protection nor can lower
 * their score again without CAP_SYS_RESOURCE. Without CAP_SYS_RESOURCE the score cannot
 * be lowered: the runtime then runs unprotected and says so (a warning, not a failure, so
 * a runtime in a restricted service still starts).
 */
async function protectFromOomKiller(value: number, log: Logger): Promise<void> {
  const file = '/proc/self/oom_score_adj';
  try {
    await writeFile(file, String(value));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? errorMessage(e);
    log.warn(
      `oom_score_adj: cannot write ${value} to ${file}: ${code}${code === 'EACCES' ? ' (lowering it needs CAP_SYS_RESOURCE)' : ''}; ` +
        `the runtime is not protected from the OOM killer (its oom_score_adj stays ${(await readFile(file, 'utf8').catch(() => '?')).trim()})`,
    );
    return;
  }
  log.info(`oom_score_adj of the runtime: ${value}`);
}

export { NorthstarError };
