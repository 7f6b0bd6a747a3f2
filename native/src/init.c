/* Init: PID 1 of the container's pid namespace.
 *
 * create: build the file system view (mount.c), set the SELinux exec context, the
 *   hostname and the process name, start a session, make itself undumpable and report
 *   CREATED. Then park until the runtime sends EXEC (or SIGNAL/EOF: end without an app).
 * exec: fork the app (app.c) and wait on its close-on-exec error pipe: data = an ERROR
 *   record from a failed step, EOF = execve succeeded (report STARTED).
 * run: every signal stays blocked (init cannot be killed from inside the container: the
 *   kernel drops unhandled signals to a namespace's init, and blocked ones never act).
 *   SIGCHLD arrives through a signalfd; init reaps every child, not only the app, so no
 *   zombie stays. SIGNAL commands are forwarded to the app's process group. When the app
 *   has exited, init kills everything left in the namespace, reaps it, reports EXIT with
 *   the app's exact status and exits. EOF on the control socket (runtime gone or
 *   container destroyed) does the same without a report. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include "core.h"
#include "proto.h"

static int g_sigfd = -1;

__attribute__((noreturn)) static void finish(pid_t app, int status, int report) {
  /* Everything else in the namespace dies now; reap it all so the runtime's EXIT means
   * that no process of this container is left besides init itself. */
  kill(-1, SIGKILL);
  for (;;) {
    pid_t pid = waitpid(-1, NULL, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) break;
  }
  if (report && app > 0) {
    if (WIFSIGNALED(status)) {
      report_exit(CONTROL_FD, 1, WTERMSIG(status));
    } else {
      report_exit(CONTROL_FD, 0, WEXITSTATUS(status));
    }
  }
  _exit(0);
}

__attribute__((noreturn)) static void fail_init(void) {
  send_step_error(CONTROL_FD);
  _exit(1);
}

static int set_selinux(const struct plan *p) {
  if (!p->selinux_exec) return 0;
  const char *attr = "/proc/thread-self/attr/exec";
  int fd = open(attr, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail_step("selinux", errno, attr, "cannot open %s", attr);
  size_t n = strlen(p->selinux_exec);
  if (write_all(fd, p->selinux_exec, n) < 0) {
    int e = errno;
    close(fd);
    return fail_step("selinux", e, attr, "setting the exec context %s failed", p->selinux_exec);
  }
  close(fd);
  return 0;
}

/* How long init waits for EXEC before it trims its memory while parked, and how long the
 * app runs before init trims it. */
#define PARK_TRIM_AFTER_MS 50
#define RUN_TRIM_AFTER_MS 50

/* Wait for a command while parked. Returns CMD_EXEC, or 0 to end (EOF, SIGNAL). */
static int park(int *signo) {
  for (;;) {
    uint8_t *buf = NULL;
    uint32_t len = 0;
    int rc = read_frame(COMMAND_FD, &buf, &len, 16);
    if (rc <= 0) return 0;
    uint8_t cmd = len ? buf[0] : 0;
    if (cmd == CMD_EXEC && len == 1) {
      free(buf);
      return CMD_EXEC;
    }
    if (cmd == CMD_SIGNAL && len == 2) {
      *signo = buf[1];
      free(buf);
      return 0;
    }
    free(buf);
    fail_step("control", EPROTO, NULL, "unexpected command %u (length %u) while parked", cmd, len);
    send_step_error(CONTROL_FD);
    return 0;
  }
}

/* The app's seccomp filter, compiled by the launcher (send_filter in main.c) while init set
 * up the root. A failure to compile is the launcher's ERROR record: forwarded as it is. */
static void receive_filter(int fd, struct sock_fprog *prog) {
  uint8_t *buf = NULL;
  uint32_t len = 0;
  int rc = read_frame(fd, &buf, &len, 1 + SECCOMP_MAX_BPF_BYTES);
  close(fd);
  if (rc <= 0 || len == 0) {
    fail_step("seccomp", rc < 0 ? errno : EPIPE, NULL, "the compiled filter did not come from the launcher");
    fail_init();
  }
  if (buf[0] == REP_ERROR) {
    send_frame(CONTROL_FD, buf, len);
    finish(0, 0, 0);
  }
  size_t bytes = len - 1;
  if (buf[0] != REC_FILTER || bytes % sizeof(struct sock_filter) != 0) {
    fail_step("seccomp", EPROTO, NULL, "malformed filter record from the launcher");
    fail_init();
  }
  prog->len = (unsigned short)(bytes / sizeof(struct sock_filter));
  prog->filter = NULL;
  if (bytes > 0) {
    prog->filter = malloc(bytes);
    if (!prog->filter) {
      fail_step("seccomp", ENOMEM, NULL, "no memory for the filter");
      fail_init();
    }
    memcpy(prog->filter, buf + 1, bytes);
  }
  free(buf);
}

/* What the app's child gets: it runs on its own stack in init's memory (see spawn_app). */
struct app_args {
  const struct plan *p;
  const struct sock_fprog *filter;
  int errp[2];
};

static int app_child(void *arg) {
  const struct app_args *a = arg;
  close(a->errp[0]);
  close(g_sigfd);
  app_main(a->p, a->errp[1], a->filter);
}

/* The app's stack until its execve: app_main's frames, libc's formatting of an error. */
#define APP_STACK_BYTES (256u * 1024u)

/* The app is cloned with CLONE_VM | CLONE_VFORK, as posix_spawn does: it shares init's
 * memory on a stack of its own, and init is suspended until the app's execve (or exit).
 * Copying init's page tables for a fork and the copy-on-write faults that follow cost
 * ten times more than the clone here (bench: fork 450 us, this 45 us, on a 2-core VM).
 * Nothing of init runs while the app uses its memory; what the app changes in it before
 * its execve (errno, an error message, its environment's allocations) is never read by
 * init except through the error pipe. Its own fd table, signal handlers and credentials
 * are its own (no CLONE_FILES, CLONE_SIGHAND or CLONE_THREAD). */
static pid_t spawn_app(const struct plan *p, const struct sock_fprog *filter) {
  struct app_args a = {.p = p, .filter = filter};
  if (pipe2(a.errp, O_CLOEXEC) < 0) {
    fail_step("exec", errno, NULL, "pipe2 failed");
    fail_init();
  }
  void *stack = mmap(NULL, APP_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) {
    fail_step("fork", errno, NULL, "no memory for the app's stack");
    fail_init();
  }
  pid_t pid = clone(app_child, (char *)stack + APP_STACK_BYTES, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
  int e = errno;
  munmap(stack, APP_STACK_BYTES); /* the app has executed or exited: it is not used any more */
  if (pid < 0) {
    fail_step("fork", e, NULL, "creating the app's process failed");
    fail_init();
  }
  int *errp = a.errp;
  close(errp[1]);
  /* Init keeps no copy of the passed fds: the app owns them now. */
  unsigned passed = (p->console ? 1u : 0u) + p->nsockets;
  for (unsigned i = 0; i < passed; i++) close(FIRST_PASSED_FD + (int)i);
  /* A step of the app failed: its record is forwarded, then the container ends. */
  if (!forward_child_error(errp[0], CONTROL_FD, "app")) return pid;
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  finish(0, 0, 0);
}

/* Init's pid as the host sees it: /proc is still the host's procfs before pivot_root. */
static uint32_t host_pid(void) {
  char buf[32];
  ssize_t n = readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0) {
    fail_step("init", n < 0 ? errno : EIO, "/proc/self", "cannot read init's host pid");
    fail_init();
  }
  buf[n] = 0;
  return (uint32_t)strtoul(buf, NULL, 10);
}

void init_main(const struct plan *p, int filter_fd) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(1);
  const uint32_t hpid = host_pid();

  sigset_t all;
  sigfillset(&all);
  if (sigprocmask(SIG_SETMASK, &all, NULL) < 0) {
    fail_step("signals", errno, NULL, "blocking signals failed");
    fail_init();
  }
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  g_sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (g_sigfd < 0) {
    fail_step("signals", errno, NULL, "signalfd failed");
    fail_init();
  }

  if (set_selinux(p) < 0 || setup_root(p) < 0) fail_init();
  if (sethostname(p->hostname, strlen(p->hostname)) < 0) {
    fail_step("hostname", errno, NULL, "sethostname %s failed", p->hostname);
    fail_init();
  }
  char name[16];
  snprintf(name, sizeof name, "init-%s", p->container);
  if (prctl(PR_SET_NAME, name, 0, 0, 0) < 0 || setsid() < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
    fail_step("init", errno, NULL, "preparing init (name, session, dumpable) failed");
    fail_init();
  }
  report_created(CONTROL_FD, hpid);

  /* Parked for a while (the runtime's debug commands, a slow start): drop the setup code.
   * Not when EXEC follows at once: the app, forked from init, would fault it all back. */
  struct pollfd pending = {.fd = COMMAND_FD, .events = POLLIN};
  if (poll(&pending, 1, PARK_TRIM_AFTER_MS) == 0) trim_rss();
  int signo = 0;
  if (park(&signo) != CMD_EXEC) {
    if (signo > 0) report_exit(CONTROL_FD, 1, signo);
    finish(0, 0, 0);
  }
  struct sock_fprog filter;
  receive_filter(filter_fd, &filter);
  pid_t app = spawn_app(p, &filter);
  free(filter.filter);
  if (drop_init_caps() < 0) {
    /* The app runs already: report, then take the container down. */
    send_step_error(CONTROL_FD);
    finish(app, 0, 0);
  }
  report_started(CONTROL_FD, (uint32_t)app);

  int status = 0;
  int app_done = 0;
  /* init drops its setup code once the app has run for RUN_TRIM_AFTER_MS: not at once,
   * where it would delay the exit of an app that ends right away (measured: 0.5-0.7 ms). */
  int trimmed = 0;
  struct pollfd fds[2] = {{.fd = g_sigfd, .events = POLLIN}, {.fd = COMMAND_FD, .events = POLLIN}};
  while (!app_done) {
    int n = poll(fds, 2, trimmed ? -1 : RUN_TRIM_AFTER_MS);
    if (n == 0) {
      trim_rss();
      trimmed = 1;
      continue;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      finish(app, status, 0);
    }
    if (fds[0].revents) {
      struct signalfd_siginfo si;
      while (read(g_sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
      }
      for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) break;
        if (pid == app) {
          status = st;
          app_done = 1;
        }
      }
    }
    if (!app_done && fds[1].revents) {
      uint8_t *buf = NULL;
      uint32_t len = 0;
      int rc = read_frame(COMMAND_FD, &buf, &len, 16);
      if (rc <= 0) finish(app, status, 0); /* runtime gone: take the container down */
      if (len == 2 && buf[0] == CMD_SIGNAL) {
        if (killpg(app, buf[1]) < 0 && errno == ESRCH) kill(app, buf[1]);
      }
      free(buf);
    }
  }
  finish(app, status, 1);
}
