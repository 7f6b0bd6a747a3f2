/* Namespaces and cgroups, done by the launcher process on the host side:
 * join a named network namespace, join the cgroups (the launcher writes its own pid, so
 * init is born inside them), and clone init into new PID/mount/IPC/UTS (and per plan
 * network) namespaces, and reset the oom_score_adj the launcher inherited from the
 * runtime. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "proto.h"

int join_network(const struct plan *p) {
  if (p->net != NET_JOIN) return 0;
  int fd = open(p->net_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail_step("network", errno, p->net_path, "network namespace %s: %s", p->net_path,
                     errno == ENOENT ? "does not exist" : "cannot be opened");
  }
  if (setns(fd, CLONE_NEWNET) < 0) {
    int e = errno;
    close(fd);
    return fail_step("network", e, p->net_path, "joining network namespace %s failed", p->net_path);
  }
  close(fd);
  return 0;
}

/* fork-like clone (no shared memory, no new stack) into fresh namespaces. The child
 * is PID 1 of the new pid namespace. Returns the child's pid (host view) or 0 in it. */
pid_t clone_init(const struct plan *p) {
  unsigned long flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  if (p->net == NET_NEW) flags |= CLONE_NEWNET;
  long pid = syscall(SYS_clone, flags, NULL, NULL, NULL, NULL);
  if (pid < 0) return fail_step("clone", errno, NULL, "creating the container namespaces failed");
  return (pid_t)pid;
}

/* A pooled core's sandbox: init cloned ahead of its plan into fresh PID, IPC, UTS and
 * network namespaces (what costs most to create). Its mount namespace is made when the plan
 * has come (init unshares it then), so that it is a copy of the runtime's mounts as they are
 * at the start, with the container's image mounted. */
pid_t clone_sandbox(void) {
  long pid = syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) return fail_step("clone", errno, NULL, "creating the sandbox namespaces failed");
  return (pid_t)pid;
}

int join_cgroups(const struct plan *p, pid_t pid) {
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%d", (int)pid);
  for (uint32_t i = 0; i < p->ncgroups; i++) {
    const char *path = p->cgroups[i];
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail_step("cgroup", errno, path, "cannot open %s", path);
    if (write_all(fd, buf, (size_t)n) < 0) {
      int e = errno;
      close(fd);
      return fail_step("cgroup", e, path, "writing pid %d to %s failed", (int)pid, path);
    }
    if (close(fd) < 0) return fail_step("cgroup", errno, path, "writing pid %d to %s failed", (int)pid, path);
  }
  return 0;
}

/* The runtime lowers its own oom_score_adj (config `oom_score_adj`) and this process
 * inherited it. Write 0 before init is cloned, so init and everything the container runs
 * start at 0. The launcher still has CAP_SYS_RESOURCE here, so the kernel also sets the
 * process's oom_score_adj_min to 0: a container without CAP_SYS_RESOURCE can raise its
 * score but never lower it below 0 again. */
int reset_oom_score_adj(void) {
  static const char path[] = "/proc/self/oom_score_adj";
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail_step("oom_score_adj", errno, path, "cannot open %s", path);
  if (write_all(fd, "0", 1) < 0) {
    int e = errno;
    close(fd);
    return fail_step("oom_score_adj", e, path, "writing 0 to %s failed", path);
  }
  if (close(fd) < 0) return fail_step("oom_score_adj", errno, path, "writing 0 to %s failed", path);
  return 0;
}
