/** The console: server, sessions, permissions, tokens, and the runtime contract. */
export * from './handle.js';
export { ConsoleServer, parseConsoleUrl, DEFAULT_CONSOLE_PORT, CONNECT_TIMEOUT, DEFAULT_NOTIFICATION_BUFFER_SIZE, type ConsoleServerConfig, type ConsoleUrl, type ContainerConsole, type PermissionsInput } from './server.js';
export { EXTERN_IDENT, versionAccepted, type ConsoleLog } from './session.js';
export { REQUEST_PERMISSION, isPermitted, permissionSet } from './permissions.js';
export { TokenAuthority, type MonotonicClock } from './tokens.js';
