import { z } from 'zod';
import { fileName, i64, u16, u64 } from './fields.js';
import { NAME_MAX_BYTES } from '../common/paths.js';
import { hint } from './decode.js';

// Ours: an attrs key is a file in the container's cgroup directory, so it must be a plain
// file name (upstream writes `<cgroup>/<key>` whatever the key is).
const attrs = () => hint(z.record(fileName(NAME_MAX_BYTES), z.string()), { duplicateKeys: 'last' }).default({});

/** Ours: `parent` is joined below the cgroup root; no `.`/`..` component, NUL or newline. */
const parentSchema = z.string().superRefine((s, ctx) => {
  if (s.includes('\0')) ctx.addIssue({ code: 'custom', message: 'must not contain a nul byte' });
  else if (s.includes('\n')) ctx.addIssue({ code: 'custom', message: 'must not contain a newline' });
  else if (s.split('/').some((c) => c === '.' || c === '..')) ctx.addIssue({ code: 'custom', message: "must not contain a '.' or '..' component" });
});

const deviceSchema = z.object({
  major: u64(),
  minor: u64(),
  weight: u16().optional(),
  leaf_weight: u16().optional(),
});

const throttleSchema = z.object({ major: u64(), minor: u64(), rate: u64() });

// No deny_unknown_fields anywhere in this section: unknown keys are ignored, as upstream.
export const blkioSchema = z.object({
  weight: u16().optional(),
  leaf_weight: u16().optional(),
  weight_device: z.array(deviceSchema),
  throttle_read_bps_device: z.array(throttleSchema),
  throttle_read_iops_device: z.array(throttleSchema),
  throttle_write_bps_device: z.array(throttleSchema),
  throttle_write_iops_device: z.array(throttleSchema),
  attrs: attrs(),
});

export const cpuSchema = z.object({
  cpus: z.string().optional(),
  mems: z.string().optional(),
  shares: u64().optional(),
  quota: i64().optional(),
  period: u64().optional(),
  realtime_runtime: i64().optional(),
  realtime_period: u64().optional(),
  attrs: attrs(),
});

export const memorySchema = z.object({
  oom_monitor: z.boolean().default(false),
  kernel_memory_limit: i64().optional(),
  memory_hard_limit: i64().optional(),
  memory_soft_limit: i64().optional(),
  kernel_tcp_memory_limit: i64().optional(),
  memory_swap_limit: i64().optional(),
  swappiness: u64().optional(),
  attrs: attrs(),
});

export const cgroupsSchema = z
  .object({
    parent: parentSchema.optional().describe('parent cgroup path; default the runtime\'s configured cgroup'),
    blkio: blkioSchema.optional(),
    cpu: cpuSchema.optional(),
    memory: memorySchema.optional(),
  })
  .describe('Control group settings; the cgroup is <parent>/<name>.');

export type CGroups = z.output<typeof cgroupsSchema>;
export type BlkIoResources = z.output<typeof blkioSchema>;
export type CpuResources = z.output<typeof cpuSchema>;
export type MemoryResources = z.output<typeof memorySchema>;
