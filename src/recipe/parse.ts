/**
 * The recipe language (docs/recipes.md): a Dockerfile-like list of instructions, one per
 * line, `#` comment lines, `\` at the end of a line continues it on the next.
 *
 *   FROM scratch | <npk file> | <directory> | debian:<suite> | oci:… | oci-archive:… | docker-archive:…
 *   COPY [--chown=<uid>[:<gid>]] <src>... <dest>      (or the JSON form ["src", ..., "dest"])
 *   RUN [--network=host|none] <shell command>          (or ["exe", "arg", ...])
 *   ENTRYPOINT <shell command> | ["exe", "arg", ...]
 *   CMD <shell command> | ["exe", "arg", ...]
 *   ENV <key>=<value> ... | ENV <key> <value>
 *   USER <uid>[:<gid>]                                  (numeric only)
 *   EXPOSE, LABEL                                       accepted and ignored, with a warning
 *
 * WORKDIR and named users are refused: a Northstar manifest has no working directory and
 * only numeric ids. Parsing does no I/O: paths are resolved by the builder.
 */
import type { ImpliedManifest } from '../manifest/implied.js';
import { NorthstarError } from '../common/errors.js';

export class RecipeError extends NorthstarError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERECIPE', message, options);
    this.name = 'RecipeError';
  }
}

/** A command: the shell form runs `/bin/sh -c <text>`, the exec form runs argv directly. */
export type CommandForm = { shell: string } | { exec: string[] };

export type FromSource = { kind: 'scratch' } | { kind: 'debian'; suite: string } | { kind: 'path'; path: string } | { kind: 'oci'; image: string };

export type Instruction =
  | { op: 'FROM'; line: number; text: string; source: FromSource }
  | { op: 'COPY'; line: number; text: string; sources: string[]; dest: string; chown: { uid: number; gid: number } | null }
  | { op: 'RUN'; line: number; text: string; command: CommandForm; network: 'host' | 'none' }
  | { op: 'ENTRYPOINT'; line: number; text: string; command: CommandForm }
  | { op: 'CMD'; line: number; text: string; command: CommandForm }
  | { op: 'ENV'; line: number; text: string; env: [string, string][] }
  | { op: 'USER'; line: number; text: string; uid: number; gid: number | null };

export interface Recipe {
  instructions: Instruction[];
  /** Accepted instructions that do nothing here (EXPOSE, LABEL), each as `<file>:<line>: …`. */
  warnings: string[];
}

/** Instructions accepted for Dockerfile compatibility that change nothing: what they do not do. */
const IGNORED: Record<string, string> = {
  EXPOSE:
    'EXPOSE is ignored: northstar maps no ports. A container has its own empty network namespace unless the manifest sets `network: host` (then it uses the host network and its ports directly) or `network: !namespace <name>`',
  LABEL: 'LABEL is ignored: an NPK has no labels; put such data in the manifest field `custom` (-m)',
};

/** What FROM accepts, for messages. */
export const FROM_FORMS = 'scratch, debian:<suite> (a debootstrap root, e.g. debian:bookworm), an OCI image as oci:<dir>[:<tag>], oci-archive:<file>[:<tag>] or docker-archive:<file>[:<name:tag>], a directory, or an NPK file';

/**
 * A registry image reference (`python:3.11-slim`, `docker.io/library/redis`, `alpine@sha256:…`)
 * rather than a path: a tag or digest on a name without a path-like start.
 */
export function isRegistryReference(w: string): boolean {
  if (w.startsWith('.') || w.startsWith('/') || w.startsWith('~')) return false;
  return /^[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:\/[a-z0-9][a-z0-9._-]*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/.test(w) && (/:|@/.test(w));
}

/** The FROM error for a registry reference: what FROM takes instead. */
export function registryFromMessage(ref: string): string {
  return `FROM ${ref}: registry images are not fetched; copy the image to a file first (skopeo copy docker://${ref} oci-archive:image.tar, or docker save -o image.tar ${ref}) and write FROM oci-archive:image.tar (or docker-archive:image.tar). FROM accepts ${FROM_FORMS}`;
}

const REFUSED: Record<string, string> = {
  WORKDIR: 'a northstar manifest has no working directory field; use absolute paths (RUN cd <dir> && ...)',
  ADD: 'use COPY (no URLs or archive extraction)',
  VOLUME: 'declare mounts in the manifest (-m)',
  ARG: 'build arguments are not supported',
  SHELL: 'RUN always uses /bin/sh -c for the shell form',
  STOPSIGNAL: 'a northstar manifest has no stop signal field',
  HEALTHCHECK: 'a northstar manifest has no health check field',
  ONBUILD: 'not supported',
  MAINTAINER: 'use the manifest field custom (-m)',
};

/** Split into logical lines: comments dropped, continuations joined; keeps the first line number. */
function logicalLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  const lines = text.split(/\r?\n/);
  let cur: string | null = null;
  let start = 0;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed.startsWith('#')) return; // comment lines, also inside a continuation
    if (cur === null) {
      if (trimmed === '') return;
      start = i + 1;
      cur = '';
    }
    const cont = /\\\s*$/.test(raw);
    cur += cont ? raw.replace(/\\\s*$/, '') : raw;
    if (!cont) {
      out.push({ line: start, text: cur.trim() });
      cur = null;
    }
  });
  if (cur !== null && (cur as string).trim() !== '') out.push({ line: start, text: (cur as string).trim() });
  return out;
}

/** Shell-like words: whitespace separated, with '…' and "…" quoting and \ escapes. */
export function splitWords(s: string, where: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (/\s/.test(c)) {
      if (has) words.push(cur);
      cur = '';
      has = false;
      i++;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new RecipeError(`${where}: unterminated single quote`);
      cur += s.slice(i + 1, end);
      has = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new RecipeError(`${where}: unterminated double quote`);
        const d = s[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < s.length && /["\\$`]/.test(s[i + 1]!)) {
          cur += s[i + 1];
          i += 2;
        } else {
          cur += d;
          i++;
        }
      }
      has = true;
      i++;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[i + 1];
      has = true;
      i += 2;
    } else {
      cur += c;
      has = true;
      i++;
    }
  }
  if (has) words.push(cur);
  return words;
}

function jsonForm(args: string, where: string): string[] | null {
  if (!args.startsWith('[')) return null;
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw new RecipeError(`${where}: invalid JSON form ${args} (expected a JSON array of strings)`);
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
    throw new RecipeError(`${where}: the JSON form must be an array of strings`);
  }
  return v as string[];
}

function command(args: string, where: string, op: string): CommandForm {
  const exec = jsonForm(args, where);
  if (exec !== null) {
    if (exec.length === 0 || exec[0] === '') throw new RecipeError(`${where}: ${op} needs a program`);
    return { exec };
  }
  if (args === '') throw new RecipeError(`${where}: ${op} needs a command`);
  return { shell: args };
}

/** Leading `--name=value` flags; returns them and the rest. */
function flags(args: string, allowed: readonly string[], where: string, op: string): { flags: Map<string, string>; rest: string } {
  const found = new Map<string, string>();
  let rest = args;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!m) break;
    const name = m[1]!;
    if (!allowed.includes(name)) {
      throw new RecipeError(`${where}: ${op} has no flag --${name}${allowed.length > 0 ? ` (known: ${allowed.map((a) => `--${a}`).join(', ')})` : ''}`);
    }
    if (m[2] === undefined || m[2] === '') throw new RecipeError(`${where}: --${name} needs a value (--${name}=<value>)`);
    found.set(name, m[2]);
    rest = rest.slice(m[0].length);
  }
  return { flags: found, rest: rest.trim() };
}

function ids(v: string, where: string, what: string): { uid: number; gid: number | null } {
  const m = /^([0-9]+)(?::([0-9]+))?$/.exec(v);
  if (!m) throw new RecipeError(`${where}: ${what} ${JSON.stringify(v)}: only numeric <uid>[:<gid>] is supported (a manifest has numeric uid and gid)`);
  const uid = Number(m[1]);
  const gid = m[2] === undefined ? null : Number(m[2]);
  for (const x of [uid, gid]) {
    if (x !== null && x > 65535) throw new RecipeError(`${where}: ${what} ${v}: ids must be at most 65535`);
  }
  return { uid, gid };
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

function env(args: string, where: string): [string, string][] {
  if (args === '') throw new RecipeError(`${where}: ENV needs <key>=<value>`);
  const first = /^(\S+)(\s+|$)/.exec(args)!;
  if (!first[1]!.includes('=')) {
    // Legacy form: ENV <key> <value...>
    const key = first[1]!;
    if (!ENV_KEY.test(key)) throw new RecipeError(`${where}: invalid environment variable name ${JSON.stringify(key)}`);
    const value = args.slice(first[0].length);
    return [[key, splitWords(value, where).join(' ')]];
  }
  return splitWords(args, where).map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new RecipeError(`${where}: ENV expects <key>=<value>, got ${JSON.stringify(w)}`);
    const key = w.slice(0, eq);
    if (!ENV_KEY.test(key)) throw new RecipeError(`${where}: invalid environment variable name ${JSON.stringify(key)}`);
    return [key, w.slice(eq + 1)];
  });
}

/** Parse a recipe; `name` (its file) only appears in messages. Throws RecipeError. */
export function parseRecipe(text: string, name = 'recipe'): Recipe {
  const instructions: Instruction[] = [];
  const warnings: string[] = [];
  for (const { line, text: l } of logicalLines(text)) {
    const where = `${name}:${line}`;
    const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(l)!;
    const op = m[1]!.toUpperCase();
    const args = (m[2] ?? '').trim();
    if (REFUSED[op]) throw new RecipeError(`${where}: ${op} is not supported: ${REFUSED[op]}`);
    if (instructions.length === 0 && op !== 'FROM') throw new RecipeError(`${where}: the first instruction must be FROM, got ${op}`);
    if (IGNORED[op]) {
      warnings.push(`${where}: ${IGNORED[op]}`);
      continue;
    }
    switch (op) {
      case 'FROM': {
        if (instructions.length > 0) throw new RecipeError(`${where}: FROM may appear only once, as the first instruction (multi-stage builds are not supported)`);
        const words = splitWords(args, where);
        if (words.length !== 1) {
          const stage = words.length === 3 && words[1]!.toUpperCase() === 'AS' ? ' (FROM … AS <stage>: multi-stage builds are not supported)' : '';
          throw new RecipeError(`${where}: FROM takes exactly one argument: ${FROM_FORMS}${stage}`);
        }
        const w = words[0]!;
        let source: FromSource;
        if (w === 'scratch') source = { kind: 'scratch' };
        else if (/^(oci|oci-archive|docker-archive):./.test(w)) source = { kind: 'oci', image: w };
        else if (w.startsWith('debian:')) {
          const suite = w.slice('debian:'.length);
          if (!/^[a-z][a-z0-9-]*$/.test(suite) || /-slim$/.test(suite) || suite === 'latest') {
            throw new RecipeError(
              `${where}: invalid Debian suite ${JSON.stringify(suite)}: debian:<suite> takes a Debian suite name such as bookworm or trixie (a debootstrap root, not the Docker Hub image; for that, copy it to a file and use FROM oci-archive:<file>)`,
            );
          }
          source = { kind: 'debian', suite };
        } else if (isRegistryReference(w)) throw new RecipeError(`${where}: ${registryFromMessage(w)}`);
        else source = { kind: 'path', path: w };
        instructions.push({ op, line, text: l, source });
        break;
      }
      case 'COPY': {
        const f = flags(args, ['chown'], where, op);
        const words = jsonForm(f.rest, where) ?? splitWords(f.rest, where);
        if (words.length < 2) throw new RecipeError(`${where}: COPY needs at least one source and a destination`);
        let chown: { uid: number; gid: number } | null = null;
        const c = f.flags.get('chown');
        if (c !== undefined) {
          const r = ids(c, where, '--chown');
          chown = { uid: r.uid, gid: r.gid ?? r.uid };
        }
        const dest = words[words.length - 1]!;
        if (dest === '') throw new RecipeError(`${where}: COPY destination must not be empty`);
        instructions.push({ op, line, text: l, sources: words.slice(0, -1), dest, chown });
        break;
      }
      case 'RUN': {
        const f = flags(args, ['network'], where, op);
        const network = f.flags.get('network') ?? 'host';
        if (network !== 'host' && network !== 'none') throw new RecipeError(`${where}: --network must be host or none, got ${JSON.stringify(network)}`);
        instructions.push({ op, line, text: l, command: command(f.rest, where, op), network });
        break;
      }
      case 'ENTRYPOINT':
      case 'CMD':
        instructions.push({ op, line, text: l, command: command(args, where, op) });
        break;
      case 'ENV':
        instructions.push({ op, line, text: l, env: env(args, where) });
        break;
      case 'USER': {
        const r = ids(args, where, 'USER');
        instructions.push({ op, line, text: l, uid: r.uid, gid: r.gid });
        break;
      }
      default:
        throw new RecipeError(`${where}: unknown instruction ${JSON.stringify(m[1])}`);
    }
  }
  if (instructions.length === 0) throw new RecipeError(`${name}: the recipe is empty (it needs at least FROM)`);
  return { instructions, warnings };
}

export type { ImpliedManifest };

/** The ENTRYPOINT or CMD whose program becomes init (null: none, a resource container). */
export function initInstruction(recipe: Recipe): Extract<Instruction, { op: 'ENTRYPOINT' | 'CMD' }> | null {
  let entry: Extract<Instruction, { op: 'ENTRYPOINT' }> | null = null;
  let cmd: Extract<Instruction, { op: 'CMD' }> | null = null;
  for (const ins of recipe.instructions) {
    if (ins.op === 'ENTRYPOINT') {
      entry = ins;
      cmd = null;
    } else if (ins.op === 'CMD') cmd = ins;
  }
  return entry ?? cmd;
}

/** ENTRYPOINT/CMD → init/args as Docker combines them; ENV and USER as they stand at the end. */
export function impliedManifest(recipe: Recipe): ImpliedManifest {
  let entry: CommandForm | null = null;
  let cmd: CommandForm | null = null;
  const out: ImpliedManifest = { env: {} };
  for (const ins of recipe.instructions) {
    if (ins.op === 'ENTRYPOINT') {
      entry = ins.command;
      cmd = null; // as Docker: ENTRYPOINT resets an earlier CMD
    } else if (ins.op === 'CMD') cmd = ins.command;
    else if (ins.op === 'ENV') for (const [k, v] of ins.env) out.env[k] = v;
    else if (ins.op === 'USER') {
      out.uid = ins.uid;
      out.gid = ins.gid ?? ins.uid;
    }
  }
  const argv = (c: CommandForm): string[] => ('shell' in c ? ['/bin/sh', '-c', c.shell] : c.exec);
  let full: string[] | null = null;
  if (entry) full = 'shell' in entry ? argv(entry) : [...entry.exec, ...(cmd ? argv(cmd) : [])];
  else if (cmd) full = argv(cmd);
  if (full) {
    out.init = full[0]!;
    out.args = full.slice(1);
  }
  return out;
}
