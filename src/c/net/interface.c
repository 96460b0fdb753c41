/* interface.c -- the network interfaces and their addresses: getifaddrs(3). */
#include "net.h"

#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* The number of leading one bits of the LEN octets of MASK. */
static int net__prefix_length(const uint8_t *mask, int len) {
  int bits = 0, i;
  for (i = 0; i < len; i++) {
    uint8_t m = mask[i];
    while (m & 0x80) {
      bits++;
      m = (uint8_t) (m << 1);
    }
    if (mask[i] != 0xff)
      break;
  }
  return bits;
}

/* The octets of SA (AF_INET or AF_INET6) into OUT; their count, or 0. */
static int net__sa_octets(const struct sockaddr *sa, int family, uint8_t *out) {
  if (!sa || sa->sa_family != family)
    return 0;
  if (family == AF_INET) {
    memcpy(out, &((const struct sockaddr_in *) sa)->sin_addr, 4);
    return 4;
  }
  memcpy(out, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
  return 16;
}

/* One entry of the getifaddrs list as an net_ifaddr; 0 if it is left out. */
static int net__ifaddr_entry(const struct ifaddrs *ifa, net_ifaddr *e) {
  int family = ifa->ifa_addr ? ifa->ifa_addr->sa_family : 0;
  uint8_t mask[16] = {0};
  memset(e, 0, sizeof(*e));
  if (family != AF_INET && family != AF_INET6)
    family = 0;
  /* Linux lists each interface once with an AF_PACKET address: that entry,
   * or one without an address, stands for the interface itself. */
  if (family == 0 && ifa->ifa_addr && ifa->ifa_addr->sa_family != AF_PACKET)
    return 0;
  strncpy(e->name, ifa->ifa_name, NET_IFNAME_MAX - 1);
  e->index = if_nametoindex(ifa->ifa_name);
  e->flags = ifa->ifa_flags;
  e->family = family;
  if (family == 0)
    return 1;
  net__sa_octets(ifa->ifa_addr, family, e->addr);
  if (net__sa_octets(ifa->ifa_netmask, family, mask))
    e->prefix = net__prefix_length(mask, family == AF_INET ? 4 : 16);
  if (family == AF_INET6)
    e->scope_id = ((const struct sockaddr_in6 *) ifa->ifa_addr)->sin6_scope_id;
  if ((ifa->ifa_flags & IFF_BROADCAST) && net__sa_octets(ifa->ifa_broadaddr, family, e->other))
    e->other_kind = NET_IFADDR_BROADCAST;
  else if ((ifa->ifa_flags & IFF_POINTOPOINT) && net__sa_octets(ifa->ifa_dstaddr, family, e->other))
    e->other_kind = NET_IFADDR_DESTINATION;
  /* Without a broadcast address configured, glibc reports the address
   * itself in its place: that is none. */
  if (memcmp(e->other, e->addr, family == AF_INET ? 4 : 16) == 0)
    e->other_kind = NET_IFADDR_NONE;
  return 1;
}

int net_interface_list(net_ifaddr *out, int max) {
  struct ifaddrs *list, *ifa;
  net_ifaddr e;
  int n = 0;
  if (getifaddrs(&list) < 0)
    return -errno;
  for (ifa = list; ifa; ifa = ifa->ifa_next) {
    if (!net__ifaddr_entry(ifa, &e))
      continue;
    if (n < max)
      out[n] = e;
    n++;
  }
  freeifaddrs(list);
  return n;
}

int net_interface_name(unsigned index, char buf[NET_IFNAME_MAX]) {
  char name[IF_NAMESIZE];
  if (index == 0 || !if_indextoname(index, name))
    return NET_ENODEV;
  memcpy(buf, name, NET_IFNAME_MAX - 1);
  buf[NET_IFNAME_MAX - 1] = 0;
  return 0;
}
