/** Whether tests that build `FROM debian:bookworm` with package installs can run here. */
import { existsSync } from 'node:fs';
import { aptMirror } from '../../src/recipe/base.js';

/**
 * Why such a test cannot run (root, debootstrap, amd64, the Debian archive reachable: RUN
 * steps install packages even from a cached root), or null. `what` names what it builds.
 */
export async function debianBuildSkip(what: string): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'needs root (sextant build, a real runtime)';
  if (!existsSync('/usr/sbin/debootstrap')) return 'debootstrap is not installed';
  if (process.arch !== 'x64') return `${what} is tested on amd64`;
  const mirror = await aptMirror();
  const ok = await fetch(`${mirror.replace(/\/$/, '')}/dists/bookworm/Release`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) })
    .then((res) => res.ok)
    .catch(() => false);
  return ok ? null : `the Debian archive ${mirror} is not reachable (${what} installs packages)`;
}
