/**
 * Durations as upstream nstar reads and prints them (the `humantime` crate): `-t 10s`,
 * `1m 30s`, `1h30m`; printed as `1h 2m 3s 4ms 5us 6ns` with only the non-zero units.
 */
export { parseDuration, parseDurationMs } from '../common/humantime.js';

const US = 1000n;
const MS = 1_000_000n;
const S = 1_000_000_000n;

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
