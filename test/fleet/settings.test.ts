/**
 * The settings of the Mender update module northstar-npk (src/mender/settings.ts): the file
 * /etc/mender/northstar-npk.conf (or $NORTHSTAR_NPK_CONFIG), the environment over it, the
 * defaults, and clear errors for bad values. Pure: the file is handed in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NorthstarError } from '../../src/common/errors.js';
import { loadSettings, parseSettingsText, SETTINGS_FILE } from '../../src/mender/settings.js';

const DEVICE = 'unix:///run/northstar/console';
const files = (map: Record<string, string>) => (path: string) => map[path];
const device = (): string => DEVICE;

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NorthstarError, String(e));
    assert.equal(e.code, 'EINVALID');
    assert.match(e.message, re);
    return true;
  });
}

test('defaults without a file or environment: the device console, repository default, 10 s', () => {
  assert.deepEqual(loadSettings({}, files({}), device), { url: DEVICE, repository: 'default', healthSeconds: 10, file: undefined });
});

test('the file sets every key; comments, blank lines and quotes are fine', () => {
  const text = '# settings\n\nurl = "tcp://10.0.0.2:4200"\nrepository=system\n  health_seconds = 30  \n';
  assert.deepEqual(loadSettings({}, files({ [SETTINGS_FILE]: text }), device), { url: 'tcp://10.0.0.2:4200', repository: 'system', healthSeconds: 30, file: SETTINGS_FILE });
});

test('the environment overrides the file key by key; NORTHSTAR_NPK_CONFIG names another file', () => {
  const read = files({ '/tmp/other.conf': "url = unix:///a/console\nrepository = 'system'\nhealth_seconds = 5\n" });
  const env = { NORTHSTAR_NPK_CONFIG: '/tmp/other.conf', NORTHSTAR_HEALTH_SECONDS: '2', NORTHSTAR_REPOSITORY: 'memory' };
  assert.deepEqual(loadSettings(env, read, device), { url: 'unix:///a/console', repository: 'memory', healthSeconds: 2, file: '/tmp/other.conf' });
  assert.equal(loadSettings({ ...env, NORTHSTAR_URL: 'tcp://h:1' }, read, device).url, 'tcp://h:1');
  // An empty variable is unset, as in a service file's Environment=NORTHSTAR_URL=.
  assert.equal(loadSettings({ ...env, NORTHSTAR_URL: '' }, read, device).url, 'unix:///a/console');
});

test('bad settings name the file, line or variable and the value', () => {
  refused(() => parseSettingsText('url unix:///x\n', '/etc/x.conf'), /^\/etc\/x\.conf:1: expected 'key = value', got 'url unix:\/\/\/x'$/);
  refused(() => parseSettingsText('# c\nhealth = 3\n', '/etc/x.conf'), /^\/etc\/x\.conf:2: unknown key 'health': the keys are url, repository, health_seconds$/);
  refused(() => loadSettings({ NORTHSTAR_HEALTH_SECONDS: '1.5' }, files({}), device), /^\$NORTHSTAR_HEALTH_SECONDS: health seconds must be a whole number 0\.\.3600, got '1\.5'$/);
  refused(() => loadSettings({}, files({ [SETTINGS_FILE]: 'health_seconds = 99999\n' }), device), /^\/etc\/mender\/northstar-npk\.conf: health_seconds: health seconds must be a whole number/);
  refused(() => loadSettings({ NORTHSTAR_URL: 'http://x' }, files({}), device), /^\$NORTHSTAR_URL: 'http:\/\/x' is not a console url/);
  refused(() => loadSettings({ NORTHSTAR_REPOSITORY: 'a b' }, files({}), device), /^\$NORTHSTAR_REPOSITORY: 'a b' is not a repository name$/);
});
