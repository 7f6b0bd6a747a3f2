/**
 * Overlay and tmpfs mounts for recipe builds and writable container roots, through
 * mount(8)/umount(8) (Node has no mount(2)). Callers always pair a mount with `umount`
 * in a finally block; nothing here leaves a mount behind on failure.
 */
import { chmod, chown, mkdir, rm, mkdtemp, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { NorthstarError } from '../../common/errors.js';
import { run as runTool } from '../../common/exec.js';

async function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const r = await runTool(cmd, args, cwd === undefined ? {} : { cwd });
  if (r.code === 0) return;
  const why = (r.stderr || `exit code ${r.code}`).trim().replace(/\s+/g, ' ');
  throw new NorthstarError('EMOUNT', `${cmd} ${args.join(' ')}: ${why}`, r.spawnError ? { cause: r.spawnError } : undefined);
}

/** Paths overlayfs cannot take in a mount option at all (',' separates options). */
export function checkOverlayPath(p: string, what: string): void {
  if (/[,\n]/.test(p)) throw new NorthstarError('EOVERLAY', `${what} ${JSON.stringify(p)}: an overlay layer path must not contain ',' or a newline`);
}

/** ':' separates lower layers: escape it (and '\\') as overlayfs expects. */
function esc(p: string): string {
  return p.replace(/[\\:]/g, (c) => `\\${c}`);
}

export interface OverlayLayers {
  /** Topmost first. Relative paths are resolved against `cwd` (keeps the option short). */
  lowers: readonly string[];
  upper?: string;
  work?: string;
  cwd?: string;
  /** Extra mount options (e.g. nodev, nosuid), each without a comma. */
  options?: readonly string[];
}

/** Mount an overlay at `target`; without `upper` it is read-only. */
export async function mountOverlay(target: string, layers: OverlayLayers): Promise<void> {
  if (layers.lowers.length === 0) throw new NorthstarError('EOVERLAY', 'an overlay needs at least one lower layer');
  for (const l of layers.lowers) checkOverlayPath(l, 'layer');
  const opts = [...(layers.options ?? []), `lowerdir=${layers.lowers.map(esc).join(':')}`];
  if (layers.upper !== undefined) {
    if (layers.work === undefined) throw new NorthstarError('EOVERLAY', 'an overlay with an upper layer needs a work dir');
    checkOverlayPath(layers.upper, 'upper layer');
    checkOverlayPath(layers.work, 'work dir');
    opts.push(`upperdir=${esc(layers.upper)}`, `workdir=${esc(layers.work)}`);
  }
  const data = opts.join(',');
  if (data.length > 4000) throw new NorthstarError('EOVERLAY', `too many layers for one overlay mount (${layers.lowers.length})`);
  await run('mount', ['-t', 'overlay', 'overlay', '-o', layers.upper === undefined ? `ro,${data}` : data, target], layers.cwd);
}

export async function mountTmpfs(target: string, size: bigint | number, mode = '0755', options: readonly string[] = []): Promise<void> {
  await run('mount', ['-t', 'tmpfs', 'tmpfs', '-o', [...options, `size=${size}`, `mode=${mode}`].join(','), target]);
}

/** A container's writable root holds no device nodes or setuid files that work. */
const WRITABLE_ROOT_OPTIONS = ['nodev', 'nosuid'] as const;

export async function umount(target: string): Promise<void> {
  await run('umount', [target]);
}

export interface WritableRoot {
  /** The overlay: the container's root. */
  root: string;
  /** Unmount both layers and remove the directories; safe to call more than once. */
  teardown(): Promise<void>;
}

/**
 * A writable root for one start: an overlay of the read-only image `lower` with its upper
 * layer on a tmpfs of `size` bytes, in a new directory under `parent`. Every change lives
 * in the tmpfs and is gone after `teardown`. Both are nodev,nosuid, as the image is: a
 * device node or setuid file in the image (or made in the upper layer) stays inert.
 */
export async function mountWritableRoot(lower: string, parent: string, size: bigint | number, label: string): Promise<WritableRoot> {
  checkOverlayPath(lower, 'image');
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, `${label.replace(/[^A-Za-z0-9._-]/g, '_')}-`));
  const tmp = join(dir, 'tmp');
  const root = join(dir, 'root');
  const mounted: string[] = [];
  let done: Promise<void> | null = null;
  const teardown = (): Promise<void> => {
    done ??= (async () => {
      const errors: unknown[] = [];
      for (const m of mounted.reverse()) {
        await umount(m).catch((e: unknown) => errors.push(e));
      }
      if (errors.length === 0) await rm(dir, { recursive: true, force: true });
      if (errors.length > 0) throw errors[0];
    })();
    return done;
  };
  try {
    await mkdir(tmp);
    await mkdir(root);
    await mountTmpfs(tmp, size, '0755', WRITABLE_ROOT_OPTIONS);
    mounted.push(tmp);
    await mkdir(join(tmp, 'upper'));
    await mkdir(join(tmp, 'work'));
    // The merged root takes its owner and mode from the upper dir: give it the image's.
    const s = await stat(lower);
    await chown(join(tmp, 'upper'), s.uid, s.gid);
    await chmod(join(tmp, 'upper'), s.mode & 0o7777);
    await mountOverlay(root, { lowers: [lower], upper: join(tmp, 'upper'), work: join(tmp, 'work'), options: WRITABLE_ROOT_OPTIONS });
    mounted.push(root);
  } catch (e) {
    await teardown().catch(() => undefined);
    throw e;
  }
  return { root, teardown };
}
