/**
 * squashfs writer versus mksquashfs on a ~200 MB tree of mixed files.
 *
 * The tree is built once and cached under /var/tmp/northstar-bench/: a debootstrap minbase
 * bookworm root (fallback: a generated tree of many small and some large files), topped up
 * with generated files to ~200 MB. Both packers use gzip and the same block size; each runs
 * 3 times (alternating); we print median times, the ratio ours/mksquashfs and image sizes.
 *
 *   npm run bench -- squashfs
 *   env: BENCH_BLOCK_SIZE (default 131072), BENCH_RUNS (3), BENCH_DIR (/var/tmp/northstar-bench),
 *        BENCH_GENERATED=1 (skip debootstrap, generated tree only)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeSquashfs } from '../src/npk/squashfs/writer.js';

const BASE = process.env['BENCH_DIR'] ?? '/var/tmp/northstar-bench';
/** BENCH_GENERATED=1 skips debootstrap and uses only the generated tree. */
const forceGenerated = process.env['BENCH_GENERATED'] === '1';
const TREE = join(BASE, 'squashfs-tree');
const MARKER = join(BASE, 'squashfs-tree.json');
const TARGET = 200 * 1024 * 1024;
const blockSize = Number(process.env['BENCH_BLOCK_SIZE'] ?? 131072);
const runs = Number(process.env['BENCH_RUNS'] ?? 3);

interface TreeInfo {
  source: string;
  bytes: number;
  files: number;
}

function treeBytes(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        bytes += st.size;
        files++;
      }
    }
  };
  walk(dir);
  return { bytes, files };
}

/** Small deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

/** Text-like content that compresses roughly like source code or docs. */
function textLike(r: () => number, size: number, words: string[]): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < size) {
    const w = words[r() % words.length]!;
    const sep = r() % 11 === 0 ? '\n' : ' ';
    parts.push(w, sep);
    n += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

function generate(dir: string, budget: number, seed: number): void {
  const r = rng(seed);
  const words: string[] = [];
  for (let i = 0; i < 4000; i++) {
    let w = '';
    const len = 2 + (r() % 9);
    for (let j = 0; j < len; j++) w += String.fromCharCode(97 + (r() % 26));
    words.push(w);
  }
  let used = 0;
  let i = 0;
  mkdirSync(dir, { recursive: true });
  while (used < budget) {
    const sub = join(dir, `d${Math.floor(i / 200)}`);
    mkdirSync(sub, { recursive: true });
    const kind = r() % 1000;
    let size: number;
    let content: Buffer;
    if (kind < 970) {
      size = 100 + (r() % 8000); // many small files (fragments)
      content = textLike(r, size, words);
    } else if (kind < 995) {
      size = 100000 + (r() % 2000000); // medium, binary-ish: half random, half text
      const half = Math.floor(size / 2);
      const rnd = Buffer.alloc(half);
      for (let k = 0; k + 4 <= half; k += 4) rnd.writeUInt32LE(r(), k);
      content = Buffer.concat([rnd, textLike(r, size - half, words)]);
    } else {
      size = 1000000 + (r() % 6000000); // large text
      content = textLike(r, size, words);
    }
    size = Math.min(size, budget - used);
    writeFileSync(join(sub, `f${i}.dat`), content.subarray(0, size));
    used += size;
    i++;
  }
}

function prepareTree(): TreeInfo {
  if (existsSync(MARKER)) return JSON.parse(readFileSync(MARKER, 'utf8')) as TreeInfo;
  mkdirSync(BASE, { recursive: true });
  let source: string;
  if (forceGenerated) {
    rmSync(TREE, { recursive: true, force: true });
    mkdirSync(TREE, { recursive: true });
    source = 'generated (BENCH_GENERATED=1)';
  } else if (existsSync(join(TREE, 'etc/debian_version')) && existsSync(join(TREE, 'var/lib/dpkg/status'))) {
    source = 'debootstrap --variant=minbase bookworm (reused)';
  } else {
    rmSync(TREE, { recursive: true, force: true });
    console.log('building the tree with debootstrap (once) ...');
    const d = spawnSync('debootstrap', ['--variant=minbase', 'bookworm', TREE, 'http://deb.debian.org/debian'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 30 * 60 * 1000,
    });
    if (d.status === 0) source = 'debootstrap --variant=minbase bookworm';
    else {
      console.log(`debootstrap failed (${d.error?.message ?? `exit ${d.status}`}); FALLING BACK to a generated tree`);
      rmSync(TREE, { recursive: true, force: true });
      mkdirSync(TREE, { recursive: true });
      source = 'generated (debootstrap failed)';
    }
  }
  const have = treeBytes(TREE).bytes;
  if (have < TARGET - 5 * 1024 * 1024) {
    generate(join(TREE, 'northstar-bench-topup'), TARGET - have, 42);
    source += ` + ${((TARGET - have) / 1048576).toFixed(0)} MB generated`;
  }
  const info: TreeInfo = { source, ...treeBytes(TREE) };
  writeFileSync(MARKER, JSON.stringify(info));
  return info;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  if (spawnSync('mksquashfs', ['-version']).error) {
    console.log('SKIP: mksquashfs is not installed, nothing to compare against');
    return;
  }
  const info = prepareTree();
  console.log(`tree: ${TREE} (${info.source}): ${(info.bytes / 1048576).toFixed(1)} MB in ${info.files} files`);
  console.log(`block size ${blockSize}, gzip, ${runs} runs each, node ${process.version}`);
  const oursImg = join(BASE, 'ours.img');
  const refImg = join(BASE, 'mksquashfs.img');
  const ours: number[] = [];
  const ref: number[] = [];
  let oursSize = 0;
  let refSize = 0;
  for (let i = 0; i < runs; i++) {
    let t = process.hrtime.bigint();
    const r = spawnSync('mksquashfs', [TREE, refImg, '-comp', 'gzip', '-b', String(blockSize), '-noappend', '-no-progress', '-quiet'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`mksquashfs failed with status ${r.status}`);
    ref.push(Number(process.hrtime.bigint() - t) / 1e9);
    refSize = statSync(refImg).size;

    t = process.hrtime.bigint();
    const w = await writeSquashfs(oursImg, { root: TREE, compression: 'gzip', blockSize });
    ours.push(Number(process.hrtime.bigint() - t) / 1e9);
    oursSize = w.size;
    console.log(`  run ${i + 1}: mksquashfs ${ref[i]!.toFixed(2)} s, ours ${ours[i]!.toFixed(2)} s`);
  }
  const mo = median(ours);
  const mr = median(ref);
  console.log(`median time: ours ${mo.toFixed(2)} s, mksquashfs ${mr.toFixed(2)} s, ratio ours/mksquashfs ${(mo / mr).toFixed(3)} (target <= 1.5)`);
  console.log(
    `image size: ours ${oursSize} B, mksquashfs ${refSize} B, ratio ours/mksquashfs ${(oursSize / refSize).toFixed(4)} (target <= 1.03)`,
  );
  rmSync(oursImg, { force: true });
  rmSync(refImg, { force: true });
}

await main();
