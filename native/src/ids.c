/* Credentials of the app, applied in its child before execve: rlimits and scheduling
 * (while still fully privileged, so raising limits and realtime policies work), then
 * groups, gid and uid keeping the permitted capabilities, then the capability sets
 * exactly as planned: bounding set trimmed, E = P = I = S, ambient = S; an empty S
 * leaves every set empty. */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

static const char *const RLIMIT_NAMES[16] = {"cpu",     "fsize", "data",  "stack",      "core",     "rss",
                                             "nproc",   "nofile", "memlock", "as",       "locks",    "sigpending",
                                             "msgqueue", "nice",  "rtprio", "rttime"};

int apply_rlimits(const struct plan *p) {
  for (uint32_t i = 0; i < p->nrlimits; i++) {
    const struct plan_rlimit *r = &p->rlimits[i];
    struct rlimit lim = {.rlim_cur = (rlim_t)r->soft, .rlim_max = (rlim_t)r->hard};
    if (setrlimit((__rlimit_resource_t)r->resource, &lim) < 0) {
      return fail_step("rlimits", errno, NULL, "setrlimit %s (soft %llu, hard %llu) failed", RLIMIT_NAMES[r->resource],
                       (unsigned long long)r->soft, (unsigned long long)r->hard);
    }
  }
  return 0;
}

int apply_sched(const struct plan *p) {
  if (!p->has_sched) return 0;
  struct sched_param sp = {.sched_priority = (int)p->sched_priority};
  if (sched_setscheduler(0, (int)p->sched_policy, &sp) < 0) {
    return fail_step("sched", errno, NULL, "sched_setscheduler(policy %u, priority %u) failed", p->sched_policy,
                     p->sched_priority);
  }
  if ((p->sched_policy == SCHED_OTHER || p->sched_policy == SCHED_BATCH) && p->sched_nice != 0) {
    if (setpriority(PRIO_PROCESS, 0, p->sched_nice) < 0) {
      return fail_step("sched", errno, NULL, "setpriority(%d) failed", p->sched_nice);
    }
  }
  return 0;
}

int apply_ids(const struct plan *p) {
  if (setgroups(p->ngroups, (const gid_t *)p->groups) < 0) {
    return fail_step("ids", errno, NULL, "setgroups (%u groups) failed", p->ngroups);
  }
  if (setresgid(p->gid, p->gid, p->gid) < 0) return fail_step("ids", errno, NULL, "setresgid(%u) failed", p->gid);
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail_step("ids", errno, NULL, "PR_SET_KEEPCAPS failed");
  if (setresuid(p->uid, p->uid, p->uid) < 0) return fail_step("ids", errno, NULL, "setresuid(%u) failed", p->uid);
  return 0;
}

static int capset_sets(uint64_t eff, uint64_t prm, uint64_t inh) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2] = {
      {.effective = (uint32_t)eff, .permitted = (uint32_t)prm, .inheritable = (uint32_t)inh},
      {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(prm >> 32), .inheritable = (uint32_t)(inh >> 32)},
  };
  return (int)syscall(SYS_capset, &hdr, data);
}

static int capget_permitted(uint64_t *prm) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  if (syscall(SYS_capget, &hdr, data) < 0) return -1;
  *prm = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
  return 0;
}

/* The highest capability the kernel knows: PR_CAPBSET_READ fails with EINVAL above it. */
static int last_cap(void) {
  int last = -1;
  for (int c = 0; c < 64; c++) {
    if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0) break;
    last = c;
  }
  return last;
}

int apply_caps(const struct plan *p) {
  const int last = last_cap();
  uint64_t want = 0;
  for (uint32_t i = 0; i < p->ncaps; i++) {
    if ((int)p->caps[i] > last) {
      return fail_step("capabilities", EINVAL, NULL, "capability %u is not known to this kernel (last is %d)",
                       p->caps[i], last);
    }
    want |= 1ull << p->caps[i];
  }
  uint64_t prm;
  if (capget_permitted(&prm) < 0) return fail_step("capabilities", errno, NULL, "capget failed");
  if ((want & prm) != want) {
    return fail_step("capabilities", EPERM, NULL, "requested capabilities 0x%llx exceed the permitted set 0x%llx",
                     (unsigned long long)want, (unsigned long long)prm);
  }
  /* Effective = permitted, so CAP_SETPCAP is usable for trimming the bounding set. */
  if (capset_sets(prm, prm, 0) < 0) return fail_step("capabilities", errno, NULL, "raising the effective set failed");
  for (int c = 0; c <= last; c++) {
    if (want & (1ull << c)) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
      return fail_step("capabilities", errno, NULL, "dropping capability %d from the bounding set failed", c);
    }
  }
  if (capset_sets(want, want, want) < 0) {
    return fail_step("capabilities", errno, NULL, "setting the capability sets to 0x%llx failed",
                     (unsigned long long)want);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
    return fail_step("capabilities", errno, NULL, "clearing the ambient set failed");
  }
  for (int c = 0; c <= last; c++) {
    if (!(want & (1ull << c))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0) {
      return fail_step("capabilities", errno, NULL, "raising ambient capability %d failed", c);
    }
  }
  return 0;
}

/* Init after the app is forked: it only signals and reaps from now on. Keep CAP_KILL
 * (the app may run under another uid) and nothing else, bounding set included, so even
 * an app allowed to ptrace it would gain no privilege through it. */
int drop_init_caps(void) {
  const int last = last_cap();
  const uint64_t keep = 1ull << CAP_KILL;
  for (int c = 0; c <= last; c++) {
    if (c == CAP_KILL) continue;
    if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) return fail_step("init", errno, NULL, "dropping init's capability %d failed", c);
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
    return fail_step("init", errno, NULL, "clearing init's ambient capabilities failed");
  }
  if (capset_sets(keep, keep, 0) < 0) return fail_step("init", errno, NULL, "dropping init's capabilities failed");
  return 0;
}
