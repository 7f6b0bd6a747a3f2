/** The typed console client. */
export { Client, signalNumber, type Endpoint, type ConnectOptions, type StartOptions, type InstallOptions, type ContainerArg } from './client.js';
export * from './errors.js';
export * from '../api/model.js';
