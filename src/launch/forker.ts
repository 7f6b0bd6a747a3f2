/**
 * Launch cores forked off the runtime's thread (native/src/forker.c).
 *
 * `child_process.spawn` forks the whole runtime and blocks its thread until the child has
 * executed: 5-7 ms per core on the machines we measure, paid by every start that finds no
 * pooled core (starts back to back, a hundred at once). The forker is one small static
 * process, spawned once, that forks the pool's cores on request. Node cannot receive fds, so
 * each forked core connects its fds 1-5 (stdout, stderr, reports, commands, console) back to
 * a unix socket of ours, in a directory only root can enter, each connection opened with a
 * header: a token of this forker (16 random bytes), the request's id and the fd number.
 *
 * A forked core is a `CoreChild`, like the ChildProcess of a spawned one: its pid, its
 * sockets by fd number, `exit` with code and signal (the forker reaps it and reports its
 * wait status), and kill (through the forker, which only signals a child it has not reaped
 * yet, so a pid is never confused with a reused one).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex, Readable, Writable } from 'node:stream';

/** What a launch core is to the launcher, whether Node spawned it or the forker forked it. */
export interface CoreChild {
  readonly pid?: number | undefined;
  /** By fd number in the core: 1 stdout, 2 stderr, 3 reports, 4 commands, 5 console. */
  readonly stdio: readonly (Readable | Writable | Duplex | null | undefined)[];
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals | number): boolean;
  ref(): void;
  unref(): void;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  once(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
}

const TOKEN_BYTES = 16;
const HEADER_BYTES = TOKEN_BYTES + 5;
const CHANNELS = 5;
/** A connection that has not sent its header by then is dropped. */
const HEADER_TIMEOUT_MS = 10_000;

const DIR_PREFIX = 'northstar-forker-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The socket directories of runtimes that were killed (a clean close removes its own). Only
 * a directory that root owns and nobody else may enter (what mkdtemp made), named after a
 * pid that is gone, is emptied and removed: its entries are unlinked one by one, never
 * followed, and a directory inside it is left alone (then so is it).
 */
function removeStaleDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const m = new RegExp(`^${DIR_PREFIX}(\\d+)-`).exec(name);
    if (!m || alive(Number(m[1]))) continue;
    const dir = join(tmpdir(), name);
    try {
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? 0) || (st.mode & 0o077) !== 0) continue;
      for (const entry of readdirSync(dir)) {
        if (!lstatSync(join(dir, entry)).isDirectory()) unlinkSync(join(dir, entry));
      }
      rmdirSync(dir);
    } catch {
      // in use or changed meanwhile: left for the next time
    }
  }
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(osConstants.signals).map(([k, v]) => [v, k as NodeJS.Signals]));

/** A core forked by the forker. */
export class ForkedCore extends EventEmitter implements CoreChild {
  readonly pid: number;
  readonly stdio: (Socket | null)[];
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private exited = false;
  private held = false;

  constructor(private readonly forker: Forker, pid: number, sockets: Socket[]) {
    super();
    this.pid = pid;
    this.stdio = [null, ...sockets];
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.exited) return false;
    const signo = typeof signal === 'number' ? signal : osConstants.signals[signal];
    return this.forker.signal(this.pid, signo);
  }

  /** Like ChildProcess.ref: until it has exited, the runtime waits for its exit. */
  ref(): void {
    if (!this.held && !this.exited) {
      this.held = true;
      this.forker.hold(1);
    }
  }

  unref(): void {
    if (this.held) {
      this.held = false;
      this.forker.hold(-1);
    }
  }

  /** @internal the forker reaped it */
  reaped(status: number): void {
    if (this.exited) return;
    this.unref();
    this.exited = true;
    const sig = status & 0x7f;
    if (sig === 0) this.exitCode = (status >> 8) & 0xff;
    else this.signalCode = SIGNAL_NAMES.get(sig) ?? 'SIGKILL';
    this.emit('exit', this.exitCode, this.signalCode);
  }
}

interface Pending {
  sockets: (Socket | undefined)[];
  pid: number;
  resolve: (c: ForkedCore) => void;
  reject: (e: Error) => void;
}

/** The forker process and the socket its cores connect back to. */
export class Forker {
  private readonly child: ChildProcess;
  private readonly server: Server;
  private readonly dir: string;
  private readonly token = randomBytes(TOKEN_BYTES);
  private readonly pending = new Map<number, Pending>();
  /** Forked cores by pid, until reaped. */
  private readonly cores = new Map<number, ForkedCore>();
  private nextId = 1;
  private held = 0;
  private answers: Buffer = Buffer.alloc(0);
  /** No more cores asked (closed, or the forker is dead). */
  private gone = false;
  /** The forker process is dead (its cores died with it). */
  private dead = false;

  /**
   * Start the forker; throws if it cannot be started (the launcher then spawns its cores
   * itself). `binary` is northstar-forker, `core` the northstar-launch it executes.
   */
  constructor(binary: string, core: string) {
    removeStaleDirs();
    this.dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`)); // mode 0700, ours
    const path = join(this.dir, 's');
    this.server = createServer((s) => this.accept(s));
    this.server.on('error', () => this.fail(new Error('the forker socket failed')));
    // The bind and listen of a unix socket happen within listen(), before it returns.
    this.server.listen(path);
    this.server.unref();
    try {
      this.child = spawn(binary, [path, core, String(process.pid)], {
        stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
        env: { NSL_FORKER_TOKEN: this.token.toString('hex') },
        argv0: 'northstar-forker',
        windowsHide: true,
      });
    } catch (e) {
      this.close();
      throw e;
    }
    const ctl = this.child.stdio[3] as Duplex;
    ctl.on('data', (chunk: Buffer) => this.onAnswers(chunk));
    ctl.on('error', () => {
      // a reset: the forker is gone ('exit' follows)
    });
    this.child.on('error', (e) => this.fail(e));
    // 'close': exited, and every answer it wrote has been read (an exit reported just before
    // it left is not lost).
    this.child.on('close', () => {
      this.dead = true;
      this.fail(new Error('the forker exited'));
    });
    this.child.unref();
    (ctl as Socket).unref();
  }

  /** Whether the forker still takes requests. */
  get alive(): boolean {
    return !this.gone;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The socket forked cores connect back to (in a directory only root can enter). */
  get socketPath(): string {
    return join(this.dir, 's');
  }

  /** Fork a pooled core; resolves once it is connected (its sandbox may still be made). */
  core(): Promise<ForkedCore> {
    if (this.gone) return Promise.reject(new Error('the forker is gone'));
    const id = this.nextId++;
    if (this.nextId > 0xffffffff) this.nextId = 1;
    return new Promise<ForkedCore>((resolve, reject) => {
      this.pending.set(id, { sockets: [], pid: 0, resolve, reject });
      this.holdLoop();
      this.request(Buffer.from([0x46, 0, 0, 0, id & 0xff, (id >> 8) & 0xff, (id >> 16) & 0xff, (id >>> 24) & 0xff]));
    });
  }

  /** @internal signal a core that was forked here and not reaped yet */
  signal(pid: number, signo: number): boolean {
    if (this.dead || !this.cores.has(pid) || !Number.isInteger(signo) || signo < 1 || signo > 64) return false;
    const rec = Buffer.alloc(8);
    rec[0] = 0x4b;
    rec[1] = signo;
    rec.writeUInt32LE(pid, 4);
    this.request(rec);
    return true;
  }

  /**
   * Fork no more. The forker stays until the cores it forked have exited (a running
   * container is not taken down by this; its exit is still reported and it can still be
   * signalled), and dies with the runtime.
   */
  close(): void {
    if (this.gone) return;
    this.request(Buffer.from([0x51, 0, 0, 0, 0, 0, 0, 0]));
    this.fail(new Error('the forker was closed'), false);
  }

  /** @internal a ForkedCore that is ref'd (serves a container) waits for its exit answer */
  hold(n: number): void {
    this.held += n;
    this.holdLoop();
  }

  /** While a core is awaited or one in use has not exited, the answers keep the event loop alive; otherwise nothing of the forker does. */
  private holdLoop(): void {
    const ctl = this.child.stdio[3] as Socket | null;
    if (this.pending.size > 0 || this.held > 0) ctl?.ref();
    else ctl?.unref();
  }

  private request(rec: Buffer): void {
    const ctl = this.child.stdio[3] as Duplex;
    if (ctl.writable) ctl.write(rec);
    // else: the forker is dead; 'close' rejects what waits for it
  }

  private fail(e: Error, dead = true): void {
    if (!this.gone) {
      this.gone = true;
      this.server.close();
      rmSync(this.dir, { recursive: true, force: true });
    }
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      for (const s of p.sockets) s?.destroy();
      p.reject(e);
    }
    this.holdLoop();
    if (!dead) return;
    // The forker is dead, and its cores with it (their parent-death signal): no exit will be
    // reported for them any more.
    for (const [pid, core] of this.cores) {
      this.cores.delete(pid);
      core.reaped(osConstants.signals.SIGKILL);
    }
  }

  private onAnswers(chunk: Buffer): void {
    this.answers = this.answers.length ? Buffer.concat([this.answers, chunk]) : chunk;
    while (this.answers.length >= 12) {
      const type = this.answers[0];
      const a = this.answers.readUInt32LE(4);
      const b = this.answers.readUInt32LE(8);
      this.answers = this.answers.subarray(12);
      if (type === 0x50) this.forked(a, b);
      else if (type === 0x45) this.failed(a, b);
      else if (type === 0x58) this.reaped(a, b);
    }
  }

  private forked(id: number, pid: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    p.pid = pid;
    this.complete(id, p);
  }

  private failed(id: number, errno: number): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.holdLoop();
    for (const s of p.sockets) s?.destroy();
    p.reject(new Error(`the forker could not fork a launch core (errno ${errno})`));
  }

  private reaped(pid: number, status: number): void {
    const core = this.cores.get(pid);
    if (core) {
      this.cores.delete(pid);
      core.reaped(status);
      return;
    }
    // It died before all its fds had connected.
    for (const [id, p] of this.pending) {
      if (p.pid !== pid) continue;
      this.pending.delete(id);
      this.holdLoop();
      for (const s of p.sockets) s?.destroy();
      p.reject(new Error(`the launch core exited (wait status ${status}) before it had connected`));
    }
  }

  private complete(id: number, p: Pending): void {
    if (p.pid === 0) return;
    for (let ch = 1; ch <= CHANNELS; ch++) if (!p.sockets[ch - 1]) return;
    this.pending.delete(id);
    this.holdLoop();
    const core = new ForkedCore(this, p.pid, p.sockets as Socket[]);
    this.cores.set(p.pid, core);
    p.resolve(core);
  }

  /** A connection from a core: its header says which request and which fd it is. */
  private accept(s: Socket): void {
    s.on('error', () => {
      // Handled by whoever takes the socket; until then a reset only means the core died.
    });
    s.unref();
    const timer = setTimeout(() => s.destroy(), HEADER_TIMEOUT_MS);
    timer.unref();
    const onReadable = (): void => {
      const head = s.read(HEADER_BYTES) as Buffer | null;
      if (head === null) return;
      s.off('readable', onReadable);
      clearTimeout(timer);
      if (head.length < HEADER_BYTES) {
        s.destroy(); // ended within its header
        return;
      }
      const id = head.readUInt32LE(TOKEN_BYTES);
      const ch = head[TOKEN_BYTES + 4]!;
      const p = this.pending.get(id);
      if (!timingSafeEqual(head.subarray(0, TOKEN_BYTES), this.token) || !p || ch < 1 || ch > CHANNELS || p.sockets[ch - 1]) {
        s.destroy();
        return;
      }
      p.sockets[ch - 1] = s;
      this.complete(id, p);
    };
    s.on('readable', onReadable);
    s.once('end', () => {
      clearTimeout(timer);
      if (s.listenerCount('readable') > 0) s.destroy();
    });
  }
}
