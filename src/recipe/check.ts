/**
 * What `sextant pack` and `sextant build` refuse because the runtime would refuse it at start:
 * the runtime's own start checks run on the manifest (the plan builder, buildPlan, with
 * neutral runtime settings, then validatePlan, the check at the boundary to the C core), so
 * a relative or duplicate mount point, an rlimit whose soft limit exceeds the hard one or an
 * env entry the kernel cannot take is refused at pack time with the same field path and rule.
 * Beyond those: init must be an absolute path (the core execs it as given, with no PATH
 * search, so `python3` would be `/python3`), and with the image at hand it must exist there
 * and be executable (unless a mount provides it).
 */
import { stat } from 'node:fs/promises';
import { ValidationError } from '../common/errors.js';
import { buildPlan, resolveInRoot, StartError, type PlanSettings } from '../launch/plan-builder.js';
import { validatePlan } from '../launch/plan.js';
import { isResourceContainer, type Manifest } from '../manifest/index.js';

type Issue = { path: string; rule: string };

/** Runtime settings that make every host-dependent probe succeed: only the manifest is judged. */
function neutralSettings(manifest: Manifest): PlanSettings {
  const base = '/nonexistent/northstar-pack-check';
  const resources: Record<string, string> = {};
  for (const m of Object.values(manifest.mounts)) if (m.type === 'resource') resources[m.name] = `${base}/resources/${m.name}`;
  return {
    root: `${base}/root`,
    dataDir: `${base}/data`,
    socketDir: `${base}/sockets`,
    resources,
    exists: () => true,
    resolveInRoot: (root, rel) => `${root}/${rel}`,
    isDirectory: () => true,
    resolveGroup: () => undefined,
    log: () => undefined,
  };
}

/** Whether `path` lies at or below one of the manifest's mount points (then the image need not hold it). */
function underMount(manifest: Manifest, path: string): string | null {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  for (const mp of Object.keys(manifest.mounts)) {
    const m = mp.split('/').filter((p) => p !== '' && p !== '.');
    if (m.length > 0 && m.length <= parts.length && m.every((c, i) => c === parts[i])) return mp;
  }
  return null;
}

/** The problems the runtime would report when starting this manifest (none for a resource container). */
export function startProblems(manifest: Manifest): Issue[] {
  if (isResourceContainer(manifest)) return [];
  const issues: Issue[] = [];
  const init = manifest.init ?? '';
  if (!init.startsWith('/')) {
    issues.push({ path: 'init', rule: `must be an absolute path in the container (the runtime executes it as given, without a PATH search), got ${JSON.stringify(init)}: write e.g. /usr/bin/${init.split('/').pop() ?? init}` });
  }
  try {
    validatePlan(buildPlan(manifest, neutralSettings(manifest)));
  } catch (e) {
    if (e instanceof ValidationError) issues.push(...e.issues);
    else if (e instanceof StartError) issues.push({ path: '', rule: e.message });
    else throw e;
  }
  return issues;
}

/** Problems of init in the image at `root` (a host directory): missing or not executable. */
export async function initProblems(manifest: Manifest, root: string): Promise<Issue[]> {
  const init = manifest.init;
  if (init === undefined || !init.startsWith('/') || underMount(manifest, init) !== null) return [];
  // Symlinks are followed inside the image, as the container will see them.
  const s = await stat(resolveInRoot(root, init)).catch(() => null);
  if (s === null) return [{ path: 'init', rule: `${init} does not exist in the image` }];
  if (!s.isFile()) return [{ path: 'init', rule: `${init} is not a regular file in the image` }];
  if ((s.mode & 0o111) === 0) {
    return [{ path: 'init', rule: `${init} is not executable in the image (mode ${(s.mode & 0o7777).toString(8)})` }];
  }
  return [];
}

/** Throws a ValidationError naming each field the runtime would refuse at start. */
export async function checkStartable(manifest: Manifest, subject: string, root?: string): Promise<void> {
  const issues = startProblems(manifest);
  if (issues.length === 0 && root !== undefined) issues.push(...(await initProblems(manifest, root)));
  if (issues.length > 0) throw new ValidationError(issues, `${subject}: the runtime would refuse to start this container`);
}
