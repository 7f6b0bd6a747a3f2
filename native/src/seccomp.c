/* The seccomp filter, built with libseccomp from the plan's rules and loaded as the very
 * last step before execve, so nothing the core itself does needs to be allowed.
 * Allow-list (a manifest `seccomp` section):
 *  - default action and wrong-architecture action: kill the process (SIGSYS, 31);
 *  - execve is always allowed (the exec itself happens after loading);
 *  - `any`: unconditional; `values`: one EQ rule per value (every value allows, unlike
 *    upstream which only matched the first); `mask`: allowed iff (arg & ~mask) == 0;
 *    `bits`: allowed iff every bit of mask is set in arg.
 * Deny-list (no `seccomp` section, runtime config `[seccomp] default = "deny-dangerous"`):
 *  - default action: allow; wrong architecture: kill (no other ABI around the list);
 *  - a matching rule fails the call with the rule's errno; same conditions as above.
 * Names libseccomp cannot resolve for this architecture are skipped. */
#include <errno.h>
#include <seccomp.h>
#include <string.h>

#include "core.h"

static int add(scmp_filter_ctx ctx, uint32_t action, int nr, const char *name, unsigned n, const struct scmp_arg_cmp *cmp) {
  int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
  /* -EEXIST: an identical or wider rule already allows it. */
  if (rc < 0 && rc != -EEXIST) return fail_step("seccomp", -rc, NULL, "adding the rule for %s failed", name);
  return 0;
}

int load_seccomp(const struct plan *p) {
  if (p->seccomp == SECCOMP_OFF) return 0;
  const int deny = p->seccomp == SECCOMP_DENY_LIST;
  scmp_filter_ctx ctx = seccomp_init(deny ? SCMP_ACT_ALLOW : SCMP_ACT_KILL_PROCESS);
  if (!ctx) return fail_step("seccomp", ENOMEM, NULL, "seccomp_init failed");
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc < 0) {
    seccomp_release(ctx);
    return fail_step("seccomp", -rc, NULL, "setting the bad-architecture action failed");
  }
  if (!deny && add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(execve), "execve", 0, NULL) < 0) goto fail;
  for (uint32_t i = 0; i < p->nrules; i++) {
    const struct plan_rule *r = &p->rules[i];
    int nr = seccomp_syscall_resolve_name(r->syscall);
    if (nr == __NR_SCMP_ERROR || nr < 0) continue;
    const uint32_t action = deny ? SCMP_ACT_ERRNO(r->err) : SCMP_ACT_ALLOW;
    if (r->kind == RULE_ANY) {
      if (add(ctx, action, nr, r->syscall, 0, NULL) < 0) goto fail;
    } else if (r->kind == RULE_MASK) {
      struct scmp_arg_cmp cmp = SCMP_CMP(r->index, SCMP_CMP_MASKED_EQ, ~r->mask, 0);
      if (add(ctx, action, nr, r->syscall, 1, &cmp) < 0) goto fail;
    } else if (r->kind == RULE_BITS) {
      struct scmp_arg_cmp cmp = SCMP_CMP(r->index, SCMP_CMP_MASKED_EQ, r->mask, r->mask);
      if (add(ctx, action, nr, r->syscall, 1, &cmp) < 0) goto fail;
    } else {
      for (uint32_t j = 0; j < r->nvalues; j++) {
        struct scmp_arg_cmp cmp = SCMP_CMP(r->index, SCMP_CMP_EQ, r->values[j]);
        if (add(ctx, action, nr, r->syscall, 1, &cmp) < 0) goto fail;
      }
    }
  }
  rc = seccomp_load(ctx);
  if (rc < 0) {
    seccomp_release(ctx);
    return fail_step("seccomp", -rc, NULL, "loading the filter failed");
  }
  /* The context is not released: freeing memory is not worth a syscall the filter might
   * not allow; execve discards it. */
  return 0;
fail:
  seccomp_release(ctx);
  return -1;
}
