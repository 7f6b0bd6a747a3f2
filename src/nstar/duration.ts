/**
 * Durations as upstream nstar reads and prints them (the `humantime` crate): `-t 10s`,
 * `1m 30s`, `1h30m`; printed as `1h 2m 3s 4ms 5us 6ns` with only the non-zero units.
 */
import { NorthstarError } from '../common/errors.js';

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
    if (unit === '') bad('time unit needed, for example 10s or 500ms');
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

/** Format nanoseconds as humantime does: `1day 2h 3m 4s 5ms 6us 7ns`; zero is `0s`. */
export function formatDuration(nanos: bigint): string {
  if (nanos < 0n) nanos = 0n;
  const secs = nanos / S;
  const sub = nanos % S;
  const years = secs / 31_557_600n;
  const ydays = secs % 31_557_600n;
  const months = ydays / 2_630_016n;
  const mdays = ydays % 2_630_016n;
  const days = mdays / 86_400n;
  const daySecs = mdays % 86_400n;
  const parts: string[] = [];
  const plural = (v: bigint, name: string): void => {
    if (v > 0n) parts.push(`${v}${name}${v > 1n ? 's' : ''}`);
  };
  const unit = (v: bigint, name: string): void => {
    if (v > 0n) parts.push(`${v}${name}`);
  };
  plural(years, 'year');
  plural(months, 'month');
  plural(days, 'day');
  unit(daySecs / 3600n, 'h');
  unit((daySecs % 3600n) / 60n, 'm');
  unit(daySecs % 60n, 's');
  unit(sub / MS, 'ms');
  unit((sub / US) % 1000n, 'us');
  unit(sub % 1000n, 'ns');
  return parts.length === 0 ? '0s' : parts.join(' ');
}
