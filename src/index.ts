/**
 * The package's library entry: the console client, the manifest model and the NPK
 * tools, for apps and tools that talk to a Northstar runtime or make packages.
 */
export * from './client/index.js';
export { parseManifest, serializeManifest, manifestJsonSchema, isResourceContainer, type Manifest } from './manifest/index.js';
export { Container, parseContainer } from './common/container.js';
export { packNpk, type PackOptions, type PackResult } from './npk/builder.js';
export { Npk, type NpkOpenOptions } from './npk/reader.js';
export { generateKeyPair, readPublicKey, readSigningKey } from './npk/keys.js';
export { verifyNpk, unpackNpk, inspectLong, inspectShort } from './npk/tools.js';
export { NorthstarError, ValidationError, NpkError } from './common/errors.js';
