/**
 * A path inside an image directory (a container's root on the host), resolved as the
 * container would see it: symlinks are followed inside the image (absolute targets are
 * relative to its root, `..` stops at it), never out of it. Used by `sextant build` (COPY
 * destinations, PATH lookups) and `sextant import` (users and groups of the image).
 */
import { lstat, mkdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type ImagePath = { ok: true; path: string } | { ok: false; kind: 'missing' | 'notdir' | 'loop'; problem: string };

/**
 * The host path of `path` inside `root`. With `followLast` false the last component itself is
 * not followed; missing directories on the way are created when `create` is set, otherwise
 * they are a problem (as are a non-directory on the way and a symlink loop). A missing last
 * component is not a problem (the caller decides) unless `dir` is set: then `path` itself is
 * a directory on the way like the others.
 */
export async function imagePath(root: string, path: string, opts: { followLast: boolean; create: boolean; dir?: boolean }): Promise<ImagePath> {
  let todo = path.split('/').filter((c) => c !== '' && c !== '.');
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      done.pop();
      continue;
    }
    const host = join(root, ...done, c);
    const last = todo.length === 0;
    const s = await lstat(host).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    if (s?.isSymbolicLink() && (!last || opts.followLast)) {
      if (++links > 40) return { ok: false, kind: 'loop', problem: `${path}: too many levels of symbolic links in the image` };
      const target = await readlink(host);
      if (target.startsWith('/')) done.length = 0;
      todo = [...target.split('/').filter((x) => x !== '' && x !== '.'), ...todo];
      continue;
    }
    if (!last || opts.dir) {
      if (s === null) {
        if (!opts.create) return { ok: false, kind: 'missing', problem: `${path}: ${join('/', ...done, c)} does not exist in the image` };
        await mkdir(host, 0o755);
      } else if (!s.isDirectory()) {
        return { ok: false, kind: 'notdir', problem: `${path}: ${join('/', ...done, c)} is not a directory in the image` };
      }
    }
    done.push(c);
  }
  return { ok: true, path: join(root, ...done) };
}
