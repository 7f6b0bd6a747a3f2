// Packs every example under examples/<name>/ (a manifest.yaml, an optional root/ and,
// for compiled examples, the binary the Makefile put in build/ at the manifest's init
// path) into signed NPKs: node scripts/pack-examples.mjs --key <seed> --out <dir>
import { parseArgs } from 'node:util';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { parseManifest } = await import(join(root, 'dist/src/manifest/index.js'));
const { packNpk } = await import(join(root, 'dist/src/npk/builder.js'));
const { readSigningKey } = await import(join(root, 'dist/src/npk/keys.js'));

const { values } = parseArgs({ options: { key: { type: 'string' }, out: { type: 'string' } } });
if (!values.key || !values.out) {
  console.error('usage: pack-examples.mjs --key <key file> --out <dir>');
  process.exit(2);
}
const key = await readSigningKey(values.key);
mkdirSync(values.out, { recursive: true });
const examples = join(root, 'examples');
for (const name of readdirSync(examples).sort()) {
  const manifestPath = join(examples, name, 'manifest.yaml');
  if (!existsSync(manifestPath)) continue;
  const manifest = parseManifest(readFileSync(manifestPath, 'utf8'));
  const stage = mkdtempSync(join(tmpdir(), `ns-example-${name}-`));
  try {
    if (existsSync(join(examples, name, 'root'))) cpSync(join(examples, name, 'root'), stage, { recursive: true });
    if (manifest.init) {
      const built = join(examples, name, 'build', basename(manifest.init));
      if (existsSync(built)) {
        mkdirSync(join(stage, dirname(manifest.init)), { recursive: true });
        copyFileSync(built, join(stage, manifest.init));
        chmodSync(join(stage, manifest.init), 0o755);
      }
    }
    const out = join(values.out, `${manifest.name}-${manifest.version}.npk`);
    await packNpk({ manifest, root: stage, key, out });
    console.log(`packed ${out}`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
