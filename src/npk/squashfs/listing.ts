/**
 * The `unsquashfs -ll`-like listing of an image (the long inspection of an NPK shows it).
 */
import { readFileSync } from 'node:fs';
import { modeString } from './format.js';
import type { SquashfsEntry } from './inode.js';

/** uid/gid -> name maps from the host's /etc/passwd and /etc/group (what unsquashfs -ll shows). */
function hostNames(): { users: Map<number, string>; groups: Map<number, string> } {
  const parse = (file: string): Map<number, string> => {
    const m = new Map<number, string>();
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      return m;
    }
    for (const line of text.split('\n')) {
      const f = line.split(':');
      const id = Number(f[2]);
      if (f[0] && f.length >= 3 && Number.isInteger(id) && !m.has(id)) m.set(id, f[0]);
    }
    return m;
  };
  return { users: parse('/etc/passwd'), groups: parse('/etc/group') };
}

/**
 * An `unsquashfs -ll`-like listing: mode, owner/group, size (or major,minor), mtime (UTC), path.
 * Owners are shown by the host's user and group names like unsquashfs -ll (numbers when unknown);
 * `numeric: true` gives the `unsquashfs -lln` form.
 */
export async function formatListing(img: { entries(): Promise<SquashfsEntry[]> }, opts: { prefix?: string; numeric?: boolean } = {}): Promise<string> {
  const prefix = opts.prefix ?? 'squashfs-root';
  const names = opts.numeric ? undefined : hostNames();
  const lines: string[] = [];
  for (const e of await img.entries()) {
    const ug = `${names?.users.get(e.uid) ?? e.uid}/${names?.groups.get(e.gid) ?? e.gid}`;
    const pad = Math.max(1, 25 - ug.length + 2);
    let size: string;
    if (e.type === 'char' || e.type === 'block') size = `${String(e.major).padStart(pad - 4)},${String(e.minor).padStart(3)}`;
    else size = String(e.size).padStart(pad);
    const d = new Date(e.mtime * 1000);
    const two = (n: number) => String(n).padStart(2, '0');
    const time = `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
    const path = e.path === '/' ? prefix : prefix + e.path;
    lines.push(`${modeString(e.type, e.mode)} ${ug}${size} ${time} ${path}${e.type === 'symlink' ? ` -> ${e.target}` : ''}`);
  }
  return lines.join('\n') + '\n';
}
