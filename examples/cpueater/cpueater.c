/* cpueater: THREADS busy threads (env, default 4) that never sleep, so the cgroup's
 * cpu.shares decides how much CPU the container gets against others. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile unsigned long counters[64];

static void *eat(void *arg) {
  volatile unsigned long *n = arg;
  for (;;) (*n)++;
  return NULL;
}

int main(void) {
  const char *env = getenv("THREADS");
  char *end = NULL;
  long threads = env ? strtol(env, &end, 10) : 4;
  if (env && (*env == 0 || *end != 0 || threads < 1 || threads > 64)) {
    fprintf(stderr, "cpueater: THREADS must be a number from 1 to 64, not \"%s\"\n", env);
    return 1;
  }
  for (long i = 0; i < threads; i++) {
    pthread_t t;
    int rc = pthread_create(&t, NULL, eat, (void *)&counters[i]);
    if (rc) {
      fprintf(stderr, "cpueater: thread %ld: %s\n", i, strerror(rc));
      return 1;
    }
  }
  /* Only now: whoever sees this line finds every eating thread in the cgroup. */
  printf("Eating CPU with %ld threads\n", threads);
  fflush(stdout);
  for (;;) {
    sleep(5);
    unsigned long sum = 0;
    for (long i = 0; i < threads; i++) sum += counters[i];
    printf("Eating CPU: %lu loop iterations so far\n", sum);
    fflush(stdout);
  }
}
