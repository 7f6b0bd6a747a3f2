/* northstar-launch: runs one launch plan.
 *
 * The runtime spawns this binary once per container with
 *   fd 0, 1, 2  the container's stdin/stdout/stderr (never the runtime's own stdio),
 *   fd 3        the report socket (records out, see proto.h),
 *   fd 4        the command socket (the plan, then commands in),
 *   fd 5..      the console fd (if the plan has one), then the socket fds in plan order.
 * A core spawned ahead of time (the runtime's pool, src/launch/launcher.ts) gets pipes at
 * 1, 2 and 5 whatever the container turns out to need: the plan's `discard` bits put
 * /dev/null at 1 and 2, and every fd the plan does not list is closed.
 *
 * This process (the "launcher") re-executes itself from a sealed memfd (memfd.c),
 * reads and strictly parses the plan, joins a named network namespace and the cgroups
 * (writing its own pid, so init is born inside them), clones init into the new
 * namespaces, hands the control socket over to init and stays as init's parent until
 * init has exited, so that
 * its own exit tells the runtime that no process of the container is left. Its exit
 * status is 0 when init ended normally, 1 on a launcher failure (already reported), or
 * 128 + signal when init was killed.
 *
 * A pooled core (env NSL_SANDBOX=1) clones init before its plan exists, into new PID, IPC,
 * UTS and network namespaces (a "sandbox"), so that their creation is off the start's path.
 * When the plan comes, the launcher checks that it wants a new network namespace, writes
 * both pids into the cgroups and forwards the plan to init, which unshares its mount
 * namespace then (a copy of the runtime's mounts as they are at the start) and goes on as
 * any init. Either way the launcher compiles the seccomp filter while init sets up the root
 * and sends it to init over the same socket pair.
 *
 * Failures are never crashes: each is sent to the runtime as an ERROR record
 * {step, errno, path, message} (step_error.c). This file holds main() and its helpers
 * only; the steps live in their own files and link without it (the plan unit test in
 * test/test_plan.c links them all).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "proto.h"

__attribute__((noreturn)) static void fail_launcher(void) {
  send_step_error(CONTROL_FD);
  _exit(1);
}

/* ps and /proc/<pid>/cmdline name the container: a pooled core was spawned before its
 * container was known, with a padded placeholder argument. Its argument area is rewritten
 * in place to "northstar-launch <container>" (the area's last byte made non-NUL, so the
 * kernel reads the title up to its first NUL, as for setproctitle(3)). */
static void name_process(int argc, char **argv, const char *container) {
  char comm[16];
  snprintf(comm, sizeof comm, "nsl-%s", container);
  prctl(PR_SET_NAME, comm, 0, 0, 0);
  if (argc < 2 || strcmp(argv[1], container) == 0) return;
  char *area = argv[0];
  char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  size_t room = (size_t)(end - area);
  if (room < 2) return;
  int n = snprintf(area, room - 1, "northstar-launch %s", container);
  if (n < 0) return;
  memset(area + strlen(area), 0, room - strlen(area));
  end[-1] = ' ';
}

/* Put the host's /dev/null where the plan discards output, and close every fd the plan
 * does not list (a pooled core's unused console pipe). */
static int settle_fds(const struct plan *p, unsigned passed, int keep) {
  if (p->discard) {
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) return fail_step("fds", errno, "/dev/null", "opening /dev/null for discarded output failed");
    if (((p->discard & DISCARD_STDOUT) && dup2(devnull, 1) < 0) || ((p->discard & DISCARD_STDERR) && dup2(devnull, 2) < 0)) {
      int e = errno;
      close(devnull);
      return fail_step("fds", e, NULL, "replacing discarded output with /dev/null failed");
    }
    close(devnull);
  }
  /* `keep` (>= 0): the sandbox's socket to its launcher, which stays open. */
  const unsigned first = FIRST_PASSED_FD + passed;
  int rc;
  if (keep >= (int)first) {
    rc = (keep > (int)first ? close_range(first, (unsigned)keep - 1, 0) : 0);
    if (rc == 0) rc = close_range((unsigned)keep + 1, ~0U, 0);
  } else {
    rc = close_range(first, ~0U, 0);
  }
  if (rc < 0) return fail_step("fds", errno, NULL, "closing the fds the plan does not list failed");
  return 0;
}

static int check_fd(int fd, const char *what) {
  if (fcntl(fd, F_GETFD) < 0) return fail_step("fds", errno, NULL, "%s (fd %d) was not passed", what, fd);
  return 0;
}

void send_filter(int fd, const struct plan *p) {
  /* init may be gone already (it failed): no SIGPIPE for that, its failure is reported. */
  signal(SIGPIPE, SIG_IGN);
  struct sock_fprog prog;
  if (compile_seccomp(p, &prog) < 0) {
    send_step_error(fd);
    return;
  }
  size_t bytes = (size_t)prog.len * sizeof(struct sock_filter);
  uint8_t *rec = malloc(1 + bytes);
  if (!rec) {
    fail_step("seccomp", ENOMEM, NULL, "no memory for the filter record");
    send_step_error(fd);
  } else {
    rec[0] = REC_FILTER;
    if (bytes > 0) memcpy(rec + 1, prog.filter, bytes);
    send_frame(fd, rec, 1 + bytes);
    free(rec);
  }
  free(prog.filter);
}

/* The init of a pooled core's sandbox (see clone_sandbox): waits for the plan the launcher
 * forwards, puts its own copies of the container's fds in order, unshares its mount
 * namespace, and goes on as any init. A failure before init_main is reported like init's. */
__attribute__((noreturn)) static void sandbox_init(int chan) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) _exit(1);
  prctl(PR_SET_NAME, "nsl-sandbox", 0, 0, 0);
  uint8_t *buf = NULL;
  uint32_t len = 0;
  /* EOF: the core was discarded (shutdown, or it served no plan). */
  if (read_frame(chan, &buf, &len, PLAN_MAX_BYTES) <= 0) _exit(1);
  struct plan plan;
  char perr[256];
  if (plan_parse(buf, len, &plan, perr, sizeof perr) < 0) {
    fail_step("plan", EINVAL, NULL, "invalid plan in the sandbox: %s", perr);
    send_step_error(CONTROL_FD);
    _exit(1);
  }
  free(buf);
  if (settle_fds(&plan, (plan.console ? 1u : 0u) + plan.nsockets, chan) < 0) {
    send_step_error(CONTROL_FD);
    _exit(1);
  }
  if (unshare(CLONE_NEWNS) < 0) {
    fail_step("clone", errno, NULL, "creating the mount namespace in the sandbox failed");
    send_step_error(CONTROL_FD);
    _exit(1);
  }
  init_main(&plan, chan);
}

int main(int argc, char **argv, char **envp) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return 1;
  /* Both control sockets must exist; without them nothing can be reported. */
  for (int fd = CONTROL_FD; fd <= COMMAND_FD; fd++) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
      fprintf(stderr, "northstar-launch: fd %d (control socket) is not open; run by the runtime only\n", fd);
      return 2;
    }
    if ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
      fail_step("control", errno, NULL, "making the control sockets blocking failed");
      fail_launcher();
    }
  }
  if (ensure_sealed_exe(argv, envp) < 0) fail_launcher();
  /* Executed as /proc/self/fd/<n>, the process would be called "<n>" in ps. */
  char comm[16];
  /* A pooled core's placeholder is padded with spaces (see name_process): cut them off. */
  const char *name = argc > 1 ? argv[1] : "launch";
  snprintf(comm, sizeof comm, "nsl-%.*s", (int)strcspn(name, " "), name);
  prctl(PR_SET_NAME, comm, 0, 0, 0);

  /* A pooled core (NSL_SANDBOX=1 from the runtime) clones its init ahead of the plan. The
   * oom_score_adj is reset first, so that init starts at 0 as below. */
  const int sandbox = getenv("NSL_SANDBOX") != NULL;
  int chan[2] = {-1, -1};
  pid_t init = 0;
  if (sandbox) {
    if (reset_oom_score_adj() < 0) fail_launcher();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0) {
      fail_step("clone", errno, NULL, "socketpair for the sandbox failed");
      fail_launcher();
    }
    init = clone_sandbox();
    if (init < 0) fail_launcher();
    if (init == 0) {
      close(chan[1]);
      sandbox_init(chan[0]);
    }
    close(chan[0]);
  }

  uint8_t *buf = NULL;
  uint32_t len = 0;
  int rc = read_frame(COMMAND_FD, &buf, &len, PLAN_MAX_BYTES);
  if (rc == 0) return 1; /* the runtime closed the control socket: nothing to do (a sandbox's init follows by its parent-death signal) */
  if (rc < 0) {
    fail_step("plan", errno, NULL, "reading the plan failed");
    fail_launcher();
  }
  /* A JOIN frame first (a plan starts with "NSPL"): exec into a running container. */
  struct join join = {0};
  int joining = len > 0 && buf[0] == CMD_JOIN;
  if (joining && sandbox) {
    fail_step("plan", EINVAL, NULL, "a pooled core cannot run an exec into a container");
    fail_launcher();
  }
  if (joining) {
    if (parse_join(buf, len, &join) < 0) fail_launcher();
    free(buf);
    buf = NULL;
    rc = read_frame(COMMAND_FD, &buf, &len, PLAN_MAX_BYTES);
    if (rc <= 0) {
      fail_step("plan", rc < 0 ? errno : EPIPE, NULL, "reading the plan after the join command failed");
      fail_launcher();
    }
  }
  struct plan plan;
  char perr[256];
  if (plan_parse(buf, len, &plan, perr, sizeof perr) < 0) {
    fail_step("plan", EINVAL, NULL, "invalid plan: %s", perr);
    fail_launcher();
  }
  name_process(argc, argv, plan.container);

  unsigned passed = (plan.console ? 1u : 0u) + plan.nsockets;
  /* A sandbox's launcher keeps its socket to init; its copies of the fds are closed below. */
  if (settle_fds(&plan, passed, sandbox ? chan[1] : -1) < 0) fail_launcher();
  for (int fd = 0; fd < 3; fd++) {
    if (check_fd(fd, fd == 0 ? "stdin" : fd == 1 ? "stdout" : "stderr") < 0) fail_launcher();
  }
  for (unsigned i = 0; i < passed; i++) {
    if (check_fd(FIRST_PASSED_FD + (int)i, plan.console && i == 0 ? "console" : "socket") < 0) fail_launcher();
  }
  if (joining) join_main(&plan, &join);
  if (sandbox) {
    /* init exists already, with a network namespace of its own. The runtime hands a pooled
     * core only plans with a new network namespace. */
    if (plan.net != NET_NEW) {
      fail_step("network", EINVAL, NULL, "a pooled core's sandbox has a new network namespace; this plan asks for another");
      fail_launcher();
    }
    /* Both processes join the cgroups before init runs anything of the container. */
    if (join_cgroups(&plan, getpid()) < 0 || join_cgroups(&plan, init) < 0) fail_launcher();
    signal(SIGPIPE, SIG_IGN); /* init gone: its parent-death or failure is what is reported */
    if (send_frame(chan[1], buf, len) < 0) {
      fail_step("clone", errno, NULL, "handing the plan to the sandbox failed");
      fail_launcher();
    }
    free(buf);
  } else {
    free(buf); /* before the clone: init need not carry a copy */
    if (join_network(&plan) < 0) fail_launcher();
    /* Joining the cgroups before init exists puts init and everything below it inside
     * from their first instruction, and init need not wait for a go from here. */
    if (join_cgroups(&plan, getpid()) < 0) fail_launcher();
    /* The runtime protects itself from the OOM killer (oom_score_adj, default -900); the
     * container must not inherit that, nor be able to go back below 0 (see ns.c). */
    if (reset_oom_score_adj() < 0) fail_launcher();
    /* The seccomp filter is compiled here while init sets up the root, and sent to it. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0) {
      fail_step("seccomp", errno, NULL, "socketpair for the compiled filter failed");
      fail_launcher();
    }
    init = clone_init(&plan);
    if (init < 0) fail_launcher();
    if (init == 0) {
      close(chan[1]);
      init_main(&plan, chan[0]);
    }
    close(chan[0]);
  }
  /* From here on only init talks to the runtime. The launcher keeps none of the fds the
   * container gets. */
  close(CONTROL_FD);
  close(COMMAND_FD);
  for (unsigned i = 0; i < passed; i++) close(FIRST_PASSED_FD + (int)i);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && devnull >= 0; fd++) dup2(devnull, fd);
  if (devnull > 2) close(devnull);
  send_filter(chan[1], &plan);
  close(chan[1]);
  plan_free(&plan);
  trim_rss();

  int status;
  for (;;) {
    pid_t w = waitpid(init, &status, 0);
    if (w == init) break;
    if (w < 0 && errno != EINTR) return 1;
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status) == 0 ? 0 : 1;
}
