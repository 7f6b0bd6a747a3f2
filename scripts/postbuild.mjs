// Mark the CLI entry points executable after tsc has written them.
import { chmodSync, existsSync } from 'node:fs';
for (const name of ['sextant', 'nstar', 'northstar']) {
  const p = new URL(`../dist/src/cli/${name}.js`, import.meta.url);
  if (existsSync(p)) chmodSync(p, 0o755);
}
