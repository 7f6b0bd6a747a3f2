/* hello-world: greets with the container's own identity (NORTHSTAR_CONTAINER, set by the
 * runtime), repeats it a few times a second apart and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void) {
  const char *me = getenv("NORTHSTAR_CONTAINER");
  if (!me) me = "unknown";
  printf("Hello again %s!\n", me);
  fflush(stdout);
  for (int i = 1; i <= 3; i++) {
    sleep(1);
    printf("...and hello again #%d %s ...\n", i, me);
    fflush(stdout);
  }
  printf("Goodbye from %s\n", me);
  return 0;
}
