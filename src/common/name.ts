import { ValidationError } from './errors.js';

declare const nameBrand: unique symbol;
/** A container name: 1..=1024 characters from `[0-9A-Za-z._-]`, never `.` or `..`. */
export type Name = string & { readonly [nameBrand]: 'Name' };

export const NAME_MAX_LENGTH = 1024;
const NAME_CHAR = /^[0-9A-Za-z._-]$/;

/**
 * Why `text` is not a valid Name, or undefined when it is. The rule texts are stable:
 * they end up in ValidationError issues.
 */
export function nameProblem(text: string): string | undefined {
  if (text.length === 0) return 'must not be empty';
  if (text.includes('\0')) return 'must not contain a nul byte';
  if (text.length > NAME_MAX_LENGTH) return `must be at most ${NAME_MAX_LENGTH} characters`;
  for (const c of text) {
    if (!NAME_CHAR.test(c)) {
      return `invalid character ${JSON.stringify(c)}: only 0-9, A-Z, a-z, '.', '_' and '-' are allowed`;
    }
  }
  // Our deliberate difference (spec README 12): they would escape run_dir/data_dir.
  if (text === '.' || text === '..') return `must not be '${text}'`;
  return undefined;
}

export function isName(text: unknown): text is Name {
  return typeof text === 'string' && nameProblem(text) === undefined;
}

/** Parse a container name; throws ValidationError (path `name` unless given). */
export function parseName(text: string, path = 'name'): Name {
  const problem = nameProblem(text);
  if (problem !== undefined) throw new ValidationError([{ path, rule: problem }], 'invalid name');
  return text as Name;
}

/** Byte-wise ordering, as upstream's derived Ord on the UTF-8 string. */
export function compareNames(a: Name, b: Name): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
