/* Cure53 ESR-01-014: the container must never reach a writable host binary through
 * /proc/1/exe. Before doing anything else the core copies its own binary into a memfd,
 * seals it against any change (F_SEAL_WRITE|GROW|SHRINK|SEAL) and re-executes itself
 * from it, so init (a clone of this process) and its /proc/<pid>/exe refer to an
 * anonymous, immutable file. The check is by seals, not by an environment variable, so
 * it cannot be skipped by the caller. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int sealed_copy(int src, off_t size) {
  int mfd = memfd_create("northstar-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = memfd_create("northstar-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) return -1;
  off_t off = 0;
  while (off < size) {
    ssize_t n = sendfile(mfd, src, &off, (size_t)(size - off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      close(mfd);
      errno = e;
      return -1;
    }
  }
  if (fcntl(mfd, F_ADD_SEALS, REQUIRED_SEALS) < 0) {
    int e = errno;
    close(mfd);
    errno = e;
    return -1;
  }
  return mfd;
}

int ensure_sealed_exe(char **argv, char **envp) {
  int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (self < 0) return fail_step("rexec", errno, "/proc/self/exe", "cannot open own binary");
  int seals = fcntl(self, F_GET_SEALS);
  if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS) {
    close(self);
    return 0; /* already running from the sealed copy */
  }
  struct stat st;
  if (fstat(self, &st) < 0) {
    int e = errno;
    close(self);
    return fail_step("rexec", e, "/proc/self/exe", "cannot stat own binary");
  }
  int mfd = sealed_copy(self, st.st_size);
  int e = errno;
  close(self);
  if (mfd < 0) return fail_step("rexec", e, "/proc/self/exe", "copying own binary into a sealed memfd failed");
  fexecve(mfd, argv, envp);
  e = errno;
  close(mfd);
  return fail_step("rexec", e, NULL, "fexecve of the sealed copy failed");
}
