/* Exec into a running container (ours, `nstar exec`): the core's second mode.
 *
 * The runtime sends a JOIN frame {u8 CMD_JOIN, u32 launcher pid, u8 tty, u16 rows, u16 cols}
 * before the plan.
 * The plan is the container's own (ids, groups, capabilities, rlimits, scheduling, seccomp,
 * cgroups, environment) with the command to run; its mounts, console and sockets are unused.
 *
 * The core (the "relay", host side, root):
 *   finds the container's init as the only child of its launcher (a pid the runtime has not
 *   reaped, so it cannot be reused), pins it with a pidfd and checks that it is still that
 *   child; joins the container's cgroups (its own pid, so the child is born inside them);
 *   resets oom_score_adj; with tty, opens a pty pair on the host's devpts; then joins the
 *   namespaces of init that differ from its own (mount, pid, ipc, uts, net, cgroup) in one
 *   setns on the pidfd, which also makes the container's root its root and cwd.
 * The child (forked after setns, so it is in the container's pid namespace, and the kernel
 *   kills it with the container's init): new session (with tty: the pty slave as its
 *   controlling terminal and stdio), rlimits, scheduling, ids, parent-death signal,
 *   capabilities, no_new_privs, the command resolved through PATH when it has no slash,
 *   the #! interpreter / ELF loader check, seccomp, execve: the same order and the same
 *   limits as the app (app.c), never more.
 * The relay then reports STARTED (the child's host pid) or the child's ERROR record, and
 *   stays until the child has exited: with tty it copies fd 0 to the pty and the pty to
 *   fd 1; without, the child has the runtime's sockets at 1 and 2 itself, and its stdin is
 *   a pipe the core feeds from fd 0 (a command may reopen a pipe, not a socket); commands on fd 4 are
 *   SIGNAL (to the child's process group, or the terminal's foreground group) and RESIZE;
 *   EOF on fd 4 (the runtime or its client went away) kills the child. It reports EXIT with
 *   the child's status and exits 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "core.h"
#include "proto.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

__attribute__((noreturn)) static void fail_join(void) {
  send_step_error(CONTROL_FD);
  _exit(1);
}

int parse_join(const uint8_t *buf, uint32_t len, struct join *out) {
  if (len != 10 || buf[0] != CMD_JOIN) return fail_step("join", EPROTO, NULL, "malformed join command (%u bytes)", len);
  uint32_t pid = (uint32_t)buf[1] | ((uint32_t)buf[2] << 8) | ((uint32_t)buf[3] << 16) | ((uint32_t)buf[4] << 24);
  if (pid < 2 || pid > 0x3fffffff) return fail_step("join", EINVAL, NULL, "join: launcher pid %u out of range", pid);
  if (buf[5] > 1) return fail_step("join", EINVAL, NULL, "join: tty must be 0 or 1, got %u", buf[5]);
  out->launcher = (pid_t)pid;
  out->tty = buf[5];
  out->rows = (uint16_t)(buf[6] | (buf[7] << 8));
  out->cols = (uint16_t)(buf[8] | (buf[9] << 8));
  return 0;
}

/* The pids listed in /proc/<pid>/task/<pid>/children: 1 when it is exactly `want` or (want
 * = 0) exactly one pid, stored in *found. */
static int only_child(pid_t launcher, pid_t want, pid_t *found) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)launcher, (int)launcher);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_step("join", errno, path, "the container's launcher %d is gone", (int)launcher);
  ssize_t n = read(fd, buf, sizeof buf - 1);
  int e = errno;
  close(fd);
  if (n < 0) return fail_step("join", e, path, "reading %s failed", path);
  buf[n] = 0;
  char *end;
  long pid = strtol(buf, &end, 10);
  while (*end == ' ' || *end == '\n') end++;
  if (pid <= 0 || *end != 0) return fail_step("join", ESRCH, path, "the container's init is not running");
  if (want && pid != want) return fail_step("join", ESRCH, path, "the container's init exited");
  *found = (pid_t)pid;
  return 0;
}

/* The namespaces of init that differ from this process's, as setns flags. */
static int differing_namespaces(pid_t init, int *flags) {
  static const struct {
    const char *name;
    int flag;
  } kinds[] = {{"mnt", CLONE_NEWNS}, {"pid", CLONE_NEWPID}, {"ipc", CLONE_NEWIPC},
               {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET}, {"cgroup", CLONE_NEWCGROUP}};
  *flags = 0;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    char theirs[64], ours[64];
    struct stat a, b;
    snprintf(theirs, sizeof theirs, "/proc/%d/ns/%s", (int)init, kinds[i].name);
    snprintf(ours, sizeof ours, "/proc/self/ns/%s", kinds[i].name);
    if (stat(theirs, &a) < 0) return fail_step("join", errno, theirs, "cannot read the container's %s namespace", kinds[i].name);
    if (stat(ours, &b) < 0) return fail_step("join", errno, ours, "cannot read the core's %s namespace", kinds[i].name);
    if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) *flags |= kinds[i].flag;
  }
  return 0;
}

static int open_pty(int *master, int *slave, uint16_t rows, uint16_t cols) {
  *master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0) return fail_step("tty", errno, "/dev/ptmx", "opening a pseudo terminal failed");
  char name[64];
  if (unlockpt(*master) < 0 || ptsname_r(*master, name, sizeof name) != 0) {
    int e = errno;
    close(*master);
    return fail_step("tty", e, "/dev/ptmx", "unlocking the pseudo terminal failed");
  }
  *slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*slave < 0) {
    int e = errno;
    close(*master);
    return fail_step("tty", e, name, "opening %s failed", name);
  }
  /* The caller's size from the first instruction on (later ones come as RESIZE). */
  struct winsize ws = {.ws_row = rows, .ws_col = cols};
  if ((rows || cols) && ioctl(*master, TIOCSWINSZ, &ws) < 0) {
    int e = errno;
    close(*slave);
    close(*master);
    return fail_step("tty", e, name, "setting the terminal size failed");
  }
  return 0;
}

/* `name` through PATH (from the plan's environment, else the usual default) as execvp
 * does, in the container's root. Returns a malloc'd path, or NULL with the step error set. */
static char *resolve_command(const struct plan *p) {
  if (strchr(p->path, '/')) return strdup(p->path);
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (uint32_t i = 0; i < p->envc; i++) {
    if (strncmp(p->envp[i], "PATH=", 5) == 0) path = p->envp[i] + 5;
  }
  const char *at = path;
  for (;;) {
    size_t dirlen = strcspn(at, ":");
    char *cand = NULL;
    if (asprintf(&cand, "%.*s/%s", (int)dirlen, dirlen ? at : ".", p->path) < 0) {
      fail_step("exec", ENOMEM, NULL, "resolving %s failed", p->path);
      return NULL;
    }
    if (faccessat(AT_FDCWD, cand, X_OK, AT_EACCESS) == 0) return cand;
    free(cand);
    if (at[dirlen] == 0) break;
    at += dirlen + 1;
  }
  fail_step("exec", ENOENT, p->path, "%s: command not found in the container (PATH %s)", p->path, path);
  return NULL;
}

__attribute__((noreturn)) static void child_main(const struct plan *p, int err_fd, int tty_slave) {
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) < 0) {
    fail_step("signals", errno, NULL, "resetting the signal mask failed");
    goto fail;
  }
  signal(SIGPIPE, SIG_DFL);
  if (setsid() < 0) {
    fail_step("setsid", errno, NULL, "creating the session failed");
    goto fail;
  }
  if (tty_slave >= 0) {
    if (ioctl(tty_slave, TIOCSCTTY, 0) < 0) {
      fail_step("tty", errno, NULL, "making the pty the controlling terminal failed");
      goto fail;
    }
    for (int fd = 0; fd < 3; fd++) {
      if (dup2(tty_slave, fd) < 0) {
        fail_step("tty", errno, NULL, "dup2 of the pty failed");
        goto fail;
      }
    }
    close(tty_slave);
  }
  if (apply_rlimits(p) < 0 || apply_sched(p) < 0 || apply_ids(p) < 0) goto fail;
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
    fail_step("pdeathsig", errno, NULL, "PR_SET_PDEATHSIG failed");
    goto fail;
  }
  /* The relay is outside this pid namespace (ppid 0); 1 means it died and the child was
   * handed to the container's init. */
  if (getppid() != 0) _exit(1);
  if (apply_caps(p) < 0) goto fail;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    fail_step("no_new_privs", errno, NULL, "PR_SET_NO_NEW_PRIVS failed");
    goto fail;
  }
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    fail_step("fds", errno, NULL, "marking the fds close-on-exec failed");
    goto fail;
  }
  char *path = resolve_command(p);
  if (!path) goto fail;
  if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0) {
    fail_step("exec", errno, path, "%s %s", path, errno == ENOENT ? "does not exist in the container" : "is not executable");
    goto fail;
  }
  if (check_interpreter(path) < 0) goto fail;
  if (load_seccomp(p) < 0) goto fail;
  execve(path, p->argv, p->envp);
  fail_step("exec", errno, path, "execve %s failed", path);
fail:
  send_step_error(err_fd);
  _exit(1);
}

struct relay {
  pid_t child;
  int pidfd;
  int master; /* -1 without tty */
  int in;     /* where fd 0's bytes go: the pty master, a pipe to the child's stdin, or -1 */
  int stdin_open;
  int master_open;
  uint8_t pending[4096];
  size_t npending;
};

static void signal_child(struct relay *r, int signo) {
  if (r->master >= 0) {
    pid_t fg = -1;
    if (ioctl(r->master, TIOCGPGRP, &fg) == 0 && fg > 0) {
      kill(-fg, signo);
      return;
    }
  }
  kill(-r->child, signo);
}

/* One command frame from the runtime; 0 = EOF or error (the session is over). */
static int command(struct relay *r) {
  uint8_t *buf = NULL;
  uint32_t len = 0;
  if (read_frame(COMMAND_FD, &buf, &len, 16) <= 0) return 0;
  if (len == 2 && buf[0] == CMD_SIGNAL && buf[1] >= 1 && buf[1] <= 64) {
    signal_child(r, buf[1]);
  } else if (len == 5 && buf[0] == CMD_RESIZE && r->master >= 0) {
    struct winsize ws = {.ws_row = (unsigned short)(buf[1] | (buf[2] << 8)), .ws_col = (unsigned short)(buf[3] | (buf[4] << 8))};
    if (ioctl(r->master, TIOCSWINSZ, &ws) < 0) {
      /* the terminal is gone with the child: nothing to resize */
    }
  }
  free(buf);
  return 1;
}

/* Copy what the pty has to fd 1. 0 = nothing more now, -1 = the pty is closed. */
static int pty_out(struct relay *r) {
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(r->master, buf, sizeof buf);
    if (n > 0) {
      if (write_all(1, buf, (size_t)n) < 0) {
        /* the runtime stopped reading: output is dropped, the child goes on */
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    return -1; /* EIO: every slave fd is closed */
  }
}

/* Move input from fd 0 to r->in without blocking on either side. */
static void relay_in(struct relay *r) {
  if (r->npending == 0 && r->stdin_open) {
    ssize_t n = read(0, r->pending, sizeof r->pending);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0) {
      r->stdin_open = 0;
      if (r->master < 0) {
        /* The pipe's end is the command's end of input. */
        close(r->in);
        r->in = -1;
        return;
      }
      /* End of input on a terminal: its end-of-file character, as a typed ^D. */
      struct termios t;
      r->pending[0] = tcgetattr(r->master, &t) == 0 ? t.c_cc[VEOF] : 4;
      r->npending = 1;
    } else {
      r->npending = (size_t)n;
    }
  }
  if (r->npending == 0 || r->in < 0) return;
  ssize_t w = write(r->in, r->pending, r->npending);
  if (w > 0) {
    memmove(r->pending, r->pending + w, r->npending - (size_t)w);
    r->npending -= (size_t)w;
  } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
    /* The command closed its input (EPIPE): drop what is left and read no more. */
    r->npending = 0;
    r->stdin_open = 0;
    if (r->master < 0) {
      close(r->in);
      r->in = -1;
    }
  }
}

static int relay_loop(struct relay *r) {
  int commands_open = 1;
  for (;;) {
    struct pollfd fds[5];
    nfds_t n = 0;
    int ci = -1, pi = -1, mi = -1, ii = -1, wi = -1;
    if (commands_open) {
      ci = (int)n;
      fds[n++] = (struct pollfd){.fd = COMMAND_FD, .events = POLLIN};
    }
    pi = (int)n;
    fds[n++] = (struct pollfd){.fd = r->pidfd, .events = POLLIN};
    if (r->master_open) {
      mi = (int)n;
      fds[n++] = (struct pollfd){.fd = r->master, .events = POLLIN};
    }
    if (r->in >= 0 && r->npending > 0) {
      wi = (int)n;
      fds[n++] = (struct pollfd){.fd = r->in, .events = POLLOUT};
    }
    if (r->in >= 0 && r->stdin_open && r->npending == 0) {
      ii = (int)n;
      fds[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
    }
    if (poll(fds, n, -1) < 0) {
      if (errno == EINTR) continue;
      return fail_step("relay", errno, NULL, "poll failed");
    }
    if (ci >= 0 && fds[ci].revents) {
      if (!command(r)) {
        commands_open = 0;
        kill(-r->child, SIGKILL);
        kill(r->child, SIGKILL);
      }
    }
    if (mi >= 0 && (fds[mi].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (pty_out(r) < 0) {
        r->master_open = 0;
        r->in = -1;
      }
    }
    if (wi >= 0 && fds[wi].revents) relay_in(r);
    if (ii >= 0 && (fds[ii].revents & (POLLIN | POLLHUP | POLLERR))) relay_in(r);
    if (fds[pi].revents) {
      int status;
      for (;;) {
        pid_t w = waitpid(r->child, &status, 0);
        if (w == r->child) break;
        if (w < 0 && errno != EINTR) return fail_step("relay", errno, NULL, "waitpid failed");
      }
      /* What the child wrote before it ended is still in the pty. */
      if (r->master_open) pty_out(r);
      if (WIFSIGNALED(status)) report_exit(CONTROL_FD, 1, WTERMSIG(status));
      else report_exit(CONTROL_FD, 0, WEXITSTATUS(status));
      return 0;
    }
  }
}

void join_main(const struct plan *p, const struct join *j) {
  signal(SIGPIPE, SIG_IGN);
  pid_t init = 0;
  if (only_child(j->launcher, 0, &init) < 0) fail_join();
  int pidfd = (int)syscall(SYS_pidfd_open, init, 0);
  if (pidfd < 0) {
    fail_step("join", errno, NULL, "the container's init %d is gone", (int)init);
    fail_join();
  }
  /* Still the launcher's unreaped child: the pidfd is the container's init. */
  if (only_child(j->launcher, init, &init) < 0) fail_join();
  int flags = 0;
  if (differing_namespaces(init, &flags) < 0) fail_join();
  if (join_cgroups(p, getpid()) < 0) fail_join();
  if (reset_oom_score_adj() < 0) fail_join();
  int master = -1, slave = -1;
  if (j->tty && open_pty(&master, &slave, j->rows, j->cols) < 0) fail_join();
  /* Without a terminal, input from the runtime (a socket) reaches the command through a
   * real pipe: a command that reopens its stdin (/dev/stdin, /proc/self/fd/0) can. */
  int inpipe[2] = {-1, -1};
  struct stat st0;
  if (!j->tty && fstat(0, &st0) == 0 && S_ISSOCK(st0.st_mode) && pipe2(inpipe, O_CLOEXEC) < 0) {
    fail_step("exec", errno, NULL, "creating the stdin pipe failed");
    fail_join();
  }
  /* Owned by the command's ids, so it can reopen it (the inode is root's otherwise). */
  if (inpipe[0] >= 0 && fchown(inpipe[0], p->uid, p->gid) < 0) {
    fail_step("exec", errno, NULL, "handing the stdin pipe to uid %u failed", p->uid);
    fail_join();
  }
  if (flags && setns(pidfd, flags) < 0) {
    fail_step("join", errno, NULL, "joining the container's namespaces failed");
    fail_join();
  }
  close(pidfd);
  if (chdir("/") < 0) {
    fail_step("join", errno, "/", "changing to the container's root failed");
    fail_join();
  }
  /* Nothing of the container may attach to the child while it is still privileged. */
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  int errp[2];
  if (pipe2(errp, O_CLOEXEC) < 0) {
    fail_step("exec", errno, NULL, "pipe2 failed");
    fail_join();
  }
  pid_t child = fork();
  if (child < 0) {
    fail_step("fork", errno, NULL, "forking the command failed");
    fail_join();
  }
  if (child == 0) {
    close(errp[0]);
    if (master >= 0) close(master);
    if (inpipe[0] >= 0) {
      close(inpipe[1]);
      if (dup2(inpipe[0], 0) < 0) _exit(1);
      close(inpipe[0]);
    }
    close(CONTROL_FD);
    close(COMMAND_FD);
    child_main(p, errp[1], slave);
  }
  close(errp[1]);
  if (slave >= 0) close(slave);
  if (inpipe[0] >= 0) close(inpipe[0]);
  if (forward_child_error(errp[0], CONTROL_FD, "exec")) {
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    _exit(1);
  }
  report_started(CONTROL_FD, (uint32_t)child);
  struct relay r = {.child = child, .master = master, .in = master >= 0 ? master : inpipe[1], .master_open = master >= 0};
  r.stdin_open = r.in >= 0;
  r.pidfd = (int)syscall(SYS_pidfd_open, child, 0);
  if (r.pidfd < 0) {
    fail_step("relay", errno, NULL, "pidfd_open of the command failed");
    kill(child, SIGKILL);
    fail_join();
  }
  if (master >= 0) {
    if (fcntl(master, F_SETFL, O_NONBLOCK) < 0 || fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) < 0) {
      fail_step("relay", errno, NULL, "making the terminal non-blocking failed");
      kill(child, SIGKILL);
      fail_join();
    }
  } else {
    /* The child has the runtime's output sockets; this process keeps no copy, so their ends
     * are the child's alone. fd 0 stays when it feeds the stdin pipe. */
    if (inpipe[1] >= 0 && (fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) < 0 || fcntl(inpipe[1], F_SETFL, O_NONBLOCK) < 0)) {
      fail_step("relay", errno, NULL, "making the stdin relay non-blocking failed");
      kill(child, SIGKILL);
      fail_join();
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = inpipe[1] >= 0 ? 1 : 0; fd < 3 && devnull >= 0; fd++) dup2(devnull, fd);
    if (devnull > 2) close(devnull);
  }
  if (relay_loop(&r) < 0) {
    kill(child, SIGKILL);
    fail_join();
  }
  _exit(0);
}
