/**
 * Manifest -> text. YAML as upstream's serde_yaml 0.9 writes it (field order of the struct,
 * empty collections and absent options omitted except where upstream emits null or always
 * writes the key, tags for enums, integers for sizes and modes, no `---`), and JSON in
 * serde_json's map form.
 */
import type { Manifest } from './schema.js';
import { formatMountOptions, type Mount } from './mounts.js';
import { MANIFEST_FULL_PERMISSIONS } from './console.js';
import type { CGroups } from './cgroups.js';
import type { Policy } from './sched.js';
import type { SyscallRule } from './seccomp.js';
import type { Network } from './network.js';
import { yamlBool, yamlFloat, yamlInt, yamlIsNull } from './decode.js';

/** A format-neutral output tree. `tag` marks an externally tagged enum variant. */
type Out =
  | { t: 'map'; entries: [string, Out][]; tag?: string }
  | { t: 'seq'; items: Out[] }
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint | number }
  | { t: 'float'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'null' }
  | { t: 'tagged'; tag: string; v: Out };

const str = (v: string): Out => ({ t: 'str', v });
const int = (v: bigint | number): Out => ({ t: 'int', v });
const map = (entries: [string, Out | undefined][]): Out => ({
  t: 'map',
  entries: entries.filter((e): e is [string, Out] => e[1] !== undefined),
});
const opt = <T>(v: T | undefined, f: (x: T) => Out): Out | undefined => (v === undefined ? undefined : f(v));
const nonEmpty = <T>(xs: readonly T[], f: (xs: readonly T[]) => Out): Out | undefined => (xs.length === 0 ? undefined : f(xs));
const nonEmptyRecord = <T>(r: Readonly<Record<string, T>>, f: (v: T) => Out): Out | undefined => {
  const keys = Object.keys(r);
  return keys.length === 0 ? undefined : map(keys.map((k) => [k, f(r[k]!)]));
};
const nullable = <T>(v: T | undefined, f: (x: T) => Out): Out => (v === undefined ? { t: 'null' } : f(v));

function mountOut(m: Mount): Out {
  switch (m.type) {
    case 'bind':
      return map([['type', str('bind')], ['host', str(m.host)], ['options', m.options?.length ? str(formatMountOptions(m.options)) : undefined]]);
    case 'resource':
      return map([
        ['type', str('resource')],
        ['name', str(m.name)],
        ['version', str(m.version.text)],
        ['dir', str(m.dir)],
        ['options', m.options?.length ? str(formatMountOptions(m.options)) : undefined],
      ]);
    case 'tmpfs':
      return map([['type', str('tmpfs')], ['size', int(m.size)]]);
    default:
      return map([['type', str(m.type)]]);
  }
}

function policyOut(p: Policy): Out {
  if (typeof p === 'string') return str(p);
  if ('other' in p) return { t: 'tagged', tag: 'other', v: map([['nice', int(p.other.nice)]]) };
  if ('fifo' in p) return { t: 'tagged', tag: 'fifo', v: map([['priority', int(p.fifo.priority)]]) };
  if ('round_robin' in p) return { t: 'tagged', tag: 'round_robin', v: map([['priority', int(p.round_robin.priority)]]) };
  return { t: 'tagged', tag: 'batch', v: map([['nice', int(p.batch.nice)]]) };
}

function networkOut(n: Network): Out {
  return typeof n === 'string' ? str(n) : { t: 'tagged', tag: 'namespace', v: str(n.namespace) };
}

function ruleOut(r: SyscallRule): Out {
  if (typeof r === 'string') return str(r);
  const a = r.args;
  return {
    t: 'tagged',
    tag: 'args',
    v: map([
      ['index', int(a.index)],
      ['values', opt(a.values, (vs) => ({ t: 'seq', items: vs.map(int) }))],
      ['mask', opt(a.mask, int)],
    ]),
  };
}

const attrsOut = (a: Readonly<Record<string, string>> | undefined): Out | undefined => nonEmptyRecord(a ?? {}, str);

function cgroupsOut(c: CGroups): Out {
  const dev = (d: { major: bigint; minor: bigint; weight?: number | undefined; leaf_weight?: number | undefined }): Out =>
    map([['major', int(d.major)], ['minor', int(d.minor)], ['weight', opt(d.weight, int)], ['leaf_weight', opt(d.leaf_weight, int)]]);
  const thr = (d: { major: bigint; minor: bigint; rate: bigint }): Out => map([['major', int(d.major)], ['minor', int(d.minor)], ['rate', int(d.rate)]]);
  const seq = <T>(xs: readonly T[], f: (x: T) => Out): Out => ({ t: 'seq', items: xs.map(f) });
  return map([
    ['parent', opt(c.parent, str)],
    [
      'blkio',
      opt(c.blkio, (b) =>
        map([
          ['weight', opt(b.weight, int)],
          ['leaf_weight', opt(b.leaf_weight, int)],
          ['weight_device', seq(b.weight_device, dev)],
          ['throttle_read_bps_device', seq(b.throttle_read_bps_device, thr)],
          ['throttle_read_iops_device', seq(b.throttle_read_iops_device, thr)],
          ['throttle_write_bps_device', seq(b.throttle_write_bps_device, thr)],
          ['throttle_write_iops_device', seq(b.throttle_write_iops_device, thr)],
          ['attrs', attrsOut(b.attrs)],
        ]),
      ),
    ],
    [
      'cpu',
      opt(c.cpu, (p) =>
        map([
          ['cpus', opt(p.cpus, str)],
          ['mems', opt(p.mems, str)],
          ['shares', opt(p.shares, int)],
          ['quota', opt(p.quota, int)],
          ['period', opt(p.period, int)],
          ['realtime_runtime', opt(p.realtime_runtime, int)],
          ['realtime_period', opt(p.realtime_period, int)],
          ['attrs', attrsOut(p.attrs)],
        ]),
      ),
    ],
    [
      'memory',
      opt(c.memory, (m) =>
        map([
          ['oom_monitor', { t: 'bool', v: m.oom_monitor ?? false }],
          ['kernel_memory_limit', opt(m.kernel_memory_limit, int)],
          ['memory_hard_limit', opt(m.memory_hard_limit, int)],
          ['memory_soft_limit', opt(m.memory_soft_limit, int)],
          ['kernel_tcp_memory_limit', opt(m.kernel_tcp_memory_limit, int)],
          ['memory_swap_limit', opt(m.memory_swap_limit, int)],
          ['swappiness', opt(m.swappiness, int)],
          ['attrs', attrsOut(m.attrs)],
        ]),
      ),
    ],
  ]);
}

function jsonOut(v: unknown): Out {
  if (v === null || v === undefined) return { t: 'null' };
  if (typeof v === 'string') return str(v);
  if (typeof v === 'boolean') return { t: 'bool', v };
  if (typeof v === 'bigint') return int(v);
  if (typeof v === 'number') return Number.isInteger(v) ? int(v) : { t: 'float', v };
  if (Array.isArray(v)) return { t: 'seq', items: v.map(jsonOut) };
  if (typeof v === 'object') return map(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, jsonOut(x)]));
  return { t: 'null' };
}

function manifestOut(m: Manifest): Out {
  const seqOf = (xs: readonly string[]): Out => ({ t: 'seq', items: xs.map(str) });
  return map([
    ['name', str(m.name)],
    ['version', str(m.version)],
    [
      'console',
      opt(m.console, (c) =>
        map([['permissions', c.permissions.length === MANIFEST_FULL_PERMISSIONS.length && !c.permissions.includes('exec') ? str('full') : seqOf(c.permissions)]]),
      ),
    ],
    ['init', opt(m.init, str)],
    ['args', nonEmpty(m.args ?? [], seqOf)],
    ['env', nonEmptyRecord(m.env ?? {}, str)],
    ['uid', int(m.uid)],
    ['gid', int(m.gid)],
    ['sched', opt(m.sched, (s) => map([['policy', policyOut(s.policy)]]))],
    ['mounts', nonEmptyRecord(m.mounts ?? {}, mountOut)],
    ['autostart', opt(m.autostart, str)],
    ['cgroups', opt(m.cgroups, cgroupsOut)],
    ['network', opt(m.network, networkOut)],
    [
      'seccomp',
      opt(m.seccomp, (s) =>
        map([
          ['profile', opt(s.profile, str)],
          ['allow', opt(s.allow, (a) => map(Object.entries(a).map(([k, r]) => [k, ruleOut(r)])))],
        ]),
      ),
    ],
    ['selinux', opt(m.selinux, (s) => map([['mount_context', nullable(s.mount_context, str)], ['exec', nullable(s.exec, str)]]))],
    ['capabilities', nonEmpty(m.capabilities ?? [], seqOf)],
    ['suppl_groups', nonEmpty(m.suppl_groups ?? [], seqOf)],
    ['rlimits', nonEmptyRecord((m.rlimits ?? {}) as Record<string, { soft?: bigint; hard?: bigint }>, (r) => map([['soft', nullable(r.soft, int)], ['hard', nullable(r.hard, int)]]))],
    [
      'sockets',
      nonEmptyRecord(m.sockets ?? {}, (s) =>
        map([
          ['type', str(s.type)],
          ['mode', int(s.mode)],
          ['uid', opt(s.uid, int)],
          ['gid', opt(s.gid, int)],
          ['passcred', opt(s.passcred, (b) => ({ t: 'bool', v: b }))],
        ]),
      ),
    ],
    ['io', opt(m.io, (i) => map([['stdout', str(i.stdout)], ['stderr', str(i.stderr)]]))],
    ['root', opt(m.root, (r) => map([['writable', { t: 'bool', v: r.writable }], ['size', int(r.size)]]))],
    ['restart', opt(m.restart, (r) => map([['policy', str(r.policy)], ['max_retries', opt(r.max_retries, int)], ['backoff', opt(r.backoff, str)]]))],
    ['custom', m.custom === undefined ? undefined : jsonOut(m.custom)],
  ]);
}

// --- YAML ---------------------------------------------------------------------------------

const YAML11_BOOLS = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/;

/** A string as a YAML scalar that every YAML parser (and serde_yaml) reads back as that string. */
export function yamlString(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ufeff]/.test(s)) {
    return JSON.stringify(s).replace(/[\x7f-\x9f\u2028\u2029\ufeff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  const plainOk =
    s !== '' &&
    !yamlIsNull(s) &&
    yamlBool(s) === undefined &&
    yamlInt(s) === undefined &&
    yamlFloat(s) === undefined &&
    !YAML11_BOOLS.test(s) &&
    !/^[-+]?(\.[0-9]|[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?$)/.test(s) &&
    !/^[-+]?\.(inf|nan)$/i.test(s) &&
    !/^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$/.test(s) &&
    !/^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}/.test(s) &&
    !/^[-?:,[\]{}#&*!|>'"%@`\s]/.test(s) &&
    !/\s$/.test(s) &&
    !/: |:$| #|\t/.test(s) &&
    s !== '<<';
  return plainOk ? s : `'${s.replace(/'/g, "''")}'`;
}

function yamlScalar(o: Out): string | undefined {
  switch (o.t) {
    case 'str':
      return yamlString(o.v);
    case 'int':
      return String(o.v);
    case 'float':
      return Number.isFinite(o.v) ? (Number.isInteger(o.v) ? `${o.v}.0` : String(o.v)) : o.v > 0 ? '.inf' : o.v < 0 ? '-.inf' : '.nan';
    case 'bool':
      return o.v ? 'true' : 'false';
    case 'null':
      return 'null';
    default:
      return undefined;
  }
}

function yamlBlock(o: Out, indent: number, lines: string[], head: string): void {
  // `head` is the text before the value on its first line ("key:", "-", or "").
  const sep = head === '' ? '' : ' ';
  if (o.t === 'tagged') {
    const inner = o.v;
    const sc = yamlScalar(inner);
    if (sc !== undefined) {
      lines.push(`${head}${sep}!${o.tag} ${sc}`);
      return;
    }
    if (isEmpty(inner)) {
      lines.push(`${head}${sep}!${o.tag} ${inner.t === 'map' ? '{}' : '[]'}`);
      return;
    }
    lines.push(`${head}${sep}!${o.tag}`);
    yamlBody(inner, indent + 2, lines);
    return;
  }
  const sc = yamlScalar(o);
  if (sc !== undefined) {
    lines.push(`${head}${sep}${sc}`);
    return;
  }
  if (isEmpty(o)) {
    lines.push(`${head}${sep}${o.t === 'map' ? '{}' : '[]'}`);
    return;
  }
  if (head === '') {
    yamlBody(o, indent, lines);
    return;
  }
  if (head.endsWith('-')) {
    // "- key: value" / "- - item": the first line of the body shares the dash's line.
    const body: string[] = [];
    yamlBody(o, indent + 2, body);
    body[0] = `${head} ${body[0]!.slice(indent + 2)}`;
    lines.push(...body);
    return;
  }
  lines.push(head);
  // serde_yaml does not indent a sequence under its key.
  yamlBody(o, o.t === 'seq' ? indent : indent + 2, lines);
}

function isEmpty(o: Out): boolean {
  return (o.t === 'map' && o.entries.length === 0) || (o.t === 'seq' && o.items.length === 0);
}

function yamlBody(o: Out, indent: number, lines: string[]): void {
  const pad = ' '.repeat(indent);
  if (o.t === 'map') {
    for (const [k, v] of o.entries) yamlBlock(v, indent, lines, `${pad}${yamlString(k)}:`);
  } else if (o.t === 'seq') {
    for (const item of o.items) yamlBlock(item, indent, lines, `${pad}-`);
  } else {
    yamlBlock(o, indent, lines, pad.length ? pad.slice(0, -1) : '');
  }
}

// --- JSON ---------------------------------------------------------------------------------

/** The JSON form: tagged variants become `{variant: value}`; integers are written exactly. */
function jsonText(o: Out, indent: number, pretty: boolean): string {
  const nl = pretty ? '\n' + ' '.repeat(indent + 2) : '';
  const end = pretty ? '\n' + ' '.repeat(indent) : '';
  const colon = pretty ? ': ' : ':';
  switch (o.t) {
    case 'str':
      return JSON.stringify(o.v);
    case 'int':
      return String(o.v);
    case 'float':
      return Number.isFinite(o.v) ? String(o.v) : 'null';
    case 'bool':
      return o.v ? 'true' : 'false';
    case 'null':
      return 'null';
    case 'tagged':
      return jsonText(map([[o.tag, o.v]]), indent, pretty);
    case 'seq':
      if (o.items.length === 0) return '[]';
      return `[${o.items.map((i) => nl + jsonText(i, indent + 2, pretty)).join(',')}${end}]`;
    case 'map':
      if (o.entries.length === 0) return '{}';
      return `{${o.entries.map(([k, v]) => `${nl}${JSON.stringify(k)}${colon}${jsonText(v, indent + 2, pretty)}`).join(',')}${end}}`;
  }
}

function jsonValue(o: Out): unknown {
  switch (o.t) {
    case 'str':
    case 'bool':
    case 'float':
      return o.v;
    case 'int':
      return Number(o.v);
    case 'null':
      return null;
    case 'tagged':
      return { [o.tag]: jsonValue(o.v) };
    case 'seq':
      return o.items.map(jsonValue);
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of o.entries) Object.defineProperty(out, k, { value: jsonValue(v), enumerable: true, writable: true, configurable: true });
      return out;
    }
  }
}

export type SerializeFormat = 'yaml' | 'json';

/**
 * Write a manifest. YAML (the default) is what goes into an NPK as manifest.yaml; JSON is
 * the map form upstream's serde_json writes (pretty-printed unless `pretty: false`).
 * parseManifest(serializeManifest(m)) deep-equals m.
 */
export function serializeManifest(m: Manifest, format: SerializeFormat = 'yaml', opts: { pretty?: boolean } = {}): string {
  const tree = manifestOut(m);
  if (format === 'json') return jsonText(tree, 0, opts.pretty ?? true) + '\n';
  const lines: string[] = [];
  yamlBody(tree, 0, lines);
  return lines.join('\n') + '\n';
}

/**
 * The manifest as a plain JSON value (what upstream's console sends in `inspect`). 64-bit
 * integers become JS numbers, exact up to 2^53; use serializeManifest(m, 'json') for exact text.
 */
export function manifestToJson(m: Manifest): Record<string, unknown> {
  return jsonValue(manifestOut(m)) as Record<string, unknown>;
}
