/**
 * Settings of the Mender update module `northstar-npk` (docs/fleet.md): the console URL, the
 * repository to install into and the health-gate seconds, read from
 * /etc/mender/northstar-npk.conf (`key = value` lines, `#` comments) and overridden by the
 * environment (NORTHSTAR_URL, NORTHSTAR_REPOSITORY, NORTHSTAR_HEALTH_SECONDS). Pure but for
 * reading the file.
 */
import { readFileSync } from 'node:fs';
import { NorthstarError } from '../common/errors.js';
import { parseConsoleUrl } from '../common/console-url.js';
import { defaultConsoleUrl } from '../nstar/connect.js';

/** Where the settings file is; NORTHSTAR_NPK_CONFIG names another (tests, a second runtime). */
export const SETTINGS_FILE = '/etc/mender/northstar-npk.conf';
export const DEFAULT_REPOSITORY = 'default';
export const DEFAULT_HEALTH_SECONDS = 10;
/** The longest health gate: Mender kills a module that runs longer than its ModuleTimeoutSeconds (default 4 h). */
export const MAX_HEALTH_SECONDS = 3600;

export interface Settings {
  /** The runtime's console (a `unix://` or `tcp://` URL) with install, start, kill, uninstall, inspect permissions. */
  url: string;
  /** The repository the NPKs go into. */
  repository: string;
  /** How long every container the install started must keep running before commit passes. */
  healthSeconds: number;
  /** Where the settings came from, for the log line. */
  file: string | undefined;
}

const KEYS = { url: 'NORTHSTAR_URL', repository: 'NORTHSTAR_REPOSITORY', health_seconds: 'NORTHSTAR_HEALTH_SECONDS' } as const;
type Key = keyof typeof KEYS;

function settingsError(msg: string): NorthstarError {
  return new NorthstarError('EINVALID', msg);
}

/** The `key = value` lines of a settings file (values may be quoted with "..." or '...'). */
export function parseSettingsText(text: string, file: string): Partial<Record<Key, string>> {
  const out: Partial<Record<Key, string>> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw settingsError(`${file}:${i + 1}: expected 'key = value', got '${line}'`);
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0])) value = value.slice(1, -1);
    if (!(key in KEYS)) throw settingsError(`${file}:${i + 1}: unknown key '${key}': the keys are ${Object.keys(KEYS).join(', ')}`);
    out[key as Key] = value;
  });
  return out;
}

function healthSeconds(text: string, where: string): number {
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_HEALTH_SECONDS) {
    throw settingsError(`${where}: health seconds must be a whole number 0..${MAX_HEALTH_SECONDS}, got '${text}'`);
  }
  return n;
}

/**
 * The settings: the file (if it exists), then the environment over it; defaults for what
 * neither gives (the device's console as nstar finds it, `default`, 10 s).
 */
export function loadSettings(
  env: NodeJS.ProcessEnv = process.env,
  read: (path: string) => string | undefined = readIfExists,
  deviceUrl: () => string = () => defaultConsoleUrl({}),
): Settings {
  const file = env['NORTHSTAR_NPK_CONFIG'] || SETTINGS_FILE;
  const text = read(file);
  const fromFile = text === undefined ? {} : parseSettingsText(text, file);
  const pick = (k: Key): { value: string; where: string } | undefined => {
    const e = env[KEYS[k]];
    if (e !== undefined && e !== '') return { value: e, where: `$${KEYS[k]}` };
    const f = fromFile[k];
    return f !== undefined ? { value: f, where: `${file}: ${k}` } : undefined;
  };
  const url = pick('url');
  if (url) {
    try {
      parseConsoleUrl(url.value, url.where);
    } catch (e) {
      throw settingsError(`${url.where}: '${url.value}' is not a console url (unix:///path/to/console or tcp://host:port): ${(e as Error).message}`);
    }
  }
  const repo = pick('repository');
  if (repo && !/^[A-Za-z0-9_.-]+$/.test(repo.value)) throw settingsError(`${repo.where}: '${repo.value}' is not a repository name`);
  const health = pick('health_seconds');
  return {
    // Without a URL: as nstar chooses (the device's /run/northstar/console when it is a socket).
    url: url?.value ?? deviceUrl(),
    repository: repo?.value ?? DEFAULT_REPOSITORY,
    healthSeconds: health ? healthSeconds(health.value, health.where) : DEFAULT_HEALTH_SECONDS,
    file: text === undefined ? undefined : file,
  };
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw settingsError(`${path}: cannot read the settings: ${(e as Error).message}`);
  }
}
