import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/**
 * Remove a tree. Without root, a directory without write permission (extracted from an image
 * whose directories are 0555) keeps its entries: make every directory writable, then retry.
 */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
    const writable = (p: string): void => {
      if (!lstatSync(p).isDirectory()) return;
      chmodSync(p, 0o700);
      for (const n of readdirSync(p)) writable(join(p, n));
    };
    writable(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A temp dir removed after the test. */
export function tempDir(t: TestContext, prefix = 'ns-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => removeTree(dir));
  return dir;
}

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const isRoot = process.getuid?.() === 0;
