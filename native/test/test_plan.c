/* Unit tests of the plan parser (src/plan.c) on plans written by the TypeScript encoder
 * (src/launch/plan.ts encodePlan). test/launch/plan-c.test.ts writes the fixtures into a
 * directory on every run, so they cannot go stale, then runs `make check-plan
 * FIXTURES=<dir>`, which runs this program:
 *   test-plan <dir>
 * Each valid fixture is parsed and every field is compared with what the TypeScript side
 * put in (the values below must match the fixture definitions in that test file). Then
 * single fields of the encoded bytes are changed to values the encoder never writes, and
 * the parser must refuse each with the expected reason, leaving nothing allocated (the
 * binary is built with ASan/LSan and UBSan where the compiler can). Every strict prefix of
 * a valid plan must be refused as well.
 * The binary links every core file except main.c: the step files must link without it.
 * Exit status 0 = all checks passed, 1 = a check failed (each failure is printed), 2 =
 * usage or fixture I/O. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"
#include "../src/plan.h"

static unsigned g_checks, g_failed;
static const char *g_case = "";

static void check_(int ok, const char *what, const char *file, int line) {
  g_checks++;
  if (!ok) {
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s:%d: %s\n", g_case, file, line, what);
  }
}
#define CHECK(c) check_(!!(c), #c, __FILE__, __LINE__)

static void check_str_(const char *got, const char *want, const char *expr, const char *file, int line) {
  int ok = (got == NULL && want == NULL) || (got && want && strcmp(got, want) == 0);
  g_checks++;
  if (!ok) {
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s:%d: %s is %s%s%s, want %s%s%s\n", g_case, file, line, expr, got ? "\"" : "",
            got ? got : "NULL", got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
  }
}
#define CHECK_STR(a, b) check_str_((a), (b), #a, __FILE__, __LINE__)

static void check_u_(unsigned long long got, unsigned long long want, const char *expr, const char *file, int line) {
  g_checks++;
  if (got != want) {
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s:%d: %s is %llu (0x%llx), want %llu (0x%llx)\n", g_case, file, line, expr, got, got,
            want, want);
  }
}
#define CHECK_U(a, b) check_u_((unsigned long long)(a), (unsigned long long)(b), #a, __FILE__, __LINE__)

/* ---- fixtures ---- */

struct fixture {
  const char *name;
  uint8_t *buf;
  size_t len;
};

/* The fixtures test/launch/plan-c.test.ts writes; any other .bin in the directory is an
 * error, so a fixture added on the TypeScript side cannot go unchecked here. */
static const char *const FIXTURES[] = {"minimal.bin", "full.bin", "deny.bin"};
#define NFIXTURES (sizeof FIXTURES / sizeof FIXTURES[0])

static int load(const char *dir, const char *name, struct fixture *f) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    fprintf(stderr, "test-plan: cannot open fixture %s: %s\n", path, strerror(errno));
    return -1;
  }
  size_t cap = 4096, len = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) break;
    len += fread(buf + len, 1, cap - len, fp);
    if (len < cap) break;
    cap *= 2;
    uint8_t *nb = realloc(buf, cap);
    if (!nb) free(buf);
    buf = nb;
  }
  int bad = ferror(fp) || !buf;
  fclose(fp);
  if (bad) {
    fprintf(stderr, "test-plan: cannot read fixture %s\n", path);
    free(buf);
    return -1;
  }
  f->name = name;
  f->buf = buf;
  f->len = len;
  return 0;
}

static int known_fixtures_only(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "test-plan: cannot open %s: %s\n", dir, strerror(errno));
    return -1;
  }
  int rc = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 4, ".bin") != 0) continue;
    int known = 0;
    for (size_t i = 0; i < NFIXTURES; i++) known |= strcmp(e->d_name, FIXTURES[i]) == 0;
    if (!known) {
      fprintf(stderr, "test-plan: fixture %s/%s has no checks in native/test/test_plan.c; add them\n", dir, e->d_name);
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

/* Offset just past the bytes of the str `s` (u32 length + bytes), which must occur exactly
 * once in the fixture; SIZE_MAX (and a failed check) otherwise. */
static size_t after_str(const struct fixture *f, const char *s) {
  size_t n = strlen(s), found = SIZE_MAX, hits = 0;
  uint8_t want[4 + 256];
  if (n > 256) return SIZE_MAX;
  want[0] = (uint8_t)n;
  want[1] = (uint8_t)(n >> 8);
  want[2] = want[3] = 0;
  memcpy(want + 4, s, n);
  for (size_t i = 0; i + 4 + n <= f->len; i++) {
    if (memcmp(f->buf + i, want, 4 + n) == 0) {
      hits++;
      found = i + 4 + n;
    }
  }
  check_(hits == 1, "the marker string occurs exactly once in the fixture", __FILE__, __LINE__);
  if (hits != 1) fprintf(stderr, "  marker \"%s\" found %zu times in %s\n", s, hits, f->name);
  return hits == 1 ? found : SIZE_MAX;
}

static uint64_t get_le(const uint8_t *b, unsigned width) {
  uint64_t v = 0;
  for (unsigned i = 0; i < width; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

static void put_le(uint8_t *b, unsigned width, uint64_t v) {
  for (unsigned i = 0; i < width; i++) b[i] = (uint8_t)(v >> (8 * i));
}

/* ---- parsing ---- */

static int parse_ok(const struct fixture *f, struct plan *p) {
  char err[256] = "";
  int rc = plan_parse(f->buf, f->len, p, err, sizeof err);
  check_(rc == 0, "the fixture parses", __FILE__, __LINE__);
  if (rc != 0) fprintf(stderr, "  %s refused: %s\n", f->name, err);
  return rc;
}

/* The parser must refuse buf with a reason containing want and leave nothing allocated. */
static void refused(const char *what, const uint8_t *buf, size_t len, const char *want) {
  struct plan p;
  char err[256] = "";
  int rc = plan_parse(buf, len, &p, err, sizeof err);
  g_checks++;
  if (rc == 0) {
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s: accepted, want refused with \"%s\"\n", g_case, what, want);
    plan_free(&p);
    return;
  }
  if (want && strstr(err, want) == NULL) {
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s: refused with \"%s\", want \"%s\"\n", g_case, what, err, want);
  }
  if (!want && err[0] == 0) {
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s: refused without a reason\n", g_case, what);
  }
  /* plan_free ran and zeroed the plan: no field still points anywhere. */
  CHECK(p.container == NULL && p.mounts == NULL && p.rules == NULL && p.argv == NULL && p.sockets == NULL);
}

/* Change the little-endian integer of `width` bytes at off from `old` (a check that the
 * offset is the field meant) to `val`, and expect a refusal naming want. */
static void patch(const struct fixture *f, const char *what, size_t off, unsigned width, uint64_t old, uint64_t val,
                  const char *want) {
  if (off == SIZE_MAX || off + width > f->len) {
    check_(0, what, __FILE__, __LINE__);
    return;
  }
  if (get_le(f->buf + off, width) != old) {
    g_checks++;
    g_failed++;
    fprintf(stderr, "FAIL [%s] %s: byte %zu holds %llu, not %llu: the layout is not what this test expects\n", g_case,
            what, off, (unsigned long long)get_le(f->buf + off, width), (unsigned long long)old);
    return;
  }
  uint8_t *b = malloc(f->len);
  if (!b) abort();
  memcpy(b, f->buf, f->len);
  put_le(b + off, width, val);
  refused(what, b, f->len, want);
  free(b);
}

/* Every strict prefix of a valid plan is refused with a reason. */
static void prefixes_refused(const struct fixture *f) {
  unsigned before = g_failed;
  for (size_t n = 0; n < f->len && g_failed == before; n++) {
    uint8_t *b = malloc(n ? n : 1);
    if (!b) abort();
    memcpy(b, f->buf, n);
    char what[64];
    snprintf(what, sizeof what, "prefix of %zu bytes", n);
    refused(what, b, n, NULL);
    free(b);
  }
}

/* ---- the valid fixtures: field by field what test/launch/plan-c.test.ts encodes ---- */

#define U64_MAX_ UINT64_MAX

static void test_minimal(const struct fixture *f) {
  g_case = "minimal";
  struct plan p;
  if (parse_ok(f, &p) < 0) return;
  CHECK_STR(p.container, "min:0.0.1");
  CHECK_STR(p.hostname, "min");
  CHECK_STR(p.root, "/run/min");
  CHECK_U(p.nmounts, 0);
  CHECK_U(p.net, NET_NEW);
  CHECK_STR(p.net_path, NULL);
  CHECK_U(p.uid, 0);
  CHECK_U(p.gid, 0);
  CHECK_U(p.ngroups, 0);
  CHECK_U(p.nrlimits, 0);
  CHECK_U(p.has_sched, 0);
  CHECK_U(p.ncaps, 0);
  CHECK_U(p.seccomp, SECCOMP_OFF);
  CHECK_U(p.nrules, 0);
  CHECK_STR(p.selinux_exec, NULL);
  CHECK_STR(p.path, "/bin/true");
  CHECK_U(p.argc, 1);
  CHECK_STR(p.argv[0], "true");
  CHECK(p.argv[1] == NULL);
  CHECK_U(p.envc, 0);
  CHECK(p.envp[0] == NULL);
  CHECK_U(p.ncgroups, 0);
  CHECK_U(p.console, 0);
  CHECK_U(p.nsockets, 0);
  CHECK_U(p.discard, 0);
  plan_free(&p);
  CHECK(p.container == NULL && p.argv == NULL);

  prefixes_refused(f);
  uint8_t *b = malloc(f->len + 1);
  if (!b) abort();
  memcpy(b, f->buf, f->len);
  b[f->len] = 0;
  refused("one trailing byte", b, f->len + 1, "plan: 1 trailing bytes");
  free(b);
  patch(f, "magic", 0, 1, 'N', 'X', "header: bad magic");
  patch(f, "version 1", 4, 2, 2, 1, "header: unsupported version");
  patch(f, "version 3", 4, 2, 2, 3, "header: unsupported version");
  patch(f, "reserved header bits", 6, 2, 0, 0x100, "header: reserved bits set");
  patch(f, "empty container name", 8, 4, 9, 0, "container: must be at least 1 bytes");
  size_t host = after_str(f, "min:0.0.1");
  patch(f, "hostname over 64 bytes", host, 4, 3, 65, "hostname: length 65 exceeds 64");
  size_t root = after_str(f, "min");
  patch(f, "relative root", root + 4, 1, '/', 'r', "root: must be an absolute path");
  size_t mounts = after_str(f, "/run/min");
  patch(f, "1025 mounts", mounts, 4, 0, 1025, "mounts: 1025 entries exceed the limit of 1024");
  patch(f, "more mounts than bytes", mounts, 4, 0, 1000, "mounts: 1000 entries but only");
  patch(f, "network mode 3", mounts + 4, 1, NET_NEW, 3, "network: unknown mode 3");
  patch(f, "uid -1", mounts + 5, 4, 0, 0xffffffffu, "uid/gid: -1 is not a valid id");
  patch(f, "gid -1", mounts + 9, 4, 0, 0xffffffffu, "uid/gid: -1 is not a valid id");
  patch(f, "groups count over the bytes left", mounts + 13, 4, 0, 65536, "groups: 65536 entries but only");
  patch(f, "17 rlimits", mounts + 17, 4, 0, 17, "rlimits: 17 entries exceed the limit of 16");
  patch(f, "sched flag 2", mounts + 21, 1, 0, 2, "sched: must be 0 or 1, got 2");
  patch(f, "65 capabilities", mounts + 22, 4, 0, 65, "capabilities: 65 entries exceed the limit of 64");
  patch(f, "seccomp mode 3", mounts + 26, 1, SECCOMP_OFF, 3, "seccomp: mode must be 0, 1 or 2, got 3");
  patch(f, "4097 seccomp rules", mounts + 27, 4, 0, 4097, "seccomp.rules: 4097 entries exceed the limit of 4096");
  patch(f, "selinux flag 2", mounts + 31, 1, 0, 2, "selinux: must be 0 or 1, got 2");
  size_t argv = after_str(f, "/bin/true");
  patch(f, "empty argv", argv, 4, 1, 0, "argv: must not be empty");
  patch(f, "4097 argv entries", argv, 4, 1, 4097, "argv: 4097 entries exceed the limit of 4096");
  size_t envp = after_str(f, "true");
  patch(f, "65 cgroups", envp + 4, 4, 0, 65, "cgroups: 65 entries exceed the limit of 64");
  patch(f, "console flag 2", envp + 8, 1, 0, 2, "console: must be 0 or 1, got 2");
  patch(f, "129 sockets", envp + 9, 4, 0, 129, "sockets: 129 entries exceed the limit of 128");

  /* A plan over the size limit is refused before a byte of it is read. */
  size_t big = (size_t)PLAN_MAX_BYTES + 1;
  uint8_t *huge = calloc(big, 1);
  if (!huge) abort();
  memcpy(huge, f->buf, f->len);
  refused("a plan over 16 MiB", huge, big, "bytes exceed the limit");
  free(huge);
}

static void test_full(const struct fixture *f) {
  g_case = "full";
  struct plan p;
  if (parse_ok(f, &p) < 0) return;
  CHECK_STR(p.container, "full:1.2.3");
  CHECK_STR(p.hostname, "full-host");
  CHECK_STR(p.root, "/run/northstar/full:1.2.3");

  CHECK_U(p.nmounts, 9);
  if (p.nmounts == 9) {
    const struct plan_mount *m = p.mounts;
    CHECK_STR(m[0].source, "proc");
    CHECK_STR(m[0].target, "proc");
    CHECK_STR(m[0].fstype, "proc");
    CHECK_U(m[0].flags, 0xe); /* nosuid | nodev | noexec */
    CHECK_STR(m[0].data, NULL);
    CHECK_U(m[0].options, 0);
    CHECK_STR(m[0].source_root, NULL);

    CHECK_STR(m[1].source, "/lib");
    CHECK_STR(m[1].target, "lib");
    CHECK_STR(m[1].fstype, NULL);
    CHECK_U(m[1].flags, 0x5000); /* bind | rec */
    CHECK_U(m[1].options, MOUNT_SKIP_IF_MISSING);

    CHECK_STR(m[2].source, NULL);
    CHECK_STR(m[2].target, "tmp");
    CHECK_STR(m[2].fstype, "tmpfs");
    CHECK_U(m[2].flags, 0x6);
    CHECK_STR(m[2].data, "size=1m,mode=1777");
    CHECK_U(m[2].options, 0);

    CHECK_STR(m[3].source, "data/x");
    CHECK_STR(m[3].target, "res");
    CHECK_U(m[3].flags, 0x1000);
    CHECK_U(m[3].options, MOUNT_SOURCE_IN_ROOT | MOUNT_CREATE_DIR);
    CHECK_STR(m[3].source_root, "/run/resources/res:1.0.0");

    CHECK_STR(m[4].source, NULL);
    CHECK_STR(m[4].target, "etc/resolv.conf");
    CHECK_U(m[4].flags, 0);
    CHECK_U(m[4].options, MOUNT_CREATE_FILE);

    CHECK_STR(m[5].source, "/proc/self/fd");
    CHECK_STR(m[5].target, "dev/fd");
    CHECK_U(m[5].options, MOUNT_SYMLINK);

    CHECK_STR(m[6].source, "/dev/null");
    CHECK_STR(m[6].target, "dev/null");
    CHECK_STR(m[6].fstype, NULL);
    CHECK_STR(m[6].data, NULL);
    CHECK_U(m[6].flags, 0);
    CHECK_U(m[6].options, 0x20);
    CHECK_U(m[6].options, MOUNT_DEVICE);

    CHECK_STR(m[7].source, "/dev/nsfixture-missing");
    CHECK_STR(m[7].target, "dev/nsfixture");
    CHECK_U(m[7].options, MOUNT_DEVICE | MOUNT_SKIP_IF_MISSING);

    CHECK_STR(m[8].source, NULL);
    CHECK_STR(m[8].target, "/run/host/abs");
    CHECK_U(m[8].flags, 0x1021); /* remount | bind | rdonly */
    CHECK_U(m[8].options, 0);
  }

  CHECK_U(p.net, NET_JOIN);
  CHECK_STR(p.net_path, "/var/run/netns/fixture");
  CHECK_U(p.uid, 1000);
  CHECK_U(p.gid, 1001);
  CHECK_U(p.ngroups, 3);
  if (p.ngroups == 3) {
    CHECK_U(p.groups[0], 1001);
    CHECK_U(p.groups[1], 2000);
    CHECK_U(p.groups[2], 4294967294u);
  }
  CHECK_U(p.nrlimits, 4);
  if (p.nrlimits == 4) {
    CHECK_U(p.rlimits[0].resource, 7); /* nofile */
    CHECK_U(p.rlimits[0].soft, 1024);
    CHECK_U(p.rlimits[0].hard, 4096);
    CHECK_U(p.rlimits[1].resource, 4); /* core */
    CHECK_U(p.rlimits[1].soft, 0);
    CHECK_U(p.rlimits[1].hard, U64_MAX_);
    CHECK_U(p.rlimits[2].resource, 3); /* stack */
    CHECK_U(p.rlimits[2].soft, 1ull << 60);
    CHECK_U(p.rlimits[2].hard, (1ull << 60) + 1);
    CHECK_U(p.rlimits[3].resource, 0); /* cpu */
    CHECK_U(p.rlimits[3].soft, U64_MAX_);
    CHECK_U(p.rlimits[3].hard, U64_MAX_);
  }
  CHECK_U(p.has_sched, 1);
  CHECK_U(p.sched_policy, 2); /* round_robin */
  CHECK_U(p.sched_priority, 42);
  CHECK_U(p.sched_nice, 0);
  CHECK_U(p.ncaps, 3);
  if (p.ncaps == 3) {
    CHECK_U(p.caps[0], 0);
    CHECK_U(p.caps[1], 21);
    CHECK_U(p.caps[2], 63);
  }
  CHECK_U(p.seccomp, SECCOMP_ALLOW_LIST);
  CHECK_U(p.nrules, 4);
  if (p.nrules == 4) {
    const struct plan_rule *r = p.rules;
    CHECK_STR(r[0].syscall, "read");
    CHECK_U(r[0].kind, RULE_ANY);
    CHECK_U(r[0].err, 0);
    CHECK_STR(r[1].syscall, "personality");
    CHECK_U(r[1].kind, RULE_VALUES);
    CHECK_U(r[1].index, 0);
    CHECK_U(r[1].nvalues, 4);
    if (r[1].nvalues == 4) {
      CHECK_U(r[1].values[0], 0);
      CHECK_U(r[1].values[1], 8);
      CHECK_U(r[1].values[2], 0xffffffffu);
      CHECK_U(r[1].values[3], U64_MAX_);
    }
    CHECK_STR(r[2].syscall, "clone");
    CHECK_U(r[2].kind, RULE_MASK);
    CHECK_U(r[2].index, 0);
    CHECK_U(r[2].mask, 0x7e020000ull);
    CHECK_STR(r[3].syscall, "socket");
    CHECK_U(r[3].kind, RULE_BITS);
    CHECK_U(r[3].index, 1);
    CHECK_U(r[3].mask, 0x80000);
  }
  CHECK_STR(p.selinux_exec, "u:r:app_t:s0");
  CHECK_STR(p.path, "/bin/app");
  CHECK_U(p.argc, 4);
  if (p.argc == 4) {
    CHECK_STR(p.argv[0], "app");
    CHECK_STR(p.argv[1], "");
    CHECK_STR(p.argv[2], "\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9" " \xe2\x9c\x93"); /* "ünïcödé ✓" in UTF-8 */
    CHECK_STR(p.argv[3], "a b");
    CHECK(p.argv[4] == NULL);
  }
  CHECK_U(p.envc, 3);
  if (p.envc == 3) {
    CHECK_STR(p.envp[0], "PATH=/bin");
    CHECK_STR(p.envp[1], "EMPTY=");
    CHECK_STR(p.envp[2], "K=V=W");
    CHECK(p.envp[3] == NULL);
  }
  CHECK_U(p.ncgroups, 2);
  if (p.ncgroups == 2) {
    CHECK_STR(p.cgroups[0], "/sys/fs/cgroup/cpu/north/full/cgroup.procs");
    CHECK_STR(p.cgroups[1], "/sys/fs/cgroup/memory/north/full/cgroup.procs");
  }
  CHECK_U(p.console, 1);
  CHECK_U(p.nsockets, 2);
  if (p.nsockets == 2) {
    CHECK_STR(p.sockets[0], "log");
    CHECK_STR(p.sockets[1], "ctl");
  }
  plan_free(&p);

  prefixes_refused(f);

  /* Mounts. After a target come: u8 fstype present (+ str), u64 flags, u8 data present
   * (+ str), u8 options (+ str source root with bit 1). */
  size_t dev = after_str(f, "dev/null"); /* mount 6: the device */
  size_t dev_opt = dev == SIZE_MAX ? SIZE_MAX : dev + 1 + 8 + 1;
  patch(f, "device: reserved option bit 0x40", dev_opt, 1, 0x20, 0x60, "mount[6].options: reserved bits set");
  patch(f, "device: reserved option bit 0x80", dev_opt, 1, 0x20, 0xa0, "mount[6].options: reserved bits set");
  patch(f, "device and symlink", dev_opt, 1, 0x20, 0x30,
        "mount[6].options: more than one of create file, create dir, symlink, device");
  patch(f, "device and create file", dev_opt, 1, 0x20, 0x24, "mount[6].options: more than one of");
  patch(f, "device and create dir", dev_opt, 1, 0x20, 0x28, "mount[6].options: more than one of");
  patch(f, "device with a source root", dev_opt, 1, 0x20, 0x22,
        "mount[6]: a device needs an absolute host source and no fstype, flags, data or source root");
  patch(f, "device with flags", dev == SIZE_MAX ? SIZE_MAX : dev + 1, 8, 0, 0x1000,
        "mount[6]: a device needs an absolute host source");
  size_t dev_src = after_str(f, "/dev/null");
  patch(f, "device with a relative source", dev_src == SIZE_MAX ? SIZE_MAX : dev_src - 9, 1, '/', 'x',
        "mount[6]: a device needs an absolute host source");
  size_t lnk = after_str(f, "dev/fd"); /* mount 5: the symlink */
  size_t lnk_opt = lnk == SIZE_MAX ? SIZE_MAX : lnk + 1 + 8 + 1;
  patch(f, "symlink with skip if missing", lnk_opt, 1, 0x10, 0x11, "mount[5]: a symlink needs a source (its text)");
  patch(f, "symlink with flags", lnk == SIZE_MAX ? SIZE_MAX : lnk + 1, 8, 0, 1, "mount[5]: a symlink needs a source");
  size_t abs_t = after_str(f, "/run/host/abs"); /* mount 8: absolute host target */
  patch(f, "creating an absolute target", abs_t == SIZE_MAX ? SIZE_MAX : abs_t + 1 + 8 + 1, 1, 0, 0x20,
        "mount[8].options: only a target inside the root can be created");
  size_t res_src = after_str(f, "data/x"); /* mount 3: source in root */
  patch(f, "source in root with an absolute source", res_src == SIZE_MAX ? SIZE_MAX : res_src - 6, 1, 'd', '/',
        "mount[3].source: must be a relative path with a source root");
  size_t res_root = after_str(f, "/run/resources/res:1.0.0");
  patch(f, "relative source root", res_root == SIZE_MAX ? SIZE_MAX : res_root - 24, 1, '/', 'r',
        "mount.source_root: must be an absolute path");
  size_t tmp_t = after_str(f, "tmp"); /* mount 2: target "tmp", fstype "tmpfs" */
  patch(f, "fstype presence flag 2", tmp_t, 1, 1, 2, "mount.fstype: must be 0 or 1, got 2");
  patch(f, "mount flags over 32 bits", tmp_t == SIZE_MAX ? SIZE_MAX : tmp_t + 1 + 4 + 5 + 4, 1, 0, 1,
        "mount[2].flags: out of range");

  /* Network, ids. */
  size_t net = after_str(f, "/var/run/netns/fixture");
  patch(f, "network mode 3", net == SIZE_MAX ? SIZE_MAX : net - 22 - 4 - 1, 1, NET_JOIN, 3, "network: unknown mode 3");
  patch(f, "relative network path", net == SIZE_MAX ? SIZE_MAX : net - 22, 1, '/', 'v',
        "network.path: must be an absolute path");
  patch(f, "uid -1", net, 4, 1000, 0xffffffffu, "uid/gid: -1 is not a valid id");
  patch(f, "group -1", net == SIZE_MAX ? SIZE_MAX : net + 8 + 4 + 8, 4, 4294967294u, 0xffffffffu,
        "groups[2]: -1 is not a valid id");

  /* rlimits: u32 count, then {u32 resource, u64 soft, u64 hard}. */
  size_t rl = net == SIZE_MAX ? SIZE_MAX : net + 8 + 4 + 12 + 4;
  patch(f, "unknown rlimit resource", rl, 4, 7, 16, "rlimits[0]: unknown resource 16");
  patch(f, "duplicate rlimit resource", rl == SIZE_MAX ? SIZE_MAX : rl + 20, 4, 4, 7, "rlimits[1]: duplicate resource 7");
  patch(f, "rlimit soft over hard", rl == SIZE_MAX ? SIZE_MAX : rl + 4, 8, 1024, 4097,
        "rlimits[0]: soft limit exceeds hard limit");

  /* sched: u8 present, u32 policy, u32 priority, i32 nice; then capabilities. */
  size_t sc = rl == SIZE_MAX ? SIZE_MAX : rl + 4 * 20;
  patch(f, "sched flag 2", sc, 1, 1, 2, "sched: must be 0 or 1, got 2");
  patch(f, "sched policy 4", sc == SIZE_MAX ? SIZE_MAX : sc + 1, 4, 2, 4, "sched.policy: unknown policy 4");
  patch(f, "realtime priority 0", sc == SIZE_MAX ? SIZE_MAX : sc + 5, 4, 42, 0, "sched.priority: 0 out of range");
  patch(f, "realtime priority 100", sc == SIZE_MAX ? SIZE_MAX : sc + 5, 4, 42, 100, "sched.priority: 100 out of range");
  patch(f, "nice for round robin", sc == SIZE_MAX ? SIZE_MAX : sc + 9, 4, 0, 1, "sched.nice: must be 0 for policy 2");
  patch(f, "nice -21", sc == SIZE_MAX ? SIZE_MAX : sc + 9, 4, 0, (uint32_t)-21, "sched.nice: -21 out of range");
  size_t caps = sc == SIZE_MAX ? SIZE_MAX : sc + 13;
  patch(f, "capability 64", caps == SIZE_MAX ? SIZE_MAX : caps + 4 + 8, 4, 63, 64, "capabilities[2]: 64 out of range");
  patch(f, "duplicate capability", caps == SIZE_MAX ? SIZE_MAX : caps + 4 + 4, 4, 21, 0, "capabilities[1]: duplicate 0");
  patch(f, "seccomp mode 3", caps == SIZE_MAX ? SIZE_MAX : caps + 4 + 12, 1, SECCOMP_ALLOW_LIST, 3,
        "seccomp: mode must be 0, 1 or 2, got 3");

  /* Seccomp rules: str syscall, u8 kind, then per kind u8 index and values or mask. */
  size_t rd = after_str(f, "read");
  patch(f, "rule kind 4", rd, 1, RULE_ANY, 4, "seccomp.rules[0].kind: unknown kind 4");
  patch(f, "upper case in a syscall name", rd == SIZE_MAX ? SIZE_MAX : rd - 3, 1, 'e', 'E',
        "seccomp.rules[0].syscall: invalid character");
  size_t pers = after_str(f, "personality");
  patch(f, "argument index 6", pers == SIZE_MAX ? SIZE_MAX : pers + 1, 1, 0, 6, "seccomp.rules[1].index: 6 out of range");
  patch(f, "no values", pers == SIZE_MAX ? SIZE_MAX : pers + 2, 4, 4, 0, "seccomp.rules[1].values: must not be empty");
  patch(f, "1025 values", pers == SIZE_MAX ? SIZE_MAX : pers + 2, 4, 4, 1025,
        "seccomp.rule.values: 1025 entries exceed the limit of 1024");

  /* The rest: selinux, path, argv, envp, cgroups, console, sockets. */
  size_t se = after_str(f, "u:r:app_t:s0");
  patch(f, "selinux flag 2", se == SIZE_MAX ? SIZE_MAX : se - 12 - 4 - 1, 1, 1, 2, "selinux: must be 0 or 1, got 2");
  size_t ab = after_str(f, "a b");
  patch(f, "NUL in an argument", ab == SIZE_MAX ? SIZE_MAX : ab - 2, 1, ' ', 0, "argv[3]: contains a NUL byte");
  size_t path_env = after_str(f, "PATH=/bin");
  patch(f, "env entry without =", path_env == SIZE_MAX ? SIZE_MAX : path_env - 5, 1, '=', '-',
        "envp[0]: must have the form K=V");
  patch(f, "env entry with an empty name", path_env == SIZE_MAX ? SIZE_MAX : path_env - 9, 1, 'P', '=',
        "envp[0]: must have the form K=V");
  size_t cg = after_str(f, "/sys/fs/cgroup/cpu/north/full/cgroup.procs");
  patch(f, "relative cgroup path", cg == SIZE_MAX ? SIZE_MAX : cg - 42, 1, '/', 's', "cgroups: must be an absolute path");
  size_t con = after_str(f, "/sys/fs/cgroup/memory/north/full/cgroup.procs");
  patch(f, "console flag 2", con, 1, 1, 2, "console: must be 0 or 1, got 2");
  size_t lg = after_str(f, "log");
  patch(f, "= in a socket name", lg == SIZE_MAX ? SIZE_MAX : lg - 2, 1, 'o', '=', "sockets[0]: must not contain =");
  /* The last socket name emptied: its length 0 and its bytes cut off (the discard byte,
   * the last of the plan, kept). */
  size_t ctl = after_str(f, "ctl");
  if (ctl == f->len - 1) {
    uint8_t *b = malloc(f->len);
    if (!b) abort();
    memcpy(b, f->buf, f->len);
    put_le(b + ctl - 7, 4, 0);
    b[ctl - 3] = b[ctl];
    refused("empty socket name", b, f->len - 3, "sockets[1]: must be at least 1 bytes");
    free(b);
  } else {
    CHECK(ctl == f->len - 1);
  }
  patch(f, "discard bit 2", f->len - 1, 1, 0, 4, "discard: unknown bits 0x4");
  patch(f, "discard 0xff", f->len - 1, 1, 0, 0xff, "discard: unknown bits 0xfc");
}

static void test_deny(const struct fixture *f) {
  g_case = "deny";
  struct plan p;
  if (parse_ok(f, &p) < 0) return;
  CHECK_STR(p.container, "deny:0.1.0");
  CHECK_U(p.net, NET_HOST);
  CHECK_STR(p.net_path, NULL);
  CHECK_U(p.has_sched, 1);
  CHECK_U(p.sched_policy, 0); /* other */
  CHECK_U(p.sched_priority, 0);
  CHECK(p.sched_nice == -7);
  CHECK_U(p.seccomp, SECCOMP_DENY_LIST);
  CHECK_U(p.nrules, 4);
  if (p.nrules == 4) {
    const struct plan_rule *r = p.rules;
    CHECK_STR(r[0].syscall, "mkdir");
    CHECK_U(r[0].kind, RULE_ANY);
    CHECK_U(r[0].err, 1);
    CHECK_STR(r[1].syscall, "kill");
    CHECK_U(r[1].kind, RULE_VALUES);
    CHECK_U(r[1].index, 1);
    CHECK_U(r[1].nvalues, 1);
    if (r[1].nvalues == 1) CHECK_U(r[1].values[0], 9);
    CHECK_U(r[1].err, 13);
    CHECK_STR(r[2].syscall, "ioctl");
    CHECK_U(r[2].kind, RULE_MASK);
    CHECK_U(r[2].mask, 0xff);
    CHECK_U(r[2].err, 1); /* no errno given: the encoder writes EPERM */
    CHECK_STR(r[3].syscall, "socket");
    CHECK_U(r[3].kind, RULE_BITS);
    CHECK_U(r[3].index, 0);
    CHECK_U(r[3].mask, 0x10);
    CHECK_U(r[3].err, 4095);
  }
  CHECK_U(p.console, 0);
  CHECK_U(p.nsockets, 0);
  plan_free(&p);

  prefixes_refused(f);
  size_t mk = after_str(f, "mkdir");
  patch(f, "errno 0", mk == SIZE_MAX ? SIZE_MAX : mk + 1, 4, 1, 0, "seccomp.rules[0].errno: 0 out of range 1..4095");
  size_t sock = after_str(f, "socket");
  patch(f, "errno 4096", sock == SIZE_MAX ? SIZE_MAX : sock + 1, 4, 4095, 4096,
        "seccomp.rules[3].errno: 4096 out of range 1..4095");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test-plan <fixture dir written by test/launch/plan-c.test.ts>\n");
    return 2;
  }
  if (known_fixtures_only(argv[1]) < 0) return 2;
  struct fixture fx[NFIXTURES];
  for (size_t i = 0; i < NFIXTURES; i++) {
    if (load(argv[1], FIXTURES[i], &fx[i]) < 0) return 2;
  }
  test_minimal(&fx[0]);
  test_full(&fx[1]);
  test_deny(&fx[2]);
  for (size_t i = 0; i < NFIXTURES; i++) free(fx[i].buf);
  /* The step error record links and works without main.c. */
  g_case = "step error";
  CHECK(fail_step("plan", EINVAL, "/x", "invalid plan: %s", "first") == -1);
  CHECK(fail_step("mount", ENOENT, "/y", "second") == -1);
  CHECK_STR(g_error.step, "plan");
  CHECK_U(g_error.err, EINVAL);
  CHECK_STR(g_error.path, "/x");
  CHECK_STR(g_error.message, "invalid plan: first");

  printf("test-plan: %u checks, %u failed\n", g_checks, g_failed);
  return g_failed ? 1 : 0;
}
