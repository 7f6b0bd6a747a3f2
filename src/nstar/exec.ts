/**
 * `nstar exec` (ours): a command inside a running container over the console's `exec`
 * request. The caller's terminal is relayed: with `-t` the local terminal is put in raw mode
 * and its size follows the window; with `-i` stdin is sent to the command. nstar exits with
 * the command's exit code (128 + signal when a signal ended it).
 */
import type { Client, ExecSession } from '../client/client.js';
import type { Container } from '../common/container.js';
import type { ExitStatus } from '../api/model.js';

export interface ExecCliOptions {
  interactive: boolean;
  tty: boolean;
  env: Record<string, string>;
}

/** The process's exit code for the command's status. */
export function exitCodeOf(s: ExitStatus): number {
  return 'exit' in s ? s.exit.code : 128 + s.signalled.signal;
}

/** Run the exec and relay this process's stdio; resolves with nstar's exit code. */
export async function execCli(client: Client, target: Container, command: readonly string[], o: ExecCliOptions, stdio: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream } = process): Promise<number> {
  const { stdin, stdout, stderr } = stdio;
  const size = o.tty && stdout.isTTY ? { rows: stdout.rows, cols: stdout.columns } : undefined;
  const x = await client.exec(target, command, { tty: o.tty, stdin: o.interactive, env: o.env, ...(size ? { size } : {}) });
  const undo: (() => void)[] = [];
  try {
    if (o.tty && stdin.isTTY) {
      stdin.setRawMode(true);
      undo.push(() => stdin.setRawMode(false));
    }
    if (size) {
      const onResize = (): void => void x.resize(stdout.rows, stdout.columns).catch(() => undefined);
      stdout.on('resize', onResize);
      undo.push(() => stdout.off('resize', onResize));
    }
    if (o.interactive || o.tty) relayInput(x, stdin, undo);
    if (!o.tty) forwardSignals(x, undo);
    for await (const chunk of x) {
      const out = chunk.stream === 'stderr' ? stderr : stdout;
      if (!out.write(chunk.data)) await new Promise((r) => out.once('drain', r));
    }
    return exitCodeOf(await x.exit);
  } finally {
    for (const u of undo.reverse()) u();
  }
}

/** stdin to the command; its end closes the command's stdin. */
function relayInput(x: ExecSession, stdin: NodeJS.ReadStream, undo: (() => void)[]): void {
  const onData = (d: Buffer): void => {
    // Stop reading until the runtime took it, so a large input is not buffered whole.
    stdin.pause();
    x.write(d).then(
      () => stdin.resume(),
      () => undefined,
    );
  };
  const onEnd = (): void => void x.end().catch(() => undefined);
  stdin.on('data', onData);
  stdin.once('end', onEnd);
  undo.push(() => {
    stdin.off('data', onData);
    stdin.off('end', onEnd);
    stdin.pause();
    // An idle stdin must not keep nstar alive after the exit.
    stdin.unref?.();
  });
}

/**
 * Without a terminal, Ctrl-C and a TERM for nstar go to the command; a second Ctrl-C ends
 * nstar (its connection closes, which kills the command).
 */
function forwardSignals(x: ExecSession, undo: (() => void)[]): void {
  let interrupts = 0;
  const onInt = (): void => {
    if (++interrupts > 1) process.exit(130);
    void x.signal('SIGINT').catch(() => undefined);
  };
  const onTerm = (): void => void x.signal('SIGTERM').catch(() => undefined);
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  undo.push(() => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  });
}
