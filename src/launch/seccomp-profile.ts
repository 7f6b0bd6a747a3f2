/**
 * Seccomp policy: the rules of the `default` profile (Docker 20.10 style, as upstream Northstar
 * ships it; its syscall tables are in src/manifest/seccomp-profile.ts) and the compilation of a
 * manifest's `seccomp` section into the plan's allow rules (shared/spec/runtime.md §7,
 * shared/spec/npk-and-manifest.md §5.5).
 *
 * Differences from upstream, on purpose:
 * - an `!args` rule with several `values` allows every listed value (README item 1;
 *   upstream's BPF only ever matches the first);
 * - CAP_NET_ADMIN grants nothing extra (ESR-01-013, as upstream after its fix).
 *
 * The C core installs the filter last, right before execve; anything not allowed kills
 * the process (SIGSYS, reported as signal 31). Names the C side cannot resolve for the
 * running architecture (32-bit variants such as `chown32`) are skipped there.
 */
import { ValidationError } from '../common/errors.js';
import { ARCH_SYSCALLS, BASE_SYSCALLS, CAPABILITY_SYSCALLS, CLONE_MASK_WITHOUT_SYS_ADMIN, PERSONALITY_VALUES } from '../manifest/seccomp-profile.js';
import { MAX_ARG_INDEX, MAX_ARG_VALUES } from '../manifest/seccomp.js';
import type { SeccompPlan, SeccompRule, U64 } from './plan.js';

// The profile's tables and the `!args` limits live with the manifest (one definition, also used by nstar).
export { ARCH_SYSCALLS, BASE_SYSCALLS, CAPABILITY_SYSCALLS, CLONE_MASK_WITHOUT_SYS_ADMIN, CLONE_NAMESPACE_FLAGS, PERSONALITY_VALUES } from '../manifest/seccomp-profile.js';
export { MAX_ARG_INDEX, MAX_ARG_VALUES } from '../manifest/seccomp.js';

const U64_MAX = (1n << 64n) - 1n;

/** The argument condition of an `!args` rule. */
export interface ArgsRule {
  readonly index: number;
  readonly values?: readonly U64[] | null;
  readonly mask?: U64 | null;
}

/**
 * A manifest `seccomp.allow` entry: `any`, or `!args {index, values?, mask?}` (as the
 * manifest model holds it, `{args: {...}}`, or the bare condition).
 */
export type AllowRule = 'any' | { readonly args: ArgsRule } | ArgsRule;

/** The manifest's `seccomp` section. */
export interface SeccompSection {
  readonly profile?: 'default' | null;
  readonly allow?: Readonly<Record<string, AllowRule>> | ReadonlyMap<string, AllowRule> | null;
}

const SYSCALL_NAME = /^[a-z0-9_]+$/;

function toBig(v: U64, path: string): bigint {
  let b: bigint;
  try {
    b = BigInt(v);
  } catch {
    throw new ValidationError([{ path, rule: 'must be an unsigned 64-bit integer' }]);
  }
  if ((typeof v === 'number' && !Number.isSafeInteger(v)) || b < 0n || b > U64_MAX) {
    throw new ValidationError([{ path, rule: 'must be an unsigned 64-bit integer' }]);
  }
  return b;
}

/** Plan values as the plan wants them: numbers when exact, bigints above 2^53. */
function u64(b: bigint): U64 {
  return b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

/**
 * The rules of the `default` profile for a capability set (names as in the manifest,
 * `CAP_…`). With an empty set: the base list only, so no `clone` at all; `clone3` is
 * never part of the profile.
 */
export function defaultProfileRules(capabilities: Iterable<string>, arch: string = process.arch): SeccompRule[] {
  const caps = new Set(capabilities);
  const rules: SeccompRule[] = [];
  for (const syscall of [...BASE_SYSCALLS, ...(ARCH_SYSCALLS[arch] ?? [])]) rules.push({ syscall, kind: 'any' });
  rules.push({ syscall: 'personality', kind: 'values', index: 0, values: PERSONALITY_VALUES.map(u64) });
  if (caps.size > 0) {
    for (const cap of caps) {
      for (const syscall of CAPABILITY_SYSCALLS[cap] ?? []) rules.push({ syscall, kind: 'any' });
    }
    if (!caps.has('CAP_SYS_ADMIN')) {
      rules.push({ syscall: 'clone', kind: 'mask', index: 0, mask: u64(CLONE_MASK_WITHOUT_SYS_ADMIN) });
    }
  }
  return rules;
}

function allowEntries(allow: SeccompSection['allow']): [string, AllowRule][] {
  if (allow == null) return [];
  if (allow instanceof Map) return [...(allow as ReadonlyMap<string, AllowRule>).entries()];
  return Object.entries(allow as Readonly<Record<string, AllowRule>>);
}

/**
 * Compile a manifest `seccomp.allow` map into plan rules: `any` → one unconditional rule;
 * `!args` → a `values` rule (every value allowed) and/or a `mask` rule; either allows.
 * Throws a ValidationError naming the entry for a malformed rule.
 */
export function compileAllowRules(allow: SeccompSection['allow']): SeccompRule[] {
  const rules: SeccompRule[] = [];
  for (const [syscall, rule] of allowEntries(allow)) {
    const path = `seccomp.allow.${syscall}`;
    if (!SYSCALL_NAME.test(syscall) || syscall.length > 64) {
      throw new ValidationError([{ path, rule: 'syscall names consist of a-z, 0-9 and _ (at most 64)' }]);
    }
    if (rule === 'any') {
      rules.push({ syscall, kind: 'any' });
      continue;
    }
    if (rule === null || typeof rule !== 'object') {
      throw new ValidationError([{ path, rule: "must be 'any' or !args {index, values, mask}" }]);
    }
    const args: ArgsRule = 'args' in rule ? rule.args : rule;
    if (args === null || typeof args !== 'object') {
      throw new ValidationError([{ path, rule: "must be 'any' or !args {index, values, mask}" }]);
    }
    const { index, values, mask } = args;
    if (!Number.isInteger(index) || index < 0 || index > MAX_ARG_INDEX) {
      throw new ValidationError([{ path: `${path}.index`, rule: `must be in 0..${MAX_ARG_INDEX}` }]);
    }
    if (values == null && mask == null) {
      throw new ValidationError([{ path, rule: "an !args rule needs 'values' or 'mask'" }]);
    }
    if (values != null) {
      if (values.length === 0) throw new ValidationError([{ path: `${path}.values`, rule: 'must not be empty' }]);
      if (values.length > MAX_ARG_VALUES) {
        throw new ValidationError([{ path: `${path}.values`, rule: `must have at most ${MAX_ARG_VALUES} entries` }]);
      }
      const vs = values.map((v, i) => u64(toBig(v, `${path}.values[${i}]`)));
      rules.push({ syscall, kind: 'values', index, values: vs });
    }
    if (mask != null) rules.push({ syscall, kind: 'mask', index, mask: u64(toBig(mask, `${path}.mask`)) });
  }
  return rules;
}

function ruleKey(r: SeccompRule): string {
  switch (r.kind) {
    case 'bits':
      return `${r.syscall} bits ${r.index} ${BigInt(r.bits).toString(16)}`;
    case 'any':
      return `${r.syscall} any`;
    case 'values':
      return `${r.syscall} values ${r.index} ${r.values.map((v) => BigInt(v).toString(16)).join(',')}`;
    case 'mask':
      return `${r.syscall} mask ${r.index} ${BigInt(r.mask).toString(16)}`;
  }
}

const KIND_ORDER = { any: 0, values: 1, mask: 2, bits: 3 } as const;

/**
 * Merge rule lists into the plan's list: sorted by syscall name, exact duplicates removed,
 * and argument rules dropped for a syscall that is also allowed unconditionally (they could
 * not allow anything more). `values` of several rules stay separate rules: each allows.
 */
export function mergeRules(...lists: readonly (readonly SeccompRule[])[]): SeccompRule[] {
  const unconditional = new Set<string>();
  for (const list of lists) for (const r of list) if (r.kind === 'any') unconditional.add(r.syscall);
  const seen = new Map<string, SeccompRule>();
  for (const list of lists) {
    for (const r of list) {
      if (r.kind !== 'any' && unconditional.has(r.syscall)) continue;
      const normalized: SeccompRule =
        r.kind === 'values'
          ? { ...r, values: [...new Set(r.values.map((v) => BigInt(v)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map(u64) }
          : r;
      const key = ruleKey(normalized);
      if (!seen.has(key)) seen.set(key, normalized);
    }
  }
  return [...seen.values()].sort((a, b) =>
    a.syscall < b.syscall ? -1 : a.syscall > b.syscall ? 1 : KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (ruleKey(a) < ruleKey(b) ? -1 : 1),
  );
}

/**
 * OUR EXTENSION: what a container without a `seccomp` section gets (runtime config
 * `[seccomp] default`). Upstream applies no filter then (`none`); `deny-dangerous` (our
 * default) allows everything except the calls of DANGEROUS_SYSCALLS.
 */
export const SECCOMP_DEFAULTS = ['deny-dangerous', 'none'] as const;
export type SeccompDefault = (typeof SECCOMP_DEFAULTS)[number];

const EPERM = 1;
const ENOSYS = 38;
/** CLONE_NEWUSER: a new user namespace (flags argument 0 of clone and unshare). */
export const CLONE_NEWUSER = 0x10000000n;

/** One entry of the deny-list: the call, an optional argument condition, the errno, why. */
export interface DangerousSyscall {
  readonly syscall: string;
  /** Denied only when every bit of `bits` is set in argument `index`. */
  readonly when?: { readonly index: number; readonly bits: bigint };
  readonly errno: number;
  /** Not denied when the manifest grants one of these capabilities (the call is then the point). */
  readonly unlessCapability?: readonly string[];
  readonly reason: string;
}

/**
 * The `deny-dangerous` list: kernel facilities a container could use across its boundary
 * although it holds no capability (the kernel lets unprivileged processes call them), or
 * that bypass the mount namespace. Everything else stays allowed, so manifests written for
 * upstream (no filter) keep working. Documented in docs/configuration.md ([seccomp]).
 */
export const DANGEROUS_SYSCALLS: readonly DangerousSyscall[] = Object.freeze([
  ...['add_key', 'keyctl', 'request_key'].map((syscall) => ({
    syscall,
    errno: EPERM,
    reason: 'kernel keyrings are not namespaced: the user keyring of a uid is shared with the host and every other container of that uid',
  })),
  { syscall: 'unshare', when: { index: 0, bits: CLONE_NEWUSER }, errno: EPERM, reason: 'a new user namespace gives the process every capability inside it and opens kernel code otherwise reachable only by root' },
  { syscall: 'clone', when: { index: 0, bits: CLONE_NEWUSER }, errno: EPERM, reason: 'as unshare: no new user namespace' },
  { syscall: 'clone3', errno: ENOSYS, reason: 'its flags are in memory a filter cannot read; ENOSYS makes the C library fall back to clone' },
  { syscall: 'bpf', errno: EPERM, unlessCapability: ['CAP_SYS_ADMIN', 'CAP_BPF'], reason: 'unprivileged eBPF: a large kernel attack surface and kernel memory disclosure' },
  { syscall: 'perf_event_open', errno: EPERM, unlessCapability: ['CAP_SYS_ADMIN', 'CAP_PERFMON'], reason: 'observes the host and other containers (side channels, kernel addresses)' },
  { syscall: 'userfaultfd', errno: EPERM, unlessCapability: ['CAP_SYS_PTRACE'], reason: 'stalls the kernel at a chosen page fault, the usual tool to win kernel races' },
  { syscall: 'syslog', errno: EPERM, unlessCapability: ['CAP_SYSLOG', 'CAP_SYS_ADMIN'], reason: "the host kernel's log (readable without a capability where kernel.dmesg_restrict is 0)" },
  { syscall: 'open_by_handle_at', errno: EPERM, reason: 'opens host files by handle past the mount namespace and root (the "shocker" escape, with CAP_DAC_READ_SEARCH)' },
  { syscall: 'kexec_load', errno: EPERM, reason: 'replaces the host kernel' },
  { syscall: 'kexec_file_load', errno: EPERM, reason: 'replaces the host kernel' },
]);

/** The deny rules of `deny-dangerous` for a capability set (names as in the manifest). */
export function denyDangerousRules(capabilities: Iterable<string>): SeccompRule[] {
  const caps = new Set(capabilities);
  return DANGEROUS_SYSCALLS.filter((d) => !(d.unlessCapability ?? []).some((c) => caps.has(c))).map(
    (d): SeccompRule =>
      d.when ? { syscall: d.syscall, kind: 'bits', index: d.when.index, bits: u64(d.when.bits), errno: d.errno } : { syscall: d.syscall, kind: 'any', errno: d.errno },
  );
}

/**
 * The plan's seccomp filter for a manifest. Without a `seccomp` section: no filter
 * (`none`, upstream) or the deny-list (`deny-dangerous`); otherwise `execve` plus the
 * profile (if any) plus the compiled `allow` rules.
 */
export function buildSeccompPlan(
  seccomp: SeccompSection | null | undefined,
  capabilities: Iterable<string>,
  arch: string = process.arch,
  dflt: SeccompDefault = 'none',
): SeccompPlan {
  if (seccomp == null) {
    return dflt === 'deny-dangerous' ? { enabled: true, deny: true, rules: denyDangerousRules(capabilities) } : { enabled: false, rules: [] };
  }
  if (seccomp.profile != null && seccomp.profile !== 'default') {
    throw new ValidationError([{ path: 'seccomp.profile', rule: "the only profile is 'default'" }]);
  }
  const profile = seccomp.profile == null ? [] : defaultProfileRules(capabilities, arch);
  const execve: SeccompRule[] = [{ syscall: 'execve', kind: 'any' }];
  return { enabled: true, rules: mergeRules(execve, profile, compileAllowRules(seccomp.allow)) };
}
