/* northstar-memfd: stores one upload in a sealed memfd for a mem repository.
 *
 *   northstar-memfd <name> <size>
 *
 * Reads exactly <size> bytes from stdin into a new memfd, seals it (no shrink, grow or
 * write, and no further seals), prints "<fd>\n" on stdout and then waits until fd 3 (a
 * pipe from the runtime) closes. Meanwhile the runtime opens /proc/<pid>/fd/<fd> read-only:
 * that open file keeps the sealed memory alive after this program exits. Node has no memfd_create(2), hence
 * this helper. A short upload or any failure exits 1 with one line on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *what) {
  fprintf(stderr, "northstar-memfd: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: northstar-memfd <name> <size>\n");
    return 2;
  }
  char *end;
  errno = 0;
  unsigned long long size = strtoull(argv[2], &end, 10);
  if (!*argv[2] || *end || errno) {
    fprintf(stderr, "northstar-memfd: invalid size '%s'\n", argv[2]);
    return 2;
  }
  int fd = memfd_create(argv[1], MFD_ALLOW_SEALING);
  if (fd < 0) return fail("memfd_create");
  static char buf[1 << 16];
  unsigned long long done = 0;
  while (done < size) {
    size_t want = size - done < sizeof buf ? (size_t)(size - done) : sizeof buf;
    ssize_t n = read(0, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("reading the upload");
    if (n == 0) {
      fprintf(stderr, "northstar-memfd: the upload ended after %llu of %llu bytes\n", done, size);
      return 1;
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(fd, buf + off, (size_t)(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail("writing the memfd");
      off += w;
    }
    done += (unsigned long long)n;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) return fail("sealing");
  printf("%d\n", fd);
  if (fflush(stdout) != 0) return fail("writing stdout");
  /* Stay until the runtime has opened the memfd and closes fd 3. */
  for (;;) {
    ssize_t n = read(3, buf, sizeof buf);
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    break;
  }
  return 0;
}
