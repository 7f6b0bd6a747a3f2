/**
 * Repositories hold installed NPKs (runtime.md §8). The state machine talks to them only
 * through `Repository`, so it can be unit-tested with a recording fake.
 */
import type { Container } from '../../common/container.js';
import type { Npk } from '../../npk/reader.js';

/** One installed package. */
export interface RepositoryEntry {
  container: Container;
  /** The opened, checked package (verified with the repository key when it has one). */
  npk: Npk;
  /**
   * A path losetup/mount(8) can open to read the NPK: the file of an fs repository, or
   * `/proc/<runtime pid>/fd/<n>` of the open (unlinked) file of a mem repository.
   */
  path: string;
  /** Bytes of the NPK file. */
  size: number;
  /** Id of the repository that holds it. */
  repository: string;
}

export interface RepositoryCapacity {
  /** Installed packages and their total bytes. */
  count: number;
  size: number;
  /** Configured limits; undefined = unlimited. */
  capacityNum?: number | undefined;
  capacitySize?: number | undefined;
}

/**
 * The bytes of an upload: an async iterable that yields the NPK, `size` bytes in all.
 * The repository consumes exactly `size` bytes from it, also after a failure (capacity,
 * verification, write error), so that a console connection stays in step; a stream
 * that ends early fails the install, one that yields more than `size` bytes is an error
 * (the caller must hand over a view bounded to the upload).
 */
export type ByteSource = AsyncIterable<Uint8Array>;

export interface Repository {
  readonly id: string;
  readonly kind: 'fs' | 'mem';
  /** Whether packages are verified with a key (signed NPKs only). */
  readonly verified: boolean;
  readonly mountOnStart: boolean;
  /** Installed packages, ordered by container. */
  list(): RepositoryEntry[];
  get(container: Container): RepositoryEntry | undefined;
  /**
   * Stream an NPK in, verify it and make it visible atomically. Throws a NorthstarError
   * (ECAPACITY, EDUPLICATE, ETRUNCATED, an NpkError for a bad package, or an errno
   * failure) and leaves nothing behind on failure.
   */
  install(source: ByteSource, size: number): Promise<RepositoryEntry>;
  /** Remove an installed package (fs: unlink). Throws ENOTINSTALLED when unknown. */
  remove(container: Container): Promise<void>;
  capacity(): RepositoryCapacity;
  /** Release fds and temporary storage (mem: everything is gone afterwards). */
  close(): Promise<void>;
}
