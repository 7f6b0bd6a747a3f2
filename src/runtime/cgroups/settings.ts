/**
 * Manifest `cgroups` → file writes, per runtime.md §6 (the cgroups-rs 0.3.4 mapping
 * upstream uses). Pure: the result is a list of writes the cgroup code performs in
 * order, so the mapping is unit-tested without a kernel.
 *
 * Differences from cgroups-rs, on purpose:
 * - v2 `memory.swappiness` is not written to `memory.swap.max` (a cgroups-rs bug that
 *   would cap swap at <swappiness> bytes); v2 has no per-cgroup swappiness, so it is
 *   skipped with a note.
 * - cpu writes that fail (or read back differently) fail the container start instead
 *   of panicking the runtime (spec README item 6).
 */
import type { CGroups } from '../../manifest/index.js';

export type Controller = 'memory' | 'cpu' | 'cpuacct' | 'blkio' | 'io' | 'pids';

export interface CgroupWrite {
  /** v1: the controller whose directory holds the file; v2: the controller the file belongs to. */
  controller: Controller;
  file: string;
  value: string;
  /**
   * `ignore`: a failure is logged (memory and blkio, like upstream); `verify`: the value
   * is read back and a failure or mismatch fails the start (cpu).
   */
  onError: 'ignore' | 'verify';
  /** v2 cpu.max: read-modify-write of one half ("<quota> <period>"). */
  merge?: 'cpu.max.quota' | 'cpu.max.period';
}

export interface CgroupWritePlan {
  writes: CgroupWrite[];
  /** Settings that have no file on this cgroup version (for a debug log). */
  skipped: string[];
}

function dev(d: { major: bigint; minor: bigint }): string {
  return `${d.major}:${d.minor}`;
}

/** A raw `attrs` file name must be a plain name inside the controller directory. */
export function safeAttrName(name: string): boolean {
  return name.length > 0 && !name.includes('/') && name !== '.' && name !== '..' && !name.includes('\0');
}

export function cgroupWrites(cg: CGroups | undefined, version: 1 | 2): CgroupWritePlan {
  const writes: CgroupWrite[] = [];
  const skipped: string[] = [];
  if (!cg) return { writes, skipped };
  const mem = cg.memory;
  if (mem) {
    const w = (file: string, value: string) => writes.push({ controller: 'memory', file, value, onError: 'ignore' });
    const maxOr = (v: bigint) => (v === -1n ? 'max' : String(v));
    if (version === 1) {
      if (mem.memory_hard_limit !== undefined) w('memory.limit_in_bytes', String(mem.memory_hard_limit));
      if (mem.memory_soft_limit !== undefined) w('memory.soft_limit_in_bytes', String(mem.memory_soft_limit));
      if (mem.kernel_memory_limit !== undefined) w('memory.kmem.limit_in_bytes', String(mem.kernel_memory_limit));
      if (mem.kernel_tcp_memory_limit !== undefined) w('memory.kmem.tcp.limit_in_bytes', String(mem.kernel_tcp_memory_limit));
      if (mem.memory_swap_limit !== undefined) w('memory.memsw.limit_in_bytes', String(mem.memory_swap_limit));
      if (mem.swappiness !== undefined) w('memory.swappiness', String(mem.swappiness));
    } else {
      if (mem.memory_hard_limit !== undefined) w('memory.max', maxOr(mem.memory_hard_limit));
      if (mem.memory_soft_limit !== undefined) w('memory.low', String(mem.memory_soft_limit));
      if (mem.kernel_memory_limit !== undefined) skipped.push('memory.kernel_memory_limit');
      if (mem.kernel_tcp_memory_limit !== undefined) skipped.push('memory.kernel_tcp_memory_limit');
      if (mem.memory_swap_limit !== undefined) w('memory.swap.max', maxOr(mem.memory_swap_limit));
      if (mem.swappiness !== undefined) skipped.push('memory.swappiness');
    }
    for (const [file, value] of Object.entries(mem.attrs ?? {})) if (safeAttrName(file)) w(file, value);
  }
  const cpu = cg.cpu;
  if (cpu) {
    const w = (file: string, value: string, merge?: CgroupWrite['merge']) =>
      writes.push({ controller: 'cpu', file, value, onError: 'verify', ...(merge ? { merge } : {}) });
    if (version === 1) {
      if (cpu.shares !== undefined) w('cpu.shares', String(cpu.shares));
      if (cpu.period !== undefined) w('cpu.cfs_period_us', String(cpu.period));
      if (cpu.quota !== undefined) w('cpu.cfs_quota_us', String(cpu.quota));
    } else {
      // cgroups-rs writes the raw shares value into cpu.weight.
      if (cpu.shares !== undefined) w('cpu.weight', String(cpu.shares));
      if (cpu.period !== undefined) w('cpu.max', String(cpu.period), 'cpu.max.period');
      if (cpu.quota !== undefined) w('cpu.max', cpu.quota <= 0n ? 'max' : String(cpu.quota), 'cpu.max.quota');
    }
    for (const k of ['cpus', 'mems', 'realtime_runtime', 'realtime_period'] as const) if (cpu[k] !== undefined) skipped.push(`cpu.${k}`);
    for (const [file, value] of Object.entries(cpu.attrs ?? {})) if (safeAttrName(file)) w(file, value);
  }
  const blk = cg.blkio;
  if (blk) {
    const ctl: Controller = version === 1 ? 'blkio' : 'io';
    const w = (file: string, value: string) => writes.push({ controller: ctl, file, value, onError: 'ignore' });
    if (version === 1) {
      if (blk.weight !== undefined) w('blkio.weight', String(blk.weight));
      if (blk.leaf_weight !== undefined) w('blkio.leaf_weight', String(blk.leaf_weight));
      for (const d of blk.weight_device) {
        if (d.weight !== undefined) w('blkio.weight_device', `${dev(d)} ${d.weight}`);
        if (d.leaf_weight !== undefined) w('blkio.leaf_weight_device', `${dev(d)} ${d.leaf_weight}`);
      }
      for (const d of blk.throttle_read_bps_device) w('blkio.throttle.read_bps_device', `${dev(d)} ${d.rate}`);
      for (const d of blk.throttle_read_iops_device) w('blkio.throttle.read_iops_device', `${dev(d)} ${d.rate}`);
      for (const d of blk.throttle_write_bps_device) w('blkio.throttle.write_bps_device', `${dev(d)} ${d.rate}`);
      for (const d of blk.throttle_write_iops_device) w('blkio.throttle.write_iops_device', `${dev(d)} ${d.rate}`);
    } else {
      if (blk.weight !== undefined) w('io.bfq.weight', String(blk.weight));
      if (blk.leaf_weight !== undefined) skipped.push('blkio.leaf_weight');
      for (const d of blk.weight_device) {
        if (d.weight !== undefined) w('io.bfq.weight', `${dev(d)} ${d.weight}`);
        if (d.leaf_weight !== undefined) skipped.push('blkio.weight_device.leaf_weight');
      }
      for (const d of blk.throttle_read_bps_device) w('io.max', `${dev(d)} rbps=${d.rate}`);
      for (const d of blk.throttle_read_iops_device) w('io.max', `${dev(d)} riops=${d.rate}`);
      for (const d of blk.throttle_write_bps_device) w('io.max', `${dev(d)} wbps=${d.rate}`);
      for (const d of blk.throttle_write_iops_device) w('io.max', `${dev(d)} wiops=${d.rate}`);
    }
    if (Object.keys(blk.attrs ?? {}).length > 0) skipped.push('blkio.attrs');
  }
  return { writes, skipped };
}
