/**
 * The one way the project runs an external tool (mount, losetup, unsquashfs, getfattr, the
 * C helpers): execFile without a shell, LC_ALL=C so messages can be matched, and a result
 * the caller judges instead of an exception per exit code.
 */
import { execFile } from 'node:child_process';

export interface RunOptions {
  readonly cwd?: string;
  /** Written to the tool's stdin, which is then closed. */
  readonly input?: string;
  /** Milliseconds before the tool is killed (default 60 s; 0 for none). */
  readonly timeout?: number;
  /** Bytes of stdout or stderr kept (default 64 MiB). */
  readonly maxBuffer?: number;
}

export interface RunResult<T = string> {
  /** The exit code; 127 when the tool could not be started, 1 when it was killed. */
  code: number;
  stdout: T;
  stderr: string;
  /** Why the tool could not be started or finish (`ENOENT` when it is not installed), if so. */
  spawnError?: NodeJS.ErrnoException;
}

/**
 * `too many open files (EMFILE): …` with what to do, for a process that ran out of file
 * descriptors (EMFILE: its RLIMIT_NOFILE; ENFILE: the system's limit); undefined otherwise.
 */
export function fdExhaustion(code: string | undefined): string | undefined {
  if (code === 'EMFILE') return 'too many open files (EMFILE) in the runtime: raise its open file limit (RLIMIT_NOFILE) or retry when fewer operations run';
  if (code === 'ENFILE') return 'too many open files in the system (ENFILE): raise fs.file-max or retry when fewer files are open';
  return undefined;
}

function runWith<T extends string | Buffer>(cmd: string, args: readonly string[], opts: RunOptions, encoding: 'utf8' | 'buffer'): Promise<RunResult<T>> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd, timeout: opts.timeout ?? 60_000, maxBuffer: opts.maxBuffer ?? 64 << 20, encoding, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        const errno = err as (NodeJS.ErrnoException & { code?: string | number }) | null;
        const out = stdout as T;
        const errText = String(stderr);
        if (errno && typeof errno.code === 'string') {
          // Spawn failure (ENOENT, EACCES) or an output limit: no usable result.
          const fds = fdExhaustion(errno.code);
          resolve({ code: 127, stdout: out, stderr: errText || (fds ? `cannot start ${cmd}: ${fds}` : `${cmd}: ${errno.code}`), spawnError: errno });
          return;
        }
        const code = errno ? (typeof errno.code === 'number' ? errno.code : 1) : 0;
        resolve({ code, stdout: out, stderr: errText });
      },
    );
    // A tool that exits before reading its input must not crash the runtime with EPIPE.
    child.stdin?.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run a tool without a shell; never throws for a non-zero exit (the caller decides). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runWith<string>(cmd, args, opts, 'utf8');
}

/** `run` with stdout as bytes (for output that need not be UTF-8). */
export function runBytes(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult<Buffer>> {
  return runWith<Buffer>(cmd, args, opts, 'buffer');
}
