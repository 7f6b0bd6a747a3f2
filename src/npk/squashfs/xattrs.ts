/**
 * Source-tree extended attributes. Node has no xattr API, so the writer asks `getfattr`
 * (attr package) once per tree: `getfattr -R -P -h -d -m - -e hex --absolute-names <root>`.
 * Its output names each file (C-escaped: `\ooo` octal and `\\`) followed by `name=0xHEX` lines.
 * Without getfattr, source xattrs are skipped and the writer reports a warning.
 */
import { runBytes } from '../../common/exec.js';
import { splitXattrName } from './format.js';

export type XattrList = [name: string, value: Buffer][];

/** Undo getfattr's quoting of file and attribute names (octal escapes and doubled backslashes). */
export function unescapeGetfattr(s: string): string {
  return s.replace(/\\(\\|[0-7]{3})/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))));
}

/**
 * Parse `getfattr -d -e hex` output. Returns path (as a latin1 string holding the raw bytes)
 * -> xattrs. Names that squashfs cannot store (system.*, …) are dropped and reported.
 */
export function parseGetfattr(out: string): { files: Map<string, XattrList>; dropped: string[] } {
  const files = new Map<string, XattrList>();
  const dropped: string[] = [];
  let current: XattrList | undefined;
  let currentPath = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      currentPath = unescapeGetfattr(line.slice(8));
      current = [];
      files.set(currentPath, current);
      continue;
    }
    if (line === '' || line.startsWith('#') || !current) continue;
    const eq = line.indexOf('=');
    const rawName = eq < 0 ? line : line.slice(0, eq);
    const rawValue = eq < 0 ? '' : line.slice(eq + 1);
    const name = Buffer.from(unescapeGetfattr(rawName), 'latin1').toString('utf8');
    let value: Buffer;
    if (rawValue.startsWith('0x')) value = Buffer.from(rawValue.slice(2), 'hex');
    else if (rawValue.startsWith('"') && rawValue.endsWith('"') && rawValue.length >= 2) {
      value = Buffer.from(unescapeGetfattr(rawValue.slice(1, -1)), 'latin1');
    } else if (rawValue.startsWith('0s')) value = Buffer.from(rawValue.slice(2), 'base64');
    else value = Buffer.from(rawValue, 'latin1');
    if (!splitXattrName(name)) {
      dropped.push(`${Buffer.from(currentPath, 'latin1').toString('utf8')}: ${name}`);
      continue;
    }
    current.push([name, value]);
  }
  return { files, dropped };
}

/**
 * Read every xattr under `root` (absolute, normalised path) with one getfattr call.
 * Keys of the result are paths relative to root ('' = root itself) as latin1 byte strings.
 */
export async function readTreeXattrs(root: string): Promise<{ files: Map<string, XattrList>; warnings: string[] }> {
  const warnings: string[] = [];
  const rootBytes = Buffer.from(root, 'utf8').toString('latin1');
  const res = await runBytes('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', root], { timeout: 0, maxBuffer: 1 << 30 });
  if (res.spawnError?.code === 'ENOENT') {
    warnings.push('source xattrs not read: getfattr (package attr) is not installed');
    return { files: new Map(), warnings };
  }
  const stderr = res.stderr.trim();
  if (stderr) for (const l of stderr.split('\n')) warnings.push(`getfattr: ${l}`);
  const parsed = parseGetfattr(res.stdout.toString('latin1'));
  for (const d of parsed.dropped) warnings.push(`xattr not storable in squashfs, skipped: ${d}`);
  const files = new Map<string, XattrList>();
  const prefix = rootBytes.endsWith('/') ? rootBytes : rootBytes + '/';
  for (const [p, list] of parsed.files) {
    if (list.length === 0) continue;
    let rel: string;
    if (p === rootBytes || p === prefix) rel = '';
    else if (p.startsWith(prefix)) rel = p.slice(prefix.length);
    else continue;
    files.set(rel, list);
  }
  return { files, warnings };
}
