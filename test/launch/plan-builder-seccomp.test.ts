import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE_SYSCALLS,
  CAPABILITY_SYSCALLS,
  CLONE_MASK_WITHOUT_SYS_ADMIN,
  PERSONALITY_VALUES,
  buildSeccompPlan,
  compileAllowRules,
  defaultProfileRules,
  mergeRules,
  DANGEROUS_SYSCALLS,
} from '../../src/launch/seccomp-profile.js';
import type { SeccompPlan, SeccompRule } from '../../src/launch/plan.js';
import { ValidationError } from '../../src/common/errors.js';

/** What the C core's filter does with a plan's rules: may `name(args)` run? */
function allows(plan: SeccompPlan, name: string, args: readonly bigint[] = []): boolean {
  if (!plan.enabled) return true;
  // A deny-list allows what no rule matches; an allow-list what some rule matches.
  return plan.deny === true !== plan.rules.some((r) => {
    if (r.syscall !== name) return false;
    if (r.kind === 'any') return true;
    const a = args[r.index] ?? 0n;
    if (r.kind === 'values') return r.values.some((v) => BigInt(v) === a);
    if (r.kind === 'bits') return (a & BigInt(r.bits)) === BigInt(r.bits);
    return (a & ~BigInt(r.mask) & ((1n << 64n) - 1n)) === 0n;
  });
}

test('the base list has the Docker 20.10 size and no privileged calls', () => {
  assert.equal(new Set(BASE_SYSCALLS).size, BASE_SYSCALLS.length, 'no duplicates');
  assert.equal(BASE_SYSCALLS.length, 343);
  for (const name of ['read', 'write', 'openat', 'execve', 'exit_group', 'fork', 'vfork', 'ptrace', 'wait4']) {
    assert.ok(BASE_SYSCALLS.includes(name), name);
  }
  for (const name of ['clone', 'clone3', 'mount', 'unshare', 'setns', 'reboot', 'delete_module', 'personality', 'bpf']) {
    assert.ok(!BASE_SYSCALLS.includes(name), name);
  }
});

test('empty capabilities: base + personality values, no clone and no clone3 at all', () => {
  const plan = buildSeccompPlan({ profile: 'default' }, [], 'x64');
  assert.equal(plan.enabled, true);
  assert.ok(allows(plan, 'read'));
  assert.ok(allows(plan, 'arch_prctl'));
  assert.ok(!allows(plan, 'clone', [0x11n]));
  assert.ok(!allows(plan, 'clone3'));
  assert.ok(!allows(plan, 'mount'));
  for (const v of PERSONALITY_VALUES) assert.ok(allows(plan, 'personality', [v]), `personality ${v}`);
  assert.ok(!allows(plan, 'personality', [0x1n]));
  assert.ok(!allows(plan, 'personality', [0x0040000n]));
  // every listed personality value is allowed, including the last one (upstream only the first)
  const personality = plan.rules.filter((r) => r.syscall === 'personality');
  assert.deepEqual(personality, [{ syscall: 'personality', kind: 'values', index: 0, values: [0, 8, 0x20000, 0x20008, 0xffffffff] }]);
});

test('per-architecture names: x64 gets arch_prctl, arm64 gets set_tls, neither gets the other', () => {
  const x64 = buildSeccompPlan({ profile: 'default' }, [], 'x64');
  const arm = buildSeccompPlan({ profile: 'default' }, [], 'arm64');
  assert.ok(allows(x64, 'modify_ldt') && !allows(x64, 'set_tls'));
  assert.ok(allows(arm, 'set_tls') && !allows(arm, 'arch_prctl'));
});

test('capabilities without CAP_SYS_ADMIN add their extras and the masked clone', () => {
  const plan = buildSeccompPlan({ profile: 'default' }, ['CAP_KILL', 'CAP_SYS_MODULE', 'CAP_SYS_TIME'], 'x64');
  assert.ok(allows(plan, 'delete_module', [0n, 7n]));
  assert.ok(allows(plan, 'clock_settime'));
  assert.ok(!allows(plan, 'mount'));
  // clone without namespace flags passes, with any of them it is killed
  assert.ok(allows(plan, 'clone', [0x01200011n])); // CLONE_CHILD_SETTID|CLEARTID|SIGCHLD (fork)
  assert.ok(allows(plan, 'clone', [0x003d0f00n])); // pthread_create's flags
  for (const flag of [0x20000n, 0x02000000n, 0x04000000n, 0x08000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
    assert.ok(!allows(plan, 'clone', [flag | 0x11n]), `clone flag ${flag.toString(16)}`);
  }
  assert.ok(!allows(plan, 'clone3'));
  assert.equal(CLONE_MASK_WITHOUT_SYS_ADMIN, 0xffffffff81fdffffn);
});

test('CAP_SYS_ADMIN allows clone unconditionally and the admin calls; CAP_NET_ADMIN adds nothing', () => {
  const admin = buildSeccompPlan({ profile: 'default' }, ['CAP_SYS_ADMIN'], 'x64');
  assert.ok(allows(admin, 'clone', [0x7e020000n]));
  for (const n of CAPABILITY_SYSCALLS.CAP_SYS_ADMIN ?? []) assert.ok(allows(admin, n), n);
  assert.equal(admin.rules.filter((r) => r.syscall === 'clone').length, 1, 'the masked clone is dropped');

  const net = buildSeccompPlan({ profile: 'default' }, ['CAP_NET_ADMIN'], 'x64');
  const base = buildSeccompPlan({ profile: 'default' }, ['CAP_KILL'], 'x64');
  assert.deepEqual(net.rules, base.rules);
  assert.ok(!allows(net, 'mount') && !allows(net, 'unshare') && !allows(net, 'setns'));
});

test('every capability maps to the upstream extras', () => {
  const cases: [string, string[]][] = [
    ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
    ['CAP_SYS_BOOT', ['reboot']],
    ['CAP_SYS_CHROOT', ['chroot']],
    ['CAP_SYS_PACCT', ['acct']],
    ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']],
    ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
    ['CAP_SYS_TTY_CONFIG', ['vhangup']],
    ['CAP_SYS_NICE', ['get_mempolicy', 'mbind', 'set_mempolicy']],
    ['CAP_SYSLOG', ['syslog']],
  ];
  const none = buildSeccompPlan({ profile: 'default' }, ['CAP_CHOWN'], 'x64');
  for (const [cap, calls] of cases) {
    const plan = buildSeccompPlan({ profile: 'default' }, [cap], 'x64');
    for (const c of calls) {
      assert.ok(allows(plan, c), `${cap} allows ${c}`);
      assert.ok(!allows(none, c), `CAP_CHOWN does not allow ${c}`);
    }
  }
});

test('allow rules: any, values (all of them), mask, and values+mask either way', () => {
  const plan = buildSeccompPlan(
    {
      allow: {
        delete_module: { index: 1, values: [1], mask: 0x06 },
        ioctl: { index: 1, values: [0x5401, 0x5413, 0x541b] },
        clone: 'any',
      },
    },
    [],
    'x64',
  );
  assert.ok(allows(plan, 'execve'), 'execve is always allowed');
  assert.ok(!allows(plan, 'read'), 'no profile: nothing else');
  // upstream's example: 1 (value) and 4 (inside the mask) pass, 7 does not
  assert.ok(allows(plan, 'delete_module', [0n, 1n]));
  assert.ok(allows(plan, 'delete_module', [0n, 4n]));
  assert.ok(allows(plan, 'delete_module', [0n, 6n]));
  assert.ok(allows(plan, 'delete_module', [0n, 0n]));
  assert.ok(!allows(plan, 'delete_module', [0n, 7n]));
  assert.ok(!allows(plan, 'delete_module', [0n, 8n]));
  for (const v of [0x5401n, 0x5413n, 0x541bn]) assert.ok(allows(plan, 'ioctl', [0n, v]), `ioctl ${v}`);
  assert.ok(!allows(plan, 'ioctl', [0n, 0x5402n]));
  assert.ok(allows(plan, 'clone', [0x7e020000n]));
});

test('compileAllowRules keeps 64-bit values exact and rejects malformed rules with the entry path', () => {
  const rules = compileAllowRules({ futex: { index: 5, values: [0xffffffffffffffffn, 2 ** 40], mask: 0x8000000000000000n } });
  assert.deepEqual(rules, [
    { syscall: 'futex', kind: 'values', index: 5, values: [0xffffffffffffffffn, 2 ** 40] },
    { syscall: 'futex', kind: 'mask', index: 5, mask: 0x8000000000000000n },
  ]);
  const bad: [unknown, RegExp][] = [
    [{ x: { index: 6, values: [1] } }, /seccomp\.allow\.x\.index: must be in 0\.\.5/],
    [{ x: { index: 0 } }, /seccomp\.allow\.x: an !args rule needs 'values' or 'mask'/],
    [{ x: { index: 0, values: [] } }, /seccomp\.allow\.x\.values: must not be empty/],
    [{ x: { index: 0, values: Array.from({ length: 51 }, (_, i) => i) } }, /at most 50/],
    [{ x: { index: 0, values: [-1] } }, /seccomp\.allow\.x\.values\[0\]: must be an unsigned 64-bit integer/],
    [{ x: { index: 0, mask: 2n ** 64n } }, /seccomp\.allow\.x\.mask: must be an unsigned 64-bit integer/],
    [{ x: { index: 0, values: [1.5] } }, /values\[0\]: must be an unsigned 64-bit integer/],
    [{ 'Bad-Name': 'any' }, /seccomp\.allow\.Bad-Name: syscall names/],
    [{ x: 'all' }, /seccomp\.allow\.x: must be 'any'/],
  ];
  for (const [allow, re] of bad) {
    assert.throws(() => compileAllowRules(allow as never), (e: unknown) => e instanceof ValidationError && re.test(e.message), String(re));
  }
  assert.throws(() => buildSeccompPlan({ profile: 'strict' as never }, []), /the only profile is 'default'/);
});

test('a manifest allow map given as a Map, or with the {args: …} form of the manifest model, works the same', () => {
  const m = new Map([['delete_module', { index: 1, values: [1] }]]);
  assert.deepEqual(compileAllowRules(m), [{ syscall: 'delete_module', kind: 'values', index: 1, values: [1] }]);
  assert.deepEqual(compileAllowRules({ delete_module: { args: { index: 1, values: [1n], mask: 6n } } }), [
    { syscall: 'delete_module', kind: 'values', index: 1, values: [1] },
    { syscall: 'delete_module', kind: 'mask', index: 1, mask: 6 },
  ]);
});

test('no seccomp section: the filter is off', () => {
  assert.deepEqual(buildSeccompPlan(undefined, ['CAP_SYS_ADMIN']), { enabled: false, rules: [] });
  assert.deepEqual(buildSeccompPlan(null, []), { enabled: false, rules: [] });
});

test('merged rules are sorted by syscall, deduplicated, and arg rules under an any rule dropped', () => {
  const a: SeccompRule[] = [
    { syscall: 'write', kind: 'any' },
    { syscall: 'ioctl', kind: 'values', index: 1, values: [3, 1, 3] },
    { syscall: 'clone', kind: 'mask', index: 0, mask: 5 },
  ];
  const b: SeccompRule[] = [
    { syscall: 'write', kind: 'any' },
    { syscall: 'ioctl', kind: 'values', index: 1, values: [1, 3] },
    { syscall: 'clone', kind: 'any' },
    { syscall: 'close', kind: 'any' },
  ];
  assert.deepEqual(mergeRules(a, b), [
    { syscall: 'clone', kind: 'any' },
    { syscall: 'close', kind: 'any' },
    { syscall: 'ioctl', kind: 'values', index: 1, values: [1, 3] },
    { syscall: 'write', kind: 'any' },
  ]);
});

test('the test container manifest compiles like upstream describes it', () => {
  const plan = buildSeccompPlan(
    { profile: 'default', allow: { delete_module: { index: 1, values: [1], mask: 0x06 }, clone: 'any', clone3: 'any' } },
    [],
    'x64',
  );
  assert.ok(allows(plan, 'clone3') && allows(plan, 'clone', [0x7e020000n]));
  assert.ok(allows(plan, 'delete_module', [0n, 1n]) && allows(plan, 'delete_module', [0n, 4n]));
  assert.ok(!allows(plan, 'delete_module', [0n, 7n]));
  const sorted = [...plan.rules].map((r) => r.syscall);
  assert.deepEqual(sorted, [...sorted].sort());
  // the default profile is about 350 rules: far below the C core's limit
  assert.ok(plan.rules.length > 300 && plan.rules.length < 400, String(plan.rules.length));
});

test('defaultProfileRules ignores unknown capability names without adding anything', () => {
  const a = defaultProfileRules(['CAP_KILL'], 'x64');
  const b = defaultProfileRules(['CAP_KILL', 'CAP_WAKE_ALARM'], 'x64');
  assert.deepEqual(mergeRules(a), mergeRules(b));
});

test('no seccomp section: no filter with "none" (upstream), the deny-list with "deny-dangerous"', () => {
  assert.deepEqual(buildSeccompPlan(undefined, [], 'x64'), { enabled: false, rules: [] });
  assert.deepEqual(buildSeccompPlan(null, ['CAP_SYS_ADMIN'], 'x64', 'none'), { enabled: false, rules: [] });
  const plan = buildSeccompPlan(undefined, [], 'x64', 'deny-dangerous');
  assert.equal(plan.enabled, true);
  assert.equal(plan.deny, true);
  for (const name of ['add_key', 'keyctl', 'request_key', 'clone3', 'bpf', 'perf_event_open', 'userfaultfd', 'syslog', 'open_by_handle_at', 'kexec_load', 'kexec_file_load']) {
    assert.ok(!allows(plan, name), name);
  }
  assert.ok(!allows(plan, 'unshare', [0x10000000n]) && !allows(plan, 'unshare', [0x10020000n]), 'unshare(CLONE_NEWUSER)');
  assert.ok(!allows(plan, 'clone', [0x10000011n]), 'clone(CLONE_NEWUSER)');
  // Everything else passes: fork, threads, other namespaces (the kernel checks capabilities), mount, ptrace.
  for (const [name, args] of [['clone', [0x01200011n]], ['clone', [0x003d0f00n]], ['unshare', [0x20000n]], ['read', []], ['mount', []], ['ptrace', []], ['io_uring_setup', []]] as const) {
    assert.ok(allows(plan, name, args), `${name} ${args.join(',')}`);
  }
  assert.equal(plan.rules.find((r) => r.syscall === 'clone3')?.errno, 38, 'clone3 fails with ENOSYS so libc falls back to clone');
  assert.ok(plan.rules.filter((r) => r.syscall !== 'clone3').every((r) => r.errno === 1), 'the others fail with EPERM');
  // A granted capability that is the point of a call lifts its entry; keyrings and user namespaces stay denied.
  const admin = buildSeccompPlan(undefined, ['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE'], 'x64', 'deny-dangerous');
  assert.ok(allows(admin, 'bpf') && allows(admin, 'perf_event_open') && allows(admin, 'userfaultfd') && allows(admin, 'syslog'));
  assert.ok(!allows(admin, 'keyctl') && !allows(admin, 'unshare', [0x10000000n]) && !allows(admin, 'open_by_handle_at'));
  for (const d of DANGEROUS_SYSCALLS) assert.ok(d.reason.length > 10, `${d.syscall} has a reason`);
  // A manifest section is used as before, whatever the default.
  assert.equal(buildSeccompPlan({ profile: 'default' }, [], 'x64', 'deny-dangerous').deny, undefined);
});
