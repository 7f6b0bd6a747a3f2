/* console: talks to the runtime over its console fd: asks who it is (ident), lists the
 * installed containers, inspects itself and finally kills itself with SIGTERM through the
 * console. The runtime reports the exit as Signalled(15). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/nsconsole.h"

int main(void) {
  struct ns_console c;
  ns_connect(&c);

  char *r = ns_request(&c, "\"ident\"");
  char me[1200];
  if (!r || !ns_string_field(r, "ident", me, sizeof me)) ns_die("no ident response");
  printf("We are %s\n", me);
  free(r);

  r = ns_request(&c, "\"list\"");
  if (!r) ns_die("no list response");
  printf("Containers: %s\n", r);
  free(r);

  char req[1400];
  snprintf(req, sizeof req, "{\"inspect\":{\"container\":\"%s\"}}", me);
  r = ns_request(&c, req);
  if (!r) ns_die("no inspect response");
  printf("Inspect %s: %s\n", me, r);
  free(r);

  printf("Killing %s with SIGTERM\n", me);
  fflush(stdout);
  snprintf(req, sizeof req, "{\"kill\":{\"container\":\"%s\",\"signal\":%d}}", me, SIGTERM);
  r = ns_request(&c, req);
  /* The SIGTERM may arrive before the response; if not, wait for it here. */
  if (r && strstr(r, "\"ok\"") == NULL) {
    fprintf(stderr, "console: kill refused: %s\n", r);
    return 1;
  }
  for (;;) pause();
}
