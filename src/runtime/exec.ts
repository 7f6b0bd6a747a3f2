/**
 * Ours (`exec`): a command inside a running container, for one console connection. The
 * command gets the container's own plan (ids, groups, capabilities, rlimits, scheduling,
 * seccomp filter, cgroups, environment) with its program, arguments and extra environment:
 * never more privilege than the container has. It ends with the container (the kernel kills
 * it with the container's pid namespace; the runtime waits for it before the cgroups go) or
 * when its connection ends.
 */
import type { ExecRequest } from '../api/model.js';
import type { ExecControl, ExecSink } from '../console/handle.js';
import type { Container } from '../common/container.js';
import { errorMessage } from '../common/errors.js';
import type { ExecProcess } from '../launch/exec-process.js';
import type { LaunchPlan } from '../launch/plan.js';
import type { Logger } from './logger.js';
import { toWireExit } from './wire-exit.js';

export type { ExecControl, ExecSink };

/** The plan of a command in a container that runs with `plan`. */
export function execPlan(plan: LaunchPlan, req: Pick<ExecRequest, 'command' | 'environment'>): LaunchPlan {
  const env = new Map<string, string>();
  for (const kv of plan.envp) {
    const i = kv.indexOf('=');
    env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const [k, v] of Object.entries(req.environment)) env.set(k, v);
  return {
    ...plan,
    mounts: [],
    console: false,
    sockets: [],
    path: req.command[0]!,
    argv: req.command,
    envp: [...env].map(([k, v]) => `${k}=${v}`),
  };
}

/**
 * Wire a started exec to its sink: output as it comes, then the exit once the command has
 * ended and its output has been read to the end. Returns the control of the connection.
 */
export function serveExec(c: Container, proc: ExecProcess, sink: ExecSink, log: Logger, what: string): ExecControl {
  const streams = [
    [proc.stdout, 'stdout'],
    [proc.stderr, 'stderr'],
  ] as const;
  const ends: Promise<void>[] = [];
  for (const [stream, name] of streams) {
    if (!stream) continue;
    ends.push(
      new Promise<void>((resolve) => {
        stream.on('data', (chunk: Buffer) => sink.output(name, chunk));
        stream.once('end', resolve);
        stream.once('error', (err) => {
          log.debug(`exec in ${c}: ${name}: ${errorMessage(err)}`);
          resolve();
        });
        stream.once('close', resolve);
      }),
    );
  }
  void Promise.all([proc.exited, ...ends]).then(([status]) => {
    const st = status ?? { signal: 9 };
    log.info(`exec in ${c} (${what}) ended with ${'code' in st ? `Exit(${st.code})` : `Signalled(${st.signal})`}`);
    sink.exit(toWireExit(st));
  });
  return {
    input: (data, eof) => {
      const stdin = proc.stdin;
      if (!stdin || stdin.destroyed || stdin.writableEnded) return;
      if (data.length > 0) stdin.write(data);
      if (eof) stdin.end();
    },
    resize: (rows, cols) => proc.resize(rows, cols),
    signal: (signo) => proc.signal(signo),
    pause: () => {
      for (const [s] of streams) s?.pause();
    },
    resume: () => {
      for (const [s] of streams) s?.resume();
    },
    kill: () => proc.kill(),
  };
}
