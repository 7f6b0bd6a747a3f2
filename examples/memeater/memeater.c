/* memeater: allocates and touches memory 1 MiB at a time until the kernel's OOM killer
 * ends it inside its memory cgroup (memory_hard_limit 10 MB, no swap). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  const size_t chunk = 1 << 20;
  for (unsigned long mib = 1;; mib++) {
    char *p = malloc(chunk);
    if (!p) {
      fprintf(stderr, "memeater: malloc failed after %lu MiB\n", mib - 1);
      return 1;
    }
    memset(p, (int)mib, chunk); /* touch every page so it is really charged */
    printf("Eaten %lu MiB\n", mib);
    fflush(stdout);
    usleep(10000);
  }
}
