#!/usr/bin/env node
/**
 * sextant: make and read NPK packages. Thin: parse arguments, call src/npk.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { errorMessage } from '../common/errors.js';
import { manifestJsonSchema, parseManifest } from '../manifest/index.js';
import { packClones, packNpk, packTarget, type Compression } from '../npk/builder.js';
import { generateKeyPair, readPublicKey, readSigningKey } from '../npk/keys.js';
import { inspectLong, inspectShort, unpackNpk, verifyNpk } from '../npk/tools.js';
import { BuildStepError, buildRecipe, DEFAULT_CACHE_DIR } from '../recipe/build.js';
import { DEFAULT_DEBOOTSTRAP_CACHE } from '../recipe/base.js';
import { checkStartable } from '../recipe/check.js';
import { importImage } from '../recipe/import.js';

const COMPRESSIONS = ['none', 'gzip', 'lzo', 'xz', 'zstd'] as const;

function positiveInt(what: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
      throw new InvalidArgumentError(`${what} must be a positive integer`);
    }
    return Number(v);
  };
}

function sourceDateEpoch(): number | undefined {
  const v = process.env['SOURCE_DATE_EPOCH'];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) {
    throw new Error(`SOURCE_DATE_EPOCH must be seconds since the epoch (0..4294967295), got '${v}'`);
  }
  return Number(v);
}

function progressBar(label = 'packing'): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = -1;
  return (done, total) => {
    const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    if (pct === last) return;
    last = pct;
    const width = 30;
    const fill = Math.round((pct / 100) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${pct}%${pct === 100 ? '\n' : ''}`);
  };
}

const program = new Command('sextant')
  .description('Northstar package (NPK) tool: pack, unpack, inspect, verify, gen-key, build, import, schema')
  .version('0.1.0')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

program
  .command('pack')
  .description('pack a root directory and a manifest into an NPK')
  .requiredOption('-m, --manifest-path <file>', 'manifest (YAML, JSON or TOML)')
  .option('-r, --root <dir>', 'root filesystem directory')
  .option('-k, --key <file>', 'ed25519 signing key (32-byte seed); signs and appends verity data')
  .requiredOption('-o, --out <path>', 'output file, or a directory for <name>-<version>.npk (created when given with a trailing /)')
  .addOption(new Option('-c, --compression <algorithm>', 'squashfs compression').choices(COMPRESSIONS).default('gzip'))
  .option('-b, --block-size <bytes>', 'squashfs block size (power of two, 4096..1048576)', positiveInt('block size'))
  .option('--clones <n>', 'pack n copies named <name>-<i> (out must be a directory)', positiveInt('clones'))
  .option('--seed <text>', 'derive the verity salt and UUID from this text (reproducible builds)')
  .option('--mksquashfs <bin>', 'accepted for compatibility with upstream; our own squashfs writer is always used')
  .action(async (o: { manifestPath: string; root?: string; key?: string; out: string; compression: Compression; blockSize?: number; clones?: number; seed?: string }) => {
    const text = await readFile(o.manifestPath, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new Error(`manifest ${o.manifestPath}: ${e.code ?? e.message}`);
    });
    let manifest;
    try {
      manifest = parseManifest(text);
    } catch (e) {
      throw new Error(`${o.manifestPath}: ${errorMessage(e)}`);
    }
    // What the runtime would refuse at start (a relative init or mount point, an init missing from the root, ...).
    await checkStartable(manifest, o.manifestPath, o.root);
    const key = o.key ? await readSigningKey(o.key) : undefined;
    const target = o.clones ? o.out : await packTarget(o.out, manifest.name, manifest.version);
    const opts = {
      manifest,
      root: o.root,
      key,
      compression: o.compression,
      blockSize: o.blockSize,
      mtime: sourceDateEpoch(),
      seed: o.seed,
      onProgress: progressBar(),
    };
    const started = Date.now();
    const results = o.clones
      ? await packClones({ ...opts, out: o.out }, o.clones)
      : [await packNpk({ ...opts, out: target })];
    for (const r of results) {
      console.log(`Packed ${r.path} [${r.size} bytes, ${o.compression}] in ${((Date.now() - started) / 1000).toFixed(2)}s`);
    }
  });

program
  .command('unpack')
  .description('extract an NPK: manifest.yaml, signature.yaml and the image into <out>/root')
  .requiredOption('-n, --npk <file>', 'NPK to unpack')
  .requiredOption('-o, --out <dir>', 'output directory')
  .option('--unsquashfs <bin>', 'accepted for compatibility with upstream; our own squashfs reader is always used')
  .action(async (o: { npk: string; out: string }) => {
    const { warnings } = await unpackNpk(o.npk, o.out);
    for (const w of warnings) console.error(`warning: ${w}`);
  });

program
  .command('inspect')
  .description('print the content of an NPK')
  .argument('<npk>', 'NPK file')
  .option('-s, --short', 'one line: name, version, NPK version, resource container')
  .option('--unsquashfs <bin>', 'accepted for compatibility with upstream; our own squashfs reader is always used')
  .action(async (npk: string, o: { short?: boolean }) => {
    process.stdout.write(o.short ? `${await inspectShort(npk)}\n` : await inspectLong(npk));
  });

program
  .command('verify')
  .description('verify an NPK fully, as the runtime does: layout, signature, hashes and the whole verity hash tree')
  .requiredOption('-k, --key <file>', 'ed25519 public key (32 bytes)')
  .argument('<npk>', 'NPK file')
  .action(async (npk: string, o: { key: string }) => {
    const key = await readPublicKey(o.key);
    const r = await verifyNpk(npk, key);
    console.log(`${npk}: ok (${r.name}:${r.version}, root hash ${r.rootHash})`);
  });

program
  .command('gen-key')
  .description('generate an ed25519 key pair: <out>/<name>.key (seed) and <out>/<name>.pub')
  .requiredOption('-n, --name <name>', 'key name')
  .requiredOption('-o, --out <dir>', 'output directory (created if missing)')
  .action(async (o: { name: string; out: string }) => {
    const { key, pub } = await generateKeyPair(o.name, o.out);
    console.log(`wrote ${key} and ${pub}`);
  });

program
  .command('build')
  .description('build an NPK from a recipe (FROM, COPY, RUN, ENTRYPOINT, CMD, ENV, USER); see docs/recipes.md')
  .argument('<recipe>', 'recipe file; COPY sources and FROM paths are relative to its directory')
  .requiredOption('-m, --manifest-path <file>', 'manifest (YAML, JSON or TOML) merged with what the recipe implies')
  .option('-k, --key <file>', 'ed25519 signing key (32-byte seed); signs and appends verity data')
  .requiredOption('-o, --out <path>', 'output file, or a directory for <name>-<version>.npk (created when given with a trailing /)')
  .addOption(new Option('-c, --compression <algorithm>', 'squashfs compression').choices(COMPRESSIONS).default('gzip'))
  .option('--cache-dir <dir>', 'layer cache', DEFAULT_CACHE_DIR)
  .option('--debootstrap-cache <dir>', 'cache of debian:<suite> roots', DEFAULT_DEBOOTSTRAP_CACHE)
  .option('--mirror <url>', 'Debian mirror for FROM debian:<suite> (default: the first of apt\'s sources)')
  .option('--no-cache', 'run every step again and repack (results are still stored)')
  .option('--prune', 'after the build, remove every cached layer this build did not use')
  .action(async (recipe: string, o: { manifestPath: string; key?: string; out: string; compression: Compression; cacheDir: string; debootstrapCache: string; mirror?: string; cache: boolean; prune?: boolean }) => {
    const key = o.key ? await readSigningKey(o.key) : undefined;
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const started = Date.now();
    try {
      const r = await buildRecipe({
        recipe,
        manifest: o.manifestPath,
        out: o.out,
        key,
        cacheDir: o.cacheDir,
        debootstrapCache: o.debootstrapCache,
        mirror: o.mirror,
        noCache: !o.cache,
        prune: o.prune === true,
        compression: o.compression,
        mtime: sourceDateEpoch(),
        signal: ac.signal,
      });
      const cached = r.steps.filter((s) => s.cached).length;
      const what = r.reused ? 'Unchanged' : 'Built';
      console.log(`${what} ${r.npk.path} [${r.npk.size} bytes, ${r.layers.length} layers, ${cached} cached] in ${((Date.now() - started) / 1000).toFixed(2)}s`);
    } catch (e) {
      if (e instanceof BuildStepError) {
        console.error(`sextant: error: ${e.message}`);
        process.exitCode = e.exitCode === 0 ? 1 : e.exitCode;
        return;
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });

program
  .command('import')
  .description('make an NPK from an OCI image: the layers become the root, the image config fills what the manifest leaves open; see docs/oci.md')
  .argument('<image>', 'oci:<dir>[:<tag>], oci-archive:<file>[:<tag>] or docker-archive:<file>[:<name:tag>]')
  .requiredOption('-m, --manifest-path <file>', 'manifest (YAML, JSON or TOML); its values win over the image config')
  .option('-k, --key <file>', 'ed25519 signing key (32-byte seed); signs and appends verity data')
  .requiredOption('-o, --out <path>', 'output file, or a directory for <name>-<version>.npk (created when given with a trailing /)')
  .option('--platform <os/arch[/variant]>', "the image of an index to take (default: this machine's)")
  .addOption(new Option('-c, --compression <algorithm>', 'squashfs compression').choices(COMPRESSIONS).default('gzip'))
  .option('--seed <text>', 'derive the verity salt and UUID from this text (reproducible builds)')
  .action(async (image: string, o: { manifestPath: string; key?: string; out: string; platform?: string; compression: Compression; seed?: string }) => {
    const key = o.key ? await readSigningKey(o.key) : undefined;
    const started = Date.now();
    // Ctrl-C stops between layer entries and the staging tree is removed (packing, once begun, finishes).
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const r = await importImage({
      signal: ac.signal,
      image,
      platform: o.platform,
      manifest: o.manifestPath,
      key,
      out: o.out,
      compression: o.compression,
      mtime: sourceDateEpoch(),
      seed: o.seed,
      warn: (m) => console.error(`warning: ${m}`),
      onExtract: progressBar('layers '),
      onPack: progressBar('packing'),
    }).finally(() => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
    console.log(`Imported ${image} (${r.platform}, ${r.layers} layer${r.layers === 1 ? '' : 's'}, ${r.digest}) as ${r.npk.path} [${r.npk.size} bytes, ${o.compression}] in ${((Date.now() - started) / 1000).toFixed(2)}s`);
  });

program
  .command('schema')
  .description('print the JSON Schema of the manifest')
  .action(() => {
    console.log(JSON.stringify(manifestJsonSchema(), null, 2));
  });

program.parseAsync().catch((e: unknown) => {
  console.error(`sextant: error: ${errorMessage(e)}`);
  process.exitCode = 1;
});
