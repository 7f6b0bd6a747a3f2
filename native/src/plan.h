/* The launch plan as parsed from the binary format written by src/launch/plan.ts.
 * All strings are NUL-terminated copies; the parser owns every allocation. */
#ifndef NSL_PLAN_H
#define NSL_PLAN_H

#include <stddef.h>
#include <stdint.h>

#define PLAN_VERSION 2
#define PLAN_MAX_BYTES (16u * 1024u * 1024u)
#define PLAN_MAX_STRING 65536u
#define PLAN_MAX_PATH 4095u
#define PLAN_MAX_CONTAINER 255u
#define PLAN_MAX_HOSTNAME 64u
#define PLAN_MAX_MOUNTS 1024u
#define PLAN_MAX_GROUPS 65536u
#define PLAN_MAX_RLIMITS 16u
#define PLAN_MAX_CAPS 64u
#define PLAN_MAX_RULES 4096u
#define PLAN_MAX_VALUES 1024u
#define PLAN_MAX_ARGS 4096u
#define PLAN_MAX_ENV 4096u
#define PLAN_MAX_CGROUPS 64u
#define PLAN_MAX_SOCKETS 128u
#define PLAN_MAX_SYSCALL_NAME 64u

/* plan.discard: a launch core spawned ahead of time gets pipes for stdout and stderr;
 * these bits make it put /dev/null there instead when the container discards them. */
enum discard_bits { DISCARD_STDOUT = 0x1, DISCARD_STDERR = 0x2 };
enum net_mode { NET_NEW = 0, NET_HOST = 1, NET_JOIN = 2 };
enum rule_kind { RULE_ANY = 0, RULE_VALUES = 1, RULE_MASK = 2, RULE_BITS = 3 };
/* plan.seccomp: no filter, an allow-list (default: kill), or a deny-list (default: allow). */
enum seccomp_mode { SECCOMP_OFF = 0, SECCOMP_ALLOW_LIST = 1, SECCOMP_DENY_LIST = 2 };

#define MOUNT_SKIP_IF_MISSING 0x1u
/* source is relative and resolved inside source_root (symlinks cannot leave it). */
#define MOUNT_SOURCE_IN_ROOT 0x2u
/* Before the mount, create the target inside the root if missing: an empty file or a dir. */
#define MOUNT_CREATE_FILE 0x4u
#define MOUNT_CREATE_DIR 0x8u
/* No mount at all: create a symlink at target whose text is source. */
#define MOUNT_SYMLINK 0x10u
/* No mount: a character device at target with the device number and permission bits of
 * the host node source (with MOUNT_SKIP_IF_MISSING: nothing when source is missing). */
#define MOUNT_DEVICE 0x20u
#define MOUNT_OPTIONS_ALL 0x3fu

struct plan_mount {
  char *source; /* NULL when absent */
  char *source_root; /* absolute host path; only with MOUNT_SOURCE_IN_ROOT */
  char *target;
  char *fstype; /* NULL when absent */
  uint64_t flags;
  char *data; /* NULL when absent */
  uint8_t options;
};

struct plan_rlimit {
  uint32_t resource;
  uint64_t soft, hard; /* UINT64_MAX = RLIM_INFINITY */
};

struct plan_rule {
  char *syscall;
  uint8_t kind;
  uint8_t index;
  uint32_t nvalues;
  uint64_t *values; /* RULE_VALUES */
  uint64_t mask;    /* RULE_MASK; RULE_BITS: matches iff every bit of mask is set */
  uint32_t err;     /* SECCOMP_DENY_LIST: the errno a matching call fails with */
};

struct plan {
  char *container;
  char *hostname;
  char *root;
  uint32_t nmounts;
  struct plan_mount *mounts;
  uint8_t net;
  char *net_path;
  uint32_t uid, gid;
  uint32_t ngroups;
  uint32_t *groups;
  uint32_t nrlimits;
  struct plan_rlimit *rlimits;
  uint8_t has_sched;
  uint32_t sched_policy;
  uint32_t sched_priority;
  int32_t sched_nice;
  uint32_t ncaps;
  uint32_t *caps;
  uint8_t seccomp;
  uint32_t nrules;
  struct plan_rule *rules;
  char *selinux_exec;
  char *path;
  uint32_t argc;
  char **argv; /* NULL-terminated */
  uint32_t envc;
  char **envp; /* NULL-terminated */
  uint32_t ncgroups;
  char **cgroups;
  uint8_t console;
  uint32_t nsockets;
  char **sockets;
  uint8_t discard; /* DISCARD_* bits: stdio the core replaces with the host's /dev/null */
};

/* Parse `len` bytes strictly. Returns 0, or -1 with a message in err (size errlen)
 * naming the field; on failure nothing is left allocated. */
int plan_parse(const uint8_t *buf, size_t len, struct plan *out, char *err, size_t errlen);
void plan_free(struct plan *p);

#endif
