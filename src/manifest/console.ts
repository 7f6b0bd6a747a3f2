import { z } from 'zod';

/**
 * Console permissions (upstream Permission, snake_case), in upstream's declaration order,
 * then ours: `logs` (the `logs` request; part of `"full"`).
 */
export const CONSOLE_PERMISSIONS = [
  'ident', 'inspect', 'install', 'kill', 'list', 'notifications', 'mount', 'repositories',
  'shutdown', 'start', 'start_command', 'token_create', 'token_verification', 'umount', 'uninstall',
  'logs',
] as const;

export type ConsolePermission = (typeof CONSOLE_PERMISSIONS)[number];

/** Normalise a permission list: a set in declaration order. */
export function normalizePermissions(list: readonly ConsolePermission[]): ConsolePermission[] {
  const set = new Set(list);
  return CONSOLE_PERMISSIONS.filter((p) => set.has(p));
}

export const consoleSchema = z
  .object({
    permissions: z
      .union([z.literal('full'), z.array(z.enum(CONSOLE_PERMISSIONS))])
      .transform((p): ConsolePermission[] => (p === 'full' ? [...CONSOLE_PERMISSIONS] : normalizePermissions(p)))
      .describe('"full" or a list of permissions. Stored as the set of permissions; written as "full" when all 16 are set (upstream 15 and ours, logs).'),
  })
  .strict()
  .describe('Gives the container a connected console socket; its fd number is in NORTHSTAR_CONSOLE.');

export type Console = z.output<typeof consoleSchema>;
