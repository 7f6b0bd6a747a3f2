/* libFuzzer target for the plan parser: any input must either be rejected with a
 * message or yield a plan whose invariants hold; ASan/UBSan catch memory errors and
 * leaks (plan_free must release everything, on success and on every failure path).
 *   make fuzz && build/fuzz-plan -max_total_time=600 build/fuzz-corpus fuzz/seeds */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/plan.h"

static void check(const struct plan *p) {
  assert(p->container && strlen(p->container) >= 1 && strlen(p->container) <= PLAN_MAX_CONTAINER);
  assert(p->hostname && strlen(p->hostname) <= PLAN_MAX_HOSTNAME);
  assert(p->root && p->root[0] == '/');
  assert(p->nmounts <= PLAN_MAX_MOUNTS);
  for (uint32_t i = 0; i < p->nmounts; i++) {
    const struct plan_mount *m = &p->mounts[i];
    assert(m->target && m->target[0]);
    assert((m->options & ~MOUNT_OPTIONS_ALL) == 0);
    assert(!(m->options & MOUNT_SOURCE_IN_ROOT) == !m->source_root);
    if (m->source_root) assert(m->source_root[0] == '/' && m->source && m->source[0] && m->source[0] != '/');
    if (m->options & MOUNT_SYMLINK) assert(m->source && m->source[0] && m->flags == 0 && !m->fstype && !m->data);
  }
  assert(p->net <= NET_JOIN && (p->net != NET_JOIN || (p->net_path && p->net_path[0] == '/')));
  assert(p->argc >= 1 && p->argv[p->argc] == NULL);
  assert(p->envp[p->envc] == NULL);
  for (uint32_t i = 0; i < p->envc; i++) assert(strchr(p->envp[i], '=') > p->envp[i]);
  for (uint32_t i = 0; i < p->nrlimits; i++) assert(p->rlimits[i].resource < 16 && p->rlimits[i].soft <= p->rlimits[i].hard);
  for (uint32_t i = 0; i < p->ncaps; i++) assert(p->caps[i] < 64);
  for (uint32_t i = 0; i < p->nrules; i++) {
    assert(p->rules[i].kind <= RULE_BITS);
    if (p->seccomp == SECCOMP_DENY_LIST) assert(p->rules[i].err >= 1 && p->rules[i].err <= 4095);
    if (p->rules[i].kind != RULE_ANY) assert(p->rules[i].index <= 5);
    if (p->rules[i].kind == RULE_VALUES) assert(p->rules[i].nvalues >= 1 && p->rules[i].values);
  }
  assert(p->console <= 1 && p->seccomp <= 2 && p->has_sched <= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct plan p;
  char err[256];
  err[0] = 0;
  if (plan_parse(data, size, &p, err, sizeof err) == 0) {
    check(&p);
    plan_free(&p);
  } else {
    assert(err[0] != 0); /* every rejection names a reason */
  }
  return 0;
}
