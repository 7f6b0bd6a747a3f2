/**
 * Fail points: a test facility to crash the runtime at an exact step (docs/runtime.md,
 * "Fail points"). When the environment variable NORTHSTAR_FAILPOINTS (comma-separated
 * names) holds `name`, `failpoint(name)` sends SIGKILL to this process, so a test can
 * check what a crash at that step leaves behind and that a restart recovers from it.
 * Never set in production. The variable is read once, at module load; with none set the
 * call returns at once.
 */
const ENV = 'NORTHSTAR_FAILPOINTS';

const armed: ReadonlySet<string> = new Set(
  (process.env[ENV] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== ''),
);

export function failpoint(name: string): void {
  if (armed.size === 0 || !armed.has(name)) return;
  process.kill(process.pid, 'SIGKILL');
}
