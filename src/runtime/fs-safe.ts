/**
 * Recursive deletes the runtime can do as root without being steered onto other files.
 *
 * Node's `rm(…, { recursive: true })` works on path strings: whoever can write inside the
 * tree (a container in its persist dir, a local user in a world-writable directory) can
 * swap a directory for a symlink between two of its calls, and root then deletes through
 * it. `removeTree` runs native/build/northstar-rmtree, which removes fd-relative
 * (openat O_NOFOLLOW|O_DIRECTORY, fstatat AT_SYMLINK_NOFOLLOW, unlinkat), never follows a
 * symlink, never crosses a mount point, and refuses a tree whose parent (or any directory
 * above it, unless sticky) is not owned by root or is writable by others.
 */
import { run } from '../common/exec.js';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NorthstarError } from '../common/errors.js';

/** native/build/northstar-rmtree of this checkout. */
export const RMTREE_HELPER = fileURLToPath(new URL('../../../native/build/northstar-rmtree', import.meta.url));

export interface RemoveTreeOptions {
  /**
   * Accept a top directory owned by anyone (a container's persist dir, owned by its uid).
   * Its parent must still be root's alone; nothing inside is followed either way.
   */
  anyOwner?: boolean;
}

/**
 * Remove the directory `path` and everything in it; a missing `path` is not an error.
 * Rejects with EUNSAFE when the helper refuses (the message names the path and why) and
 * with ERMTREE when it fails.
 */
export function removeTree(path: string, opts: RemoveTreeOptions = {}): Promise<void> {
  const abs = isAbsolute(path) ? path : resolve(path);
  const args = [...(opts.anyOwner ? ['--any-owner'] : []), abs];
  return run(RMTREE_HELPER, args, { timeout: 0 }).then((r) => {
    if (r.code === 0) return;
    const why = (r.stderr || `exit code ${r.code}`).trim().replace(/^northstar-rmtree: /, '');
    const refused = /not removed|refusing|not crossed/.test(why);
    throw new NorthstarError(refused ? 'EUNSAFE' : 'ERMTREE', `removing ${abs}: ${why}`, r.spawnError ? { cause: r.spawnError } : undefined);
  });
}
