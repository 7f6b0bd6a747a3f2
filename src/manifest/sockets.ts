import { z } from 'zod';
import { fileName, u32 } from './fields.js';
import { NAME_MAX_BYTES } from '../common/paths.js';
import { hint } from './decode.js';

export const SOCKET_TYPES = ['stream', 'datagram', 'seq_packet'] as const;
export type SocketType = (typeof SOCKET_TYPES)[number];

export const socketSchema = z
  .object({
    type: z.enum(SOCKET_TYPES),
    mode: u32().describe('file mode of the socket, e.g. 0o666 in YAML'),
    // Upstream declares "uid/gid >= 1" but never applies it; we follow upstream.
    uid: u32().optional(),
    gid: u32().optional(),
    passcred: z.boolean().optional().describe('SO_PASSCRED'),
  })
  .strict();

export const socketsSchema = hint(z.record(fileName(NAME_MAX_BYTES), socketSchema), { duplicateKeys: 'last' }).describe(
  'Unix sockets the runtime creates as <socket_dir>/<name>:<version>:<socket> and passes as NORTHSTAR_SOCKET_<socket>; a socket name is a file name (no /, not . or ..).',
);

export type Socket = z.output<typeof socketSchema>;
