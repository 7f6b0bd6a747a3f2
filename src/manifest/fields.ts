/** Scalar field schemas shared by the sections, with the rule texts of their checks. */
import { z } from 'zod';
import { leafProblem } from '../common/paths.js';

export const U64_MAX = (1n << 64n) - 1n;
export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;

export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Upstream's NonNulString: UTF-8 text without NUL. */
export function nonNul() {
  return z.string().refine((s) => !s.includes('\0'), { error: 'must not contain a nul byte', abort: true });
}

function intRange(min: number, max: number, label: string) {
  return z
    .number()
    .int()
    .min(min, { error: `must be between ${min} and ${max} (${label})` })
    .max(max, { error: `must be between ${min} and ${max} (${label})` });
}

export const u16 = () => intRange(0, 65535, 'u16');
export const u32 = () => intRange(0, 4294967295, 'u32');
export const usize = () => intRange(0, Number.MAX_SAFE_INTEGER, 'usize');
export const i8 = () => intRange(-128, 127, 'i8');

/** 64-bit integers are bigint in the model, so that every u64 value is exact. */
export const u64 = () =>
  z
    .bigint()
    .min(0n, { error: 'must be between 0 and 18446744073709551615 (u64)' })
    .max(U64_MAX, { error: 'must be between 0 and 18446744073709551615 (u64)' })
    .meta({ 'x-integer-range': 'u64' });

export const i64 = () =>
  z
    .bigint()
    .min(I64_MIN, { error: 'must be between -9223372036854775808 and 9223372036854775807 (i64)' })
    .max(I64_MAX, { error: 'must be between -9223372036854775808 and 9223372036854775807 (i64)' })
    .meta({ 'x-integer-range': 'i64' });

/**
 * A string that becomes one file name in a host directory (socket names, the network
 * namespace): no `/`, no NUL, not `.` or `..`, not empty (length limits: the caller's).
 */
export function fileName(maxBytes?: number) {
  return z.string().superRefine((s, ctx) => {
    const p = leafProblem(s, maxBytes ?? Number.MAX_SAFE_INTEGER);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p, abort: true });
  });
}
