import { z } from 'zod';
import { parseName, nameProblem, type Name } from '../common/name.js';
import { VersionReq, versionReqProblem } from '../common/version-req.js';
import { hint } from './decode.js';
import { nonNul, u64, U64_MAX } from './fields.js';

// --- mount options ------------------------------------------------------------------------

/** Mount option tokens, in the order we write them. `rw` sets no flag; the others map to MS_* flags. */
export const MOUNT_OPTIONS = ['rw', 'noexec', 'nosuid', 'nodev', 'rec'] as const;
export type MountOption = (typeof MOUNT_OPTIONS)[number];

/** mount(2) flag values for the options that set one (MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC). */
export const MOUNT_OPTION_FLAGS: Readonly<Record<MountOption, number>> = {
  rw: 0,
  nosuid: 0x2,
  nodev: 0x4,
  noexec: 0x8,
  rec: 0x4000,
};

/** Parse `rw,noexec,nosuid,nodev,rec` (tokens trimmed, empty = none) into a set in canonical order. */
export function parseMountOptions(text: string): { options: MountOption[] } | { error: string } {
  const trimmed = text.trim();
  if (trimmed === '') return { options: [] };
  const set = new Set<MountOption>();
  for (const raw of trimmed.split(',')) {
    const t = raw.trim();
    if (!(MOUNT_OPTIONS as readonly string[]).includes(t)) {
      return { error: `invalid mount option ${JSON.stringify(t)}, expected ${MOUNT_OPTIONS.join(', ')}` };
    }
    set.add(t as MountOption);
  }
  return { options: MOUNT_OPTIONS.filter((o) => set.has(o)) };
}

export function formatMountOptions(options: readonly MountOption[]): string {
  return MOUNT_OPTIONS.filter((o) => options.includes(o)).join(',');
}

/** The MS_* flags of a set of options (rw contributes none). */
export function mountOptionFlags(options: readonly MountOption[]): number {
  return options.reduce((f, o) => f | MOUNT_OPTION_FLAGS[o], 0);
}

const optionsSchema = z
  .string()
  .transform((text, ctx): MountOption[] => {
    const r = parseMountOptions(text);
    if ('error' in r) {
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }
    return r.options;
  })
  .meta({ pattern: '^ *((rw|noexec|nosuid|nodev|rec) *(, *(rw|noexec|nosuid|nodev|rec) *)*)?$' })
  .default([])
  .describe('Comma-separated mount options: rw, noexec, nosuid, nodev, rec (a string, not a list)');

// --- sizes --------------------------------------------------------------------------------

const SIZE_UNITS: Readonly<Record<string, bigint>> = {
  '': 1n, b: 1n,
  k: 10n ** 3n, kb: 10n ** 3n, m: 10n ** 6n, mb: 10n ** 6n, g: 10n ** 9n, gb: 10n ** 9n,
  t: 10n ** 12n, tb: 10n ** 12n, p: 10n ** 15n, pb: 10n ** 15n, e: 10n ** 18n, eb: 10n ** 18n,
  ki: 1n << 10n, kib: 1n << 10n, mi: 1n << 20n, mib: 1n << 20n, gi: 1n << 30n, gib: 1n << 30n,
  ti: 1n << 40n, tib: 1n << 40n, pi: 1n << 50n, pib: 1n << 50n, ei: 1n << 60n, eib: 1n << 60n,
};

/**
 * A byte size: an integer, or `<int>[ ]<unit>` with a case-insensitive decimal (k, kb, m, mb,
 * …) or binary (ki, kib, …) unit. `10MB` = 10 000 000, `1 KiB` = 1024.
 */
export function parseSize(input: string | number | bigint): { bytes: bigint } | { error: string } {
  if (typeof input !== 'string') {
    const v = BigInt(input);
    if (v < 0n || v > U64_MAX) return { error: 'size must be between 0 and 18446744073709551615 bytes' };
    return { bytes: v };
  }
  const m = /^([0-9]+) ?([A-Za-z]*)$/.exec(input);
  if (!m) return { error: `invalid size ${JSON.stringify(input)}: expected an integer with an optional unit such as 10MB or 1 KiB` };
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return { error: `invalid size ${JSON.stringify(input)}: unknown unit ${JSON.stringify(m[2])}` };
  const bytes = BigInt(m[1]!) * unit;
  if (bytes > U64_MAX) return { error: `invalid size ${JSON.stringify(input)}: larger than 18446744073709551615 bytes` };
  return { bytes };
}

export const sizeSchema = z
  .union([u64(), z.string().meta({ pattern: '^[0-9]+ ?([bB]|[kKmMgGtTpPeE][iI]?[bB]?)?$' })])
  .transform((v, ctx): bigint => {
    const r = parseSize(v);
    if ('error' in r) {
      ctx.addIssue({ code: 'custom', message: r.error });
      return z.NEVER;
    }
    return r.bytes;
  })
  .describe('Bytes: an integer or a string such as "10MB" (10^6) or "1 KiB" (2^10)');

// --- mount entries ------------------------------------------------------------------------

const nameSchema = z
  .string()
  .superRefine((s, ctx) => {
    const p = nameProblem(s);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  })
  .transform((s): Name => parseName(s));

const versionReqSchema = z
  .string()
  .superRefine((s, ctx) => {
    const p = versionReqProblem(s);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  })
  .transform((s) => VersionReq.parse(s))
  .describe('A cargo-style version requirement such as ">=0.0.1" (quote it in YAML)');

export const bindMountSchema = z
  .object({ type: z.literal('bind'), host: nonNul(), options: optionsSchema })
  .strict()
  .describe('Bind mount of a host path; read-only unless options contain rw');

export const resourceMountSchema = z
  .object({
    type: z.literal('resource'),
    name: nameSchema,
    version: versionReqSchema,
    dir: nonNul(),
    options: optionsSchema,
  })
  .strict()
  .describe('Read-only bind of a directory of an installed resource container');

export const tmpfsMountSchema = z.object({ type: z.literal('tmpfs'), size: sizeSchema }).strict();

// Unit variants: upstream ignores extra keys on them, so these objects are not strict.
export const mountSchema = z.discriminatedUnion('type', [
  bindMountSchema,
  z.object({ type: z.literal('dev') }).describe('Nothing is mounted; the minimal /dev is in the image'),
  z.object({ type: z.literal('persist') }).describe('Read-write bind of <data_dir>/<name>'),
  z.object({ type: z.literal('proc') }),
  resourceMountSchema,
  z.object({ type: z.literal('sockets') }).describe("Bind of the runtime's socket directory"),
  z.object({ type: z.literal('sysfs') }),
  tmpfsMountSchema,
]);

export type Mount = z.output<typeof mountSchema>;
export type MountType = Mount['type'];
export type BindMount = z.output<typeof bindMountSchema>;
export type ResourceMount = z.output<typeof resourceMountSchema>;
export type TmpfsMount = z.output<typeof tmpfsMountSchema>;

/** Path components as Rust's Path::components: `//` collapsed, `.` dropped except at the start, trailing `/` ignored. */
export function pathComponents(p: string): string[] {
  const out: string[] = [];
  if (p.startsWith('/')) out.push('/');
  const parts = p.split('/');
  parts.forEach((part, i) => {
    if (part === '') return;
    if (part === '.' && !(i === 0 && !p.startsWith('/'))) return;
    out.push(part);
  });
  return out;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The mount rules (upstream's plus ours). Run even when some entry failed to parse, so every
 * issue is reported at once; entries are therefore read defensively.
 */
function checkMounts(mounts: Record<string, unknown>, ctx: z.core.$RefinementCtx<Record<string, Mount>>): void {
  const entry = (p: string): Record<string, unknown> => {
    const m = mounts[p];
    return m !== null && typeof m === 'object' ? (m as Record<string, unknown>) : {};
  };
  // Bind targets: absolute, and not overlapping the previous one in sorted order (upstream's rule).
  const binds = Object.keys(mounts)
    .filter((p) => entry(p).type === 'bind')
    .sort(compareBytes);
  let prev: string[] = ['/'];
  let prevPath = '';
  for (const p of binds) {
    if (!p.startsWith('/')) {
      ctx.addIssue({ code: 'custom', path: [p], message: 'mount point must be an absolute path' });
      continue;
    }
    const cur = pathComponents(p);
    if (prev.length > 1 && prev.length <= cur.length && prev.every((c, i) => c === cur[i])) {
      ctx.addIssue({ code: 'custom', path: [p], message: `mount point overlaps the bind mount at ${prevPath}` });
      continue;
    }
    prev = cur;
    prevPath = p;
  }
  for (const p of Object.keys(mounts)) {
    const m = entry(p);
    // Ours: no mount point may climb out of the container root (every type, not only bind).
    if (p.split('/').includes('..')) ctx.addIssue({ code: 'custom', path: [p], message: "mount point must not contain a '..' component" });
    if (m.type === 'bind' && typeof m.host === 'string' && !m.host.startsWith('/')) {
      ctx.addIssue({ code: 'custom', path: [p, 'host'], message: 'must be an absolute path' });
    }
    if (m.type === 'resource') {
      if (Array.isArray(m.options) && m.options.includes('rec')) {
        ctx.addIssue({ code: 'custom', path: [p, 'options'], message: 'resource mounts must not be recursive (rec)' });
      }
      if (typeof m.dir === 'string') {
        if (!m.dir.startsWith('/')) ctx.addIssue({ code: 'custom', path: [p, 'dir'], message: 'must be an absolute path' });
        // Our difference (spec README 18, Cure53 ESR-01-006).
        else if (m.dir.split('/').includes('..')) ctx.addIssue({ code: 'custom', path: [p, 'dir'], message: "must not contain a '..' component" });
      }
    }
  }
}

export const mountsSchema = hint(z.record(nonNul(), mountSchema), { duplicateKeys: 'error' })
  .superRefine(checkMounts, { when: () => true })
  .describe('Mount point (absolute path in the container) -> mount; `type` selects the kind.');

export type Mounts = z.output<typeof mountsSchema>;
