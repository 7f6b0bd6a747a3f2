/**
 * Logging: pino underneath; human-readable lines by default
 * (`HH:MM:SS.mmm <target> LEVEL: msg`), JSON lines on request. The target of a line is
 * the `target` binding (a container's `name:version` for its output, `northstar` otherwise).
 *
 * A human line is exactly one line of plain text whatever a record holds: control
 * characters in the message, target and extra fields (container output, paths, error
 * texts) are shown escaped, so no record can end a line early, return the cursor (`\r`),
 * or send terminal escape sequences, i.e. no record can forge or hide another line.
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type LogFormat = 'human' | 'json';
export type { Logger };

/** The small part of a pino logger the repositories, mounts and cgroups use (a Logger is one). */
export interface Log {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const nullLog: Log = { debug() {}, info() {}, warn() {}, error() {} };

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

// C0 controls except tab, DEL, C1 controls, and the Unicode line and paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/g;

/** `s` with control characters written visibly: `\n`, `\r`, else `\u001b` style. */
export function escapeControl(s: string): string {
  CONTROL.lastIndex = 0;
  if (!CONTROL.test(s)) return s;
  return s.replace(CONTROL, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** A pino destination that turns each JSON record into one human line. */
export function humanStream(out: { write(s: string): unknown } = process.stderr): { write(line: string): void } {
  return {
    write(line: string): void {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        out.write(`${escapeControl(line.replace(/\n$/, ''))}\n`);
        return;
      }
      const d = new Date(typeof rec['time'] === 'number' ? rec['time'] : Date.now());
      const ts = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
      const level = LEVEL_NAMES[rec['level'] as number] ?? String(rec['level']);
      const target = escapeControl(typeof rec['target'] === 'string' ? rec['target'] : 'northstar');
      const extra = Object.entries(rec)
        .filter(([k]) => !['time', 'level', 'msg', 'target', 'pid', 'hostname'].includes(k))
        .map(([k, v]) => ` ${escapeControl(k)}=${typeof v === 'string' ? escapeControl(v) : escapeControl(JSON.stringify(v) ?? String(v))}`)
        .join('');
      out.write(`${ts} ${target.padStart(24)} ${escapeControl(level).padEnd(5)}: ${escapeControl(String(rec['msg'] ?? ''))}${extra}\n`);
    },
  };
}

export function createLogger(opts: { format?: LogFormat; level?: LevelWithSilent; destination?: { write(s: string): unknown } } = {}): Logger {
  const level = opts.level ?? ((process.env['NORTHSTAR_LOG'] as LevelWithSilent | undefined) ?? 'info');
  const base = { level, base: undefined };
  if (opts.format === 'json') {
    return pino(base, (opts.destination ?? process.stderr) as NodeJS.WritableStream);
  }
  return pino(base, humanStream(opts.destination));
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
