/**
 * Hostile containers against a real runtime (issue 9, last group): manifest strings that
 * reach host paths, and kernel facilities shared across the container boundary.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, chmodSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError, type Client } from '../../src/client/index.js';
import { parseManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { readSigningKey } from '../../src/npk/keys.js';
import { isRoot } from '../helpers/tmp.js';
import { KEY, TEST_CONTAINER_BIN, isExit, nextNotification, startRuntime, type TestRuntime } from './harness.js';

const BASE = 'version: 0.0.1\nuid: 1000\ngid: 1000\n';

/** Pack `manifestText` (after `mutate`, which may make it hostile past the parser) with `files`. */
async function pack(
  t: Parameters<typeof startRuntime>[0],
  manifestText: string,
  files: (root: string) => void,
  mutate: (m: Record<string, unknown>) => void = () => undefined,
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ns-hostile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  mkdirSync(root);
  files(root);
  const manifest = parseManifest(manifestText);
  mutate(manifest as unknown as Record<string, unknown>);
  const out = join(dir, 'out.npk');
  await packNpk({ manifest, root, key: await readSigningKey(KEY), out });
  return out;
}

const withInit = (root: string) => {
  copyFileSync(TEST_CONTAINER_BIN, join(root, 'test-container'));
  chmodSync(join(root, 'test-container'), 0o755);
};

async function runtime(t: Parameters<typeof startRuntime>[0], extraConfig = ''): Promise<{ rt: TestRuntime; client: Client }> {
  const rt = await startRuntime(t, { extraConfig });
  const client = await rt.client({ subscribe: true });
  t.after(() => client.close());
  return { rt, client };
}

describe('hostile manifests: paths', { skip: !isRoot && 'needs root', timeout: 120_000 }, () => {
  test('a socket name that climbs out of socket_dir is refused at install, naming the field', async (t) => {
    const npk = await pack(t, `name: evil-socket\n${BASE}init: /test-container\nsockets:\n  ok:\n    type: stream\n    mode: 0o600\n`, withInit, (m) => {
      // Past our parser (as a foreign packer would write it): the socket is named ../../evil.
      m['sockets'] = { '../../evil': (m['sockets'] as Record<string, unknown>)['ok'] };
    });
    const { rt, client } = await runtime(t);
    await assert.rejects(client.install(npk, 'default'), (e: unknown) => {
      assert.ok(e instanceof RuntimeError, String(e));
      assert.match(JSON.stringify(e.error), /sockets\.\.\.\/\.\.\/evil: must not contain '\/'/);
      return true;
    });
    assert.deepEqual(await client.list(), []);
    assert.deepEqual(readdirSync(rt.repoDir), [], 'nothing is left in the repository');
  });

  test('a resource dir that is a symbolic link out of the resource image is refused at start', async (t) => {
    const res = await pack(t, `name: evil-res\n${BASE}`, (root) => {
      symlinkSync('/', join(root, 'escape'));
      mkdirSync(join(root, 'fine'));
    });
    const app = await pack(
      t,
      `name: evil-app\n${BASE}init: /test-container\nio:\n  stdout: pipe\n  stderr: pipe\nmounts:\n  /res:\n    type: resource\n    name: evil-res\n    version: '*'\n    dir: /escape\n`,
      withInit,
    );
    const { rt, client } = await runtime(t);
    await client.install(res, 'default');
    await client.install(app, 'default');
    // Without the check, /res would be the host's root: the runtime's own config shows through.
    const probe = `/res${rt.dir}/northstar.toml`;
    assert.ok(existsSync(join(rt.dir, 'northstar.toml')));
    await assert.rejects(client.start('evil-app:0.0.1', { args: ['exists', probe] }), (e: unknown) => {
      assert.ok(e instanceof RuntimeError, String(e));
      assert.match(JSON.stringify(e.error), /start_container_failed.*mounts\.\/res\.dir: \\"\/escape\\" resolves to \/, outside /);
      return true;
    });
    // A dir inside the image still works.
    const ok = await pack(
      t,
      `name: good-app\n${BASE}init: /test-container\nmounts:\n  /res:\n    type: resource\n    name: evil-res\n    version: '*'\n    dir: /fine\n`,
      withInit,
    );
    await client.install(ok, 'default');
    await client.start('good-app:0.0.1', { args: ['exit', '0'] });
    await nextNotification(client, isExit('good-app:0.0.1'));
  });
});
