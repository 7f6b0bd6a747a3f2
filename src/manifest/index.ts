/**
 * The container manifest: parse (YAML, JSON, TOML as upstream), validate, serialise, and
 * describe as JSON Schema. The model is the zod output type: names and versions are
 * branded strings, version requirements are VersionReq objects, 64-bit integers are bigint,
 * enums with data are `{variant: {...}}` (the JSON form), collections default to empty.
 */
import type { Manifest } from './schema.js';

export { parseManifest, validateManifest, formatPath } from './parse.js';
export { serializeManifest, manifestToJson, yamlString, type SerializeFormat } from './serialize.js';
export { manifestJsonSchema } from './json-schema.js';
export {
  manifestSchema,
  nameSchema,
  versionSchema,
  RESERVED_ENV_VARIABLES,
  RESOURCE_FORBIDDEN,
  MAX_ENV_VARS,
  MAX_ENV_VAR_NAME_LENGTH,
  MAX_ENV_VAR_VALUE_LENGTH,
  MAX_INIT_LENGTH,
  MAX_SUPPL_GROUPS,
  MAX_SUPPL_GROUP_LENGTH,
  type Manifest,
  type ManifestInput,
} from './schema.js';
export { CAPABILITIES, CAPABILITY_NUMBERS, type Capability } from './capabilities.js';
export { CONSOLE_PERMISSIONS, normalizePermissions, type Console, type ConsolePermission } from './console.js';
export { OUTPUTS, type Io, type Output } from './io.js';
export {
  MOUNT_OPTIONS,
  MOUNT_OPTION_FLAGS,
  parseMountOptions,
  formatMountOptions,
  mountOptionFlags,
  parseSize,
  pathComponents,
  type Mount,
  type MountType,
  type Mounts,
  type MountOption,
  type BindMount,
  type ResourceMount,
  type TmpfsMount,
} from './mounts.js';
export { MAX_NET_NAMESPACE_LENGTH, type Network } from './network.js';
export { RLIMIT_RESOURCES, RLIMIT_NUMBERS, type RLimitResource, type RLimitValue, type RLimits } from './rlimits.js';
export { type Policy, type Sched } from './sched.js';
export { MAX_ARG_INDEX, MAX_ARG_VALUES, type Seccomp, type SyscallRule, type SyscallArgRule } from './seccomp.js';
export { XATTR_SIZE_MAX, type Selinux } from './selinux.js';
export { SOCKET_TYPES, type Socket, type SocketType } from './sockets.js';
export { type CGroups, type BlkIoResources, type CpuResources, type MemoryResources } from './cgroups.js';
export { DEFAULT_WRITABLE_ROOT_SIZE, type Root } from './root.js';
export type { Format } from './source.js';

import { Container } from '../common/container.js';

/** A resource container has no init: it only provides files to other containers' resource mounts. */
export function isResourceContainer(m: Manifest): boolean {
  return m.init === undefined;
}

/** The container identity `<name>:<version>` of a manifest. */
export function manifestContainer(m: Manifest): Container {
  return new Container(m.name, m.version);
}
