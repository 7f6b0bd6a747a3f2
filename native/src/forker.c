/* northstar-forker: makes launch cores for the runtime's pool without blocking it.
 *
 * Node can only make a process with child_process.spawn, which forks the whole runtime and
 * blocks its thread until the child has executed (5-7 ms here, on every start that finds no
 * pooled core). This small static process is spawned once by the runtime and does the forks
 * instead:
 *
 *   northstar-forker <socket path> <core binary> <runtime pid>     (env NSL_FORKER_TOKEN)
 *
 * fd 3 is its control socket to the runtime. Requests are 8-byte records:
 *   'F', 0, 0, 0, u32 id     fork a pooled core (a sandbox core, env NSL_SANDBOX=1)
 *   'K', signo, 0, 0, u32 pid   signal a core this process forked and has not reaped yet
 *   'Q', 0, 0, 0, 0            fork no more; leave once every core forked has exited
 * Answers are 12-byte records (all integers little-endian):
 *   'P', 0, 0, 0, u32 id, u32 pid        the core for request id was forked
 *   'E', 0, 0, 0, u32 id, u32 errno      it could not be forked
 *   'X', 0, 0, 0, u32 pid, u32 status    a core exited (its wait status), reaped here
 *
 * The runtime cannot receive fds, so a forked core connects back instead: its fds 1-5
 * (stdout, stderr, reports, commands, console; fd 0 is /dev/null) are five connections to
 * the runtime's unix socket at <socket path>, each opened with a 21-byte header: the
 * 16-byte token from NSL_FORKER_TOKEN, u32 id and u8 fd number. The socket lives in a
 * directory only root can enter; the token makes sure that only cores forked here are
 * taken. Then the child executes the core from a sealed memfd copy made once at start
 * (memfd.c's seals, so the core does not copy itself again).
 *
 * Lifetime: the forker dies with the runtime (parent-death signal), and each core with the
 * forker, so nothing survives a killed runtime. After 'Q' (or the end of the control
 * socket) no more cores are forked, but the forker stays, reporting exits and taking
 * signals for its cores, until every core has exited, so a running container is never
 * taken down by it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "proto.h"

#define CTL_FD 3
#define TOKEN_BYTES 16
#define HEADER_BYTES (TOKEN_BYTES + 5)
#define CHANNELS 5 /* fds 1..5 of a core */
#define HIGH_FD 64 /* a child moves its fds above this before putting them in place */

/* argv[1] until a plan names the container: 272 bytes, room for main.c to write the
 * container's name in place (the runtime's SPARE_NAME). */
static char g_spare_name[273];
/* Requests are read until the runtime shuts its side down; answers are written as long as
 * it reads them (the exits of the cores still running after that). */
static int g_reading = 1, g_answering = 1, g_quitting = 0;

static uint8_t g_token[TOKEN_BYTES];
static struct sockaddr_un g_addr;
static int g_memfd = -1;
static pid_t g_self;

/* The cores forked and not yet reaped: only these are ever signalled. */
static pid_t *g_live;
static size_t g_nlive, g_caplive;

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void answer(char type, uint32_t a, uint32_t b) {
  uint8_t rec[12] = {(uint8_t)type, 0, 0, 0};
  put_u32(rec + 4, a);
  put_u32(rec + 8, b);
  /* Not after the runtime closed the socket (EPIPE): the cores still running are waited for. */
  if (g_answering && write_all(CTL_FD, rec, sizeof rec) < 0) g_answering = 0;
}

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* The core, copied once into a sealed memfd as its own re-execution would (memfd.c). */
static int sealed_core(const char *path) {
  int src = open(path, O_RDONLY | O_CLOEXEC);
  if (src < 0) return -1;
  struct stat st;
  int mfd = fstat(src, &st) == 0 ? sealed_copy(src, st.st_size) : -1;
  close(src);
  return mfd;
}

/* The child's stack until its exec. The child is cloned with CLONE_VM | CLONE_VFORK (as
 * posix_spawn does): no copy of this process's page tables, and this process waits until
 * the child has executed or exited, so one stack serves every child in turn. */
#define CHILD_STACK_BYTES (64u * 1024u)
static void *g_stack;

/* In the forked child: connect fds 1..5 back to the runtime and execute the core. Never
 * returns; any failure exits, which the runtime sees as the core's exit. It shares this
 * process's memory until its exec and changes none of it but errno. */
__attribute__((noreturn)) static void core_child(uint32_t id) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != g_self) _exit(1);
  int fds[1 + CHANNELS];
  fds[0] = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fds[0] < 0) _exit(1);
  for (int ch = 1; ch <= CHANNELS; ch++) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) _exit(1);
    while (connect(s, (struct sockaddr *)&g_addr, sizeof g_addr) < 0) {
      if (errno != EINTR) _exit(1);
    }
    uint8_t head[HEADER_BYTES];
    memcpy(head, g_token, TOKEN_BYTES);
    put_u32(head + TOKEN_BYTES, id);
    head[TOKEN_BYTES + 4] = (uint8_t)ch;
    if (write_all(s, head, sizeof head) < 0) _exit(1);
    fds[ch] = s;
  }
  /* Out of the way of 0..5 first (the forker's own fds may sit there), then in place;
   * dup2 clears close-on-exec on the copies, everything else closes at the exec. */
  int high[1 + CHANNELS];
  for (int i = 0; i <= CHANNELS; i++) {
    high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, HIGH_FD);
    if (high[i] < 0) _exit(1);
  }
  int exe = fcntl(g_memfd, F_DUPFD_CLOEXEC, HIGH_FD);
  if (exe < 0) _exit(1);
  for (int i = 0; i <= CHANNELS; i++) {
    if (dup2(high[i], i) < 0) _exit(1);
  }
  char *argv[] = {"northstar-launch", g_spare_name, NULL};
  char *envp[] = {"NSL_SANDBOX=1", NULL};
  fexecve(exe, argv, envp);
  _exit(127);
}

static int start_child(void *arg) {
  core_child(*(uint32_t *)arg);
}

static void fork_core(uint32_t id) {
  if (g_nlive == g_caplive) {
    size_t cap = g_caplive ? g_caplive * 2 : 64;
    pid_t *n = realloc(g_live, cap * sizeof *n);
    if (!n) {
      answer('E', id, ENOMEM);
      return;
    }
    g_live = n;
    g_caplive = cap;
  }
  pid_t pid = clone(start_child, (char *)g_stack + CHILD_STACK_BYTES, CLONE_VM | CLONE_VFORK | SIGCHLD, &id);
  if (pid < 0) {
    answer('E', id, (uint32_t)errno);
    return;
  }
  g_live[g_nlive++] = pid;
  answer('P', id, (uint32_t)pid);
}

static int is_live(pid_t pid) {
  for (size_t i = 0; i < g_nlive; i++) {
    if (g_live[i] == pid) return 1;
  }
  return 0;
}

static void reap(void) {
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (size_t i = 0; i < g_nlive; i++) {
      if (g_live[i] == pid) {
        g_live[i] = g_live[--g_nlive];
        break;
      }
    }
    answer('X', (uint32_t)pid, (uint32_t)st);
  }
}

int main(int argc, char **argv) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) return 1;
  if (argc != 4) {
    fprintf(stderr, "usage: northstar-forker <socket path> <core binary> <runtime pid> (run by the runtime only)\n");
    return 2;
  }
  if (getppid() != (pid_t)strtol(argv[3], NULL, 10)) return 1; /* the runtime is gone already */
  g_self = getpid();
  prctl(PR_SET_NAME, "nsl-forker", 0, 0, 0);
  const char *tok = getenv("NSL_FORKER_TOKEN");
  if (!tok || strlen(tok) != 2 * TOKEN_BYTES) return 2;
  for (int i = 0; i < TOKEN_BYTES; i++) {
    int hi = hex(tok[2 * i]), lo = hex(tok[2 * i + 1]);
    if (hi < 0 || lo < 0) return 2;
    g_token[i] = (uint8_t)(hi << 4 | lo);
  }
  clearenv();
  if (strlen(argv[1]) >= sizeof g_addr.sun_path) return 2;
  g_addr.sun_family = AF_UNIX;
  strcpy(g_addr.sun_path, argv[1]);
  int fl = fcntl(CTL_FD, F_GETFL);
  if (fl < 0 || fcntl(CTL_FD, F_SETFL, fl & ~O_NONBLOCK) < 0 || fcntl(CTL_FD, F_SETFD, FD_CLOEXEC) < 0) return 2;
  g_memfd = sealed_core(argv[2]);
  if (g_memfd < 0) return 3;
  g_stack = mmap(NULL, CHILD_STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (g_stack == MAP_FAILED) return 3;
  signal(SIGPIPE, SIG_IGN);
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0) return 3;
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 3;

  memset(g_spare_name, ' ', sizeof g_spare_name - 1);
  memcpy(g_spare_name, "(pooled)", 8);
  while (g_nlive > 0 || (g_reading && !g_quitting)) {
    struct pollfd p[2] = {{.fd = sfd, .events = POLLIN}, {.fd = g_reading ? CTL_FD : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return 3;
    }
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
      }
      reap();
    }
    if (g_reading && p[1].revents) {
      uint8_t rec[8];
      int rc = read_exact(CTL_FD, rec, sizeof rec);
      if (rc <= 0) {
        /* Shut down by the runtime: fork no more; stay until the cores are gone. */
        g_reading = 0;
        continue;
      }
      uint32_t arg = get_u32(rec + 4);
      if (rec[0] == 'F') {
        if (g_quitting) answer('E', arg, EPERM);
        else fork_core(arg);
      } else if (rec[0] == 'Q') {
        g_quitting = 1;
      } else if (rec[0] == 'K' && rec[1] >= 1 && rec[1] <= 64 && arg > 0 && is_live((pid_t)arg)) {
        kill((pid_t)arg, rec[1]);
      }
    }
  }
  return 0;
}
