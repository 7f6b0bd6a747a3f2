/**
 * Mount time per package: a ~10 MB NPK (incompressible payload) mounted and unmounted
 * many times by the runtime's LoopMounter
 *   - signed, with the repository key: user-space verity (whole hash tree) + mount of the data part
 *   - without a key: raw mount of fs.img
 * and, as a reference measured in the same run, the same squashfs mounted by hand with
 * `losetup --find --show` + `mount` + `losetup -d` (two more process spawns).
 * Prints medians and ratios. Needs root, loop devices and squashfs.
 *
 *   npm run bench -- mount          (env BENCH_RUNS, default 30; BENCH_MB, default 10)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest, manifestContainer } from '../src/manifest/index.js';
import { packNpk } from '../src/npk/builder.js';
import { readPublicKey, readSigningKey } from '../src/npk/keys.js';
import { Npk } from '../src/npk/reader.js';
import { LoopMounter, type MountRequest } from '../src/runtime/mount/index.js';
import { nullLog } from '../src/runtime/logger.js';
import { UPSTREAM_EXAMPLES as FIXTURES } from '../test/helpers/fixtures.js';
import { median } from './stats.js';

const runs = Number(process.env['BENCH_RUNS'] ?? 30);
const megabytes = Number(process.env['BENCH_MB'] ?? 10);


function noise(bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let h = createHash('sha256').update('bench').digest();
  for (let off = 0; off < bytes; off += 32) {
    h.copy(out, off);
    h = createHash('sha256').update(h).digest();
  }
  return out;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('mount bench: needs root (loop devices, mount); skipped');
    return;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'ns-mount-bench-'));
  const run = join(tmp, 'run');
  mkdirSync(run);
  try {
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin/hello'), '#!/bin/sh\n');
    chmodSync(join(root, 'bin/hello'), 0o755);
    writeFileSync(join(root, 'payload'), noise(megabytes * 1_000_000));
    const manifest = (name: string) => parseManifest(`name: ${name}\nversion: 0.0.1\ninit: /bin/hello\nuid: 1000\ngid: 1000\n`);
    const signedPath = join(tmp, 'signed.npk');
    const rawPath = join(tmp, 'raw.npk');
    await packNpk({ manifest: manifest('signed'), root, key: await readSigningKey(join(FIXTURES, 'northstar.key')), out: signedPath });
    await packNpk({ manifest: manifest('raw'), root, out: rawPath });
    const key = await readPublicKey(join(FIXTURES, 'northstar.pub'));
    const req = async (path: string, withKey: boolean): Promise<MountRequest> => {
      const npk = await Npk.open(path, withKey ? { key } : {});
      return { container: manifestContainer(npk.manifest), npk, path };
    };
    const signed = await req(signedPath, true);
    const raw = await req(rawPath, false);
    const mounter = new LoopMounter({ runDir: run, verity: 'user', loopDeviceTimeout: 10_000, log: nullLog });
    console.log(`npk: ${(readFileSync(signedPath).length / 1e6).toFixed(1)} MB signed, ${(readFileSync(rawPath).length / 1e6).toFixed(1)} MB unsigned; ${runs} mounts each, alternating`);

    const t = { verity: [] as number[], raw: [] as number[], manual: [] as number[], umount: [] as number[] };
    const manualTarget = join(run, 'manual');
    mkdirSync(manualTarget);
    // Warm-up (page cache, module load).
    for (const r of [signed, raw]) {
      await mounter.mount(r);
      await mounter.umount(r.container);
    }
    for (let i = 0; i < runs; i++) {
      for (const [r, bucket] of [[signed, t.verity], [raw, t.raw]] as const) {
        const t0 = performance.now();
        await mounter.mount(r);
        bucket.push(performance.now() - t0);
        const t1 = performance.now();
        await mounter.umount(r.container);
        t.umount.push(performance.now() - t1);
      }
      const t0 = performance.now();
      const dev = execFileSync('losetup', ['--find', '--show', '--read-only', '--offset', String(raw.npk.fsImg.offset), '--sizelimit', String(raw.npk.fsImg.size), rawPath], { encoding: 'utf8' }).trim();
      execFileSync('mount', ['-t', 'squashfs', '-o', 'ro,nosuid,nodev', dev, manualTarget]);
      execFileSync('losetup', ['-d', dev]);
      t.manual.push(performance.now() - t0);
      execFileSync('umount', [manualTarget]);
    }
    const mv = median(t.verity);
    const mr = median(t.raw);
    const mm = median(t.manual);
    console.log(`mount, user-space verity (signed, key):  median ${mv.toFixed(2)} ms`);
    console.log(`mount, no key (raw fs.img):             median ${mr.toFixed(2)} ms`);
    console.log(`reference: losetup + mount + losetup -d: median ${mm.toFixed(2)} ms`);
    console.log(`umount + rmdir:                          median ${median(t.umount).toFixed(2)} ms`);
    console.log(`ratio verity / raw: ${(mv / mr).toFixed(2)}; raw / reference: ${(mr / mm).toFixed(2)}; verity cost ${(mv - mr).toFixed(2)} ms for ${megabytes} MB (${((megabytes / ((mv - mr) / 1000))).toFixed(0)} MB/s)`);
  } finally {
    execFileSync('sh', ['-c', `grep -o ' ${run}/[^ ]*' /proc/self/mountinfo | xargs -r -n1 umount 2>/dev/null; true`]);
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
