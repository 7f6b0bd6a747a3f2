// Runs every benchmark (dist/bench/*.bench.js) one after another, or the ones named
// on the command line: `npm run bench -- squashfs`.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
const dir = fileURLToPath(new URL('../dist/bench/', import.meta.url));
const wanted = process.argv.slice(2);
const all = readdirSync(dir).filter((f) => f.endsWith('.bench.js')).sort();
const run = wanted.length ? all.filter((f) => wanted.some((w) => f.startsWith(w))) : all;
if (run.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ')}; have: ${all.join(', ')}`);
  process.exit(1);
}
let failed = false;
for (const f of run) {
  console.log(`\n=== ${f} ===`);
  const r = spawnSync(process.execPath, [dir + f], { stdio: 'inherit' });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
