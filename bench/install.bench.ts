/**
 * Install time per package: a ~10 MB signed NPK (incompressible payload) streamed into
 * an fs repository (temp file, fsync, rename) and into a mem repository (tmpfs file, sealed
 * memfd) with the repository key, then removed again, many times. The upload comes from a
 * buffer in 64 KiB chunks, as the console hands it over. With a key, install checks the
 * signature, the hashes and the whole verity hash tree of fs.img.
 * Prints the median of each. Needs root only for the mem repository's memfd helper build.
 *
 *   npm run bench -- install         (env BENCH_RUNS, default 30; BENCH_MB, default 10)
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseManifest } from '../src/manifest/index.js';
import { packNpk } from '../src/npk/builder.js';
import { readPublicKey, readSigningKey } from '../src/npk/keys.js';
import { FsRepository, MemRepository, type ByteSource, type Repository } from '../src/runtime/repository/index.js';
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

function chunks(data: Buffer, chunk = 64 * 1024): ByteSource {
  return {
    async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < data.length; off += chunk) yield data.subarray(off, Math.min(off + chunk, data.length));
    },
  };
}

async function time(repo: Repository, data: Buffer): Promise<number> {
  const t0 = performance.now();
  const entry = await repo.install(chunks(data), data.length);
  const ms = performance.now() - t0;
  await repo.remove(entry.container);
  return ms;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'ns-install-bench-'));
  try {
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    writeFileSync(join(root, 'bin/hello'), '#!/bin/sh\n');
    chmodSync(join(root, 'bin/hello'), 0o755);
    writeFileSync(join(root, 'payload'), noise(megabytes * 1_000_000));
    const path = join(tmp, 'signed.npk');
    await packNpk({
      manifest: parseManifest('name: bench\nversion: 0.0.1\ninit: /bin/hello\nuid: 1000\ngid: 1000\n'),
      root,
      key: await readSigningKey(join(FIXTURES, 'northstar.key')),
      out: path,
    });
    const data = readFileSync(path);
    const key = await readPublicKey(join(FIXTURES, 'northstar.pub'));
    const fs = await FsRepository.open({ id: 'bench-fs', dir: join(tmp, 'repo'), key, log: nullLog });
    const mem = await MemRepository.open({ id: 'bench-mem', dir: join(tmp, 'mem'), key, log: nullLog });
    console.log(`npk: ${(data.length / 1e6).toFixed(1)} MB signed; ${runs} installs + removes per repository, alternating`);
    const t = { fs: [] as number[], mem: [] as number[] };
    try {
      await time(fs, data); // warm-up
      await time(mem, data);
      for (let i = 0; i < runs; i++) {
        t.fs.push(await time(fs, data));
        t.mem.push(await time(mem, data));
      }
    } finally {
      await fs.close();
      await mem.close();
    }
    console.log(`install, fs repository (key):  median ${median(t.fs).toFixed(2)} ms`);
    console.log(`install, mem repository (key): median ${median(t.mem).toFixed(2)} ms`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
