/**
 * Refusals read as plain causes, against a real runtime (issue 13, "Error messages and small
 * traps"). The wire variant stays the one upstream sends (console.md §5: `unexpected` for a bad
 * package, a same-repository duplicate and a bad signal; `umount_busy` for an uninstall of a
 * running container; `start_container_started` naming the running version); only the text is
 * ours. No refusal is worded `unexpected error:`, none carries a temporary file's path (the
 * repository's `.tmp-*.npk` or a mem repository's `/proc/<pid>/fd/<n>`), and each names the
 * package, container or value and what to do.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RuntimeError, type Client } from '../../src/client/index.js';
import { tempDir } from '../helpers/tmp.js';
import { makeNpk } from './npk-fixture.js';
import { PUB, isStarted, nextNotification, packTestVariant, startWithTestContainers, testContainerManifest } from './harness.js';

const TC = 'test-container:0.0.1';
const TR = 'test-resource:0.0.1';
const REPOS = ['default', 'memory'] as const;

/** The refusal of `op`: a RuntimeError with the variant `kind`, worded as a plain cause. */
async function refusal(op: Promise<unknown>, kind: string): Promise<RuntimeError> {
  const e = await op.then(
    () => assert.fail(`expected a ${kind} refusal`),
    (err: unknown) => err,
  );
  assert.ok(e instanceof RuntimeError, String(e));
  assert.equal(e.kind, kind, e.message);
  assert.doesNotMatch(e.message, /unexpected error/i);
  assert.doesNotMatch(e.message, /\/proc\/\d+\/fd\/\d+/);
  assert.doesNotMatch(e.message, /\.tmp-[0-9a-f]+\.npk/);
  // The text on the wire is the message (the client adds nothing to an `unexpected`).
  if ('unexpected' in e.error) assert.equal(e.error.unexpected.error, e.message);
  return e;
}

async function installFile(client: Client, path: string, repo: string): Promise<unknown> {
  return client.install(readFileSync(path), repo);
}

describe('refusals name their cause', () => {
  test('a package signed with another key names the key the repository trusts', async (t) => {
    const { client } = await startWithTestContainers(t);
    const other = await makeNpk(tempDir(t), { sign: 'other' });
    for (const repo of REPOS) {
      const e = await refusal(installFile(client, other, repo), 'unexpected');
      assert.ok(e.message.startsWith(`repository ${repo}: package refused: `), e.message);
      assert.ok(e.message.includes(`the repository key ${PUB} (repositories.${repo}.key)`), e.message);
      assert.match(e.message, /signature does not verify with/);
      assert.match(e.message, /sign it with the private key of that public key, or install it into a repository that trusts its key/);
    }
    assert.deepEqual((await client.list()).map(String).sort(), [TC, TR]);
  });

  test('an unsigned package and a file that is no zip are refused with their cause, not a temp path', async (t) => {
    const { client } = await startWithTestContainers(t);
    const dir = tempDir(t);
    const unsigned = await makeNpk(dir, { sign: 'none' });
    const notZip = join(dir, 'not-a-zip.npk');
    writeFileSync(notZip, 'hello, this is text and no zip archive\n');
    for (const repo of REPOS) {
      const u = await refusal(installFile(client, unsigned, repo), 'unexpected');
      assert.ok(u.message.startsWith(`repository ${repo}: package refused: the uploaded package is not signed (it has no signature.yaml)`), u.message);
      assert.ok(u.message.includes(`${PUB} (repositories.${repo}.key)`), u.message);
      assert.match(u.message, /sextant pack --key/);
      const z = await refusal(installFile(client, notZip, repo), 'unexpected');
      assert.ok(z.message.startsWith(`repository ${repo}: package refused: the uploaded package is not a valid npk (an npk is a zip archive`), z.message);
    }
    assert.deepEqual((await client.list()).map(String).sort(), [TC, TR]);
  });

  test('a package already installed, in the same repository or another, says so and what to do', async (t) => {
    const { client } = await startWithTestContainers(t);
    const good = await makeNpk(tempDir(t), { name: 'good' });
    for (const repo of REPOS) {
      await installFile(client, good, repo);
      const e = await refusal(installFile(client, good, repo), 'unexpected');
      assert.equal(e.message, `repository ${repo}: good:0.0.1 is already installed: uninstall it first, or give the new package another version`);
      await client.uninstall('good:0.0.1');
    }
    // In another repository: upstream's install_duplicate, with what to do.
    await installFile(client, good, 'memory');
    const e = await refusal(installFile(client, good, 'default'), 'install_duplicate');
    assert.equal(e.message, 'container good:0.0.1 is already installed in another repository: uninstall it there first');
    assert.deepEqual((await client.list()).map(String).sort(), ['good:0.0.1', TC, TR]);
    assert.equal((await client.inspect('good:0.0.1')).repository, 'memory');
  });

  test('a bad signal number is named, with the valid range', async (t) => {
    const { client } = await startWithTestContainers(t);
    await client.start(TC);
    await nextNotification(client, isStarted(TC));
    for (const signal of [0, 65, 99]) {
      const e = await refusal(client.kill(TC, signal), 'unexpected');
      assert.equal(e.message, `kill ${TC}: ${signal} is not a signal number; give one from 1 to 64 (15 is SIGTERM, 9 is SIGKILL)`);
    }
    assert.equal((await client.inspect(TC)).process !== null, true, 'still running');
  });

  test('uninstall of a running container, or of a resource it uses, says which one runs', async (t) => {
    const { client } = await startWithTestContainers(t);
    await client.start(TC);
    await nextNotification(client, isStarted(TC));
    const self = await refusal(client.uninstall(TC), 'umount_busy');
    assert.equal(JSON.stringify(self.error), `{"umount_busy":{"container":"${TC}"}}`);
    assert.equal(self.message, `container ${TC} is running: stop it first`);
    const res = await refusal(client.uninstall(TR), 'umount_busy');
    assert.equal(JSON.stringify(res.error), `{"umount_busy":{"container":"${TC}"}}`);
    assert.equal(res.message, `${TR} is in use: container ${TC} is running and uses it; stop ${TC} first`);
  });

  test('starting a second version of a name says that only one version may run, and names the running one', async (t) => {
    const { client } = await startWithTestContainers(t);
    const v2 = await packTestVariant('test-container-0.0.2', testContainerManifest().replace('version: 0.0.1', 'version: 0.0.2'));
    await installFile(client, v2, 'memory');
    await client.start(TC);
    await nextNotification(client, isStarted(TC));
    const e = await refusal(client.start('test-container:0.0.2'), 'start_container_started');
    // The variant names the running version, as upstream's does.
    assert.equal(JSON.stringify(e.error), `{"start_container_started":{"container":"${TC}"}}`);
    assert.equal(e.message, `cannot start test-container:0.0.2: ${TC} is running, and only one version of a name may run at a time; stop ${TC} first`);
    // The same version twice keeps its short text.
    const twice = await refusal(client.start(TC), 'start_container_started');
    assert.equal(twice.message, `container ${TC} is already started`);
  });
});
