/** Typed errors of the console client (upstream's client Error enum, in our error classes). */
import { NorthstarError } from '../common/errors.js';
import type { Container } from '../common/container.js';
import type { Version } from '../common/version.js';
import { encodeRequest } from '../api/codec.js';
import { describeModelError } from '../api/describe.js';
import type { ModelError, Request } from '../api/model.js';

/**
 * The runtime answered with an error variant; `error` is the wire error, `subject` the
 * container the request named (the message says e.g. which other version runs).
 */
export class RuntimeError extends NorthstarError {
  constructor(readonly error: ModelError, subject?: Container) {
    super('ERUNTIME', describeModelError(error, subject));
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
    super('ETIMEOUT', `${what} timed out after ${ms} ms`);
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

export { describeModelError };
