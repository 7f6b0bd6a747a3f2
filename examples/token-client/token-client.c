/* token-client: asks the runtime for a token for target token-server (shared "hello!"),
 * sends "token-client <token>\n" to the server on localhost:6543 and prints its answer
 * ("Received: yay!" when the server's runtime verified the token). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/nsconsole.h"

int main(void) {
  struct ns_console c;
  ns_connect(&c);
  char *r = ns_request(&c, "\"ident\"");
  char me[1200], name[1200];
  if (!r || !ns_string_field(r, "ident", me, sizeof me)) ns_die("no ident response");
  free(r);
  strcpy(name, me);
  char *colon = strchr(name, ':');
  if (colon) *colon = 0;

  r = ns_request(&c, "{\"token_create\":{\"target\":\"token-server\",\"shared\":\"aGVsbG8h\"}}");
  char token[128];
  if (!r || !ns_string_field(r, "token", token, sizeof token)) {
    fprintf(stderr, "token-client: no token: %s\n", r ? r : "console closed");
    return 1;
  }
  free(r);
  printf("Created token %s\n", token);
  fflush(stdout);

  /* The server may still be starting: retry the connection for up to 10 s. */
  int s = -1;
  for (int attempt = 0; attempt < 100; attempt++) {
    s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(6543), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) break;
    close(s);
    s = -1;
    usleep(100000);
  }
  if (s < 0) {
    perror("token-client: connect to 127.0.0.1:6543");
    return 1;
  }
  char msg[256];
  snprintf(msg, sizeof msg, "%s %s\n", name, token);
  ns_write_all(s, msg, strlen(msg));
  char answer[64];
  ssize_t n = read(s, answer, sizeof answer - 1);
  close(s);
  if (n <= 0) {
    fprintf(stderr, "token-client: no answer from the server\n");
    return 1;
  }
  answer[n] = 0;
  answer[strcspn(answer, "\n")] = 0;
  printf("Received: %s\n", answer);
  return 0;
}
