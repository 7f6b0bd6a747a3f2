export { CgroupManager, type Cgroups, type ContainerCgroup, type CgroupManagerOptions, type CgroupStatistics, type StatTable, type Count } from './manager.js';
export { detectCgroupLayout, resolveCgroupPath, cgroupComponents, CGROUP2_SUPER_MAGIC, type CgroupLayout, type DetectOptions } from './layout.js';
export { cgroupWrites, safeAttrName, type CgroupWrite, type CgroupWritePlan, type Controller } from './settings.js';

import type { Config } from '../config.js';
import type { Log } from '../logger.js';
import { CgroupManager as Manager } from './manager.js';

/**
 * The runtime's cgroups from the configuration: detect v1/v2, create the top-level
 * cgroup (`config.cgroup`: relative = below the runtime's own cgroup, absolute = from
 * the hierarchy root), after removing the cgroups a crashed earlier run made (recorded
 * in `config.runDir`); every container cgroup gets `pids.max` = `config.cgroups.pidsMax`.
 */
export function createCgroups(
  config: Pick<Config, 'cgroup'> & Partial<Pick<Config, 'runDir' | 'cgroups'>>,
  log: Log,
  opts: { oomPollInterval?: number } = {},
): Promise<Manager> {
  return Manager.open({
    name: config.cgroup,
    log,
    ...(config.runDir !== undefined ? { runDir: config.runDir } : {}),
    ...(config.cgroups?.pidsMax !== undefined ? { pidsMax: config.cgroups.pidsMax } : {}),
    ...(config.cgroups?.prepare !== undefined ? { prepare: config.cgroups.prepare } : {}),
    ...opts,
  });
}
