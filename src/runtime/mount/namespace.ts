/**
 * The runtime keeps its mounts in a mount namespace of its own (runtime.md §1 step 3),
 * so nothing it mounts is seen by the host and everything goes away with the runtime:
 * when the last process of the namespace exits, its mounts are dropped, autoclear loop
 * devices detach and deferred dm devices are removed.
 *
 * Node cannot unshare(2) itself (it is multi-threaded from the start), so the entry
 * point re-executes itself through util-linux:
 *
 *   unshare --mount --propagation private [setpriv --pdeathsig KILL --] node <args…>
 *
 * with an environment marker, and the first process only waits for the re-executed one
 * (in a process group of its own), forwarding SIGINT, SIGTERM and SIGHUP and exiting
 * with its status. `setpriv
 * --pdeathsig` makes the runtime die with the waiting process, like upstream's
 * PDEATHSIG chain.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { NorthstarError } from '../../common/errors.js';

export const MOUNT_NS_MARKER = 'NORTHSTAR_PRIVATE_MOUNT_NS';

export interface PrivateMountNamespaceOptions {
  /** The command line to run again; default process.execPath + execArgv + argv[1..]. */
  argv?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** Tool paths (tests). */
  unshare?: string;
  setpriv?: string | false;
}

/**
 * Call first thing in the runtime's entry point. Returns `undefined` when this process
 * already runs in its private mount namespace (go on starting the runtime); otherwise
 * re-executes the command line in a new one, waits for it and returns its exit code,
 * which the caller passes to process.exit. A signal death is returned as 128 + signal.
 */
export async function ensurePrivateMountNamespace(opts: PrivateMountNamespaceOptions = {}): Promise<number | undefined> {
  const env = opts.env ?? process.env;
  const marker = env[MOUNT_NS_MARKER];
  if (marker === 'exec' || marker === String(process.pid)) {
    // Re-keyed to our pid, so a process the runtime spawns later (which inherits the
    // environment) does not take itself for the runtime in its private namespace.
    env[MOUNT_NS_MARKER] = String(process.pid);
    if (await rootIsShared()) {
      throw new NorthstarError('EMOUNTNS', `${MOUNT_NS_MARKER} is set but the root mount still propagates to the host`);
    }
    return undefined;
  }
  const argv = opts.argv ?? [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const setpriv = opts.setpriv ?? (existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : false);
  const unshare = opts.unshare ?? 'unshare';
  const args = ['--mount', '--propagation', 'private', '--', ...(setpriv ? [setpriv, '--pdeathsig', 'KILL', '--'] : []), ...argv];
  // A process group of its own: a terminal's Ctrl-C reaches only this process, which
  // forwards it once (else the runtime would get every such signal twice).
  const child = spawn(unshare, args, { stdio: 'inherit', env: { ...env, [MOUNT_NS_MARKER]: 'exec' }, detached: true });
  const forward = (sig: NodeJS.Signals) => () => {
    child.kill(sig);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', (e) => reject(new NorthstarError('EMOUNTNS', `cannot run ${unshare}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)));
      child.once('exit', (code, signal) => {
        if (signal) resolve(128 + (signalNumber(signal) ?? 0));
        else resolve(code ?? 1);
      });
    });
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return constants.signals[sig];
}

/** Whether the root mount of this process is a shared peer (mount events reach the host). */
async function rootIsShared(): Promise<boolean> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[4] === '/') {
      const sep = f.indexOf('-', 6);
      if (f.slice(6, sep).some((t) => t.startsWith('shared:'))) return true;
    }
  }
  return false;
}
