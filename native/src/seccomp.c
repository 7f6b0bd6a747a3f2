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
 * Names libseccomp cannot resolve for this architecture are skipped.
 *
 * A container's filter is compiled by the launcher, right after it cloned init, while init
 * sets up the root (on the other CPU where there is one): compile_seccomp() gives the BPF
 * program, which init receives before it forks the app, and the app only installs it
 * (install_seccomp), the last step before execve. An exec into a running container
 * compiles and installs in one (load_seccomp). */
#include <errno.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

static int add(scmp_filter_ctx ctx, uint32_t action, int nr, const char *name, unsigned n, const struct scmp_arg_cmp *cmp) {
  int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
  /* -EEXIST: an identical or wider rule already allows it. */
  if (rc < 0 && rc != -EEXIST) return fail_step("seccomp", -rc, NULL, "adding the rule for %s failed", name);
  return 0;
}

/* The filter of the plan as a libseccomp context; NULL (step error set) on failure. */
static scmp_filter_ctx build(const struct plan *p) {
  const int deny = p->seccomp == SECCOMP_DENY_LIST;
  scmp_filter_ctx ctx = seccomp_init(deny ? SCMP_ACT_ALLOW : SCMP_ACT_KILL_PROCESS);
  if (!ctx) {
    fail_step("seccomp", ENOMEM, NULL, "seccomp_init failed");
    return NULL;
  }
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc < 0) {
    seccomp_release(ctx);
    fail_step("seccomp", -rc, NULL, "setting the bad-architecture action failed");
    return NULL;
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
  return ctx;
fail:
  seccomp_release(ctx);
  return NULL;
}

int compile_seccomp(const struct plan *p, struct sock_fprog *prog) {
  prog->len = 0;
  prog->filter = NULL;
  if (p->seccomp == SECCOMP_OFF) return 0;
  scmp_filter_ctx ctx = build(p);
  if (!ctx) return -1;
  /* libseccomp 2.5 exports to an fd only. */
  int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) {
    seccomp_release(ctx);
    return fail_step("seccomp", errno, NULL, "memfd_create for the compiled filter failed");
  }
  int rc = seccomp_export_bpf(ctx, fd);
  seccomp_release(ctx);
  if (rc < 0) {
    close(fd);
    return fail_step("seccomp", -rc, NULL, "compiling the filter failed");
  }
  off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size > SECCOMP_MAX_BPF_BYTES || size % (off_t)sizeof(struct sock_filter) != 0) {
    close(fd);
    return fail_step("seccomp", EINVAL, NULL, "the compiled filter has %lld bytes", (long long)size);
  }
  struct sock_filter *code = malloc((size_t)size);
  if (!code) {
    close(fd);
    return fail_step("seccomp", ENOMEM, NULL, "no memory for the compiled filter");
  }
  ssize_t got = pread(fd, code, (size_t)size, 0);
  close(fd);
  if (got != (ssize_t)size) {
    free(code);
    return fail_step("seccomp", got < 0 ? errno : EIO, NULL, "reading the compiled filter back failed");
  }
  prog->filter = code;
  prog->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
  return 0;
}

int install_seccomp(const struct sock_fprog *prog) {
  if (prog->len == 0) return 0;
  /* What seccomp_load does with the default attributes: no flags; no_new_privs is set by
   * the caller before. */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0) return fail_step("seccomp", errno, NULL, "loading the filter failed");
  /* The program is not freed: freeing memory is not worth a syscall the filter might not
   * allow; execve discards it. */
  return 0;
}

int load_seccomp(const struct plan *p) {
  struct sock_fprog prog;
  if (compile_seccomp(p, &prog) < 0) return -1;
  return install_seccomp(&prog);
}
