/* Times a command the way a small native caller runs it: posix_spawn, then waitpid.
 * Usage: spawn-timer <n> <command> [args...]; prints the n durations in ms, one per line
 * (the command's stdout goes to /dev/null; its stderr is passed through).
 * The benchmarks use it for the cold-unshare and runc references without the cost of a
 * spawn from Node (which forks the whole benchmark process) in the figure. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: spawn-timer <n> <command> [args...]\n");
    return 2;
  }
  int n = atoi(argv[1]);
  /* The command's output is not ours: it goes to /dev/null, so stdout holds the times only. */
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  for (int i = 0; i < n; i++) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid;
    if (posix_spawn(&pid, argv[2], &fa, NULL, argv + 2, environ) != 0) {
      perror("posix_spawn");
      return 1;
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "spawn-timer: %s did not exit 0\n", argv[2]);
      return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6);
  }
  return 0;
}
