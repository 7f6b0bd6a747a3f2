#!/usr/bin/env node
/**
 * northstar: the runtime daemon. Thin: parse arguments, enter a private mount
 * namespace, read the configuration, run the runtime until it shuts down.
 */
import { Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../common/errors.js';
import { parseConfig } from '../runtime/config.js';
import { createLogger, type LogFormat } from '../runtime/logger.js';
import { ensurePrivateMountNamespace } from '../runtime/mount/namespace.js';
import { createCgroups } from '../runtime/cgroups/index.js';
import { Runtime } from '../runtime/runtime.js';

const program = new Command('northstar')
  .description('Northstar container runtime')
  .version('0.1.0')
  .requiredOption('-c, --config <file>', 'runtime configuration (TOML)')
  .addOption(new Option('--log-format <format>', 'log line format').choices(['human', 'json']).default('human'))
  .addOption(new Option('--log-level <level>', 'minimum log level').choices(['trace', 'debug', 'info', 'warn', 'error']).default('info'))
  .option('-d, --disable-mount-namespace', 'run in the host mount namespace (mounts are visible on the host and survive a crash)');

async function main(): Promise<number> {
  program.parse();
  const o = program.opts<{ config: string; logFormat: LogFormat; logLevel: 'info'; disableMountNamespace?: boolean }>();
  if (!o.disableMountNamespace) {
    // Memory: a small young generation, V8's size-optimised heuristics, no optimising
    // compiler (--lite-mode: the daemon's hot paths are syscalls, crypto and I/O, not JS)
    // and a full collection after each burst of starts (--expose-gc, see State.idleCollect)
    // roughly halve the settled RSS (figures: docs/design/measurements.md). Only the
    // re-executed runtime gets them; flags given explicitly to node win.
    // --lite-mode turns WebAssembly off; --no-expose-wasm says so, so V8 does not print
    // "Warning: disabling flag --expose_wasm due to conflicting flags" at every start.
    const ours = ['--max-semi-space-size=1', '--optimize-for-size', '--expose-gc', '--lite-mode', '--no-expose-wasm'];
    const v8Flags = process.execArgv.some((a) => ours.some((f) => a.startsWith(f.split('=')[0]!))) ? [] : ours;
    const code = await ensurePrivateMountNamespace({ argv: [process.execPath, ...v8Flags, ...process.execArgv, ...process.argv.slice(1)] });
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
