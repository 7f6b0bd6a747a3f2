/* token-server: listens on localhost:6543. Each client sends "<user> <token>\n"; the
 * server asks the runtime to verify the token (made by <user> for target token-server
 * with the shared text "hello!") and answers "yay!" if it is Ok, else "nay!". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/nsconsole.h"

#define PORT 6543
#define SHARED_B64 "aGVsbG8h" /* base64("hello!") */

int main(void) {
  struct ns_console c;
  ns_connect(&c);

  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORT), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 8) < 0) {
    perror("token-server: listen on 127.0.0.1:6543");
    return 1;
  }
  printf("Listening on 127.0.0.1:%d\n", PORT);
  fflush(stdout);

  for (;;) {
    int conn = accept(s, NULL, NULL);
    if (conn < 0) continue;
    char line[512];
    size_t n = 0;
    while (n < sizeof line - 1) {
      ssize_t r = read(conn, line + n, 1);
      if (r <= 0 || line[n] == '\n') break;
      n++;
    }
    line[n] = 0;
    char *sp = strchr(line, ' ');
    const char *answer = "nay!\n";
    if (sp) {
      *sp = 0;
      const char *user = line, *token = sp + 1;
      char req[800];
      snprintf(req, sizeof req, "{\"token_verify\":{\"token\":\"%s\",\"user\":\"%s\",\"shared\":\"%s\"}}", token, user, SHARED_B64);
      char *resp = ns_request(&c, req);
      if (!resp) ns_die("the runtime closed the console (malformed token?)");
      char result[32] = "?";
      ns_string_field(resp, "token_verification", result, sizeof result);
      printf("Token from %s: %s\n", user, result);
      if (strcmp(result, "Ok") == 0) answer = "yay!\n";
      free(resp);
    } else {
      printf("Malformed request: %s\n", line);
    }
    fflush(stdout);
    ns_write_all(conn, answer, strlen(answer));
    close(conn);
  }
}
