/**
 * A work-around for a file descriptor leak of Node's child_process under fd exhaustion.
 *
 * When libuv's uv_spawn has made a child's stdio pipes (one socketpair per 'pipe' entry) and
 * then fails with EMFILE or ENFILE making the pipe it forks with, it still opens the parent
 * ends of the stdio pipes as streams and returns the error. Node's ChildProcess.prototype.spawn
 * then returns early ("no point in continuing when we've hit EMFILE or ENFILE",
 * lib/internal/child_process.js, unchanged since v0.10), before it wraps those pipe handles in
 * sockets, and nothing ever closes them: every such failed spawn loses one fd per pipe for
 * good, so a runtime that ran into its RLIMIT_NOFILE once keeps fewer fds ever after.
 *
 * Node keeps the handles in the options object it was given (`options.stdio[i].handle`,
 * type 'pipe'); after an EMFILE/ENFILE answer they are closed here. Other answers (success,
 * ENOENT, EACCES, EAGAIN, a thrown error) are left to Node, which handles them.
 */
import { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

const OUT_OF_FDS = new Set([-constants.errno.EMFILE, -constants.errno.ENFILE]);

interface StdioEntry {
  type?: unknown;
  handle?: { close?: () => void };
}
type SpawnMethod = (this: ChildProcess, options: { stdio?: unknown }) => unknown;

let installed = false;

/** Install the work-around (once per process; further calls do nothing). */
export function closeStdioOfFailedSpawns(): void {
  if (installed) return;
  installed = true;
  const proto = ChildProcess.prototype as unknown as { spawn: SpawnMethod };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, options: { stdio?: unknown }): unknown {
    const err = spawn.call(this, options);
    if (typeof err === 'number' && OUT_OF_FDS.has(err) && Array.isArray(options?.stdio)) {
      for (const s of options.stdio as (StdioEntry | undefined)[]) {
        if (s?.type === 'pipe' && typeof s.handle?.close === 'function') s.handle.close();
      }
    }
    return err;
  };
}
