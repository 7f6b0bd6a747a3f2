/** Run the real nstar binary (dist/src/cli/nstar.js) and collect its output and exit code. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const NSTAR = join(ROOT, 'dist', 'src', 'cli', 'nstar.js');

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as raw bytes (the -j transcript of an install holds the NPK). */
  raw: Buffer;
}

/** Start nstar; `done` resolves when it exited. */
export function spawnNstar(args: readonly string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<Result>; stdout: () => string } {
  const child = spawn(process.execPath, [NSTAR, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '', ...env } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => err.push(d));
  const done = new Promise<Result>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      const raw = Buffer.concat(out);
      resolve({ code, stdout: raw.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), raw });
    });
  });
  return { child, done, stdout: () => Buffer.concat(out).toString('utf8') };
}

export function nstar(...args: string[]): Promise<Result> {
  return spawnNstar(args).done;
}
