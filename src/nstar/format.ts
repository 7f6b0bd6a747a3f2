/** Plain-text formatting of nstar's results: the lines and tables upstream prints. */
import type { Container } from '../common/container.js';
import { compareNames } from '../common/name.js';
import { compareVersions } from '../common/version.js';
import type { ContainerData, ContainerResult, ExitStatus, JsonValue, ModelError, Notification } from '../api/model.js';
import { encodeError, encodeExitStatus, encodeNotification } from '../api/codec.js';
import { formatDuration } from './duration.js';
import { renderTable, type Cell } from './table.js';
import { wireValue } from './json.js';

function exitText(s: ExitStatus): string {
  return 'exit' in s ? `exit code ${s.exit.code}` : `signalled ${s.signalled.signal}`;
}

/** A runtime error as upstream nstar shows it in the mount/umount Result column. */
export function modelErrorText(e: ModelError): string {
  if ('configuration' in e) return `invalid configuration: ${e.configuration.context}`;
  if ('duplicate_container' in e) return `duplicate container name and version ${e.duplicate_container.container}`;
  if ('invalid_container' in e) return `invalid container ${e.invalid_container.container}`;
  if ('invalid_arguments' in e) return `invalid arguments ${e.invalid_arguments.cause}`;
  if ('mount_busy' in e) return `container busy: ${e.mount_busy.container}`;
  if ('umount_busy' in e) return `container busy: ${e.umount_busy.container}`;
  if ('start_container_started' in e) return `failed to start container ${e.start_container_started.container}: already started`;
  if ('start_container_resource' in e) return `failed to start container ${e.start_container_resource.container}: resource`;
  if ('start_container_missing_resource' in e) {
    const m = e.start_container_missing_resource;
    return `failed to start container ${m.container}: missing resource ${m.resource} version ${m.version}`;
  }
  if ('start_container_failed' in e) return `failed to start container ${e.start_container_failed.container}: ${e.start_container_failed.error}`;
  if ('stop_container_not_started' in e) return `failed to stop container ${e.stop_container_not_started.container}: not started`;
  if ('invalid_repository' in e) return `invalid repository ${e.invalid_repository.repository}`;
  if ('install_duplicate' in e) return `failed to install ${e.install_duplicate.container}: installed`;
  if ('critical_container' in e) {
    const s = e.critical_container.status;
    return `critical container ${e.critical_container.container} exited with: ${'exit' in s ? `exit code ${s.exit.code}` : `signaled ${s.signalled.signal}`}`;
  }
  return e.unexpected.error;
}

/** One notification as upstream nstar prints it. */
export function notificationLine(n: Notification): string {
  if (n === 'shutdown') return 'shutting down';
  if ('started' in n) return `started ${n.started}`;
  if ('exit' in n) return `container ${n.exit[0]} exited with status ${exitText(n.exit[1])}`;
  if ('install' in n) return `installed ${n.install}`;
  if ('uninstall' in n) return `uninstalled ${n.uninstall}`;
  const m = n.c_group[1].memory;
  const v = (x: bigint | null): string => (x === null ? 'None' : `Some(${x})`);
  return `container ${n.c_group[0]} memory event Memory(MemoryNotification { low: ${v(m.low)}, high: ${v(m.high)}, max: ${v(m.max)}, oom: ${v(m.oom)}, oom_kill: ${v(m.oom_kill)} })`;
}

/** A notification in its wire encoding, as a value (for `--format json`). */
export function notificationJson(n: Notification): JsonValue {
  return wireValue(encodeNotification(n));
}

export type State = 'running' | 'mounted' | 'installed';

/** One container of `list`/`ps`: what inspect said about it. */
export interface Entry {
  container: Container;
  data: ContainerData;
}

export function stateOf(d: ContainerData): State {
  return d.process !== null ? 'running' : d.mounted ? 'mounted' : 'installed';
}

export function typeOf(d: ContainerData): 'app' | 'resource' {
  return d.manifest.init === undefined || d.manifest.init === null ? 'resource' : 'app';
}

/** Apps first, then resources; each by name, then version. */
export function sortEntries(entries: readonly Entry[]): Entry[] {
  return [...entries].sort((a, b) => {
    const ta = typeOf(a.data) === 'app' ? 0 : 1;
    const tb = typeOf(b.data) === 'app' ? 0 : 1;
    if (ta !== tb) return ta - tb;
    return compareNames(a.container.name, b.container.name) || compareVersions(a.container.version, b.container.version);
  });
}

/** `nstar list`: Name, Version, Repository, Type, Mounted, PID, Uptime. */
export function listTable(entries: readonly Entry[], color = false): string {
  const rows = sortEntries(entries).map(({ container, data }): Cell[] => [
    { text: container.name, style: 'bold' },
    { text: container.version },
    { text: data.repository },
    typeOf(data) === 'app' ? { text: 'app', style: 'blue' } : { text: 'resource', style: 'green' },
    data.mounted ? { text: 'yes', style: 'yellow' } : { text: 'no', style: 'cyan' },
    { text: data.process ? String(data.process.pid) : '', style: 'green' },
    { text: data.process ? formatDuration(data.process.uptime) : '' },
  ]);
  return renderTable(['Name', 'Version', 'Repository', 'Type', 'Mounted', 'PID', 'Uptime'], rows, { color });
}

const STATE_STYLE = { running: 'green', mounted: 'yellow', installed: 'cyan' } as const;

/** How a container last ended, for people: `exited (3)`, `killed (9)` (signal). */
export function lastExitText(d: ContainerData): string | null {
  const e = d.last_exit;
  if (!e) return null;
  return 'exit' in e.status ? `exited (${e.status.exit.code})` : `killed (${e.status.signalled.signal})`;
}

/** `nstar ps`'s state: running or mounted/installed, with the last exit and the restarts (ours). */
export function psState(d: ContainerData, now = Date.now()): string {
  const parts: string[] = [stateOf(d)];
  const exit = lastExitText(d);
  if (d.process === null && exit !== null) {
    const ago = BigInt(Math.max(0, now - Number(d.last_exit!.time))) * 1_000_000n;
    parts[0] = `${exit} ${formatDuration(ago - (ago % 1_000_000_000n))} ago`;
  }
  if (d.restarts) parts.push(`${d.restarts} restart${d.restarts === 1 ? '' : 's'}`);
  return parts.join(', ');
}

/** `nstar ps`: Name, Version, Type, State, PID, Uptime (whole seconds), Repository. */
export function psTable(entries: readonly Entry[], color = false): string {
  const rows = sortEntries(entries).map(({ container, data }): Cell[] => {
    const state = stateOf(data);
    const up = data.process ? data.process.uptime - (data.process.uptime % 1_000_000_000n) : null;
    return [
      { text: container.name, style: 'bold' },
      { text: container.version },
      typeOf(data) === 'app' ? { text: 'app', style: 'blue' } : { text: 'resource', style: 'green' },
      { text: psState(data), style: data.process === null && data.last_exit && !('exit' in data.last_exit.status && data.last_exit.status.exit.code === 0) ? 'red' : STATE_STYLE[state] },
      { text: data.process ? String(data.process.pid) : '' },
      { text: up === null ? '' : formatDuration(up) },
      { text: data.repository },
    ];
  });
  return renderTable(['Name', 'Version', 'Type', 'State', 'PID', 'Uptime', 'Repository'], rows, { color });
}

/** The rows of `list`/`ps` for `--format json`. */
export function entriesJson(entries: readonly Entry[]): JsonValue {
  return sortEntries(entries).map(({ container, data }) => ({
    container: container.toString(),
    name: container.name,
    version: container.version,
    repository: data.repository,
    type: typeOf(data),
    mounted: data.mounted,
    state: stateOf(data),
    pid: data.process ? data.process.pid : null,
    uptime_ns: data.process ? data.process.uptime : null,
    ...(data.last_exit ? { last_exit: { status: wireValue(encodeExitStatus(data.last_exit.status)), time_ms: data.last_exit.time, duration_ns: data.last_exit.duration } } : {}),
    ...(data.restarts ? { restarts: data.restarts } : {}),
  }));
}

/** `nstar repositories`: a sorted one-column table. */
export function repositoriesTable(repos: readonly string[], color = false): string {
  return renderTable(['Name'], [...repos].sort().map((r): Cell[] => [{ text: r, style: 'bold' }]), { color });
}

/** `nstar mount`/`umount`: Name and Result (`ok` or the error). */
export function resultsTable(results: readonly ContainerResult[], color = false): string {
  const rows = results.map((r): Cell[] =>
    'ok' in r
      ? [{ text: r.ok.container.toString(), style: 'bold' }, { text: 'ok' }]
      : [{ text: r.error.container.toString(), style: 'bold' }, { text: modelErrorText(r.error.error), style: 'red' }],
  );
  return renderTable(['Name', 'Result'], rows, { color });
}

/** mount/umount results for `--format json`: the wire error kept as it is. */
export function resultsJson(results: readonly ContainerResult[]): JsonValue {
  return results.map((r): JsonValue =>
    'ok' in r
      ? { container: r.ok.container.toString(), result: 'ok' }
      : {
          container: r.error.container.toString(),
          result: 'error',
          error: wireValue(encodeError(r.error.error)),
          message: modelErrorText(r.error.error),
        },
  );
}
