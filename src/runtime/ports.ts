/**
 * The side effects the state machine depends on, as small interfaces (mounts: Mounter in
 * mount/mounter.ts; cgroups: Cgroups in cgroups/manager.ts; the launch core: below). The
 * real implementations are wired in by runtime.ts; unit tests pass recording fakes.
 */
import type { LaunchPlan } from '../launch/plan.js';
import type { ContainerProcess, LaunchFds } from '../launch/launcher.js';
import type { ExecOptions, ExecProcess } from '../launch/exec-process.js';

export type { Cgroups as CgroupPort, ContainerCgroup as CgroupHandle } from './cgroups/index.js';

export interface LauncherPort {
  /**
   * Create the container with init parked (pid known); `exec()` on the result starts the
   * app. With `exec`, the app is started as soon as the container is created (no round
   * trip); `started()` on the result waits for it.
   */
  create(plan: LaunchPlan, fds: LaunchFds, opts?: { exec?: boolean }): Promise<ContainerProcess>;
  /** Ours: run a command inside a running container (a launcher without it refuses exec). */
  exec?(plan: LaunchPlan, opts: ExecOptions): ExecProcess;
  /** Release what the launcher holds (its pooled cores); running containers are not affected. */
  close?(): void;
}
