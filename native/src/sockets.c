/* northstar-sockets: creates a container's manifest sockets, then execs the launch core.
 *
 * Node cannot create AF_UNIX datagram or seqpacket sockets, so the runtime spawns this
 * small program in front of northstar-launch with the same fds (0..4, the console at
 * 5 if any) and one argument group per socket, in plan order:
 *
 *   northstar-sockets <first-fd> <count> { <path> <type> <mode> <uid> <gid> <passcred> }*count
 *                     -- <launch core> <args...>
 *
 * type is stream | datagram | seq_packet; mode is octal; uid/gid are numbers or '-'
 * (unchanged); passcred is 0 or 1. For each socket: unlink a stale file, socket(),
 * SO_PASSCRED if asked, bind with a umask that gives the file its mode at creation,
 * listen(SOMAXCONN) for stream and seq_packet, lchown the FILE (spec README item 8:
 * upstream chowned the fd), and place the fd
 * at first-fd + i without close-on-exec. Then exec the launch core, which finds the
 * sockets where it expects passed fds. A failure is reported on the report socket
 * (fd 3) as an ERROR record {step "sockets", errno, path, message}, like every other
 * launch step, and the program exits 1 without starting anything.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

#define MAX_SOCKETS 128

static void fail(int err, const char *path, const char *what) {
  report_error(CONTROL_FD, "sockets", err, path, "%s", what);
  _exit(1);
}

static long number(const char *s, int base, long max, const char *what) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, base);
  if (!*s || *end || errno || v < 0 || v > max) fail(EINVAL, NULL, what);
  return v;
}

static int socket_type(const char *s) {
  if (strcmp(s, "stream") == 0) return SOCK_STREAM;
  if (strcmp(s, "datagram") == 0) return SOCK_DGRAM;
  if (strcmp(s, "seq_packet") == 0) return SOCK_SEQPACKET;
  fail(EINVAL, NULL, "unknown socket type");
  return -1;
}

int main(int argc, char **argv) {
  if (argc < 4) fail(EINVAL, NULL, "usage: northstar-sockets <first-fd> <count> <sockets...> -- <program> <args...>");
  int first = (int)number(argv[1], 10, 1000, "bad first fd");
  int count = (int)number(argv[2], 10, MAX_SOCKETS, "bad socket count");
  if (argc < 3 + 6 * count + 2 || strcmp(argv[3 + 6 * count], "--") != 0) fail(EINVAL, NULL, "bad argument list");
  /* Create every socket at a free number first, then move them into place, so that a
   * socket never lands on a passed fd that is still to be moved. */
  int fds[MAX_SOCKETS];
  for (int i = 0; i < count; i++) {
    char **a = argv + 3 + 6 * i;
    const char *path = a[0];
    int type = socket_type(a[1]);
    mode_t mode = (mode_t)number(a[2], 8, 07777, "bad socket mode");
    long uid = strcmp(a[3], "-") == 0 ? -1 : number(a[3], 10, UINT_MAX - 1, "bad socket uid");
    long gid = strcmp(a[4], "-") == 0 ? -1 : number(a[4], 10, UINT_MAX - 1, "bad socket gid");
    int passcred = (int)number(a[5], 10, 1, "bad passcred flag");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) fail(ENAMETOOLONG, path, "socket path too long");
    strcpy(addr.sun_path, path);
    if (unlink(path) < 0 && errno != ENOENT) fail(errno, path, "removing a stale socket file failed");
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0) fail(errno, path, "socket() failed");
    if (fd < first + count) {
      int moved = fcntl(fd, F_DUPFD, first + count);
      if (moved < 0) fail(errno, path, "moving the socket fd failed");
      close(fd);
      fd = moved;
    }
    int on = 1;
    if (passcred && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) fail(errno, path, "SO_PASSCRED failed");
    /* The socket dir is shared with containers that have a `sockets` mount: never change a
     * file by path after bind() in a way that follows symlinks, or a container that swaps
     * the socket file for a link could have a host file chmod'ed or chown'ed. The mode comes
     * from the umask at creation; owner and the bits above 0777 change without following. */
    mode_t old_umask = umask(~mode & 0777);
    int bound = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    int bind_errno = errno;
    umask(old_umask);
    if (bound < 0) fail(bind_errno, path, "bind failed");
    if (type != SOCK_DGRAM && listen(fd, SOMAXCONN) < 0) fail(errno, path, "listen failed");
    if ((mode & 07000) && fchmodat(AT_FDCWD, path, mode, AT_SYMLINK_NOFOLLOW) < 0) fail(errno, path, "chmod of the socket file failed");
    if ((uid >= 0 || gid >= 0) && lchown(path, (uid_t)uid, (gid_t)gid) < 0) fail(errno, path, "chown of the socket file failed");
    fds[i] = fd;
  }
  for (int i = 0; i < count; i++) {
    if (dup2(fds[i], first + i) < 0) fail(errno, NULL, "placing a socket fd failed");
    close(fds[i]);
  }
  char **prog = argv + 3 + 6 * count + 1;
  execv(prog[0], prog);
  fail(errno, prog[0], "exec of the launch core failed");
  return 1;
}
