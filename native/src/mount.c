/* The container's file system view, built by init inside its new mount namespace:
 *  1. every mount becomes private, so nothing propagates back to the host;
 *  2. the root is bind-mounted onto itself (pivot_root needs a mount point);
 *  3. the plan's mount(2) calls run literally, in order; relative targets are resolved
 *     inside the root with openat2(RESOLVE_IN_ROOT), so a symlink in the image can never
 *     redirect a mount onto a host path; a source marked "in root" (a resource directory)
 *     is resolved the same way inside its own root, so a symlink in a resource image can
 *     never make a host path the source (Cure53 ESR-01-006); a target marked "create"
 *     is made first (an empty file, a directory, or a symlink with no mount at all), its
 *     parent again resolved inside the root; a "device" entry is a character device made
 *     with the number of a host node (a `dev` mount's null, zero, …: one mknod instead of a
 *     bind and a read-only remount per node), or, where mknod is refused (a devices cgroup
 *     or no CAP_MKNOD around the runtime), that host node bound read-only as before;
 *  4. pivot_root into the root and detach the old root (Cure53 ESR-01-003). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"

static int open_in_root(int rootfd, const char *rel) {
  struct open_how how = {
      .flags = O_PATH | O_CLOEXEC,
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  return (int)syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
}

/* Opens the parent directory of m->target inside the root (rootfd itself for a top-level
 * entry) and sets *base to the last component. */
static int open_parent(int rootfd, const struct plan_mount *m, const char **base) {
  const char *slash = strrchr(m->target, '/');
  *base = slash ? slash + 1 : m->target;
  if (!(*base)[0] || strcmp(*base, ".") == 0 || strcmp(*base, "..") == 0) {
    return fail_step("mount", EINVAL, m->target, "cannot create /%s: it names no entry", m->target);
  }
  if (!slash) return rootfd;
  char parent[PATH_MAX];
  size_t n = (size_t)(slash - m->target);
  if (n >= sizeof parent) return fail_step("mount", ENAMETOOLONG, m->target, "cannot create /%s: path too long", m->target);
  memcpy(parent, m->target, n);
  parent[n] = 0;
  int pfd = open_in_root(rootfd, n ? parent : ".");
  if (pfd < 0) {
    return fail_step("mount", errno, m->target, "cannot create /%s: its parent %s", m->target,
                     errno == ENOENT ? "does not exist in the root" : "cannot be resolved in the root");
  }
  return pfd;
}

/* Creates the target of m inside the root: an empty file, a directory or a symlink. An
 * existing file or directory is fine (the mount then decides); a symlink must be new. */
static int create_target(int rootfd, const struct plan_mount *m) {
  const char *base;
  int pfd = open_parent(rootfd, m, &base);
  if (pfd < 0) return -1;
  int rc;
  const char *what;
  if (m->options & MOUNT_SYMLINK) {
    what = "symlink";
    rc = symlinkat(m->source, pfd, base);
  } else if (m->options & MOUNT_CREATE_DIR) {
    what = "directory";
    rc = mkdirat(pfd, base, 0755);
    if (rc < 0 && errno == EEXIST) rc = 0;
  } else {
    what = "mount point file";
    rc = mknodat(pfd, base, S_IFREG | 0644, 0);
    if (rc < 0 && errno == EEXIST) rc = 0;
  }
  int e = errno;
  if (pfd != rootfd) close(pfd);
  if (rc < 0) return fail_step("mount", e, m->target, "cannot create the %s /%s in the root", what, m->target);
  return 0;
}

/* A bind of the host node m->source onto the target, then read-only, nosuid and noexec:
 * the fallback of make_device where mknod is refused. */
static int bind_device(int pfd, const char *base, const struct plan_mount *m) {
  if (mknodat(pfd, base, S_IFREG | 0644, 0) < 0 && errno != EEXIST) {
    return fail_step("mount", errno, m->target, "cannot create the mount point /%s in the root", m->target);
  }
  /* Twice: an fd opened before the bind names the file under it, not the new mount, so the
   * read-only remount needs one opened after it. */
  for (int pass = 0; pass < 2; pass++) {
    struct open_how how = {.flags = O_PATH | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS};
    int tfd = (int)syscall(SYS_openat2, pfd, base, &how, sizeof how);
    if (tfd < 0) return fail_step("mount", errno, m->target, "cannot open the mount point /%s", m->target);
    char target[64];
    snprintf(target, sizeof target, "/proc/self/fd/%d", tfd);
    int rc = pass == 0 ? mount(m->source, target, NULL, MS_BIND, NULL)
                       : mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL);
    int e = errno;
    close(tfd);
    if (rc < 0) {
      return fail_step("mount", e, m->target, "%s the device %s onto /%s failed", pass == 0 ? "binding" : "remounting read-only",
                       m->source, m->target);
    }
  }
  return 0;
}

/* A character device at the target with the number and permission bits of the host node
 * m->source (set explicitly: the umask must not narrow them). */
static int make_device(int rootfd, const struct plan_mount *m) {
  struct stat st;
  if (stat(m->source, &st) < 0) {
    if (errno == ENOENT && (m->options & MOUNT_SKIP_IF_MISSING)) return 0;
    return fail_step("mount", errno, m->source, "device %s %s", m->source, errno == ENOENT ? "does not exist" : "is not accessible");
  }
  if (!S_ISCHR(st.st_mode)) return fail_step("mount", EINVAL, m->source, "%s is not a character device", m->source);
  const char *base;
  int pfd = open_parent(rootfd, m, &base);
  if (pfd < 0) return -1;
  const mode_t perm = st.st_mode & 0777;
  int rc = mknodat(pfd, base, S_IFCHR | perm, st.st_rdev);
  if (rc == 0) {
    rc = fchmodat(pfd, base, perm, 0);
    if (rc < 0) rc = fail_step("mount", errno, m->target, "cannot set the mode of the device /%s", m->target);
  } else if (errno == EPERM) {
    rc = bind_device(pfd, base, m);
  } else {
    rc = fail_step("mount", errno, m->target, "cannot create the device /%s in the root", m->target);
  }
  if (pfd != rootfd) close(pfd);
  return rc;
}

/* The source of an "in root" bind: resolved inside source_root, never leaving it. */
static int open_source(const struct plan_mount *m) {
  int sroot = open(m->source_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (sroot < 0) return fail_step("mount", errno, m->source_root, "cannot open the source root %s", m->source_root);
  int fd = open_in_root(sroot, m->source);
  int e = errno;
  close(sroot);
  if (fd < 0) {
    return fail_step("mount", e, m->source, "bind source /%s %s %s", m->source,
                     e == ENOENT ? "does not exist in" : "cannot be resolved in", m->source_root);
  }
  return fd;
}

static int do_mount(int rootfd, const struct plan_mount *m) {
  if (m->options & MOUNT_DEVICE) return make_device(rootfd, m);
  const int bind = (m->flags & MS_BIND) != 0;
  if (bind && m->source && !(m->options & MOUNT_SOURCE_IN_ROOT)) {
    struct stat st;
    if (stat(m->source, &st) < 0) {
      if (errno == ENOENT && (m->options & MOUNT_SKIP_IF_MISSING)) return 0;
      return fail_step("mount", errno, m->source, "bind source %s %s", m->source,
                       errno == ENOENT ? "does not exist" : "is not accessible");
    }
  }
  if (m->options & (MOUNT_CREATE_FILE | MOUNT_CREATE_DIR | MOUNT_SYMLINK)) {
    if (create_target(rootfd, m) < 0) return -1;
    /* a symlink, or a created entry with nothing to mount */
    if ((m->options & MOUNT_SYMLINK) || (!m->source && !m->fstype && m->flags == 0)) return 0;
  }
  char source[64];
  const char *spath = m->source;
  int sfd = -1;
  if (m->options & MOUNT_SOURCE_IN_ROOT) {
    sfd = open_source(m);
    if (sfd < 0) return -1;
    snprintf(source, sizeof source, "/proc/self/fd/%d", sfd);
    spath = source;
  }
  char target[64];
  const char *tpath = m->target;
  int tfd = -1;
  if (m->target[0] != '/') {
    tfd = open_in_root(rootfd, m->target);
    if (tfd < 0) {
      int e = errno;
      if (sfd >= 0) close(sfd);
      return fail_step("mount", e, m->target, "mount target /%s %s", m->target,
                       e == ENOENT ? "does not exist in the root" : "cannot be resolved in the root");
    }
    snprintf(target, sizeof target, "/proc/self/fd/%d", tfd);
    tpath = target;
  }
  int rc = mount(spath, tpath, m->fstype, (unsigned long)m->flags, m->data);
  int e = errno;
  if (tfd >= 0) close(tfd);
  if (sfd >= 0) close(sfd);
  if (rc < 0) {
    return fail_step("mount", e, m->target, "mount %s%s%s on %s (type %s, flags 0x%llx) failed",
                     m->source_root ? m->source_root : "", m->source_root ? "/" : "",
                     m->source ? m->source : "none", m->target, m->fstype ? m->fstype : "none",
                     (unsigned long long)m->flags);
  }
  return 0;
}

static int pivot(const char *root) {
  int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (oldroot < 0) return fail_step("pivot_root", errno, "/", "cannot open the old root");
  int newroot = open(root, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (newroot < 0) {
    int e = errno;
    close(oldroot);
    return fail_step("pivot_root", e, root, "cannot open the container root");
  }
  int rc = -1;
  if (fchdir(newroot) < 0) {
    fail_step("pivot_root", errno, root, "cannot enter the container root");
  } else if (syscall(SYS_pivot_root, ".", ".") < 0) {
    fail_step("pivot_root", errno, root, "pivot_root failed");
  } else if (fchdir(oldroot) < 0) {
    fail_step("pivot_root", errno, root, "cannot enter the old root");
  } else if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
    fail_step("pivot_root", errno, root, "making the old root a slave failed");
  } else if (umount2(".", MNT_DETACH) < 0) {
    fail_step("pivot_root", errno, root, "detaching the old root failed");
  } else if (chdir("/") < 0) {
    fail_step("pivot_root", errno, root, "chdir to the new root failed");
  } else {
    rc = 0;
  }
  close(oldroot);
  close(newroot);
  return rc;
}

int setup_root(const struct plan *p) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
    return fail_step("mount", errno, "/", "making the mount namespace private failed");
  }
  if (mount(p->root, p->root, NULL, MS_BIND | MS_REC, NULL) < 0) {
    return fail_step("mount", errno, p->root, "bind-mounting the root %s onto itself failed", p->root);
  }
  int rootfd = open(p->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) return fail_step("mount", errno, p->root, "cannot open the root %s", p->root);
  for (uint32_t i = 0; i < p->nmounts; i++) {
    if (do_mount(rootfd, &p->mounts[i]) < 0) {
      close(rootfd);
      return -1;
    }
  }
  close(rootfd);
  return pivot(p->root);
}
