/* console: talks to the runtime over its console fd: asks who it is (ident), shows that
 * a request outside its permissions is denied (repositories), lists the installed
 * containers with their state (list, inspect) and finally kills itself with SIGTERM
 * through the console. The runtime reports the exit as Signalled(15). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/nsconsole.h"

int main(void) {
  printf("Console fd is %s\n", getenv("NORTHSTAR_CONSOLE") ? getenv("NORTHSTAR_CONSOLE") : "not set");
  printf("Connecting...\n");
  struct ns_console c;
  ns_connect(&c);

  char *r = ns_request(&c, "\"ident\"");
  char me[1200];
  if (!r || !ns_string_field(r, "ident", me, sizeof me)) ns_die("no ident response");
  printf("We are %s\n", me);
  free(r);

  r = ns_request(&c, "\"repositories\"");
  if (!r) ns_die("no repositories response");
  printf("Listing repositories is %s: %s\n", strstr(r, "\"permission_denied\"") ? "denied" : "allowed", r);
  free(r);

  /* {"response":{"list":["a:0.0.1","b:1.0.0"]}}: the strings between the brackets. */
  char *list = ns_request(&c, "\"list\"");
  if (!list) ns_die("no list response");
  char *p = strchr(list, '[');
  while (p && (p = strchr(p, '"'))) {
    char *end = strchr(p + 1, '"');
    if (!end) break;
    *end = 0;
    char req[1400];
    snprintf(req, sizeof req, "{\"inspect\":{\"container\":\"%s\"}}", p + 1);
    r = ns_request(&c, req);
    if (!r) ns_die("no inspect response");
    /* "process":null when it is not running, an object when it is. */
    printf("%s is %s\n", p + 1, strstr(r, "\"process\":{") ? "started" : "stopped");
    free(r);
    p = end + 1;
  }
  free(list);

  printf("Killing %s with SIGTERM\n", me);
  fflush(stdout);
  char req[1400];
  snprintf(req, sizeof req, "{\"kill\":{\"container\":\"%s\",\"signal\":%d}}", me, SIGTERM);
  r = ns_request(&c, req);
  /* The SIGTERM may arrive before the response; if not, wait for it here. */
  if (r && strstr(r, "\"ok\"") == NULL) {
    fprintf(stderr, "console: kill refused: %s\n", r);
    return 1;
  }
  for (;;) pause();
}
