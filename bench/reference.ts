/**
 * The references a start is measured against (issue 15):
 *   - cold unshare: `unshare --pid --mount --ipc --uts --net --fork --mount-proc <program>`,
 *     the same namespaces as a container, with /proc mounted;
 *   - runc: `runc run` of a bundle with the same program, made with `runc spec`
 *     (not installed: absent; scripts/install.sh installs it).
 * Each is timed by bench/spawn-timer.c (posix_spawn + waitpid from a small native process,
 * compiled here with cc), which is how the 5.9 ms for a cold unshare was measured;
 * the cold unshare is also timed as spawned from this Node process (`unshareFromNode`),
 * which adds Node's spawn (a fork of the whole benchmark process) to the figure.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TIMER_SOURCE = fileURLToPath(new URL('../../bench/spawn-timer.c', import.meta.url));

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** Run `cmd` to its end; rejects on a non-zero exit with its stderr. */
function runProcess(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.trim()}`))));
  });
}

export interface References {
  /** One cold unshare of the program (timed by spawn-timer), in ms; null without unshare. */
  unshare: (() => Promise<number>) | null;
  /** The same, spawned from this Node process and timed here. */
  unshareFromNode: (() => Promise<number>) | null;
  /** One `runc run` of the program (timed by spawn-timer), in ms; null without runc. */
  runc: (() => Promise<number>) | null;
}

/**
 * References for the static `binary` run with `args`, set up in `dir`: a root with the
 * program at /program (and /proc, /dev for runc), and a runc bundle when runc is installed.
 */
export function references(dir: string, binary: string, args: string[]): References {
  const root = join(dir, 'ref-root');
  for (const d of ['proc', 'dev', 'sys', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  chmodSync(dir, 0o755);
  copyFileSync(binary, join(root, 'program'));
  chmodSync(join(root, 'program'), 0o755);
  const timed = async (cmd: string, argv: string[]): Promise<number> => {
    const t = performance.now();
    await runProcess(cmd, argv);
    return performance.now() - t;
  };
  const timer = join(dir, 'spawn-timer');
  execFileSync(which('cc') ?? 'gcc', ['-O2', '-o', timer, TIMER_SOURCE]);
  const native = (cmd: string, argv: string[]): Promise<number> =>
    new Promise((resolve, reject) => {
      execFile(timer, ['1', cmd, ...argv], { encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${cmd}: ${stderr.trim() || err.message}`));
        else resolve(Number(stdout.trim()));
      });
    });
  const unshare = which('unshare');
  const runc = which('runc');
  let bundle: string | null = null;
  if (runc) {
    bundle = join(dir, 'ref-bundle');
    mkdirSync(bundle);
    execFileSync(runc, ['spec'], { cwd: bundle });
    const cfg = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { terminal: boolean; args: string[] }; root: unknown };
    cfg.process.terminal = false;
    cfg.process.args = ['/program', ...args];
    cfg.root = { path: root, readonly: false };
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(cfg));
  }
  let n = 0;
  const unshareArgs = ['--pid', '--mount', '--ipc', '--uts', '--net', '--fork', '--mount-proc', join(root, 'program'), ...args];
  return {
    unshare: unshare ? () => native(unshare, unshareArgs) : null,
    unshareFromNode: unshare ? () => timed(unshare, unshareArgs) : null,
    runc: runc && bundle ? () => native(runc, ['run', '--bundle', bundle, `ns-bench-${process.pid}-${n++}`]) : null,
  };
}
