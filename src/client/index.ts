/** The typed console client. */
export { Client, LogFollow, ExecSession, signalNumber, type Logs, type LogsOptions, type ExecOptions, type ExecChunk, type Endpoint, type ConnectOptions, type StartOptions, type InstallOptions, type ContainerArg } from './client.js';
export * from './errors.js';
export * from '../api/model.js';
