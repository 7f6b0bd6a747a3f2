/**
 * The console's view of the runtime: wire requests in, wire responses out. One handler
 * per request tag, checked by the compiler.
 */
import type { Container } from '../common/container.js';
import type { ExecRequest, Notification, Request, RequestOf, Response } from '../api/model.js';
import type { ExecControl, ExecSink, LogSink, Peer, RuntimeHandle } from '../console/handle.js';
import { toModelError, type State } from './state.js';

type Handled = Exclude<Request, 'ident' | { install: unknown } | { token_create: unknown } | { token_verify: unknown } | { logs: unknown } | { exec: unknown }>;
type HandledTag = Handled extends infer R ? (R extends string ? R : keyof R) : never;

export class StateHandle implements RuntimeHandle {
  constructor(
    private readonly state: State,
    /** Queue the runtime's shutdown (the response goes out first). */
    private readonly requestShutdown: () => void,
  ) {}

  private readonly handlers: { [T in HandledTag]: (r: RequestOf<T>, peer: Peer) => Promise<Response> } = {
    list: async () => ({ list: this.state.list() }),
    repositories: async () => ({ repositories: this.state.repositories() }),
    shutdown: async () => {
      this.requestShutdown();
      return 'shutdown';
    },
    inspect: async (r) => {
      const c = r.inspect.container;
      try {
        const data = await this.state.inspect(c);
        return { inspect: { ok: { container: c, data } } };
      } catch (e) {
        return { inspect: { error: { container: c, error: toModelError(e) } } };
      }
    },
    start: async (r) => {
      const { container, init, arguments: args, environment } = r.start;
      return { start: await this.result(container, () => this.state.start(container, { init, args, env: environment })) };
    },
    kill: async (r) => ({ kill: await this.result(r.kill.container, () => this.state.kill(r.kill.container, r.kill.signal)) }),
    restart: async (r) => ({ restart: await this.result(r.restart.container, () => this.state.restart(r.restart.container, r.restart.timeout)) }),
    uninstall: async (r) => ({
      uninstall: await this.result(r.uninstall.container, () => this.state.uninstall(r.uninstall.container, r.uninstall.wipe)),
    }),
    mount: async (r) => ({ mount: await this.state.mount(r.mount.containers) }),
    umount: async (r) => ({ umount: await this.state.umount(r.umount.containers) }),
  };

  private async result(container: Container, fn: () => Promise<void>): Promise<{ ok: { container: Container } } | { error: { container: Container; error: ReturnType<typeof toModelError> } }> {
    try {
      await fn();
      return { ok: { container } };
    } catch (e) {
      return { error: { container, error: toModelError(e) } };
    }
  }

  request(req: Request, peer: Peer): Promise<Response> {
    const tag = (typeof req === 'string' ? req : Object.keys(req)[0]) as HandledTag;
    const handler = this.handlers[tag] as ((r: Request, p: Peer) => Promise<Response>) | undefined;
    if (!handler) return Promise.reject(new Error(`request ${tag} is not handled by the runtime`));
    return handler(req, peer);
  }

  async install(repository: string, size: number, payload: AsyncIterable<Buffer>): Promise<Response> {
    try {
      const container = await this.state.install(repository, size, payload);
      return { install: { ok: { container } } };
    } catch (e) {
      return { install: { error: { error: toModelError(e) } } };
    }
  }

  subscribe(listener: (n: Notification) => void): () => void {
    return this.state.subscribe(listener);
  }

  async exec(req: ExecRequest, _peer: Peer, sink: ExecSink): Promise<{ response: Response; control: ExecControl | undefined }> {
    const c = req.container;
    try {
      const control = await this.state.exec(c, req, sink);
      return { response: { exec: { ok: { container: c } } }, control };
    } catch (e) {
      return { response: { exec: { error: { container: c, error: toModelError(e) } } }, control: undefined };
    }
  }

  logs(req: RequestOf<'logs'>['logs'], _peer: Peer, follower: LogSink | undefined): { response: Response; stop: () => void } {
    const c = req.container;
    try {
      const { ok, stop } = this.state.logs(c, req.tail, follower);
      return { response: { logs: { ok } }, stop };
    } catch (e) {
      return { response: { logs: { error: { container: c, error: toModelError(e) } } }, stop: () => undefined };
    }
  }
}
