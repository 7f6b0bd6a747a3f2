/* hello-resource: prints the content of /message/hello (from the message resource) once
 * a second, numbered. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  for (unsigned long i = 0;; i++) {
    FILE *f = fopen("/message/hello", "r");
    if (!f) {
      perror("hello-resource: /message/hello");
      return 1;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    printf("%lu: Content of /message/hello: %s\n", i, buf);
    fflush(stdout);
    sleep(1);
  }
}
