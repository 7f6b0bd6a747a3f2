/* Strict parser for the launch plan (format: src/launch/plan.ts). Every length, count
 * and enum is range-checked, strings must not contain NUL, reserved bits must be zero
 * and no byte may follow the last field. On any error nothing stays allocated. */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

struct ctx {
  struct reader r;
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, c->errlen, fmt, ap);
  va_end(ap);
  return -1;
}

#define NEED(expr, ...)                   \
  do {                                    \
    if (!(expr)) return fail(c, __VA_ARGS__); \
  } while (0)

static int u8(struct ctx *c, uint8_t *v, const char *what) {
  NEED(rd_u8(&c->r, v) == 0, "%s: truncated", what);
  return 0;
}
static int u32(struct ctx *c, uint32_t *v, const char *what) {
  NEED(rd_u32(&c->r, v) == 0, "%s: truncated", what);
  return 0;
}
static int u64(struct ctx *c, uint64_t *v, const char *what) {
  NEED(rd_u64(&c->r, v) == 0, "%s: truncated", what);
  return 0;
}
static int flag(struct ctx *c, uint8_t *v, const char *what) {
  if (u8(c, v, what) < 0) return -1;
  NEED(*v <= 1, "%s: must be 0 or 1, got %u", what, *v);
  return 0;
}

/* A str with min..max bytes and no NUL; stored as a NUL-terminated malloc'd copy. */
static int str(struct ctx *c, char **out, size_t min, size_t max, const char *what) {
  uint32_t n;
  const uint8_t *b;
  if (u32(c, &n, what) < 0) return -1;
  NEED(n >= min, "%s: must be at least %zu bytes", what, min);
  NEED(n <= max, "%s: length %u exceeds %zu", what, n, max);
  NEED(rd_bytes(&c->r, &b, n) == 0, "%s: truncated", what);
  NEED(memchr(b, 0, n) == NULL, "%s: contains a NUL byte", what);
  char *s = malloc((size_t)n + 1);
  NEED(s != NULL, "%s: out of memory", what);
  memcpy(s, b, n);
  s[n] = 0;
  *out = s;
  return 0;
}

static int ostr(struct ctx *c, char **out, size_t min, size_t max, const char *what) {
  uint8_t present;
  *out = NULL;
  if (flag(c, &present, what) < 0) return -1;
  return present ? str(c, out, min, max, what) : 0;
}

/* A count with an upper bound that also cannot exceed the bytes left (each item takes at
 * least min_item bytes), so a hostile count never drives a huge allocation. */
static int count(struct ctx *c, uint32_t *n, uint32_t max, size_t min_item, const char *what) {
  if (u32(c, n, what) < 0) return -1;
  NEED(*n <= max, "%s: %u entries exceed the limit of %u", what, *n, max);
  NEED((size_t)*n * min_item <= c->r.left, "%s: %u entries but only %zu bytes left", what, *n, c->r.left);
  return 0;
}

static void *alloc(size_t n, size_t size) { return calloc(n ? n : 1, size); }

static int strlist(struct ctx *c, char ***out, uint32_t *n, uint32_t max, size_t min, size_t maxlen,
                   const char *what) {
  if (count(c, n, max, 4, what) < 0) return -1;
  char **v = alloc((size_t)*n + 1, sizeof *v);
  NEED(v != NULL, "%s: out of memory", what);
  *out = v;
  for (uint32_t i = 0; i < *n; i++) {
    char name[64];
    snprintf(name, sizeof name, "%s[%u]", what, i);
    if (str(c, &v[i], min, maxlen, name) < 0) return -1;
  }
  return 0;
}

static int absolute(struct ctx *c, const char *s, const char *what) {
  NEED(s[0] == '/', "%s: must be an absolute path", what);
  return 0;
}

static int parse(struct ctx *c, struct plan *p) {
  const uint8_t *magic;
  uint16_t version, reserved;
  NEED(rd_bytes(&c->r, &magic, 4) == 0 && memcmp(magic, "NSPL", 4) == 0, "header: bad magic");
  NEED(rd_u16(&c->r, &version) == 0 && version == PLAN_VERSION, "header: unsupported version");
  NEED(rd_u16(&c->r, &reserved) == 0 && reserved == 0, "header: reserved bits set");

  if (str(c, &p->container, 1, PLAN_MAX_CONTAINER, "container") < 0) return -1;
  if (str(c, &p->hostname, 1, PLAN_MAX_HOSTNAME, "hostname") < 0) return -1;
  if (str(c, &p->root, 1, PLAN_MAX_PATH, "root") < 0 || absolute(c, p->root, "root") < 0) return -1;

  if (count(c, &p->nmounts, PLAN_MAX_MOUNTS, 1 + 5 + 1 + 8 + 1 + 1, "mounts") < 0) return -1;
  p->mounts = alloc(p->nmounts, sizeof *p->mounts);
  NEED(p->mounts != NULL, "mounts: out of memory");
  for (uint32_t i = 0; i < p->nmounts; i++) {
    struct plan_mount *m = &p->mounts[i];
    if (ostr(c, &m->source, 0, PLAN_MAX_PATH, "mount.source") < 0) return -1;
    if (str(c, &m->target, 1, PLAN_MAX_PATH, "mount.target") < 0) return -1;
    if (ostr(c, &m->fstype, 1, 255, "mount.fstype") < 0) return -1;
    if (u64(c, &m->flags, "mount.flags") < 0) return -1;
    NEED(m->flags <= 0xffffffffu, "mount[%u].flags: out of range", i);
    if (ostr(c, &m->data, 0, 4096, "mount.data") < 0) return -1;
    if (u8(c, &m->options, "mount.options") < 0) return -1;
    NEED((m->options & ~MOUNT_OPTIONS_ALL) == 0, "mount[%u].options: reserved bits set", i);
    const uint8_t create = m->options & (MOUNT_CREATE_FILE | MOUNT_CREATE_DIR | MOUNT_SYMLINK | MOUNT_DEVICE);
    NEED((create & (create - 1)) == 0, "mount[%u].options: more than one of create file, create dir, symlink, device", i);
    NEED(m->target[0] != '/' || create == 0, "mount[%u].options: only a target inside the root can be created", i);
    if (m->options & MOUNT_SYMLINK) {
      NEED(m->source && m->source[0] && !m->fstype && !m->data && m->flags == 0 &&
               !(m->options & (MOUNT_SKIP_IF_MISSING | MOUNT_SOURCE_IN_ROOT)),
           "mount[%u]: a symlink needs a source (its text) and no fstype, flags, data or other options", i);
    }
    if (m->options & MOUNT_DEVICE) {
      NEED(m->source && m->source[0] == '/' && !m->fstype && !m->data && m->flags == 0 &&
               !(m->options & MOUNT_SOURCE_IN_ROOT),
           "mount[%u]: a device needs an absolute host source and no fstype, flags, data or source root", i);
    }
    if (m->options & MOUNT_SOURCE_IN_ROOT) {
      NEED(m->source && m->source[0] && m->source[0] != '/', "mount[%u].source: must be a relative path with a source root", i);
      if (str(c, &m->source_root, 1, PLAN_MAX_PATH, "mount.source_root") < 0) return -1;
      if (absolute(c, m->source_root, "mount.source_root") < 0) return -1;
    }
  }

  if (u8(c, &p->net, "network") < 0) return -1;
  NEED(p->net <= NET_JOIN, "network: unknown mode %u", p->net);
  if (p->net == NET_JOIN) {
    if (str(c, &p->net_path, 1, PLAN_MAX_PATH, "network.path") < 0) return -1;
    if (absolute(c, p->net_path, "network.path") < 0) return -1;
  }

  if (u32(c, &p->uid, "uid") < 0 || u32(c, &p->gid, "gid") < 0) return -1;
  NEED(p->uid != UINT32_MAX && p->gid != UINT32_MAX, "uid/gid: -1 is not a valid id");
  if (count(c, &p->ngroups, PLAN_MAX_GROUPS, 4, "groups") < 0) return -1;
  p->groups = alloc(p->ngroups, sizeof *p->groups);
  NEED(p->groups != NULL, "groups: out of memory");
  for (uint32_t i = 0; i < p->ngroups; i++) {
    if (u32(c, &p->groups[i], "groups") < 0) return -1;
    NEED(p->groups[i] != UINT32_MAX, "groups[%u]: -1 is not a valid id", i);
  }

  if (count(c, &p->nrlimits, PLAN_MAX_RLIMITS, 20, "rlimits") < 0) return -1;
  p->rlimits = alloc(p->nrlimits, sizeof *p->rlimits);
  NEED(p->rlimits != NULL, "rlimits: out of memory");
  uint32_t seen = 0;
  for (uint32_t i = 0; i < p->nrlimits; i++) {
    struct plan_rlimit *r = &p->rlimits[i];
    if (u32(c, &r->resource, "rlimit.resource") < 0) return -1;
    NEED(r->resource < 16, "rlimits[%u]: unknown resource %u", i, r->resource);
    NEED(!(seen & (1u << r->resource)), "rlimits[%u]: duplicate resource %u", i, r->resource);
    seen |= 1u << r->resource;
    if (u64(c, &r->soft, "rlimit.soft") < 0 || u64(c, &r->hard, "rlimit.hard") < 0) return -1;
    NEED(r->soft <= r->hard, "rlimits[%u]: soft limit exceeds hard limit", i);
  }

  if (flag(c, &p->has_sched, "sched") < 0) return -1;
  if (p->has_sched) {
    if (u32(c, &p->sched_policy, "sched.policy") < 0) return -1;
    if (u32(c, &p->sched_priority, "sched.priority") < 0) return -1;
    if (u32(c, (uint32_t *)&p->sched_nice, "sched.nice") < 0) return -1;
    uint32_t pol = p->sched_policy;
    NEED(pol == 0 || pol == 1 || pol == 2 || pol == 3 || pol == 5, "sched.policy: unknown policy %u", pol);
    int rt = pol == 1 || pol == 2;
    NEED(rt ? (p->sched_priority >= 1 && p->sched_priority <= 99) : p->sched_priority == 0,
         "sched.priority: %u out of range", p->sched_priority);
    NEED(p->sched_nice >= -20 && p->sched_nice <= 19, "sched.nice: %d out of range", p->sched_nice);
    NEED(pol == 0 || pol == 3 || p->sched_nice == 0, "sched.nice: must be 0 for policy %u", pol);
  }

  if (count(c, &p->ncaps, PLAN_MAX_CAPS, 4, "capabilities") < 0) return -1;
  p->caps = alloc(p->ncaps, sizeof *p->caps);
  NEED(p->caps != NULL, "capabilities: out of memory");
  uint64_t capseen = 0;
  for (uint32_t i = 0; i < p->ncaps; i++) {
    if (u32(c, &p->caps[i], "capabilities") < 0) return -1;
    NEED(p->caps[i] < 64, "capabilities[%u]: %u out of range", i, p->caps[i]);
    NEED(!(capseen & (1ull << p->caps[i])), "capabilities[%u]: duplicate %u", i, p->caps[i]);
    capseen |= 1ull << p->caps[i];
  }

  if (u8(c, &p->seccomp, "seccomp") < 0) return -1;
  NEED(p->seccomp <= SECCOMP_DENY_LIST, "seccomp: mode must be 0, 1 or 2, got %u", p->seccomp);
  if (count(c, &p->nrules, PLAN_MAX_RULES, 6, "seccomp.rules") < 0) return -1;
  p->rules = alloc(p->nrules, sizeof *p->rules);
  NEED(p->rules != NULL, "seccomp.rules: out of memory");
  for (uint32_t i = 0; i < p->nrules; i++) {
    struct plan_rule *r = &p->rules[i];
    if (str(c, &r->syscall, 1, PLAN_MAX_SYSCALL_NAME, "seccomp.rule.syscall") < 0) return -1;
    for (const char *s = r->syscall; *s; s++) {
      NEED((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_',
           "seccomp.rules[%u].syscall: invalid character", i);
    }
    if (u8(c, &r->kind, "seccomp.rule.kind") < 0) return -1;
    NEED(r->kind <= RULE_BITS, "seccomp.rules[%u].kind: unknown kind %u", i, r->kind);
    if (p->seccomp == SECCOMP_DENY_LIST) {
      if (u32(c, &r->err, "seccomp.rule.errno") < 0) return -1;
      NEED(r->err >= 1 && r->err <= 4095, "seccomp.rules[%u].errno: %u out of range 1..4095", i, r->err);
    }
    if (r->kind == RULE_ANY) continue;
    if (u8(c, &r->index, "seccomp.rule.index") < 0) return -1;
    NEED(r->index <= 5, "seccomp.rules[%u].index: %u out of range", i, r->index);
    if (r->kind == RULE_MASK || r->kind == RULE_BITS) {
      if (u64(c, &r->mask, "seccomp.rule.mask") < 0) return -1;
      continue;
    }
    if (count(c, &r->nvalues, PLAN_MAX_VALUES, 8, "seccomp.rule.values") < 0) return -1;
    NEED(r->nvalues > 0, "seccomp.rules[%u].values: must not be empty", i);
    r->values = alloc(r->nvalues, sizeof *r->values);
    NEED(r->values != NULL, "seccomp.rules: out of memory");
    for (uint32_t j = 0; j < r->nvalues; j++) {
      if (u64(c, &r->values[j], "seccomp.rule.values") < 0) return -1;
    }
  }

  if (ostr(c, &p->selinux_exec, 1, 4096, "selinux") < 0) return -1;
  if (str(c, &p->path, 1, PLAN_MAX_PATH, "path") < 0) return -1;
  if (strlist(c, &p->argv, &p->argc, PLAN_MAX_ARGS, 0, PLAN_MAX_STRING, "argv") < 0) return -1;
  NEED(p->argc > 0, "argv: must not be empty");
  if (strlist(c, &p->envp, &p->envc, PLAN_MAX_ENV, 2, PLAN_MAX_STRING, "envp") < 0) return -1;
  for (uint32_t i = 0; i < p->envc; i++) {
    const char *eq = strchr(p->envp[i], '=');
    NEED(eq != NULL && eq != p->envp[i], "envp[%u]: must have the form K=V", i);
  }
  if (strlist(c, &p->cgroups, &p->ncgroups, PLAN_MAX_CGROUPS, 1, PLAN_MAX_PATH, "cgroups") < 0) return -1;
  for (uint32_t i = 0; i < p->ncgroups; i++) {
    if (absolute(c, p->cgroups[i], "cgroups") < 0) return -1;
  }
  if (flag(c, &p->console, "console") < 0) return -1;
  if (strlist(c, &p->sockets, &p->nsockets, PLAN_MAX_SOCKETS, 1, 255, "sockets") < 0) return -1;
  for (uint32_t i = 0; i < p->nsockets; i++) {
    NEED(strchr(p->sockets[i], '=') == NULL, "sockets[%u]: must not contain =", i);
  }
  if (u8(c, &p->discard, "discard") < 0) return -1;
  NEED((p->discard & ~(DISCARD_STDOUT | DISCARD_STDERR)) == 0, "discard: unknown bits 0x%x", p->discard & ~(DISCARD_STDOUT | DISCARD_STDERR));
  NEED(c->r.left == 0, "plan: %zu trailing bytes", c->r.left);
  return 0;
}

int plan_parse(const uint8_t *buf, size_t len, struct plan *out, char *err, size_t errlen) {
  struct ctx c = {.r = {.p = buf, .left = len}, .err = err, .errlen = errlen};
  memset(out, 0, sizeof *out);
  if (len > PLAN_MAX_BYTES) {
    snprintf(err, errlen, "plan: %zu bytes exceed the limit", len);
    return -1;
  }
  if (parse(&c, out) < 0) {
    plan_free(out);
    return -1;
  }
  return 0;
}

static void free_list(char **v, uint32_t n) {
  if (!v) return;
  for (uint32_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void plan_free(struct plan *p) {
  free(p->container);
  free(p->hostname);
  free(p->root);
  if (p->mounts) {
    for (uint32_t i = 0; i < p->nmounts; i++) {
      free(p->mounts[i].source);
      free(p->mounts[i].source_root);
      free(p->mounts[i].target);
      free(p->mounts[i].fstype);
      free(p->mounts[i].data);
    }
    free(p->mounts);
  }
  free(p->net_path);
  free(p->groups);
  free(p->rlimits);
  free(p->caps);
  if (p->rules) {
    for (uint32_t i = 0; i < p->nrules; i++) {
      free(p->rules[i].syscall);
      free(p->rules[i].values);
    }
    free(p->rules);
  }
  free(p->selinux_exec);
  free(p->path);
  free_list(p->argv, p->argc);
  free_list(p->envp, p->envc);
  free_list(p->cgroups, p->ncgroups);
  free_list(p->sockets, p->nsockets);
  memset(p, 0, sizeof *p);
}
