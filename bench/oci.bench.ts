/**
 * `sextant import` of a Debian-sized image against what one would do without it: `umoci
 * unpack` of the same image, then `sextant pack` of its rootfs. Wall time and peak RSS (GNU
 * time's %M) of each process, medians over ROUNDS runs. The image is the cached
 * debootstrap root of `FROM debian:bookworm` (/var/cache/northstar/debootstrap/bookworm-amd64)
 * as one gzip layer, made here with tar and umoci.
 * Run (as root, needs umoci, /usr/bin/time and the debootstrap cache): npm run bench -- oci
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.js';

const ROUNDS = 3;
const BASE = '/var/cache/northstar/debootstrap/bookworm-amd64';
const SEXTANT = fileURLToPath(new URL('../src/cli/sextant.js', import.meta.url));


/** Wall seconds and peak RSS (KiB) of one command. */
function timed(cmd: string, args: string[]): { secs: number; rssKiB: number } {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop()!.split(' ');
  return { secs: Number(last[0]), rssKiB: Number(last[1]) };
}

function main(): void {
  const missing = [
    process.getuid?.() !== 0 ? 'root' : '',
    spawnSync('umoci', ['--version']).status !== 0 ? 'umoci' : '',
    existsSync('/usr/bin/time') ? '' : '/usr/bin/time (apt-get install time)',
    existsSync(`${BASE}.complete`) ? '' : `${BASE} (build a recipe FROM debian:bookworm once)`,
  ].filter(Boolean);
  if (missing.length) {
    console.log(`oci bench: needs ${missing.join(', ')}; skipped`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ns-oci-bench-'));
  try {
    const layout = join(dir, 'layout');
    execFileSync('tar', ['-C', BASE, '--numeric-owner', '-cf', join(dir, 'layer.tar'), '.']);
    execFileSync('umoci', ['init', '--layout', layout]);
    execFileSync('umoci', ['new', '--image', `${layout}:v1`]);
    execFileSync('umoci', ['raw', 'add-layer', '--image', `${layout}:v1`, join(dir, 'layer.tar')]);
    execFileSync('umoci', ['config', '--image', `${layout}:v1`, '--config.user=1000:1000', '--config.cmd=/bin/true']);
    rmSync(join(dir, 'layer.tar'));
    const blobs = execFileSync('du', ['-sb', join(layout, 'blobs')], { encoding: 'utf8' }).split('\t')[0];
    writeFileSync(join(dir, 'manifest.yaml'), 'name: bench\nversion: 0.0.1\nuid: 1000\ngid: 1000\ninit: /bin/true\n');
    const imp: { secs: number; rssKiB: number }[] = [];
    const unp: { secs: number; rssKiB: number }[] = [];
    const pack: { secs: number; rssKiB: number }[] = [];
    let sizes = '';
    for (let i = 0; i < ROUNDS; i++) {
      const a = join(dir, `import-${i}.npk`);
      imp.push(timed(process.execPath, [SEXTANT, 'import', `oci:${layout}:v1`, '-m', join(dir, 'manifest.yaml'), '-o', a]));
      const bundle = join(dir, `bundle-${i}`);
      unp.push(timed('umoci', ['unpack', '--image', `${layout}:v1`, bundle]));
      const b = join(dir, `pack-${i}.npk`);
      pack.push(timed(process.execPath, [SEXTANT, 'pack', '-m', join(dir, 'manifest.yaml'), '-r', join(bundle, 'rootfs'), '-o', b]));
      sizes = `import ${statSync(a).size} bytes, unpack+pack ${statSync(b).size} bytes`;
      rmSync(bundle, { recursive: true, force: true });
      rmSync(a);
      rmSync(b);
    }
    const m = (xs: { secs: number; rssKiB: number }[]) => ({ secs: median(xs.map((x) => x.secs)), rss: median(xs.map((x) => x.rssKiB)) });
    const I = m(imp);
    const U = m(unp);
    const P = m(pack);
    const both = median(unp.map((u, i) => u.secs + pack[i]!.secs));
    console.log(`image: ${BASE} as one gzip layer (${blobs} bytes of blobs); medians of ${ROUNDS} runs; NPKs: ${sizes}`);
    console.log(`  sextant import            ${I.secs.toFixed(2)} s   peak RSS ${(I.rss / 1024).toFixed(0)} MiB`);
    console.log(`  umoci unpack              ${U.secs.toFixed(2)} s   peak RSS ${(U.rss / 1024).toFixed(0)} MiB`);
    console.log(`  sextant pack              ${P.secs.toFixed(2)} s   peak RSS ${(P.rss / 1024).toFixed(0)} MiB`);
    console.log(`  unpack + pack             ${both.toFixed(2)} s   peak RSS ${(Math.max(U.rss, P.rss) / 1024).toFixed(0)} MiB (the larger of the two)`);
    console.log(`  import / (unpack + pack)  ${(I.secs / both).toFixed(2)}x time`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
