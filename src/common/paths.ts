/**
 * Joins of untrusted names into host directories. Every manifest string that becomes part
 * of a host path (container name, socket name, network namespace, resource directory, …)
 * is validated when the manifest is parsed; these helpers check the join again at the
 * point of use, so a path can never leave its directory even if a caller forgot to
 * validate (or a manifest was built in code, bypassing the parser).
 */
import { join } from 'node:path';
import { NorthstarError } from './errors.js';

/** Longest file name component Linux accepts (NAME_MAX). */
export const NAME_MAX_BYTES = 255;

/**
 * Why `leaf` cannot be a single file name inside a directory, or undefined when it can:
 * not empty, no `/`, no NUL, not `.` or `..`, at most `maxBytes` (default 255) bytes.
 */
export function leafProblem(leaf: string, maxBytes = NAME_MAX_BYTES): string | undefined {
  if (leaf.length === 0) return 'must not be empty';
  if (leaf.includes('\0')) return 'must not contain a nul byte';
  if (leaf.includes('/')) return "must not contain '/'";
  if (leaf === '.' || leaf === '..') return `must not be '${leaf}'`;
  if (Buffer.byteLength(leaf, 'utf8') > maxBytes) return `must be at most ${maxBytes} bytes`;
  return undefined;
}

/**
 * `dir/leaf`, where `leaf` must be a single file name (see leafProblem). Throws
 * NorthstarError EPATH naming `what` (the field the leaf came from), the value and `dir`.
 */
export function within(dir: string, leaf: string, what = 'name'): string {
  const problem = leafProblem(leaf);
  if (problem !== undefined) {
    throw new NorthstarError('EPATH', `${what}: ${JSON.stringify(leaf)} ${problem} (it would not be a file inside ${dir})`);
  }
  return join(dir, leaf);
}
