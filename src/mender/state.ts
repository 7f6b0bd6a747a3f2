/**
 * The progress of one `northstar-npk` payload, kept in Mender's per-payload directory
 * (`<tree>/tmp/northstar-npk.json`) so that a module, runtime or device that dies between
 * states resumes from what was done: written before each action that changes the device
 * (write-ahead), atomically (temp file, fsync, rename, fsync of the directory).
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NorthstarError } from '../common/errors.js';

export const STATE_NAME = 'northstar-npk.json';
export const STATE_VERSION = 1;

/** Another version of the same name, installed when the artifact came. */
export interface Replaced {
  version: string;
  /** It ran when the install began: rollback starts it again. */
  wasRunning: boolean;
}

/** One NPK of the payload. */
export interface Item {
  /** The file name inside the payload (files/<file>). */
  file: string;
  name: string;
  version: string;
  /** name:version was installed before this artifact: never uninstalled by rollback, never started. */
  preexisting: boolean;
  replaced: Replaced[];
  /** The install starts it (manifest autostart, or a replaced version ran). */
  start: boolean;
}

/**
 * installing: ArtifactInstall under way (or failed); installed: it finished; committing: the
 * gate passed and the replaced versions are being removed (no rollback any more); committed;
 * rolledback.
 */
export type Phase = 'installing' | 'installed' | 'committing' | 'committed' | 'rolledback';

export interface PayloadState {
  version: typeof STATE_VERSION;
  phase: Phase;
  repository: string;
  items: Item[];
}

export function statePath(tree: string): string {
  return join(tree, 'tmp', STATE_NAME);
}

/** The saved state, or undefined when none was written (the install never began). */
export function readState(tree: string): PayloadState | undefined {
  const path = statePath(tree);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let s: unknown;
  try {
    s = JSON.parse(text);
  } catch (e) {
    throw new NorthstarError('EINVALID', `${path}: not the module's state (${(e as Error).message}); remove it only if no install of this payload ran`);
  }
  const st = s as Partial<PayloadState>;
  if (typeof st !== 'object' || st === null || st.version !== STATE_VERSION || !Array.isArray(st.items) || typeof st.phase !== 'string') {
    throw new NorthstarError('EINVALID', `${path}: not a state of version ${STATE_VERSION} of the module`);
  }
  return st as PayloadState;
}

/** Save atomically: a crash leaves the old or the new state, never a torn one. */
export function writeState(tree: string, state: PayloadState): void {
  const path = statePath(tree);
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
