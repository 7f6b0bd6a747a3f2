/* netns: prints the network interfaces it sees (name, index, flags, IPv4 addresses), i.e.
 * those of the network namespace named in its manifest. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  struct if_nameindex *ifs = if_nameindex();
  if (!ifs) {
    perror("netns: if_nameindex");
    return 1;
  }
  printf("Interfaces in this network namespace:\n");
  struct ifaddrs *addrs = NULL;
  if (getifaddrs(&addrs) != 0) addrs = NULL;
  for (struct if_nameindex *i = ifs; i->if_index != 0; i++) {
    unsigned flags = 0;
    char v4[512] = "";
    size_t used = 0;
    for (struct ifaddrs *a = addrs; a; a = a->ifa_next) {
      if (strcmp(a->ifa_name, i->if_name) != 0) continue;
      flags = a->ifa_flags;
      if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && used + 24 < sizeof v4) {
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, ip, sizeof ip);
        used += (size_t)snprintf(v4 + used, sizeof v4 - used, " inet %s", ip);
      }
    }
    printf("%u: %s%s%s%s\n", i->if_index, i->if_name, (flags & IFF_UP) ? " UP" : " DOWN", (flags & IFF_LOOPBACK) ? " LOOPBACK" : "", v4);
  }
  if (addrs) freeifaddrs(addrs);
  if_freenameindex(ifs);
  printf("netns: done\n");
  return 0;
}
