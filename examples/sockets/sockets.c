/* sockets: the runtime created the datagram socket "hello" of the manifest and passed its
 * bound fd in NORTHSTAR_SOCKET_hello. The app sends "Hello!" to that socket through its
 * file under the sockets mount and receives it on the fd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(void) {
  const char *env = getenv("NORTHSTAR_SOCKET_hello");
  const char *me = getenv("NORTHSTAR_CONTAINER");
  if (!env || !me) {
    fprintf(stderr, "sockets: NORTHSTAR_SOCKET_hello or NORTHSTAR_CONTAINER is not set\n");
    return 1;
  }
  int server = atoi(env);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  snprintf(addr.sun_path, sizeof addr.sun_path, "/unix-sockets/%s:hello", me);
  printf("Connecting to %s\n", addr.sun_path);
  fflush(stdout);
  int client = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (client < 0 || connect(client, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("sockets: connect");
    return 1;
  }
  if (send(client, "Hello!", 6, 0) != 6) {
    perror("sockets: send");
    return 1;
  }
  char buf[64];
  ssize_t n = recv(server, buf, sizeof buf - 1, 0);
  if (n < 0) {
    perror("sockets: recv");
    return 1;
  }
  buf[n] = 0;
  printf("Received %s\n", buf);
  fflush(stdout);
  for (;;) pause();
}
