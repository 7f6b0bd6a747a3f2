/**
 * Repositories from the configuration: `openRepositories` reads each key and opens the
 * fs and mem repositories in config order. Cross-repository duplicate rules belong to
 * the state machine (runtime.md §3.5): `findDuplicates` gives it what it needs.
 */
import type { KeyObject } from 'node:crypto';
import { NorthstarError, errorMessage } from '../../common/errors.js';
import { readPublicKey } from '../../npk/keys.js';
import type { RepositoryConfig } from '../config.js';
import { FsRepository } from './fs.js';
import { MemRepository } from './mem.js';
import type { Log } from '../logger.js';
import type { Repository, RepositoryEntry } from './types.js';

export type { ByteSource, Repository, RepositoryCapacity, RepositoryEntry } from './types.js';
export { FsRepository, TEMP_PREFIX } from './fs.js';
export { MemRepository } from './mem.js';
export { consumeExactly } from './stream.js';

export interface OpenRepositoryOptions {
  log: Log;
  /** Where mem repositories make their private directories: a directory only root can write (`<run_dir>/mem`). */
  memDir: string;
}

export async function openRepository(cfg: RepositoryConfig, opts: OpenRepositoryOptions): Promise<Repository> {
  let key: KeyObject | undefined;
  if (cfg.key !== undefined) {
    try {
      key = await readPublicKey(cfg.key);
    } catch (e) {
      throw new NorthstarError('EKEY', `repositories.${cfg.id}.key: ${errorMessage(e)}`, { cause: e });
    }
  }
  const common = { id: cfg.id, key, keyPath: cfg.key, mountOnStart: cfg.mountOnStart, capacityNum: cfg.capacityNum, capacitySize: cfg.capacitySize, log: opts.log };
  if (cfg.type.kind === 'fs') return FsRepository.open({ ...common, dir: cfg.type.dir });
  return MemRepository.open({ ...common, dir: opts.memDir });
}

/** Open all repositories; on a failure the ones already opened are closed again. */
export async function openRepositories(configs: Iterable<RepositoryConfig>, opts: OpenRepositoryOptions): Promise<Map<string, Repository>> {
  const out = new Map<string, Repository>();
  try {
    for (const cfg of configs) out.set(cfg.id, await openRepository(cfg, opts));
  } catch (e) {
    for (const r of out.values()) await r.close().catch(() => undefined);
    throw e;
  }
  return out;
}

/**
 * Packages whose `name:version` is held by more than one repository, in repository
 * order: `winner` is the first repository's entry, `losers` the later ones, which the
 * state machine skips with a warning at start (the first repository wins).
 */
export function findDuplicates(repositories: Iterable<Repository>): { winner: RepositoryEntry; losers: RepositoryEntry[] }[] {
  const seen = new Map<string, { winner: RepositoryEntry; losers: RepositoryEntry[] }>();
  for (const repo of repositories) {
    for (const entry of repo.list()) {
      const k = entry.container.toString();
      const have = seen.get(k);
      if (have) have.losers.push(entry);
      else seen.set(k, { winner: entry, losers: [] });
    }
  }
  return [...seen.values()].filter((d) => d.losers.length > 0);
}
