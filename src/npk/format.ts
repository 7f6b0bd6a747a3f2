import semver from 'semver';
import { NpkError } from '../common/errors.js';

/** The NPK format version we write into the zip comment (upstream's runtime version). */
export const NPK_FORMAT_VERSION = '0.9.3';
/** Oldest format we read: `>= major.minor` of our format version, like upstream. */
const MIN_FORMAT = `${semver.major(NPK_FORMAT_VERSION)}.${semver.minor(NPK_FORMAT_VERSION)}.0`;

export function metaDocument(): Buffer {
  return Buffer.from(`version: ${NPK_FORMAT_VERSION}\n`);
}

export function checkFormatVersion(version: string): void {
  const v = /^v|^=/.test(version) ? null : semver.parse(version);
  if (!v) throw new NpkError('ENPKMETA', `npk format version '${version}' is not a valid version`);
  if (semver.lt(`${v.major}.${v.minor}.${v.patch}`, MIN_FORMAT)) {
    throw new NpkError('ENPKVERSION', `npk format version ${version} doesn't match required version >=${MIN_FORMAT.replace(/\.0$/, '')}`);
  }
}
