/* northstar-rmtree: removes a directory tree without following symlinks or crossing mounts.
 *
 *   northstar-rmtree [--any-owner] <absolute path>
 *
 * Node has no openat/unlinkat, and its recursive rm works on path strings: whoever can
 * write inside the tree can swap a directory for a symlink between two of its calls and
 * steer the delete onto other files. This helper works on file descriptors only:
 *
 *   - The parent of <path> must be owned by root and writable by nobody else, and so must
 *     every directory above it (or carry the sticky bit, like /tmp): nobody but root can
 *     then rename or replace the entry we remove.
 *   - <path> itself must be a directory (not a symlink) owned by root and writable by
 *     nobody else; with --any-owner any owner is accepted (a container's persist dir),
 *     the check of its parent still holds.
 *   - Each directory is opened with openat(O_DIRECTORY|O_NOFOLLOW) relative to its parent's
 *     fd, each entry examined with fstatat(AT_SYMLINK_NOFOLLOW) and removed with unlinkat.
 *     A symlink is removed, never followed. A directory on another mount (another st_dev
 *     or mount id) is not entered: the removal stops with an error.
 *   - Entries that change under us (a directory swapped for a symlink, say) are re-examined
 *     in another pass over the directory.
 *
 * A missing <path> is success (like rm -rf). On a refusal or failure: exit 1 and one line
 * on stderr naming the path; usage errors exit 2.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_DEPTH 4096
#define MAX_PASSES 16

static _Noreturn void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("northstar-rmtree: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static int trusted_owner(uid_t uid) { return uid == 0 || uid == geteuid(); }

/* The mount id of an open file (0 if the kernel does not report it: then st_dev alone). */
static uint64_t mount_id(int fd, const char *what) {
  struct statx sx;
  if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0) die("%s: statx: %s", what, strerror(errno));
  return (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
}

static char *join(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  char *p = malloc(a + b + 2);
  if (!p) die("out of memory");
  memcpy(p, dir, a);
  p[a] = '/';
  memcpy(p + a + 1, name, b + 1);
  return p;
}

struct names {
  char **v;
  size_t n, cap;
};

static void names_free(struct names *ns) {
  for (size_t i = 0; i < ns->n; i++) free(ns->v[i]);
  free(ns->v);
}

/* All entries of the directory open at dfd (except . and ..), read through a fresh fd so
 * that no directory stream stays open while we descend (one fd per level, not two). */
static struct names list_dir(int dfd, const char *where) {
  struct names ns = {0};
  int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("%s: open: %s", where, strerror(errno));
  DIR *d = fdopendir(fd);
  if (!d) die("%s: fdopendir: %s", where, strerror(errno));
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno) die("%s: readdir: %s", where, strerror(errno));
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if (ns.n == ns.cap) {
      ns.cap = ns.cap ? ns.cap * 2 : 64;
      ns.v = realloc(ns.v, ns.cap * sizeof *ns.v);
      if (!ns.v) die("out of memory");
    }
    ns.v[ns.n] = strdup(e->d_name);
    if (!ns.v[ns.n]) die("out of memory");
    ns.n++;
  }
  if (closedir(d) < 0) die("%s: closedir: %s", where, strerror(errno));
  return ns;
}

/* Remove everything inside the directory open at dfd, which lives on (dev, mnt). */
static void remove_contents(int dfd, const char *where, dev_t dev, uint64_t mnt, int depth) {
  if (depth > MAX_DEPTH) die("%s: deeper than %d directory levels, not removed", where, MAX_DEPTH);
  for (int pass = 0; pass < MAX_PASSES; pass++) {
    struct names ns = list_dir(dfd, where);
    if (ns.n == 0) {
      names_free(&ns);
      return;
    }
    for (size_t i = 0; i < ns.n; i++) {
      const char *name = ns.v[i];
      struct stat st;
      if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) continue;
        char *p = join(where, name);
        die("%s: fstatat: %s", p, strerror(errno));
      }
      if (!S_ISDIR(st.st_mode)) {
        /* A file, symlink, socket, ...: unlink the entry itself. EISDIR: it was swapped
         * for a directory since fstatat; the next pass looks again. */
        if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT && errno != EISDIR) {
          char *p = join(where, name);
          die("%s: unlink: %s", p, strerror(errno));
        }
        continue;
      }
      char *p = join(where, name);
      if (st.st_dev != dev) die("%s: is on another file system (a mount point), not crossed", p);
      int c = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (c < 0) {
        /* Swapped for a symlink or file, or gone, since fstatat: look again next pass. */
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP) {
          free(p);
          continue;
        }
        die("%s: open: %s", p, strerror(errno));
      }
      struct stat cst;
      if (fstat(c, &cst) < 0) die("%s: fstat: %s", p, strerror(errno));
      if (cst.st_dev != dev) die("%s: is on another file system (a mount point), not crossed", p);
      if (cst.st_ino != st.st_ino) {
        /* Another directory took its place since fstatat: look again next pass. */
        if (close(c) < 0) die("%s: close: %s", p, strerror(errno));
        free(p);
        continue;
      }
      if (mnt != 0 && mount_id(c, p) != mnt) die("%s: is a mount point, not crossed", p);
      remove_contents(c, p, dev, mnt, depth + 1);
      if (close(c) < 0) die("%s: close: %s", p, strerror(errno));
      if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && errno != ENOTDIR && errno != ENOTEMPTY)
        die("%s: rmdir: %s", p, strerror(errno));
      free(p);
    }
    names_free(&ns);
  }
  die("%s: still not empty after %d passes (something keeps writing into it)", where, MAX_PASSES);
}

/* Open the directory `dir` (absolute, already resolved) component by component from "/"
 * without following symlinks, and require each to be owned by root and not writable by
 * others (the sticky bit excuses it, except for the last one: the parent of what we remove). */
static int open_trusted_parent(const char *dir) {
  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("/: open: %s", strerror(errno));
  char *copy = strdup(dir);
  if (!copy) die("out of memory");
  char sofar[PATH_MAX] = "";
  char *save = NULL;
  for (char *comp = strtok_r(copy, "/", &save);; comp = strtok_r(NULL, "/", &save)) {
    struct stat st;
    if (fstat(fd, &st) < 0) die("%s: fstat: %s", sofar[0] ? sofar : "/", strerror(errno));
    int last = comp == NULL;
    const char *shown = sofar[0] ? sofar : "/";
    if (!trusted_owner(st.st_uid))
      die("%s is owned by uid %u, not root: refusing to remove anything below it", shown, (unsigned)st.st_uid);
    if ((st.st_mode & 022) && (last || !(st.st_mode & S_ISVTX)))
      die("%s is writable by others than root (mode %04o): refusing to remove anything below it", shown,
          (unsigned)(st.st_mode & 07777));
    if (last) break;
    int next = openat(fd, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) die("%s/%s: open: %s", sofar, comp, strerror(errno));
    if (close(fd) < 0) die("close: %s", strerror(errno));
    fd = next;
    size_t len = strlen(sofar);
    if (len + 1 + strlen(comp) + 1 > sizeof sofar) die("%s: path too long", dir);
    sofar[len] = '/';
    strcpy(sofar + len + 1, comp);
  }
  free(copy);
  return fd;
}

int main(int argc, char **argv) {
  int any_owner = 0;
  int i = 1;
  if (i < argc && strcmp(argv[i], "--any-owner") == 0) {
    any_owner = 1;
    i++;
  }
  if (argc - i != 1) {
    fprintf(stderr, "usage: northstar-rmtree [--any-owner] <absolute path>\n");
    return 2;
  }
  const char *path = argv[i];
  if (path[0] != '/') {
    fprintf(stderr, "northstar-rmtree: %s: not an absolute path\n", path);
    return 2;
  }
  /* Split into parent and last component (ignoring trailing slashes). */
  char *buf = strdup(path);
  if (!buf) die("out of memory");
  size_t len = strlen(buf);
  while (len > 1 && buf[len - 1] == '/') buf[--len] = '\0';
  char *slash = strrchr(buf, '/');
  const char *base = slash + 1;
  if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) die("%s: refusing to remove this path", path);
  *slash = '\0';
  const char *parent = buf[0] ? buf : "/";

  /* One fd per directory level while descending: allow deep trees. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) die("getrlimit: %s", strerror(errno));
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) die("setrlimit: %s", strerror(errno));
  }

  /* The configured part of the path may contain symlinks (e.g. /var/run): resolve it, then
   * walk the result without following anything. */
  char *real = realpath(parent, NULL);
  if (!real) {
    if (errno == ENOENT) return 0; /* nothing to remove */
    die("%s: %s", parent, strerror(errno));
  }
  int pfd = open_trusted_parent(real);
  char *shown = join(strcmp(real, "/") == 0 ? "" : real, base);

  struct stat st;
  if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return 0;
    die("%s: fstatat: %s", shown, strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) die("%s is not a directory (a symlink or file): not removed", shown);
  int top = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (top < 0) die("%s: open: %s", shown, strerror(errno));
  struct stat tst, pst;
  if (fstat(top, &tst) < 0) die("%s: fstat: %s", shown, strerror(errno));
  if (fstat(pfd, &pst) < 0) die("%s: fstat: %s", real, strerror(errno));
  if (tst.st_ino != st.st_ino || tst.st_dev != st.st_dev) die("%s changed while it was opened: not removed", shown);
  if (!any_owner) {
    if (!trusted_owner(tst.st_uid)) die("%s is owned by uid %u, not root: not removed", shown, (unsigned)tst.st_uid);
    if (tst.st_mode & 022)
      die("%s is writable by others than root (mode %04o): not removed", shown, (unsigned)(tst.st_mode & 07777));
  }
  uint64_t mnt = mount_id(top, shown);
  if (tst.st_dev != pst.st_dev || mnt != mount_id(pfd, real)) die("%s is a mount point: not removed", shown);

  /* Something may write into the tree meanwhile (ENOTEMPTY): empty it again. */
  for (int pass = 0;; pass++) {
    remove_contents(top, shown, tst.st_dev, mnt, 0);
    if (unlinkat(pfd, base, AT_REMOVEDIR) == 0 || errno == ENOENT) break;
    if (errno != ENOTEMPTY || pass + 1 >= MAX_PASSES) die("%s: rmdir: %s", shown, strerror(errno));
  }
  if (close(top) < 0) die("%s: close: %s", shown, strerror(errno));
  return 0;
}
