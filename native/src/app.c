/* The app: a child of init that becomes the container's program. Order matters:
 *   signals reset, own process group (so kill reaches it and its children, not init),
 *   rlimits and scheduling (still privileged), groups/gid/uid keeping capabilities,
 *   parent-death signal (after the id change, which clears it), capability sets,
 *   no_new_privs, the passed fds renumbered to 3.. with every other fd close-on-exec,
 *   NORTHSTAR_CONSOLE / NORTHSTAR_SOCKET_<name> appended to the environment, a check
 *   that the executable and its #! interpreter or ELF loader can be run (exec_check.c),
 *   then the seccomp filter (compiled by the launcher, received by init), then execve.
 * Any failure is written as an ERROR record to err_fd (close-on-exec, read by init); a
 * successful execve closes err_fd, which init sees as EOF. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "core.h"
#include "proto.h"

__attribute__((noreturn)) static void die(int err_fd) {
  send_step_error(err_fd);
  _exit(1);
}

static char **build_env(const struct plan *p) {
  size_t extra = (p->console ? 1u : 0u) + p->nsockets;
  char **env = calloc((size_t)p->envc + extra + 1, sizeof *env);
  if (!env) return NULL;
  size_t n = 0;
  for (uint32_t i = 0; i < p->envc; i++) env[n++] = p->envp[i];
  int fd = 3;
  if (p->console) {
    if (asprintf(&env[n++], "NORTHSTAR_CONSOLE=%d", fd++) < 0) return NULL;
  }
  for (uint32_t i = 0; i < p->nsockets; i++) {
    if (asprintf(&env[n++], "NORTHSTAR_SOCKET_%s=%d", p->sockets[i], fd++) < 0) return NULL;
  }
  env[n] = NULL;
  return env;
}

/* Move the passed fds (at FIRST_PASSED_FD..) down to 3.., where the control fds were.
 * Ascending order never overwrites a source that is still needed. */
static int renumber_fds(unsigned count) {
  for (unsigned i = 0; i < count; i++) {
    int from = FIRST_PASSED_FD + (int)i, to = 3 + (int)i;
    if (dup2(from, to) < 0) return fail_step("fds", errno, NULL, "dup2(%d, %d) failed", from, to);
  }
  /* Everything from 3 + count on (the last passed fd, init's fds) closes at execve. */
  if (close_range(3 + count, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    return fail_step("fds", errno, NULL, "marking the remaining fds close-on-exec failed");
  }
  return 0;
}

void app_main(const struct plan *p, int err_fd, const struct sock_fprog *filter) {
  sigset_t all;
  sigemptyset(&all);
  if (sigprocmask(SIG_SETMASK, &all, NULL) < 0) {
    fail_step("signals", errno, NULL, "resetting the signal mask failed");
    die(err_fd);
  }
  if (setpgid(0, 0) < 0) {
    fail_step("setpgid", errno, NULL, "creating the app's process group failed");
    die(err_fd);
  }
  if (apply_rlimits(p) < 0 || apply_sched(p) < 0 || apply_ids(p) < 0) die(err_fd);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
    fail_step("pdeathsig", errno, NULL, "PR_SET_PDEATHSIG failed");
    die(err_fd);
  }
  if (getppid() != 1) _exit(1); /* init is already gone */
  if (apply_caps(p) < 0) die(err_fd);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    fail_step("no_new_privs", errno, NULL, "PR_SET_NO_NEW_PRIVS failed");
    die(err_fd);
  }
  char **env = build_env(p);
  if (!env) {
    fail_step("env", ENOMEM, NULL, "building the environment failed");
    die(err_fd);
  }
  if (renumber_fds((p->console ? 1u : 0u) + p->nsockets) < 0) die(err_fd);
  if (faccessat(AT_FDCWD, p->path, X_OK, AT_EACCESS) < 0) {
    fail_step("exec", errno, p->path, "%s %s", p->path,
              errno == ENOENT ? "does not exist in the container" : "is not executable");
    die(err_fd);
  }
  if (check_interpreter(p->path) < 0) die(err_fd);
  if (install_seccomp(filter) < 0) die(err_fd);
  execve(p->path, p->argv, env);
  /* Only reached if execve failed after the filter was installed: reporting needs write
   * and exit_group; a filter without them turns this into a SIGSYS kill. */
  fail_step("exec", errno, p->path, "execve %s failed", p->path);
  die(err_fd);
}
