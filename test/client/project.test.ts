/**
 * The client library from another project, as docs/client.md says to use it: `npm pack` of
 * this checkout, installed into a new project directory (offline: the dependencies come from
 * npm's cache, filled by the checkout's own `npm ci`), then the README's and client.md's
 * snippets run as written against a real runtime, to their end (a snippet that does not
 * close its connection never ends).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isRoot, tempDir } from '../helpers/tmp.js';
import { startRuntime, testNpks } from '../runtime/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

/** The fenced block of `lang` after the line containing `after` in a markdown file. */
function snippet(file: string, after: string, lang: string): string {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const at = text.indexOf(after);
  assert.ok(at >= 0, `${file} has "${after}"`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(text.slice(at));
  assert.ok(m, `${file}: a ${lang} block after "${after}"`);
  return m[1]!;
}

/**
 * A project that depends on the packed tarball, with a lock file made from this checkout's
 * (the same dependency versions and integrities), so that `npm ci --offline` installs it
 * from the cache without the network.
 */
async function projectWithTarball(dir: string): Promise<string> {
  const packDir = join(dir, 'pack');
  mkdirSync(packDir);
  const packed = await run('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: ROOT });
  const tgz = join(packDir, packed.stdout.trim().split('\n').pop()!);
  const project = join(dir, 'app');
  mkdirSync(project);
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean; [k: string]: unknown }> };
  const self = lock.packages['']!;
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { 'northstar-ts': `file:${tgz}` } },
    'node_modules/northstar-ts': {
      version: self['version'],
      resolved: `file:${tgz}`,
      integrity: `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`,
      dependencies: self['dependencies'],
      bin: self['bin'],
      engines: self['engines'],
      license: self['license'],
    },
  };
  for (const [k, v] of Object.entries(lock.packages)) if (k.startsWith('node_modules/') && !v.dev && !v.devOptional) packages[k] = v;
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: { 'northstar-ts': `file:${tgz}` } }, null, 2));
  writeFileSync(join(project, 'package-lock.json'), JSON.stringify({ name: 'app', lockfileVersion: 3, requires: true, packages }, null, 2));
  await run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: project }).catch((e: Error & { stderr?: string }) => {
    throw new Error(`npm ci --offline of the packed tarball failed (are the dependencies in npm's cache? ./scripts/install.sh's npm ci puts them there): ${e.stderr ?? e.message}`);
  });
  return project;
}

describe('the client library in another project', { skip: !isRoot && 'needs root (the runtime mounts and starts containers)', timeout: 600_000 }, () => {
  test('npm pack, installed offline into a new project: the README and client.md snippets run to their end', async (t) => {
    const npks = await testNpks();
    const rt = await startRuntime(t, { npks: [npks['test-container']!, npks['test-resource']!] });
    const project = await projectWithTarball(tempDir(t, 'ns-project-'));
    const env = { ...process.env, NORTHSTAR_URL: rt.consoleUrl };

    writeFileSync(join(project, 'readme.mjs'), snippet('README.md', 'Apps and tools use the client library', 'js'));
    const readme = await run(process.execPath, ['readme.mjs'], { cwd: project, env, timeout: 120_000 });
    assert.match(readme.stdout, /name: 'test-container'/);
    assert.match(readme.stdout, /name: 'test-resource'/);

    // client.md's is TypeScript without types: it runs as JavaScript.
    writeFileSync(join(project, 'client.mjs'), snippet('docs/client.md', 'this starts the test', 'ts'));
    const doc = await run(process.execPath, ['client.mjs'], { cwd: project, env, timeout: 120_000 });
    assert.match(doc.stdout, /test-container:0\.0\.1 exited \{ exit: \{ code: 3 \} \}\n$/);

    // Types come along: the d.ts of the entry point.
    assert.ok(readFileSync(join(project, 'node_modules', 'northstar-ts', 'dist', 'src', 'index.d.ts'), 'utf8').includes('client/index.js'));
  });

  test('npm install <path-to-checkout>: a link, the import resolves through the exports map', async (t) => {
    const project = join(tempDir(t, 'ns-project-'), 'app');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', ROOT], { cwd: project });
    writeFileSync(join(project, 'main.mjs'), "import { Client, parseManifest } from 'northstar-ts';\nconsole.log(typeof Client.connect, typeof parseManifest);\n");
    const r = await run(process.execPath, ['main.mjs'], { cwd: project });
    assert.equal(r.stdout, 'function function\n');
    // Only the entry point is public: a deep import is refused by the exports map.
    writeFileSync(join(project, 'deep.mjs'), "import 'northstar-ts/dist/src/client/index.js';\n");
    await assert.rejects(run(process.execPath, ['deep.mjs'], { cwd: project }), /ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });
});
