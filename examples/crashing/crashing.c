/* crashing: dies like a panicking Rust program: the panic message on stderr, exit code 101. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  printf("Crashing in a moment\n");
  fflush(stdout);
  fprintf(stderr, "thread 'main' panicked at examples/crashing/crashing.c:%d:5:\nBoom!\n", __LINE__);
  fprintf(stderr, "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
  exit(101);
}
