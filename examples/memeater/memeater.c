/* memeater: eats memory 1 MiB at a time until the kernel's OOM killer ends it inside its
 * memory cgroup (memory_hard_limit 10 MB, no swap).
 *
 * Near the limit the only reclaimable pages left in the cgroup are this binary's own
 * text (read from the squashfs image). The kernel would evict and re-read them over and
 * over, which counts as progress, so the OOM kill could take many seconds or never come.
 * Locking what is mapped now (text, data, stack; well below RLIMIT_MEMLOCK) leaves
 * nothing to reclaim: the cgroup runs out at once. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(void) {
  if (mlockall(MCL_CURRENT) != 0)
    fprintf(stderr, "memeater: mlockall: %s (the OOM kill may take a while)\n", strerror(errno));
  const size_t chunk = 1 << 20;
  for (unsigned long mib = 1;; mib++) {
    /* Populated by the kernel in one go: every page is charged to the cgroup now. */
    void *p = mmap(NULL, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED) {
      perror("memeater: mmap");
      return 1;
    }
    printf("Eaten %lu MiB\n", mib);
    fflush(stdout);
  }
}
