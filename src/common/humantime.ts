/**
 * Durations as the `humantime` crate reads them (upstream's config, nstar's `-t 10s`, our
 * manifest extensions): integer counts, each followed by a unit, optionally separated by
 * spaces (`10s`, `1m 30s`, `1h30m`, `500ms`); a bare number and fractions are refused. One
 * parser for the runtime config, nstar and the manifest.
 */
import { NorthstarError } from './errors.js';

const NS = 1n;
const US = 1000n;
const MS = 1_000_000n;
const S = 1_000_000_000n;
const UNITS: Record<string, bigint> = {
  nanos: NS, nsec: NS, ns: NS,
  usec: US, us: US, micros: US,
  millis: MS, msec: MS, ms: MS,
  seconds: S, second: S, secs: S, sec: S, s: S,
  minutes: 60n * S, minute: 60n * S, mins: 60n * S, min: 60n * S, m: 60n * S,
  hours: 3600n * S, hour: 3600n * S, hrs: 3600n * S, hr: 3600n * S, h: 3600n * S,
  days: 86_400n * S, day: 86_400n * S, d: 86_400n * S,
  weeks: 604_800n * S, week: 604_800n * S, w: 604_800n * S,
  months: 2_630_016n * S, month: 2_630_016n * S, M: 2_630_016n * S,
  years: 31_557_600n * S, year: 31_557_600n * S, y: 31_557_600n * S,
};

/** Parse a humantime duration into nanoseconds. Throws NorthstarError EDURATION. */
export function parseDuration(text: string): bigint {
  const bad = (why: string): never => {
    throw new NorthstarError('EDURATION', `invalid duration ${JSON.stringify(text)}: ${why}`);
  };
  const s = text.trim();
  if (s === '') bad('empty');
  if (/\d[.,]\d/.test(s)) bad('fractions are not supported, for example write 1500ms for 1.5s');
  const item = /\s*(\d+)\s*([A-Za-zµ]*)\s*/y;
  let total = 0n;
  let i = 0;
  while (i < s.length) {
    item.lastIndex = i;
    const m = item.exec(s);
    if (!m) bad(`unexpected ${JSON.stringify(s[i])}`);
    const [, num, unit] = m as RegExpExecArray & [string, string, string];
    if (unit === '') bad(`time unit needed, for example ${num}sec or ${num}ms`);
    const factor = UNITS[unit] ?? (unit === 'µs' ? US : undefined);
    if (factor === undefined) bad(`unknown time unit ${JSON.stringify(unit)}`);
    total += BigInt(num) * factor!;
    i = item.lastIndex;
  }
  return total;
}

/** Parse a humantime duration into whole milliseconds (rounded up). */
export function parseDurationMs(text: string): number {
  const ns = parseDuration(text);
  const ms = (ns + MS - 1n) / MS;
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) throw new NorthstarError('EDURATION', `invalid duration ${JSON.stringify(text)}: too long`);
  return Number(ms);
}

/** Milliseconds, fractional below one (`250us` = 0.25): what the runtime config keeps. */
export function parseDurationMsExact(text: string): number {
  const ns = parseDuration(text);
  const ms = Number(ns / MS) + Number(ns % MS) / 1e6;
  if (ms > Number.MAX_SAFE_INTEGER) throw new NorthstarError('EDURATION', `invalid duration ${JSON.stringify(text)}: too long`);
  return ms;
}
