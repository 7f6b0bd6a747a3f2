/**
 * Recording fakes of the state machine's repository and mounter ports, shared by the unit
 * tests of State (state.test.ts) and of its await rule (state-interleave.test.ts). Calls can
 * be held open behind a Gate, so a test can change the world while an operation awaits.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Container } from '../../src/common/container.js';
import { parseManifest } from '../../src/manifest/index.js';
import type { Npk } from '../../src/npk/reader.js';
import type { Mounter, MountRequest } from '../../src/runtime/mount/mounter.js';
import type { Repository, RepositoryEntry } from '../../src/runtime/repository/types.js';

/** A resource manifest. */
export const RESOURCE = (name: string, version: string) => `name: ${name}\nversion: ${version}\nuid: 1000\ngid: 1000\n`;

/** A door an awaiting port call waits behind; `reached` resolves once someone waits. */
export class Gate {
  private opened = false;
  private release!: () => void;
  private readonly door = new Promise<void>((r) => (this.release = r));
  private arrive!: () => void;
  /** Resolves when the first caller is waiting at the gate. */
  readonly reached = new Promise<void>((r) => (this.arrive = r));
  async pass(): Promise<void> {
    this.arrive();
    if (!this.opened) await this.door;
  }
  open(): void {
    this.opened = true;
    this.release();
  }
}

export class FakeRepo implements Repository {
  readonly kind = 'fs' as const;
  readonly verified = false;
  readonly mountOnStart = false;
  readonly entries: RepositoryEntry[] = [];
  removeGate: Gate | undefined;
  constructor(
    readonly id: string,
    manifests: string[],
    private readonly log: string[] = [],
  ) {
    for (const text of manifests) {
      const m = parseManifest(text);
      this.entries.push({ container: new Container(m.name, m.version), npk: { manifest: m } as unknown as Npk, path: `/fake/${m.name}`, size: 1, repository: id });
    }
  }
  list() {
    return this.entries;
  }
  get(c: Container) {
    return this.entries.find((e) => e.container.toString() === c.toString());
  }
  async install(): Promise<RepositoryEntry> {
    throw new Error('not used');
  }
  async remove(c: Container) {
    await this.removeGate?.pass();
    this.entries.splice(this.entries.findIndex((e) => e.container.toString() === c.toString()), 1);
    this.log.push(`removed ${c}`);
  }
  capacity() {
    return { count: this.entries.length, size: this.entries.length };
  }
  async close() {}
}

/**
 * Mount points are real (empty) directories below `run` (the plan builder checks resource
 * dirs exist). Refuses a second mount of a mounted target, as the loop mounter does.
 */
export class FakeMounter implements Mounter {
  readonly mounted = new Set<string>();
  failFor = new Set<string>();
  mountGate: Gate | undefined;
  constructor(
    private readonly run: string,
    readonly log: string[] = [],
  ) {}
  target(c: Container) {
    return join(this.run, c.toString());
  }
  async mount(req: MountRequest) {
    const key = req.container.toString();
    if (this.failFor.has(key)) throw new Error(`mount of ${key} failed`);
    if (this.mounted.has(key)) throw new Error(`mount ${key}: ${this.target(req.container)} is already a mount point`);
    this.mounted.add(key);
    await this.mountGate?.pass();
    mkdirSync(this.target(req.container), { recursive: true });
    this.log.push(`mount ${key}`);
    return { container: req.container, target: this.target(req.container), device: '/dev/loop9', verity: 'none' as const, durationMs: 0 };
  }
  async umount(c: Container) {
    this.mounted.delete(c.toString());
    this.log.push(`umount ${c}`);
  }
}

/** A runtime without a console server: a container console stream is closed at once. */
export const noConsole = (_c: unknown, _m: unknown, stream: { destroy(): void }): (() => void) => {
  stream.destroy();
  return () => undefined;
};
