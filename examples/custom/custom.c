/* custom: reads the `custom` section of its own manifest through console inspect and
 * prints "hello <custom.properties.hello>", i.e. "hello again". */
#include <stdio.h>
#include <string.h>

#include "../common/nsconsole.h"

int main(void) {
  struct ns_console c;
  ns_connect(&c);
  char *r = ns_request(&c, "\"ident\"");
  char me[1200];
  if (!r || !ns_string_field(r, "ident", me, sizeof me)) ns_die("no ident response");
  free(r);

  char req[1400];
  snprintf(req, sizeof req, "{\"inspect\":{\"container\":\"%s\"}}", me);
  r = ns_request(&c, req);
  if (!r) ns_die("no inspect response");
  const char *custom = strstr(r, "\"custom\":");
  char hello[256];
  if (!custom || !ns_string_field(custom, "hello", hello, sizeof hello)) {
    fprintf(stderr, "custom: no custom.properties.hello in the manifest of %s: %s\n", me, r);
    return 1;
  }
  printf("hello %s\n", hello);
  free(r);
  return 0;
}
