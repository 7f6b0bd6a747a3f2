/**
 * Hostile containers against a real runtime (issue 9, last group): manifest strings that
 * reach host paths, and kernel facilities shared across the container boundary.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, copyFileSync, chmodSync, readdirSync } from 'node:fs';
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

describe('hostile manifests: paths', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
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
});

describe('hostile containers: kernel facilities without a seccomp section', { skip: !isRoot && 'needs root', timeout: 600_000 }, () => {
  const NOSEC = `name: no-seccomp\n${BASE}init: /test-container\nio:\n  stdout: pipe\n  stderr: pipe\nmounts:\n  /proc:\n    type: proc\n`;
  const C = 'no-seccomp:0.0.1';

  /** Run `syscall <args>` in the container and return the `ret=… errno=…` it printed. */
  async function syscall(rt: TestRuntime, client: Client, args: string[]): Promise<string> {
    rt.logs.length = 0;
    await client.start(C, { args: ['syscall', ...args] });
    await nextNotification(client, isExit(C));
    const line = await rt.waitLog(new RegExp(`syscall ${args[0]}: ret=`));
    return /ret=(-?\d+) errno=(\w+)/.exec(line)!.slice(1).join(' ');
  }

  test('default "deny-dangerous": keyrings and new user namespaces fail with EPERM, the rest works', async (t) => {
    const npk = await pack(t, NOSEC, withInit);
    const { rt, client } = await runtime(t);
    await client.install(npk, 'default');
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, create): the uid's user keyring, shared with the host.
    assert.equal(await syscall(rt, client, ['keyctl', '0', '-4', '1']), '-1 EPERM');
    assert.equal(await syscall(rt, client, ['add_key', '0', '0', '0', '0', '-4']), '-1 EPERM');
    assert.equal(await syscall(rt, client, ['unshare', String(0x10000000)]), '-1 EPERM');
    assert.equal(await syscall(rt, client, ['clone', String(0x10000000 | 17)]), '-1 EPERM');
    assert.equal(await syscall(rt, client, ['clone3', '0', '0']), '-1 ENOSYS');
    // Not a kill-everything filter: an unshare without CLONE_NEWUSER reaches the kernel (which
    // refuses a mount namespace without CAP_SYS_ADMIN), and a fork-like clone works.
    assert.equal(await syscall(rt, client, ['unshare', String(0x20000)]), '-1 EPERM');
    assert.equal(await syscall(rt, client, ['unshare', '0']), '0 0');
    assert.match(await syscall(rt, client, ['clone', '17']), /^[1-9]\d* 0$/);
    assert.ok(rt.logs.some((l) => /syscall clone: ret=[1-9]/.test(l)));
    if (process.arch === 'x64') {
      // The list cannot be bypassed through the x32 ABI (keyctl = 0x40000000 | 250): a call
      // of another ABI kills the process (libseccomp's bad-architecture action).
      await client.start(C, { args: ['syscall', String(0x40000000 + 250), '0', '-4', '1'] });
      const n = await nextNotification(client, isExit(C));
      assert.deepEqual(typeof n === 'object' && 'exit' in n ? n.exit[1] : undefined, { signalled: { signal: 31 } });
    }
  });

  test('[seccomp] default = "none" restores upstream (no filter): the same calls reach the kernel', async (t) => {
    const npk = await pack(t, NOSEC, withInit);
    const { rt, client } = await runtime(t, '\n[seccomp]\ndefault = "none"\n');
    await client.install(npk, 'default');
    assert.match(await syscall(rt, client, ['keyctl', '0', '-4', '1']), /^[1-9]\d* 0$/);
    assert.match(await syscall(rt, client, ['clone3', '0', '0']), /EINVAL|EFAULT/);
  });
});
