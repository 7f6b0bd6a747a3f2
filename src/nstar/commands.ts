/**
 * nstar's commands (console.md §12): each connects, sends its requests, prints its result
 * as a table/line (default) or JSON (`--format json`), and closes. With `-j` every byte read
 * and written on the connection goes to stdout instead and nothing else is printed there.
 */
import { settledWithin } from '../common/deadline.js';
import { execCli, type ExecCliOptions } from './exec.js';
import { stat } from 'node:fs/promises';
import { Client, RuntimeError, type Notification } from '../client/index.js';
import { Container } from '../common/container.js';
import { errorMessage, NorthstarError } from '../common/errors.js';
import { Npk } from '../npk/reader.js';
import { TOKEN_LENGTH, type JsonValue, type LogLine } from '../api/model.js';
import { openConsole, unreachableHint, type UrlSource } from './connect.js';
import { parseSignal, resolveContainer, splitStartCommand, startedLine } from './args.js';
import { containerDataJson, compactJson, prettyJson } from './json.js';
import {
  entriesJson,
  listTable,
  notificationJson,
  notificationLine,
  psTable,
  repositoriesTable,
  resultsJson,
  resultsTable,
  type Entry,
} from './format.js';

export type OutputFormat = 'table' | 'json';

export interface GlobalOptions {
  /** Console URL (tcp:// or unix://). */
  url: string;
  /** Where `url` came from (default: given with -u); named in the hint when it is unreachable. */
  urlSource?: UrlSource;
  /** `-j`: raw transcript of the connection on stdout, no other output there. */
  transcript: boolean;
  /** Handshake limit in ms. */
  timeoutMs: number;
  format: OutputFormat;
}

export interface Io {
  stdout: (s: string | Buffer) => void;
  stderr: (s: string) => void;
  /** Colour tables (stdout is a terminal). */
  color: boolean;
  /** Draw a progress bar for install (stderr is a terminal). */
  progress: boolean;
}

export class Nstar {
  constructor(
    private readonly opts: GlobalOptions,
    private readonly io: Io,
  ) {}

  /** Connect, run `f`, close; the connection is closed on every path. */
  private async with<T>(subscribe: boolean, f: (c: Client, list: () => Promise<Container[]>) => Promise<T>): Promise<T> {
    const stream = await openConsole(this.opts.url).catch((e: unknown) => {
      if (e instanceof NorthstarError && (e.code === 'ECONNECT' || e.code === 'ETIMEOUT')) {
        const errno = (e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.code;
        throw Object.assign(e, { hint: unreachableHint(this.opts.url, this.opts.urlSource ?? 'option', errno) });
      }
      throw e;
    });
    const transcript = this.opts.transcript ? (b: Buffer): void => this.io.stdout(b) : undefined;
    const client = await Client.connect(stream, { subscribe, timeout: this.opts.timeoutMs, transcript });
    let listed: Promise<Container[]> | undefined;
    // Name resolution costs one `list`, shared by every name of the command.
    const list = (): Promise<Container[]> => (listed ??= client.list());
    try {
      return await f(client, list);
    } finally {
      await client.close();
    }
  }

  /** Print a result unless `-j`: the plain text, or the JSON value with `--format json`. */
  private print(plain: () => string, json: () => JsonValue): void {
    if (this.opts.transcript) return;
    this.io.stdout(this.opts.format === 'json' ? `${prettyJson(json())}\n` : plain());
  }

  private async entries(client: Client): Promise<Entry[]> {
    const out: Entry[] = [];
    for (const container of await client.list()) {
      try {
        out.push({ container, data: await client.inspect(container) });
      } catch (e) {
        // Uninstalled between the list and its inspect: it is simply not there any more.
        if (e instanceof RuntimeError && e.kind === 'invalid_container') continue;
        throw e;
      }
    }
    return out;
  }

  async list(): Promise<void> {
    const entries = await this.with(false, (c) => this.entries(c));
    this.print(() => listTable(entries, this.io.color), () => entriesJson(entries));
  }

  async ps(): Promise<void> {
    const entries = await this.with(false, (c) => this.entries(c));
    this.print(() => psTable(entries, this.io.color), () => entriesJson(entries));
  }

  async repositories(): Promise<void> {
    const repos = await this.with(false, (c) => c.repositories());
    this.print(() => repositoriesTable(repos, this.io.color), () => [...repos].sort());
  }

  async mount(names: readonly string[], umount = false): Promise<void> {
    const results = await this.with(false, async (c, list) => {
      const cs: Container[] = [];
      for (const n of names) cs.push(await resolveContainer(n, list));
      return umount ? c.umount(cs) : c.mount(cs);
    });
    this.print(() => resultsTable(results, this.io.color), () => resultsJson(results));
  }

  async start(name: string, command: readonly string[]): Promise<void> {
    const cmd = splitStartCommand(command);
    const container = await this.with(false, async (c, list) => {
      const target = await resolveContainer(name, list);
      return c.start(target, { init: cmd.init, args: cmd.args, env: Object.fromEntries(cmd.env) });
    });
    this.print(
      () => `${startedLine(container, cmd)}\n`,
      () => ({ started: container.toString(), init: cmd.init, args: cmd.args, env: Object.fromEntries(cmd.env) }),
    );
  }

  async kill(name: string, signal: string | undefined): Promise<void> {
    const sig = signal === undefined ? 15 : parseSignal(signal);
    const container = await this.with(false, async (c, list) => c.kill(await resolveContainer(name, list), sig));
    this.print(() => `signalled ${container} with signal ${sig}\n`, () => ({ signalled: container.toString(), signal: sig }));
  }

  /**
   * SIGTERM, then SIGKILL if the container has not exited after `seconds`; over `kill` and
   * the `exit` notification, so any other client sees the usual states.
   */
  async stop(name: string, seconds: number): Promise<void> {
    const { container, status, killed } = await this.with(true, async (c, list) => {
      const target = await resolveContainer(name, list);
      return { container: target, ...(await stopContainer(c, target, seconds)) };
    });
    this.print(
      () => `stopped ${container}${killed ? ` (SIGKILL after ${seconds} s)` : ''}: ${describeExit(status)}\n`,
      () => ({ stopped: container.toString(), killed, exit: status }),
    );
  }

  /** Stop (SIGTERM, SIGKILL after `seconds`) and start with the request it last ran with (ours). */
  async restart(name: string, seconds: number): Promise<void> {
    const container = await this.with(false, async (c, list) => c.restart(await resolveContainer(name, list), { timeoutMs: seconds * 1000 }));
    this.print(() => `restarted ${container}\n`, () => ({ restarted: container.toString() }));
  }

  async install(path: string, repository: string, replace?: { seconds: number }): Promise<void> {
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new NorthstarError('EINSTALL', `${path}: ${e.code ?? e.message}`);
    });
    if (!st.isFile()) throw new NorthstarError('EINSTALL', `${path}: not a regular file`);
    if (replace !== undefined) return this.replace(path, repository, replace.seconds);
    const bar = this.io.progress ? progressBar(this.io.stderr) : undefined;
    const container = await this.with(false, (c) => c.install(path, repository, { onProgress: bar }));
    this.print(() => `installed ${path} into ${repository}\n`, () => ({ installed: container.toString(), path, repository }));
  }

  /**
   * `install --replace` (ours): the package's name:version (from its manifest) is stopped if
   * it runs (as `stop`: SIGTERM, SIGKILL after `seconds`), uninstalled (its persistent data
   * kept), the NPK installed, and the container started again (with its manifest's init,
   * args and env) if it ran. Each step is a plain request, so other clients see the usual
   * notifications: exit, uninstall, install, started. Not installed yet: a plain install.
   */
  private async replace(path: string, repository: string, seconds: number): Promise<void> {
    const npk = await Npk.open(path).catch((e: unknown) => {
      throw new NorthstarError('EINSTALL', `${path}: ${errorMessage(e)}`);
    });
    const target = new Container(npk.manifest.name, npk.manifest.version);
    const key = target.toString();
    const bar = this.io.progress ? progressBar(this.io.stderr) : undefined;
    const done = await this.with(true, async (c, list) => {
      const installed = (await list()).some((x) => x.toString() === key);
      let ran = false;
      let stopped: { status: ExitJson; killed: boolean } | undefined;
      if (installed) {
        ran = (await c.inspect(target)).process !== null;
        if (ran) stopped = await stopContainer(c, target, seconds);
        await c.uninstall(target, { wipe: false });
      }
      try {
        await c.install(path, repository, { onProgress: bar });
      } catch (e) {
        if (!installed) throw e;
        throw new NorthstarError('EINSTALL', `replace ${key}: the old package was uninstalled, but installing ${path} failed: ${errorMessage(e)}; ${key} is not installed now`, { cause: e });
      }
      if (ran) await c.start(target);
      return { installed, ran, stopped };
    });
    const steps = [done.stopped ? `stopped (${describeExit(done.stopped.status)})` : undefined, done.installed ? 'uninstalled' : undefined, `installed ${path} into ${repository}`, done.ran ? 'started' : undefined];
    this.print(
      () => `${done.installed ? `replaced ${key}: ` : ''}${steps.filter((x) => x !== undefined).join(', ')}\n`,
      () => ({ installed: key, path, repository, replaced: done.installed, restarted: done.ran }),
    );
  }

  async uninstall(name: string, wipe: boolean): Promise<void> {
    const container = await this.with(false, async (c, list) => c.uninstall(await resolveContainer(name, list), { wipe }));
    this.print(() => `uninstalled ${container}\n`, () => ({ uninstalled: container.toString(), wipe }));
  }

  async shutdown(): Promise<void> {
    await this.with(false, (c) => c.shutdown());
    this.print(() => 'shutdown\n', () => ({ shutdown: true }));
  }

  async inspect(name: string): Promise<void> {
    const [container, data] = await this.with(false, async (c, list) => {
      const target = await resolveContainer(name, list);
      return [target, await c.inspect(target)] as const;
    });
    // Pretty JSON in both formats: it is upstream's plain output.
    this.print(() => `${prettyJson(containerDataJson(container, data))}\n`, () => containerDataJson(container, data));
  }

  async token(target: string, shared: string): Promise<void> {
    const token = await this.with(false, (c) => c.createToken(target, shared));
    const b64 = token.toString('base64');
    this.print(() => `created token ${b64}\n`, () => ({ token: b64 }));
  }

  /** Prints the result; returns it (nstar exits with 1 for anything but `Ok`). */
  async verifyToken(token: string, user: string, shared: string): Promise<string> {
    const bytes = decodeToken(token);
    const result = await this.with(false, (c) => c.verifyToken(bytes, user, shared));
    this.print(() => `${result}\n`, () => ({ result }));
    return result;
  }

  async ident(): Promise<void> {
    const me = await this.with(false, (c) => c.ident());
    this.print(() => `${me}\n`, () => ({ ident: me.toString() }));
  }

  /**
   * Ours: the container's kept `io: pipe` output (the last `tail` lines, all for undefined),
   * stdout lines on stdout and stderr lines on stderr; with `follow`, new lines until the
   * container's exit has been delivered. A container whose manifest keeps no output (io
   * `discard` or `inherit`) is an error that says so.
   */
  async logs(name: string, o: { follow: boolean; tail: number | undefined; timestamps: boolean; stream: 'stdout' | 'stderr' | undefined }): Promise<void> {
    await this.with(false, async (c, list) => {
      const target = await resolveContainer(name, list);
      const tail = o.tail;
      const opts = tail === undefined ? {} : { tail };
      const follow = o.follow ? await c.logs(target, { ...opts, follow: true }) : undefined;
      const info = follow?.info ?? (await c.logs(target, opts));
      const lines: AsyncIterable<LogLine> | readonly LogLine[] = follow ?? info.lines;
      const io = info.io;
      const kept = (['stdout', 'stderr'] as const).filter((s) => io[s] === 'pipe' && (o.stream === undefined || o.stream === s));
      if (kept.length === 0) {
        await follow?.stop();
        const asked = o.stream === undefined ? (['stdout', 'stderr'] as const) : [o.stream];
        const why = asked.map((s) => `io.${s} is ${io[s]}${io[s] === 'inherit' ? " (it goes to the runtime's own " + s + ')' : ''}`).join(', ');
        throw new NorthstarError('ENOLOGS', `${target} keeps no output: its manifest's ${why}; only io: pipe output is kept for nstar logs`);
      }
      for await (const l of lines) {
        if (o.stream !== undefined && l.stream !== o.stream) continue;
        if (this.opts.transcript) continue;
        if (this.opts.format === 'json') {
          this.io.stdout(`${compactJson({ time: Number(l.time), stream: l.stream, line: l.line })}\n`);
          continue;
        }
        const text = `${o.timestamps ? `${new Date(Number(l.time)).toISOString()} ` : ''}${l.line}\n`;
        if (l.stream === 'stderr') this.io.stderr(text);
        else this.io.stdout(text);
      }
    });
  }

  /** Ours: run a command in a running container (exec.ts); resolves with nstar's exit code. */
  async exec(name: string, command: readonly string[], o: ExecCliOptions): Promise<number> {
    return this.with(false, async (c, list) => execCli(c, await resolveContainer(name, list), command, o));
  }

  /**
   * Follow notifications; stop after `count` of them, or when the runtime ends the stream:
   * its `shutdown` notification, then EOF. A connection that ends without it (the runtime
   * was killed, the socket reset) is an error: the stream was cut, not finished.
   */
  async notifications(count: number | undefined): Promise<void> {
    await this.with(true, async (c) => {
      let seen = 0;
      if (count === 0) return;
      let last: Notification | undefined;
      for await (const n of c.notifications()) {
        last = n;
        if (!this.opts.transcript) this.io.stdout(this.opts.format === 'json' ? `${compactJson(notificationJson(n))}\n` : `${notificationLine(n)}\n`);
        if (count !== undefined && ++seen >= count) return;
      }
      if (last !== 'shutdown') {
        const after = count === undefined ? '' : ` after ${seen} of ${count} notifications`;
        throw new NorthstarError('ECONNCLOSED', `the connection to ${this.opts.url} was lost${after} without the runtime's shutdown notification (was the runtime killed?)`);
      }
    });
  }
}

/** A token argument: standard padded base64 of exactly 40 bytes. */
export function decodeToken(text: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new NorthstarError('ETOKEN', 'invalid token: not base64');
  const b = Buffer.from(text, 'base64');
  if (b.length !== TOKEN_LENGTH) throw new NorthstarError('ETOKEN', `invalid token: expected ${TOKEN_LENGTH} bytes, got ${b.length}`);
  return b;
}

function mib(n: number): string {
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** A progress bar on stderr (a terminal): `installing [#####     ] 50% 1.2 MiB/2.4 MiB`. */
export function progressBar(write: (s: string) => void, width = 30): (sent: number, total: number) => void {
  let last = -1;
  return (sent, total) => {
    const pct = total > 0 ? Math.floor((sent / total) * 100) : 100;
    if (pct === last) return;
    last = pct;
    const fill = Math.round((pct / 100) * width);
    write(`\rinstalling [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${String(pct).padStart(3)}% ${mib(sent)}/${mib(total)}${sent >= total ? '\n' : ''}`);
  };
}

/** How long `stop` waits for the exit after its SIGKILL. */
const STOP_KILL_WAIT_MS = 30_000;

type ExitJson = { [k: string]: JsonValue };

/** The next `exit` notification of `container`, waited for up to a deadline (undefined: none came). */
function waitForExit(client: Client, container: string): { within(ms: number): Promise<ExitJson | undefined> } {
  const it = client[Symbol.asyncIterator]();
  const next = (async (): Promise<ExitJson | undefined> => {
    for (;;) {
      const r = await it.next();
      if (r.done) return undefined;
      const n = r.value;
      if (typeof n === 'object' && 'exit' in n && n.exit[0].toString() === container) return JSON.parse(JSON.stringify(n.exit[1])) as ExitJson;
    }
  })();
  return {
    within: (ms) => settledWithin(next, ms, undefined),
  };
}

/**
 * SIGTERM, then SIGKILL if `target` has not exited after `seconds`; resolves with its exit
 * status once the `exit` notification came (`c` must be subscribed). Used by `stop` and
 * `install --replace`.
 */
async function stopContainer(c: Client, target: Container, seconds: number): Promise<{ status: ExitJson; killed: boolean }> {
  const key = target.toString();
  const exited = waitForExit(c, key);
  await c.kill(target, 15);
  let st = await exited.within(seconds * 1000);
  let killed = false;
  if (st === undefined) {
    killed = true;
    await c.kill(target, 9).catch((e: unknown) => {
      // It exited between the deadline and the SIGKILL: the exit is on its way.
      if (!(e instanceof RuntimeError && e.kind === 'stop_container_not_started')) throw e;
    });
    st = await exited.within(STOP_KILL_WAIT_MS);
    if (st === undefined) throw new NorthstarError('ETIMEOUT', `stop ${key}: no exit ${STOP_KILL_WAIT_MS / 1000} s after SIGKILL`);
  }
  return { status: st, killed };
}

/** The wire exit status (`{"exit":{"code":n}}` or `{"signalled":{"signal":n}}`) in words. */
function describeExit(status: ExitJson): string {
  const code = (status['exit'] as { code?: unknown } | undefined)?.code;
  const signal = (status['signalled'] as { signal?: unknown } | undefined)?.signal;
  if (typeof code === 'number') return `exit code ${code}`;
  if (typeof signal === 'number') return `signal ${signal}`;
  return JSON.stringify(status);
}
