/**
 * What the manifest implies inside the image (upstream passes these to mksquashfs as
 * pseudo definitions): the mount-point directories of every mount, and for a `dev`
 * mount the minimal device nodes with their SELinux labels, plus the fd/stdio links
 * when /proc is mounted too.
 */
import type { Manifest, Mount, MountType } from '../manifest/index.js';
import type { PseudoEntry } from './squashfs/writer.js';

/** Mode of every directory level of a mount point, by mount type (upstream's values). */
const MOUNT_DIR_MODE: Record<MountType, (m: Mount) => number> = {
  bind: (m) => (m.type === 'bind' && m.options.includes('rw') ? 0o755 : 0o555),
  dev: () => 0o755,
  persist: () => 0o755,
  sockets: () => 0o755,
  tmpfs: () => 0o755,
  proc: () => 0o444,
  sysfs: () => 0o444,
  resource: () => 0o555,
};

/**
 * The six device nodes of a `dev` mount. Labels: each node gets its own type (spec README
 * item 14; upstream has null/full/random swapped).
 */
export const DEV_NODES: readonly { name: string; major: number; minor: number; label: string }[] = [
  { name: 'full', major: 1, minor: 7, label: 'u:object_r:full_device:s0' },
  { name: 'null', major: 1, minor: 3, label: 'u:object_r:null_device:s0' },
  { name: 'random', major: 1, minor: 8, label: 'u:object_r:random_device:s0' },
  { name: 'tty', major: 5, minor: 0, label: 'u:object_r:owntty_device:s0' },
  { name: 'urandom', major: 1, minor: 9, label: 'u:object_r:random_device:s0' },
  { name: 'zero', major: 1, minor: 5, label: 'u:object_r:zero_device:s0' },
];

const DEV_LINKS: readonly [string, string][] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
];
const LINK_LABEL = 'u:r:su:s0';

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function normalize(target: string): string {
  const parts = target.split('/').filter((p) => p !== '' && p !== '.');
  return '/' + parts.join('/');
}

export function pseudoEntries(manifest: Manifest): PseudoEntry[] {
  const { uid, gid } = manifest;
  const mounts = Object.entries(manifest.mounts as Record<string, Mount>).sort(([a], [b]) => byteOrder(a, b));
  const hasProc = mounts.some(([t, m]) => m.type === 'proc' && normalize(t) === '/proc');
  const out: PseudoEntry[] = [];
  for (const [target, mount] of mounts) {
    const path = normalize(target);
    if (path === '/') continue;
    const mode = MOUNT_DIR_MODE[mount.type](mount);
    const parts = path.split('/').slice(1);
    for (let i = 1; i <= parts.length; i++) {
      out.push({ path: '/' + parts.slice(0, i).join('/'), type: 'dir', mode, uid, gid });
    }
    if (mount.type !== 'dev') continue;
    for (const d of DEV_NODES) {
      out.push({
        path: `${path}/${d.name}`, type: 'char', mode: 0o666, uid, gid, major: d.major, minor: d.minor,
        xattrs: { 'security.selinux': d.label },
      });
    }
    if (hasProc) {
      for (const [name, linkTarget] of DEV_LINKS) {
        out.push({ path: `${path}/${name}`, type: 'symlink', mode: 0o777, uid, gid, target: linkTarget, xattrs: { 'security.selinux': LINK_LABEL } });
      }
    }
  }
  return out;
}
