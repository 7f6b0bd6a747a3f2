#!/usr/bin/env node
/**
 * northstar: the runtime daemon. Thin: parse arguments, enter a private mount
 * namespace, read the configuration, run the runtime until it shuts down.
 */
import { Command, Option } from 'commander';
import { spawnSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, NorthstarError } from '../common/errors.js';
import { parseConfig } from '../runtime/config.js';
import { createLogger, type LogFormat } from '../runtime/logger.js';
import { ensurePrivateMountNamespace, MOUNT_NS_MARKER } from '../runtime/mount/namespace.js';
import { createCgroups } from '../runtime/cgroups/index.js';
import { Runtime } from '../runtime/runtime.js';

const program = new Command('northstar')
  .description('Northstar container runtime')
  .version('0.1.0')
  .requiredOption('-c, --config <file>', 'runtime configuration (TOML)')
  .addOption(new Option('--log-format <format>', 'log line format').choices(['human', 'json']).default('human'))
  .addOption(new Option('--log-level <level>', 'minimum log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .option('-d, --disable-mount-namespace', 'run in the host mount namespace (mounts are visible on the host and survive a crash)')
  .option('--die-with-parent', 'get SIGKILL when the process that started the runtime dies (setpriv --pdeathsig KILL)');

/**
 * Memory: a small young generation, V8's size-optimised heuristics, no optimising compiler
 * (--lite-mode: the daemon's hot paths are syscalls, crypto and I/O, not JS) and a full
 * collection after each burst of starts (--expose-gc, see State.idleCollect); what each
 * saves is measured by `BENCH_V8_FLAGS=1 npm run bench -- runtime` (docs/runtime.md,
 * "Memory"). bin/northstar passes the same list; NORTHSTAR_V8_FLAGS replaces it in both
 * ("" = none).
 */
export const V8_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size', '--expose-gc', '--lite-mode'] as const;

/**
 * --lite-mode turns WebAssembly off; where V8 still has --expose-wasm (Node 20, 22)
 * --no-expose-wasm says so, or V8 prints "Warning: disabling flag --expose_wasm due to
 * conflicting flags" at every start. Node 24's V8 has no such flag and refuses to start with
 * it, so ask the node binary (--version returns before V8 starts).
 */
function quietWasm(): string[] {
  return spawnSync(process.execPath, ['--no-expose-wasm', '--version'], { stdio: 'ignore' }).status === 0 ? ['--no-expose-wasm'] : [];
}

function v8Flags(): string[] {
  const env = process.env['NORTHSTAR_V8_FLAGS'];
  const ours = env !== undefined ? env.split(/\s+/).filter((f) => f !== '') : [...V8_FLAGS, ...quietWasm()];
  // Flags given explicitly to node win.
  return process.execArgv.some((a) => ours.some((f) => a.startsWith(f.split('=')[0]!))) ? [] : ours;
}

/** An executable of that name on PATH (execve does not search it), else the name itself. */
function onPath(name: string): string {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, name), fsConstants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return name;
}

/**
 * Reach the private mount namespace by exec, so the runtime stays one process whose pid is
 * the one its caller started (docs/runtime.md, "Processes"):
 *  - already there (bin/northstar, or after the execve below): go on;
 *  - Node with process.execve (22.15+, 24): replace this process by
 *    `unshare --mount --propagation private -- [setpriv --pdeathsig KILL --] node <flags> <argv>`;
 *  - Node 20: it cannot exec; the re-executed runtime runs as a child this process waits
 *    for (two Node processes: start the runtime through bin/northstar to have one).
 */
async function enterPrivateMountNamespace(dieWithParent: boolean): Promise<number | undefined> {
  // Already there: ensurePrivateMountNamespace checks that the root mount is private.
  // (Another pid in the marker is inherited from some runtime's environment: not ours.)
  const marker = process.env[MOUNT_NS_MARKER];
  if (marker === 'exec' || marker === String(process.pid)) return ensurePrivateMountNamespace();
  const argv = [process.execPath, ...v8Flags(), ...process.execArgv, ...process.argv.slice(1)];
  const execve = (process as unknown as { execve?: (file: string, args: string[], env: NodeJS.ProcessEnv) => never }).execve;
  if (typeof execve === 'function') {
    const unshare = onPath('unshare');
    const pdeath = dieWithParent ? [onPath('setpriv'), '--pdeathsig', 'KILL', '--'] : [];
    try {
      execve(unshare, ['unshare', '--mount', '--propagation', 'private', '--', ...pdeath, ...argv], { ...process.env, [MOUNT_NS_MARKER]: 'exec' });
    } catch (e) {
      throw new NorthstarError('EMOUNTNS', `cannot run ${unshare}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)} (it is util-linux's; install it or start with -d)`);
    }
  }
  return ensurePrivateMountNamespace({ argv });
}

async function main(): Promise<number> {
  program.parse();
  const o = program.opts<{ config: string; logFormat: LogFormat; logLevel: 'info'; disableMountNamespace?: boolean; dieWithParent?: boolean }>();
  if (!o.disableMountNamespace) {
    const code = await enterPrivateMountNamespace(o.dieWithParent === true);
    if (code !== undefined) return code;
  }
  const log = createLogger({ format: o.logFormat, level: o.logLevel });
  let text: string;
  try {
    text = await readFile(o.config, 'utf8');
  } catch (e) {
    throw new Error(`config ${o.config}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`);
  }
  let config;
  try {
    config = parseConfig(text);
  } catch (e) {
    throw new Error(`${o.config}: ${errorMessage(e)}`);
  }
  const cgroups = await createCgroups(config, log);
  const runtime = await Runtime.start({ config, log, cgroups });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      log.info(`received ${sig}`);
      void runtime.shutdown(0);
    });
  }
  return runtime.done;
}

/** A listen error names the address and what to do (a console bind that is taken); others as they are. */
function startError(e: unknown): string {
  for (let c: unknown = e; c instanceof Error; c = c.cause) {
    const err = c as NodeJS.ErrnoException & { address?: string; port?: number };
    if (err.syscall === 'listen' && (err.code === 'EADDRINUSE' || err.code === 'EADDRNOTAVAIL' || err.code === 'EACCES')) {
      const address = err.port !== undefined ? `tcp://${err.address}:${err.port}` : `unix://${err.address}`;
      const config = program.opts<{ config?: string }>().config;
      const what = err.code === 'EADDRINUSE' ? 'is in use: another process (another northstar?) listens there' : err.code === 'EACCES' ? 'may not be bound by this user' : 'is not an address of this machine';
      return `console address ${address} ${what} (${err.code}); stop that process or change the console's bind or also_bind in ${config}`;
    }
  }
  return errorMessage(e);
}

main().then(
  (code) => {
    process.exitCode = code;
    // Nothing else should keep the loop alive after shutdown; make sure of it.
    setTimeout(() => process.exit(code), 500).unref();
  },
  (e: unknown) => {
    console.error(`northstar: error: ${startError(e)}`);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 500).unref();
  },
);
