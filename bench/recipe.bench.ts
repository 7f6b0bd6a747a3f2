/**
 * `sextant build` of a recipe with 5 COPY and 5 RUN steps (FROM scratch, busybox), cold
 * (empty layer cache) and cached (a rebuild with no changes), against a reference measured
 * in the same run: packNpk of the same final root (what a cached build must still do).
 * FROM scratch on purpose: no Debian base, so neither debootstrap nor its cache takes part
 * (`FROM debian:<suite>` is covered by test/recipe/build.test.ts with the real cache).
 * Run (as root, needs native/build/northstar-launch and /bin/busybox): npm run bench -- recipe
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildRecipe } from '../src/recipe/build.js';
import { unpackNpk } from '../src/npk/tools.js';
import { packNpk } from '../src/npk/builder.js';
import { parseManifest } from '../src/manifest/index.js';
import { median } from './stats.js';

const ROUNDS = 7;


async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('recipe bench: needs root (overlay mounts and the launch core); skipped');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ns-recipe-bench-'));
  try {
    copyFileSync('/bin/busybox', join(dir, 'busybox'));
    mkdirSync(join(dir, 'files'));
    for (let i = 0; i < 20; i++) writeFileSync(join(dir, 'files', `f${i}.bin`), randomBytes(64 * 1024));
    writeFileSync(join(dir, 'app.conf'), 'key = value\n');
    writeFileSync(join(dir, 'data.txt'), 'some data\n'.repeat(1000));
    writeFileSync(
      join(dir, 'Recipe'),
      `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
COPY files/ /opt/files/
COPY app.conf /etc/app.conf
RUN mkdir -p /var/lib/app && for i in 1 2 3 4 5 6 7 8 9 10; do echo $i > /var/lib/app/$i; done
COPY data.txt /srv/data.txt
RUN sort -r /srv/data.txt | uniq > /srv/sorted.txt && rm /srv/data.txt
COPY files/f1.bin /opt/one.bin
RUN --network=none sha256sum /opt/files/* > /opt/sums
RUN ls -lR /opt > /opt/listing
CMD ["/bin/cat", "/opt/sums"]
`,
    );
    writeFileSync(join(dir, 'manifest.yaml'), 'name: bench\nversion: 0.0.1\nuid: 1000\ngid: 1000\n');
    const opts = (cache: string, out: string) => ({
      recipe: join(dir, 'Recipe'),
      manifest: join(dir, 'manifest.yaml'),
      out: join(dir, out),
      cacheDir: join(dir, cache),
      log: () => undefined,
    });
    const cold: number[] = [];
    const cached: number[] = [];
    const pack: number[] = [];
    // Warm-up (JIT, page cache, the launch core's sealed copy).
    await buildRecipe(opts('warm', 'warm.npk'));
    await unpackNpk(join(dir, 'warm.npk'), join(dir, 'unpacked'));
    const manifest = parseManifest('name: bench\nversion: 0.0.1\ninit: /bin/cat\nargs: [/opt/sums]\nuid: 1000\ngid: 1000\n');
    for (let i = 0; i < ROUNDS; i++) {
      const cacheDir = `cache-${i}`;
      let t = process.hrtime.bigint();
      const c = await buildRecipe(opts(cacheDir, 'cold.npk'));
      cold.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (c.steps.some((s) => s.cached)) throw new Error('a cold build hit the cache');
      t = process.hrtime.bigint();
      const w = await buildRecipe(opts(cacheDir, 'cached.npk'));
      cached.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (!w.steps.filter((s) => s.op === 'COPY' || s.op === 'RUN').every((s) => s.cached)) throw new Error('a rebuild missed the cache');
      t = process.hrtime.bigint();
      await packNpk({ manifest, root: join(dir, 'unpacked', 'root'), out: join(dir, 'ref.npk') });
      pack.push(Number(process.hrtime.bigint() - t) / 1e6);
      rmSync(join(dir, cacheDir), { recursive: true, force: true });
    }
    const mc = median(cold);
    const mw = median(cached);
    const mp = median(pack);
    console.log(`recipe build, 5 COPY + 5 RUN, ${ROUNDS} rounds (medians):`);
    console.log(`  cold (empty cache)      ${mc.toFixed(1)} ms`);
    console.log(`  cached (no changes)     ${mw.toFixed(1)} ms`);
    console.log(`  reference: packNpk only ${mp.toFixed(1)} ms`);
    console.log(`  cold / cached = ${(mc / mw).toFixed(2)}x; cached / packNpk = ${(mw / mp).toFixed(2)}x`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
