import { ValidationError } from './errors.js';
import { nameProblem, type Name } from './name.js';
import { versionProblem, parseVersion, compareVersions, type Version } from './version.js';

/**
 * A container identity `<name>:<version>`. Its text form (toString, toJSON) is used for
 * run directories, installed NPK file names, socket paths and NORTHSTAR_CONTAINER.
 */
export class Container {
  readonly name: Name;
  readonly version: Version;

  constructor(name: Name, version: Version) {
    this.name = name;
    this.version = version;
    Object.freeze(this);
  }

  /** Parse `<name>:<version>`, splitting at the first `:`. Throws ValidationError. */
  static parse(text: string, path = 'container'): Container {
    const i = text.indexOf(':');
    if (i < 0) throw new ValidationError([{ path, rule: `invalid container ${JSON.stringify(text)}: missing container version` }], 'invalid container');
    const name = text.slice(0, i);
    const version = text.slice(i + 1);
    const np = nameProblem(name);
    if (np !== undefined) throw new ValidationError([{ path, rule: `invalid container ${JSON.stringify(text)}: name ${np}` }], 'invalid container');
    const vp = versionProblem(version);
    if (vp !== undefined) throw new ValidationError([{ path, rule: `invalid container ${JSON.stringify(text)}: ${vp}` }], 'invalid container');
    return new Container(name as Name, parseVersion(version));
  }

  equals(other: Container): boolean {
    return this.name === other.name && this.version === other.version;
  }

  toString(): string {
    return `${this.name}:${this.version}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** The architecture document calls it ContainerRef. */
export type ContainerRef = Container;

export function parseContainer(text: string, path?: string): Container {
  return Container.parse(text, path);
}

/** Order by name (byte-wise), then by version (numeric). */
export function compareContainers(a: Container, b: Container): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return compareVersions(a.version, b.version);
}
