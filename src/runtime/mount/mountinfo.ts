import { readFile } from 'node:fs/promises';

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
