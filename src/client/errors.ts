/** Typed errors of the console client (upstream's client Error enum, in our error classes). */
import { NorthstarError } from '../common/errors.js';
import type { Version } from '../common/version.js';
import { encodeRequest } from '../api/codec.js';
import type { ExitStatus, ModelError, Request } from '../api/model.js';

/** The runtime answered with an error variant; `error` is the wire error. */
export class RuntimeError extends NorthstarError {
  constructor(readonly error: ModelError) {
    super('ERUNTIME', describeModelError(error));
    this.name = 'RuntimeError';
  }
  /** The variant's tag (`invalid_container`, `umount_busy`, …). */
  get kind(): string {
    return Object.keys(this.error)[0]!;
  }
}

/** The request (or the notification subscription) is not permitted on this console. */
export class PermissionDeniedError extends NorthstarError {
  constructor(readonly request?: Request) {
    super('EPERMISSION', request === undefined ? 'permission denied: notifications' : `permission denied: ${encodeRequest(request)}`);
    this.name = 'PermissionDeniedError';
  }
}

/** The runtime refused our protocol version; `version` is the runtime's. */
export class ProtocolVersionError extends NorthstarError {
  constructor(readonly version: Version) {
    super('EPROTOVERSION', `protocol version mismatch: the runtime speaks ${version}`);
    this.name = 'ProtocolVersionError';
  }
}

/** The connection ended (or was closed) before the answer arrived. */
export class ConnectionClosedError extends NorthstarError {
  constructor(detail?: string) {
    super('ECONNCLOSED', detail ? `connection closed: ${detail}` : 'connection closed');
    this.name = 'ConnectionClosedError';
  }
}

/** Connecting, the handshake or a request took longer than its limit. */
export class TimeoutError extends NorthstarError {
  constructor(what: string, ms: number) {
    super('ETIMEDOUT', `${what} timed out after ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/** More notifications arrived than the client's queue holds while nobody read them. */
export class LaggedNotificationsError extends NorthstarError {
  constructor(limit: number) {
    super('ELAGGED', `more than ${limit} notifications were not read`);
    this.name = 'LaggedNotificationsError';
  }
}

/** The runtime sent something that does not fit the protocol or the request. */
export class UnexpectedMessageError extends NorthstarError {
  constructor(message: string) {
    super('EUNEXPECTED', message);
    this.name = 'UnexpectedMessageError';
  }
}

function exitText(s: ExitStatus): string {
  return 'exit' in s ? `exit code ${s.exit.code}` : `signal ${s.signalled.signal}`;
}

/** A one-line, lowercase description of a runtime error variant. */
export function describeModelError(e: ModelError): string {
  if ('configuration' in e) return `configuration error: ${e.configuration.context}`;
  if ('duplicate_container' in e) return `duplicate container ${e.duplicate_container.container}`;
  if ('invalid_container' in e) return `invalid container ${e.invalid_container.container}`;
  if ('invalid_arguments' in e) return `invalid arguments: ${e.invalid_arguments.cause}`;
  if ('mount_busy' in e) return `container ${e.mount_busy.container} is busy (mount)`;
  if ('umount_busy' in e) return `container ${e.umount_busy.container} is busy (umount)`;
  if ('start_container_started' in e) return `container ${e.start_container_started.container} is already started`;
  if ('start_container_resource' in e) return `container ${e.start_container_resource.container} is a resource container and has no init`;
  if ('start_container_missing_resource' in e) {
    const m = e.start_container_missing_resource;
    return `container ${m.container} misses resource ${m.resource} ${m.version}`;
  }
  if ('start_container_failed' in e) return `failed to start container ${e.start_container_failed.container}: ${e.start_container_failed.error}`;
  if ('stop_container_not_started' in e) return `container ${e.stop_container_not_started.container} is not started`;
  if ('invalid_repository' in e) return `invalid repository ${e.invalid_repository.repository}`;
  if ('install_duplicate' in e) return `container ${e.install_duplicate.container} is already installed`;
  if ('critical_container' in e) return `critical container ${e.critical_container.container} exited with ${exitText(e.critical_container.status)}`;
  return `unexpected error: ${e.unexpected.error}`;
}
