/**
 * `nstar install --replace` (ours): a rebuilt package of the same name and version in one
 * step: stopped if it runs, uninstalled, installed, started again if it ran; another client
 * sees each step as its usual notification and the new package afterwards. Against a real
 * runtime with the test container.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Notification } from '../../src/client/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, tempDir } from '../helpers/tmp.js';
import { isStarted, nextNotification, packTestVariant, startRuntime, testContainerManifest, testNpks } from '../runtime/harness.js';
import { nstar } from './run.js';

const TC = 'test-container:0.0.1';

/** The notifications of `client` as text, until one matches `last`. */
async function collect(it: AsyncIterator<Notification>, last: (n: Notification) => boolean): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const r = await it.next();
    if (r.done) throw new Error(`notifications ended after ${out.join(', ')}`);
    out.push(JSON.stringify(r.value));
    if (last(r.value)) return out;
  }
}

describe('nstar install --replace', { skip: !isRoot && 'needs root (the runtime mounts and starts containers)', timeout: 600_000 }, () => {
  test('a running container: stopped, uninstalled, the new package installed and started; a stopped one is not started; a new one is installed', async (t) => {
    const npks = await testNpks();
    // The rebuild: same name and version, another manifest (an env the old one lacks).
    const rebuilt = await packTestVariant('test-container-rebuilt', `${testContainerManifest()}env:\n  GENERATION: "2"\n`);
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
    const u = ['-u', rt.consoleUrl];
    const other = await rt.client({ subscribe: true });
    t.after(() => other.close());
    const it = other[Symbol.asyncIterator]();

    await other.start(TC, { args: ['sleep'] });
    await nextNotification(other, isStarted(TC));
    const r = await nstar(...u, 'install', '--replace', '-t', '5', rebuilt, 'default');
    assert.deepEqual([r.code, r.stdout, r.stderr], [0, `replaced ${TC}: stopped (signal 15), uninstalled, installed ${rebuilt} into default, started\n`, '']);
    // Another client saw the usual states, in order.
    assert.deepEqual(await collect(it, isStarted(TC)), [
      `{"exit":["${TC}",{"signalled":{"signal":15}}]}`,
      `{"uninstall":"${TC}"}`,
      `{"install":"${TC}"}`,
      `{"started":"${TC}"}`,
    ]);
    const data = await other.inspect(TC);
    assert.notEqual(data.process, null, 'running again');
    assert.equal(data.manifest.env?.['GENERATION'], '2', 'the new package');
    assert.equal(data.repository, 'default');

    // Not running: replaced, not started.
    await nstar(...u, 'stop', TC);
    const idle = await nstar(...u, 'install', '--replace', '--format', 'json', npks['test-container']!, 'default');
    assert.equal(idle.code, 0, idle.stderr);
    assert.deepEqual(JSON.parse(idle.stdout), { installed: TC, path: npks['test-container'], repository: 'default', replaced: true, restarted: false });
    const back = await other.inspect(TC);
    assert.deepEqual([back.process, back.manifest.env?.['GENERATION']], [null, undefined]);

    // Not installed at all: a plain install.
    const fresh = await packTestVariant('test-container-v3', testContainerManifest().replace('version: 0.0.1', 'version: 0.0.3'));
    const f = await nstar(...u, 'install', '--replace', fresh, 'memory');
    assert.deepEqual([f.code, f.stdout], [0, `installed ${fresh} into memory\n`], f.stderr);
    assert.equal((await other.inspect('test-container:0.0.3')).repository, 'memory');

    // Without --replace the duplicate is refused, as upstream.
    const dup = await nstar(...u, 'install', fresh, 'memory');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /^Error: .*test-container:0\.0\.3/);
  });

  test('a file that is not an npk is refused before anything is stopped', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
    const client = await rt.client({ subscribe: true });
    t.after(() => client.close());
    await client.start(TC, { args: ['sleep'] });
    await nextNotification(client, isStarted(TC));
    const notNpk = join(tempDir(t), 'manifest.yaml');
    writeFileSync(notNpk, testContainerManifest());
    const r = await nstar('-u', rt.consoleUrl, 'install', '--replace', notNpk, 'default');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: .*manifest\.yaml: /);
    assert.notEqual((await client.inspect(TC)).process, null, 'still running');
  });
});
