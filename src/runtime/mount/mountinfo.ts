import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a tool without a shell; never throws for a non-zero exit (the caller decides). */
export function run(cmd: string, args: readonly string[], opts: { timeout?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: opts.timeout ?? 60_000, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
        // Spawn failure (ENOENT, EACCES): no such tool.
        resolve({ code: 127, stdout: '', stderr: `${cmd}: ${(err as NodeJS.ErrnoException).code}` });
        return;
      }
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

/** One line of /proc/self/mountinfo. */
export interface MountInfoEntry {
  id: number;
  parent: number;
  majorMinor: string;
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
  superOptions: string;
}

function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  const out: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0) continue;
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      majorMinor: f[2]!,
      root: unescapeOctal(f[3]!),
      mountPoint: unescapeOctal(f[4]!),
      options: f[5]!,
      fsType: f[sep + 1]!,
      source: unescapeOctal(f[sep + 2]!),
      superOptions: f[sep + 3] ?? '',
    });
  }
  return out;
}

export async function readMountInfo(pid: number | 'self' = 'self'): Promise<MountInfoEntry[]> {
  return parseMountInfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8'));
}

/** The topmost mount at exactly `path`, if any. */
export async function mountAt(path: string): Promise<MountInfoEntry | undefined> {
  const all = await readMountInfo();
  let found: MountInfoEntry | undefined;
  for (const m of all) if (m.mountPoint === path) found = m;
  return found;
}
