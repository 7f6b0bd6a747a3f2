/** The manifest: one zod schema (the JSON/TOML form), from which types and JSON Schema derive. */
import { z } from 'zod';
import { nameProblem, type Name } from '../common/name.js';
import { parseVersion, versionProblem, type Version } from '../common/version.js';
import { capabilitiesSchema } from './capabilities.js';
import { cgroupsSchema } from './cgroups.js';
import { consoleSchema } from './console.js';
import { hint } from './decode.js';
import { byteLength, nonNul } from './fields.js';
import { ioSchema } from './io.js';
import { mountsSchema } from './mounts.js';
import { networkSchema } from './network.js';
import { rlimitsSchema } from './rlimits.js';
import { rootSchema } from './root.js';
import { restartSchema } from './restart.js';
import { schedSchema } from './sched.js';
import { seccompSchema } from './seccomp.js';
import { selinuxSchema } from './selinux.js';
import { socketsSchema } from './sockets.js';

export const MAX_INIT_LENGTH = 4096;
export const MAX_ENV_VARS = 64;
export const MAX_ENV_VAR_NAME_LENGTH = 64;
export const MAX_ENV_VAR_VALUE_LENGTH = 1024;
export const MAX_SUPPL_GROUPS = 64;
export const MAX_SUPPL_GROUP_LENGTH = 64;
export const RESERVED_ENV_VARIABLES = ['NORTHSTAR_NAME', 'NORTHSTAR_VERSION', 'NORTHSTAR_CONTAINER', 'NORTHSTAR_CONSOLE'] as const;

export const nameSchema = z
  .string()
  .regex(/^[0-9A-Za-z._-]{1,1024}$/, { error: (iss) => nameProblem(String(iss.input)) ?? 'invalid name' })
  .superRefine((s, ctx) => {
    const p = nameProblem(s);
    if (p !== undefined && /^[0-9A-Za-z._-]{1,1024}$/.test(s)) ctx.addIssue({ code: 'custom', message: p });
  })
  .transform((s) => s as Name)
  .describe("Container name: 1 to 1024 of [0-9A-Za-z._-], not '.' or '..'");

export const versionSchema = z
  .string()
  .superRefine((s, ctx) => {
    const p = versionProblem(s);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  })
  .meta({
    pattern:
      '^(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(\\.(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$',
  })
  .transform((s): Version => parseVersion(s))
  .describe('Strict SemVer (MAJOR.MINOR.PATCH[-pre][+build]); only MAJOR.MINOR.PATCH is kept');

const envSchema = hint(z.record(nonNul(), nonNul()), { duplicateKeys: 'last' })
  .superRefine((env, ctx) => {
    const keys = Object.keys(env);
    if (keys.length > MAX_ENV_VARS) ctx.addIssue({ code: 'custom', message: `must have at most ${MAX_ENV_VARS} entries` });
    for (const k of keys) {
      if (byteLength(k) > MAX_ENV_VAR_NAME_LENGTH) {
        ctx.addIssue({ code: 'custom', path: [k], message: `name must be at most ${MAX_ENV_VAR_NAME_LENGTH} bytes` });
      }
      if (byteLength(env[k]!) > MAX_ENV_VAR_VALUE_LENGTH) {
        ctx.addIssue({ code: 'custom', path: [k], message: `value must be at most ${MAX_ENV_VAR_VALUE_LENGTH} bytes` });
      }
      if ((RESERVED_ENV_VARIABLES as readonly string[]).includes(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: 'reserved environment variable' });
      }
    }
  })
  .describe('Environment of the process (string values: quote nothing in YAML, `THREADS: 4` is "4")');

const supplGroupsSchema = z
  .array(nonNul())
  .superRefine((groups, ctx) => {
    if (groups.length > MAX_SUPPL_GROUPS) ctx.addIssue({ code: 'custom', message: `must have at most ${MAX_SUPPL_GROUPS} entries` });
    const seen = new Set<string>();
    groups.forEach((g, i) => {
      if (byteLength(g) > MAX_SUPPL_GROUP_LENGTH) ctx.addIssue({ code: 'custom', path: [i], message: `must be at most ${MAX_SUPPL_GROUP_LENGTH} bytes` });
      if (seen.has(g)) ctx.addIssue({ code: 'custom', path: [i], message: `duplicate value ${JSON.stringify(g)}` });
      seen.add(g);
    });
  })
  .describe('Supplementary group names, resolved on the host; unknown ones are skipped. A set: no duplicates.');

const idSchema = z.number().int().min(1, { error: 'must be at least 1' }).max(65535, { error: 'must be at most 65535' });

export const RESOURCE_RULE = 'not allowed in a resource container (no init)';

/** Fields a resource container (no init) must not set; empty collections count as unset. */
export const RESOURCE_FORBIDDEN = ['args', 'env', 'capabilities', 'suppl_groups', 'autostart', 'cgroups', 'io', 'seccomp', 'restart'] as const;

export const manifestSchema = z
  .object({
    name: nameSchema,
    version: versionSchema,
    console: consoleSchema.optional(),
    init: nonNul()
      .superRefine((s, ctx) => {
        if (s.length === 0) ctx.addIssue({ code: 'custom', message: 'must not be empty' });
        else if (byteLength(s) > MAX_INIT_LENGTH) ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_INIT_LENGTH} bytes` });
      })
      .optional()
      .describe('Path of the executable in the container; absent means a resource container'),
    args: z.array(nonNul()).default([]).describe('Arguments after init: argv = [init, ...args]'),
    env: envSchema.default({}),
    uid: idSchema.describe('User id of the process (1..65535)'),
    gid: idSchema.describe('Group id of the process (1..65535)'),
    sched: schedSchema.optional(),
    mounts: mountsSchema.default({}),
    autostart: z.enum(['relaxed', 'critical']).optional().describe('Start at boot; critical: a failure stops the runtime'),
    cgroups: cgroupsSchema.optional(),
    network: networkSchema.optional(),
    seccomp: seccompSchema.optional(),
    selinux: selinuxSchema.optional(),
    capabilities: capabilitiesSchema.default([]),
    suppl_groups: supplGroupsSchema.default([]),
    rlimits: rlimitsSchema.default({}),
    sockets: socketsSchema.default({}),
    io: ioSchema.optional(),
    root: rootSchema.optional(),
    restart: restartSchema.optional(),
    custom: z.unknown().optional().describe('Opaque data (any JSON value), returned by inspect'),
  })
  .strict()
  .superRefine(
    (m, ctx) => {
      if (m === null || typeof m !== 'object' || m.init !== undefined) return;
      for (const f of RESOURCE_FORBIDDEN) {
        const v: unknown = m[f];
        const set = Array.isArray(v) ? v.length > 0 : f === 'env' && v !== null && typeof v === 'object' ? Object.keys(v).length > 0 : v !== undefined;
        if (set) ctx.addIssue({ code: 'custom', path: [f], message: RESOURCE_RULE });
      }
    },
    // Also when other fields failed, so that every issue is reported at once.
    { when: () => true },
  )
  .describe('Northstar container manifest (manifest.yaml of an NPK)');

export type Manifest = z.output<typeof manifestSchema>;
/** The manifest as written (JSON/TOML form, before defaults and normalisation). */
export type ManifestInput = z.input<typeof manifestSchema>;
