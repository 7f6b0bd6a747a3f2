/** Argument handling shared by nstar's commands: the start command line, container names, signals. */
import { Container } from '../common/container.js';
import { NorthstarError } from '../common/errors.js';
import { parseName } from '../common/name.js';
import { compareVersions } from '../common/version.js';
import { signalNumber } from '../client/index.js';

export interface StartCommand {
  env: [string, string][];
  init: string | null;
  args: string[];
}

/**
 * Split `start`'s trailing tokens as upstream does: leading tokens that contain `=` are env
 * entries (split at the first `=`), the next token is init (it may contain `<INIT>`), the
 * rest are args. `DEBUG=1 <INIT> -v` → env {DEBUG: 1}, init `<INIT>`, args [`-v`]. A first
 * token `--` is dropped.
 */
export function splitStartCommand(tokens: readonly string[]): StartCommand {
  // A leading `--` only ends nstar's own options (`start hello -- -v`).
  if (tokens[0] === '--') tokens = tokens.slice(1);
  const env: [string, string][] = [];
  let i = 0;
  for (; i < tokens.length && tokens[i]!.includes('='); i++) {
    const t = tokens[i]!;
    const eq = t.indexOf('=');
    const key = t.slice(0, eq);
    if (key === '') throw new NorthstarError('EARGS', `invalid environment variable ${JSON.stringify(t)}: empty name`);
    env.push([key, t.slice(eq + 1)]);
  }
  for (const t of tokens) {
    if (t.includes('\0')) throw new NorthstarError('EARGS', `invalid argument ${JSON.stringify(t)}: contains a nul byte`);
  }
  const init = i < tokens.length ? tokens[i]! : null;
  return { env, init, args: tokens.slice(i + 1) };
}

/** The `started ...` line: container, env, init and args, each part only when given. */
export function startedLine(c: Container, cmd: StartCommand): string {
  const parts = [`started ${c}`];
  if (cmd.env.length > 0) parts.push(cmd.env.map(([k, v]) => `${k}=${v}`).join(' '));
  if (cmd.init !== null) parts.push(cmd.init);
  if (cmd.args.length > 0) parts.push(cmd.args.join(' '));
  return parts.join(' ');
}

/** A signal given as a number (`9`) or a name (`SIGKILL`, `KILL`, `kill`). */
export function parseSignal(text: string): number {
  if (/^-?\d+$/.test(text)) {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < -2147483648 || n > 2147483647) throw new NorthstarError('ESIGNAL', `invalid signal ${JSON.stringify(text)}`);
    return n;
  }
  return signalNumber(text);
}

/**
 * A `name[:version]` argument. With a version it is parsed as it is; without one, `list()`
 * is asked (one request) and exactly one installed version must exist; with several, the
 * error lists them.
 */
export async function resolveContainer(text: string, list: () => Promise<Container[]>): Promise<Container> {
  if (text.includes(':')) return Container.parse(text, 'container');
  const name = parseName(text, 'container name');
  const matches = (await list()).filter((c) => c.name === name);
  if (matches.length === 0) throw new NorthstarError('ENOCONTAINER', `no container found with name ${name}`);
  if (matches.length > 1) {
    const versions = matches.map((c) => c.version).sort(compareVersions).map((v) => v.toString());
    throw new NorthstarError('EAMBIGUOUS', `container ${name} has multiple versions: ${versions.join(', ')}; give one, for example ${name}:${versions[versions.length - 1]}`);
  }
  return matches[0]!;
}
