/* persistence: writes "Hello!" to /data/file (a persist mount) and reads it back. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  const char *path = "/data/file", *text = "Hello!";
  printf("Writing %s to %s\n", text, path);
  fflush(stdout);
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
    perror("persistence: writing /data/file");
    return 1;
  }
  char buf[256] = {0};
  f = fopen(path, "r");
  if (!f) {
    perror("persistence: reading /data/file");
    return 1;
  }
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  printf("Content of %s: %s\n", path, buf);
  fflush(stdout);
  for (;;) pause();
}
