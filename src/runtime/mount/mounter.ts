/**
 * Mounting packages (runtime.md §4, spec README item 16).
 *
 * Each package is mounted read-only at `<run_dir>/<name>:<version>` from a loop device
 * over the fs.img part of the NPK file. We let util-linux do the loop work: `mount -o
 * loop,offset=…,sizelimit=…` asks /dev/loop-control for a free device (adding one when
 * none is free), attaches the file read-only with LO_FLAGS_AUTOCLEAR and detaches it
 * again when the mount fails, and the kernel frees the device on the last umount. That
 * is one process spawn per mount, no device left behind on any failure path, and
 * parallel mounts are safe (util-linux retries a device another process grabbed first).
 *
 * Verity, per the configured mode:
 * - `user`: the whole hash tree of fs.img is checked against the signed root hash in
 *   user space (`npk.verifyImage()`), then only the data part (sizelimit = verity data
 *   size) is mounted.
 * - `kernel`: `losetup` attaches fs.img, `veritysetup open` builds a dm-verity device on
 *   it (data and hash device the same loop device, `--hash-offset` = data size), the
 *   squashfs is mounted from /dev/mapper/<name>, and the dm device is removed deferred
 *   and the loop device detached lazily, so both vanish with the mount. Refused when
 *   the kernel has no device-mapper.
 * - A package of a repository without a key (no verity information) is mounted raw.
 *
 * The squashfs is mounted ro,nosuid,nodev (+ context= when host SELinux is on and the
 * manifest sets selinux.mount_context). Every failure removes what this mount created:
 * mount, dm device, loop device and mount point directory.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import type { Container } from '../../common/container.js';
import { NorthstarError, errorMessage, type ErrorCode } from '../../common/errors.js';
import { within } from '../../common/paths.js';
import type { Npk } from '../../npk/reader.js';
import type { VerityMode } from '../config.js';
import type { Log } from '../logger.js';
import { fsErrorText } from '../repository/storage-error.js';
import { run } from '../../common/exec.js';
import { mountAt } from './mountinfo.js';

export interface MountRequest {
  container: Container;
  /** The package as opened by its repository (verity set iff verified with a key). */
  npk: Npk;
  /** A path of the NPK that losetup can open (repository entry path). */
  path: string;
}

export interface MountedImage {
  container: Container;
  /** `<run_dir>/<name>:<version>`. */
  target: string;
  /** The block device the squashfs was mounted from (/dev/loopN or /dev/dm-N). */
  device: string;
  verity: 'kernel' | 'user' | 'none';
  /** Wall time of the mount in milliseconds (verification included). */
  durationMs: number;
}

/** The side effects the state machine needs; fake it in unit tests. */
export interface Mounter {
  /** Where a container is mounted. */
  target(container: Container): string;
  mount(req: MountRequest): Promise<MountedImage>;
  /** Unmount and remove the mount point. EBUSY when still in use, ENOTMOUNTED when not mounted. */
  umount(container: Container): Promise<void>;
}

export interface LoopMounterOptions {
  runDir: string;
  verity: VerityMode;
  /** Retry budget in ms when a loop device cannot be set up (another process took it). */
  loopDeviceTimeout: number;
  log: Log;
  /** Host SELinux on (default: /sys/fs/selinux/enforce exists). */
  selinux?: boolean | undefined;
  /** Device-mapper available (default: hasDeviceMapper()). */
  deviceMapper?: boolean | undefined;
}

const MOUNT_OPTIONS = 'ro,nosuid,nodev';

/**
 * Whether the kernel has device-mapper: its control device is registered (`device-mapper`
 * in /proc/misc). The node /dev/mapper/control alone proves nothing: libdevmapper
 * (veritysetup, dmsetup) creates it on demand even when the kernel has no driver.
 * A dm_mod module that is not loaded yet counts as absent (auto then verifies in user
 * space, which is equally safe; load the module for `verity = "kernel"`).
 */
export function hasDeviceMapper(procMisc = '/proc/misc'): boolean {
  try {
    return /^\s*\d+\s+device-mapper$/m.test(readFileSync(procMisc, 'utf8'));
  } catch {
    return existsSync('/dev/mapper/control');
  }
}

/** Major and minor number of a device (Linux dev_t encoding). */
function majorMinor(rdev: number): [number, number] {
  const r = BigInt(rdev);
  const major = Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn));
  const minor = Number((r & 0xffn) | ((r >> 12n) & ~0xffn));
  return [major, minor];
}

/**
 * Why no loop device can be had, or undefined when one could be: /dev/loop-control
 * (char 10:237) is missing or not the loop control device, and no /dev/loopN (block,
 * major 7) is free (no backing file in /sys/block/loopN/loop). Called after a failed loop
 * setup, to turn util-linux's "mount failed: Operation not permitted" into the cause.
 */
export async function loopUnavailable(dev = '/dev', sysBlock = '/sys/block'): Promise<string | undefined> {
  const control = `${dev}/loop-control`;
  let why: string;
  try {
    const st = await stat(control);
    const [major, minor] = majorMinor(st.rdev);
    if (st.isCharacterDevice() && major === 10 && minor === 237) return undefined;
    why = `${control} is not the loop control device (${st.isCharacterDevice() ? `character device ${major}:${minor}` : 'not a character device'}, expected character device 10:237)`;
  } catch (e) {
    why = `${control} cannot be used: ${fsErrorText(e)}`;
  }
  let names: string[] = [];
  try {
    names = (await readdir(dev)).filter((n) => /^loop\d+$/.test(n));
  } catch {
    // no /dev listing: no loop device either
  }
  let devices = 0;
  for (const n of names) {
    try {
      const st = await stat(`${dev}/${n}`);
      if (!st.isBlockDevice() || majorMinor(st.rdev)[0] !== 7) continue;
    } catch {
      continue;
    }
    devices++;
    if (!existsSync(`${sysBlock}/${n}/loop/backing_file`)) return undefined;
  }
  return `${why}, and ${devices === 0 ? `there is no loop block device in ${dev}` : `all ${devices} loop block devices in ${dev} are in use`}`;
}

/**
 * A failed mount step, with the tool's (or the error's) text on one line. A mem repository's
 * package is read through `/proc/<runtime pid>/fd/<n>`, which mount(8) and losetup name in
 * their messages ("failed to setup loop device for /proc/…"): a path that means nothing to
 * whoever reads the refusal, so it is named as what it is.
 */
export function mountError(code: ErrorCode, what: string, detail: string, cause?: unknown): NorthstarError {
  const text = detail
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/\/proc\/(?:\d+|self)\/fd\/\d+/g, "the package's sealed in-memory copy");
  return new NorthstarError(code, `${what}: ${text}`, cause ? { cause } : undefined);
}

export class LoopMounter implements Mounter {
  readonly verityMode: 'kernel' | 'user';
  /** One log line naming the verity mode in use and why (logged once at start). */
  readonly verityDescription: string;
  private readonly selinux: boolean;
  /** Targets with a mount or umount under way: a second one at the same time is refused. */
  private readonly busy = new Set<string>();

  constructor(private readonly opts: LoopMounterOptions) {
    const dm = opts.deviceMapper ?? hasDeviceMapper();
    if (opts.verity === 'kernel' && !dm) {
      throw new NorthstarError('ENODM', 'verity = "kernel" needs device-mapper, but the kernel has none (no device-mapper in /proc/misc)');
    }
    this.verityMode = opts.verity === 'auto' ? (dm ? 'kernel' : 'user') : opts.verity;
    const why =
      opts.verity === 'auto'
        ? `verity = "auto" and the kernel ${dm ? 'has device-mapper' : 'has no device-mapper (no device-mapper line in /proc/misc)'}`
        : `verity = "${opts.verity}"`;
    this.verityDescription =
      this.verityMode === 'kernel'
        ? `verity: kernel dm-verity (${why}): signed images are mounted through a dm-verity device that checks every block as it is read; installs check the whole hash tree in user space`
        : `verity: user space (${why}): the whole hash tree of a signed image is checked at install and again before each mount, not at each read`;
    this.selinux = opts.selinux ?? existsSync('/sys/fs/selinux/enforce');
  }

  target(container: Container): string {
    // `<name>:<version>` always has a ':', so it is never `.` or `..`; checked again anyway.
    return within(this.opts.runDir, container.toString(), 'name');
  }

  /** The squashfs mount options for a package: ro,nosuid,nodev (+ context= with host SELinux). */
  fsOptions(req: MountRequest): string {
    const ctx = req.npk.manifest.selinux?.mount_context;
    return this.selinux && ctx ? `${MOUNT_OPTIONS},context=${ctx}` : MOUNT_OPTIONS;
  }

  async mount(req: MountRequest): Promise<MountedImage> {
    const target = this.target(req.container);
    if (this.busy.has(target)) throw new NorthstarError('EMOUNTBUSY', `mount ${req.container}: a mount or umount of ${target} is under way`);
    this.busy.add(target);
    try {
      return await this.mountExclusive(req, target);
    } finally {
      this.busy.delete(target);
    }
  }

  private async mountExclusive(req: MountRequest, target: string): Promise<MountedImage> {
    const started = performance.now();
    const what = `mount ${req.container}`;
    if (await mountAt(target)) throw new NorthstarError('EMOUNTBUSY', `${what}: ${target} is already a mount point`);
    try {
      await mkdir(target, { mode: 0o755 });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        const hint = code === 'ENOSPC' || code === 'EDQUOT' ? `: free space (blocks and inodes) in run_dir ${this.opts.runDir}` : '';
        throw mountError('EMOUNT', what, `cannot create the mount point ${target}: ${fsErrorText(e)}${hint}`, e);
      }
    }
    try {
      let device: string;
      let verity: MountedImage['verity'];
      if (!req.npk.verity) {
        device = await this.mountLoop(req, target, req.npk.fsImg.size);
        verity = 'none';
      } else if (this.verityMode === 'user') {
        const t0 = performance.now();
        await req.npk.verifyImage();
        this.opts.log.info(`${req.container}: verified the verity hash tree of fs.img in user space (${(performance.now() - t0).toFixed(1)} ms)`);
        device = await this.mountLoop(req, target, req.npk.verity.dataSize);
        verity = 'user';
      } else {
        device = await this.mountKernelVerity(req, target);
        verity = 'kernel';
      }
      return { container: req.container, target, device, verity, durationMs: performance.now() - started };
    } catch (e) {
      await rmdir(target).catch(() => undefined);
      if (e instanceof NorthstarError) throw e;
      throw mountError('EMOUNT', what, errorMessage(e), e);
    }
  }

  /** mount(8) with the loop option, retried within loop_device_timeout when the loop setup races. */
  private async mountLoop(req: MountRequest, target: string, sizelimit: number): Promise<string> {
    const opts = `${this.fsOptions(req)},loop,offset=${req.npk.fsImg.offset},sizelimit=${sizelimit}`;
    const deadline = performance.now() + this.opts.loopDeviceTimeout;
    for (;;) {
      const r = await run('mount', ['-t', 'squashfs', '-o', opts, req.path, target]);
      if (r.code === 0) break;
      const loopTrouble = /loop device|resource busy|try again/i.test(r.stderr);
      if (!loopTrouble || performance.now() >= deadline) {
        await this.throwIfNoLoop(req.container);
        throw mountError(loopTrouble ? 'ENOLOOP' : 'EMOUNT', `mount ${req.container}`, r.stderr || `mount exited with ${r.code}`);
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    const m = await mountAt(target);
    if (!m) throw new NorthstarError('EMOUNT', `mount ${req.container}: mount(8) succeeded but ${target} is not a mount point`);
    return m.source;
  }

  /** A clear error when the mount failed because no loop device can be had. */
  private async throwIfNoLoop(container: Container): Promise<void> {
    const why = await loopUnavailable();
    if (why === undefined) return;
    throw new NorthstarError(
      'ENOLOOP',
      `mount ${container}: no free loop device to be had: ${why}; the runtime needs /dev/loop-control (module loop) or a free /dev/loopN in its mount namespace`,
    );
  }

  private async mountKernelVerity(req: MountRequest, target: string): Promise<string> {
    const v = req.npk.verity!;
    const what = `mount ${req.container}`;
    const lo = await run('losetup', ['--find', '--show', '--read-only', '--offset', String(req.npk.fsImg.offset), '--sizelimit', String(req.npk.fsImg.size), req.path]);
    if (lo.code !== 0) {
      await this.throwIfNoLoop(req.container);
      throw mountError('ENOLOOP', what, lo.stderr || 'losetup failed');
    }
    const loop = lo.stdout.trim();
    const name = `northstar-${randomBytes(10).toString('hex')}`;
    let dmOpen = false;
    let mounted = false;
    try {
      const vs = await run('veritysetup', veritysetupArgs('open', loop, v, name));
      if (vs.code !== 0) throw mountError('EVERITY', what, vs.stderr || 'veritysetup open failed');
      dmOpen = true;
      const dev = `/dev/mapper/${name}`;
      const r = await run('mount', ['-t', 'squashfs', '-o', this.fsOptions(req), dev, target]);
      if (r.code !== 0) throw mountError('EMOUNT', what, r.stderr || 'mount failed');
      mounted = true;
      return (await mountAt(target))?.source ?? dev;
    } finally {
      // Deferred remove: the dm device goes away with the last user (the mount), and a
      // detached loop device in use autoclears. On failure both go away right now.
      if (dmOpen) {
        const rm = await run('dmsetup', mounted ? ['remove', '--deferred', name] : ['remove', name]);
        if (rm.code !== 0) this.opts.log.warn(`${what}: dmsetup remove ${name}: ${rm.stderr.trim()}`);
      }
      await run('losetup', ['-d', loop]);
    }
  }

  async umount(container: Container): Promise<void> {
    const target = this.target(container);
    if (this.busy.has(target)) throw new NorthstarError('EMOUNTBUSY', `umount ${container}: a mount or umount of ${target} is under way`);
    this.busy.add(target);
    try {
      await this.umountExclusive(container, target);
    } finally {
      this.busy.delete(target);
    }
  }

  private async umountExclusive(container: Container, target: string): Promise<void> {
    const what = `umount ${container}`;
    if (!(await mountAt(target))) {
      await rmdir(target).catch(() => undefined);
      throw new NorthstarError('ENOTMOUNTED', `${what}: ${target} is not mounted`);
    }
    const r = await run('umount', [target]);
    if (r.code !== 0) {
      if (/busy/i.test(r.stderr)) throw new NorthstarError('EMOUNTBUSY', `${what}: ${target} is busy`);
      throw mountError('EUMOUNT', what, r.stderr || `umount exited with ${r.code}`);
    }
    try {
      await rmdir(target);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log.warn(`${what}: cannot remove ${target}: ${errorMessage(e)}`);
    }
  }
}

/**
 * veritysetup arguments for a loop device over fs.img: data and hash device are the same
 * device, the hash area (superblock first) starts at the signed verity offset. `verify`
 * checks the tree in user space with cryptsetup's own code (no device-mapper needed).
 */
export function veritysetupArgs(action: 'open' | 'verify', device: string, verity: { dataSize: number; rootHash: Buffer }, name?: string): string[] {
  const hashOffset = `--hash-offset=${verity.dataSize}`;
  const root = verity.rootHash.toString('hex');
  return action === 'open' ? ['open', device, name ?? 'northstar', device, root, hashOffset] : ['verify', device, device, root, hashOffset];
}

/** Mount several packages in parallel; results in request order, each ok or its error. */
export async function mountAll(mounter: Mounter, reqs: readonly MountRequest[]): Promise<PromiseSettledResult<MountedImage>[]> {
  return Promise.allSettled(reqs.map((r) => mounter.mount(r)));
}
