import { z } from 'zod';

/**
 * Console permissions (upstream Permission, snake_case), in upstream's declaration order,
 * then ours: `logs` (the `logs` request; part of `"full"`) and `exec` (the `exec` request: a
 * command inside a running container). A manifest's `"full"` is every permission but `exec`:
 * a container console gets exec only when it names it. The runtime config's `"full"`
 * includes it.
 */
export const CONSOLE_PERMISSIONS = [
  'ident', 'inspect', 'install', 'kill', 'list', 'notifications', 'mount', 'repositories',
  'shutdown', 'start', 'start_command', 'token_create', 'token_verification', 'umount', 'uninstall',
  'logs', 'exec',
] as const;

export type ConsolePermission = (typeof CONSOLE_PERMISSIONS)[number];

/** What a manifest's `"full"` grants a container console: every permission but `exec`. */
export const MANIFEST_FULL_PERMISSIONS: readonly ConsolePermission[] = CONSOLE_PERMISSIONS.filter((p) => p !== 'exec');

/** Normalise a permission list: a set in declaration order. */
export function normalizePermissions(list: readonly ConsolePermission[]): ConsolePermission[] {
  const set = new Set(list);
  return CONSOLE_PERMISSIONS.filter((p) => set.has(p));
}

export const consoleSchema = z
  .object({
    permissions: z
      .union([z.literal('full'), z.array(z.enum(CONSOLE_PERMISSIONS))])
      .transform((p): ConsolePermission[] => (p === 'full' ? [...MANIFEST_FULL_PERMISSIONS] : normalizePermissions(p)))
      .describe('"full" or a list of permissions. "full" is every permission but exec (ours), which a container console gets only when listed. Stored as the set of permissions; written as "full" when exactly those 16 are set (upstream 15 and ours, logs).'),
  })
  .strict()
  .describe('Gives the container a connected console socket; its fd number is in NORTHSTAR_CONSOLE.');

export type Console = z.output<typeof consoleSchema>;
