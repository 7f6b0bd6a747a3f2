/**
 * Console costs, each against a reference measured in the same run:
 *   - codec: parseMessage + encode of console.md's inspect response vs JSON.parse + JSON.stringify;
 *   - round trip: one `list` request through the typed client and the console server (unix
 *     socket, trivial handle) vs a raw line echo over a unix socket;
 *   - pipelined: 10,000 requests written at once, until the last response;
 *   - install: a 64 MiB upload through the console into a handle that discards it vs the same
 *     bytes through a raw unix socket.
 * Run: npm run bench -- console
 */
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode, parseMessage } from '../src/api/codec.js';
import { StreamReader } from '../src/api/lines.js';
import type { Notification, Request, Response } from '../src/api/model.js';
import { Client } from '../src/client/client.js';
import { Container } from '../src/common/container.js';
import type { RuntimeHandle } from '../src/console/handle.js';
import { ConsoleServer } from '../src/console/server.js';
import { median } from './stats.js';

const INSPECT =
  '{"response":{"inspect":{"ok":{"container":"console:0.0.1","data":{"manifest":{"name":"console","version":"0.0.1","console":{"permissions":["ident","notifications","inspect","kill","list"]},"init":"/console","uid":1000,"gid":1000,"mounts":{"/dev":{"type":"dev"},"/lib":{"type":"bind","host":"/lib"}},"io":{"stdout":"pipe","stderr":"pipe"}},"repository":"memory","mounted":true,"process":{"pid":4242,"uptime":1234567890,"statistics":{"memory":{},"cpu":{},"blkio":{}}}}}}}}';


const LIST = Array.from({ length: 10 }, (_, i) => Container.parse(`container-${i}:0.0.1`));
const LIST_LINE = encode({ response: { list: LIST } }) + '\n';

const handle: RuntimeHandle = {
  async request(req: Request): Promise<Response> {
    if (req === 'list') return { list: LIST };
    throw new Error('unexpected');
  },
  async install(_repo: string, _size: number, payload: AsyncIterable<Buffer>): Promise<Response> {
    for await (const chunk of payload) void chunk;
    return { install: { ok: { container: LIST[0]! } } };
  },
  subscribe(_l: (n: Notification) => void): () => void {
    return () => {};
  },
};

function codec(): void {
  const rounds = 5;
  const n = 20_000;
  const ours: number[] = [];
  const ref: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let t = performance.now();
    for (let i = 0; i < n; i++) encode(parseMessage(INSPECT));
    ours.push(((performance.now() - t) * 1000) / n);
    t = performance.now();
    for (let i = 0; i < n; i++) JSON.stringify(JSON.parse(INSPECT));
    ref.push(((performance.now() - t) * 1000) / n);
  }
  const o = median(ours);
  const j = median(ref);
  console.log(`codec (inspect example): ours ${o.toFixed(1)} µs/msg, JSON.parse+stringify ${j.toFixed(1)} µs/msg, ratio ${(o / j).toFixed(1)}x`);
}

/** A raw line echo server: answers each line with the list response. */
async function echoServer(path: string): Promise<net.Server> {
  const s = net.createServer((sock) => {
    const reader = new StreamReader(sock);
    void (async () => {
      for (;;) {
        const line = await reader.readLine().catch(() => null);
        if (line === null) break;
        sock.write(LIST_LINE);
      }
      sock.end();
    })();
  });
  await new Promise<void>((r) => s.listen(path, r));
  return s;
}

/** A raw sink server: counts bytes, answers once `size` arrived. */
async function sinkServer(path: string, size: number): Promise<net.Server> {
  const s = net.createServer((sock) => {
    let n = 0;
    sock.on('data', (d: Buffer) => {
      n += d.length;
      if (n >= size) sock.write('ok\n');
    });
  });
  await new Promise<void>((r) => s.listen(path, r));
  return s;
}

async function main(): Promise<void> {
  codec();
  const dir = mkdtempSync(join(tmpdir(), 'ns-bench-console-'));
  try {
    const server = new ConsoleServer({ handle });
    const url = await server.listen(`unix://${join(dir, 'console')}`, 'full', { maxRequestsPerSec: 1_000_000 });
    const echo = await echoServer(join(dir, 'echo'));
    const client = await Client.connect(url);
    const raw = net.connect(join(dir, 'echo'));
    await new Promise((r) => raw.once('connect', r));
    const rawReader = new StreamReader(raw);

    // Round trips, interleaved.
    const ours: number[] = [];
    const ref: number[] = [];
    for (let i = 0; i < 3000; i++) {
      let t = performance.now();
      await client.list();
      ours.push((performance.now() - t) * 1000);
      t = performance.now();
      raw.write('{"request":"list"}\n');
      await rawReader.readLine();
      ref.push((performance.now() - t) * 1000);
    }
    const o = median(ours.slice(300));
    const e = median(ref.slice(300));
    console.log(`round trip (list): ours ${o.toFixed(0)} µs, raw echo ${e.toFixed(0)} µs, ratio ${(o / e).toFixed(1)}x`);

    // Pipelined.
    const N = 10_000;
    const pipeOurs: number[] = [];
    const pipeRef: number[] = [];
    for (let r = 0; r < 3; r++) {
      let t = performance.now();
      await Promise.all(Array.from({ length: N }, () => client.list()));
      pipeOurs.push(performance.now() - t);
      t = performance.now();
      raw.write('{"request":"list"}\n'.repeat(N));
      for (let i = 0; i < N; i++) await rawReader.readLine();
      pipeRef.push(performance.now() - t);
    }
    const po = median(pipeOurs);
    const pr = median(pipeRef);
    console.log(`${N} list requests: ours ${po.toFixed(0)} ms (${((N / po) * 1000).toFixed(0)}/s), raw echo ${pr.toFixed(0)} ms, ratio ${(po / pr).toFixed(1)}x`);

    // Install throughput.
    const SIZE = 64 * 1024 * 1024;
    const data = Buffer.alloc(SIZE, 0x5a);
    const sinkPath = join(dir, 'sink');
    const sink = await sinkServer(sinkPath, SIZE);
    const instOurs: number[] = [];
    const instRef: number[] = [];
    for (let r = 0; r < 3; r++) {
      let t = performance.now();
      await client.install(data, 'memory');
      instOurs.push(performance.now() - t);
      const s = net.connect(sinkPath);
      await new Promise((res) => s.once('connect', res));
      const rr = new StreamReader(s);
      t = performance.now();
      s.write(data);
      await rr.readLine();
      instRef.push(performance.now() - t);
      s.destroy();
    }
    const io = median(instOurs);
    const ir = median(instRef);
    const mbs = (ms: number): string => ((SIZE / 1024 / 1024 / ms) * 1000).toFixed(0);
    console.log(`install 64 MiB: ours ${io.toFixed(0)} ms (${mbs(io)} MiB/s), raw socket ${ir.toFixed(0)} ms (${mbs(ir)} MiB/s), ratio ${(io / ir).toFixed(1)}x`);

    await client.close();
    raw.destroy();
    await server.close(100);
    await new Promise((r) => echo.close(r));
    await new Promise((r) => sink.close(r));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
