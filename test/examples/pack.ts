/**
 * Packs the examples of examples/<name>/ for the tests the way scripts/pack-examples.mjs
 * does it (root/ as the root, build/<basename of init> at the init path), after
 * `make -C examples` built them, signed with the upstream example key.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifest } from '../../src/manifest/index.js';
import { packNpk } from '../../src/npk/builder.js';
import { readSigningKey } from '../../src/npk/keys.js';
import { KEY } from '../runtime/harness.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const EXAMPLES = join(ROOT, 'examples');
const OUT = mkdtempSync(join(tmpdir(), 'ns-example-npks-'));
process.on('exit', () => rmSync(OUT, { recursive: true, force: true }));

let built = false;
/** `make -s -C examples`, once per process. */
export function buildExamples(): void {
  if (built) return;
  execFileSync('make', ['-s', '-C', EXAMPLES], { stdio: ['ignore', 'ignore', 'inherit'] });
  built = true;
}

const cache = new Map<string, Promise<string>>();

/**
 * The signed NPK of examples/<dir>; `edit` changes the manifest text first (then the
 * result is not cached). Returns the NPK path.
 */
export function packExample(dir: string, edit?: (manifest: string) => string): Promise<string> {
  const key = edit ? undefined : dir;
  const hit = key ? cache.get(key) : undefined;
  if (hit) return hit;
  const job = (async () => {
    buildExamples();
    const src = join(EXAMPLES, dir);
    let text = readFileSync(join(src, 'manifest.yaml'), 'utf8');
    if (edit) text = edit(text);
    const manifest = parseManifest(text);
    const stage = mkdtempSync(join(OUT, `root-${dir}-`));
    try {
      if (existsSync(join(src, 'root'))) cpSync(join(src, 'root'), stage, { recursive: true });
      if (manifest.init) {
        const bin = join(src, 'build', basename(manifest.init));
        if (existsSync(bin)) {
          mkdirSync(join(stage, dirname(manifest.init)), { recursive: true });
          copyFileSync(bin, join(stage, manifest.init));
          chmodSync(join(stage, manifest.init), 0o755);
        }
      }
      const out = join(mkdtempSync(join(OUT, 'npk-')), `${manifest.name}-${manifest.version}.npk`);
      await packNpk({ manifest, root: stage, key: await readSigningKey(KEY), out });
      return out;
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  })();
  if (key) cache.set(key, job);
  return job;
}
