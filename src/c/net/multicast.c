/* multicast.c -- joining and leaving IP multicast groups, IPv4 and IPv6,
 * any-source and source-specific; interface names and indexes. */
#include "net.h"

#include <errno.h>
#include <string.h>
#include <net/if.h>
#include <netinet/in.h>

int net_interface_index(const char *name) {
  unsigned idx = if_nametoindex(name);
  if (idx == 0)
    return errno ? -errno : NET_ENODEV;
  return idx > INT32_MAX ? NET_ENODEV : (int) idx;
}

/* IPv4 any-source: ip_mreqn, by interface address and/or index. */
static int net__mcast_v4(int fd, int join, const uint8_t group[4], const uint8_t *ifaddr,
                         int ifindex) {
  struct ip_mreqn m;
  memset(&m, 0, sizeof m);
  memcpy(&m.imr_multiaddr, group, 4);
  if (ifaddr)
    memcpy(&m.imr_address, ifaddr, 4);
  m.imr_ifindex = ifindex;
  return net_socket_setopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                           &m, sizeof m);
}

/* IPv4 source-specific by interface address: ip_mreq_source. */
static int net__mcast_v4_source(int fd, int join, const uint8_t group[4], const uint8_t *ifaddr,
                                const uint8_t source[4]) {
  struct ip_mreq_source m;
  memset(&m, 0, sizeof m);
  memcpy(&m.imr_multiaddr, group, 4);
  if (ifaddr)
    memcpy(&m.imr_interface, ifaddr, 4);
  memcpy(&m.imr_sourceaddr, source, 4);
  return net_socket_setopt(fd, IPPROTO_IP,
                           join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP,
                           &m, sizeof m);
}

/* IPv6 any-source: ipv6_mreq, by interface index. */
static int net__mcast_v6(int fd, int join, const uint8_t group[16], int ifindex) {
  struct ipv6_mreq m;
  memset(&m, 0, sizeof m);
  memcpy(&m.ipv6mr_multiaddr, group, 16);
  m.ipv6mr_interface = (unsigned) ifindex;
  return net_socket_setopt(fd, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                           &m, sizeof m);
}

/* Source-specific by interface index, either family: group_source_req. */
static int net__mcast_source_group(int fd, int v6, int join, const uint8_t *group,
                                   int ifindex, const uint8_t *source) {
  struct group_source_req g;
  size_t n = v6 ? 16 : 4;
  net_sockaddr ga, sa;
  if (net_sockaddr_make(&ga, group, n, 0, 0) < 0 || net_sockaddr_make(&sa, source, n, 0, 0) < 0)
    return NET_EINVAL;
  memset(&g, 0, sizeof g);
  g.gsr_interface = (uint32_t) ifindex;
  memcpy(&g.gsr_group, &ga.u.ss, ga.len);
  memcpy(&g.gsr_source, &sa.u.ss, sa.len);
  return net_socket_setopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP,
                           join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                           &g, sizeof g);
}

int net_multicast_membership(int fd, int family, int join, const uint8_t *group,
                             const uint8_t *ifaddr, int ifindex, const uint8_t *source) {
  if (ifindex < 0)
    return NET_EINVAL;
  if (family == AF_INET) {
    if (!source)
      return net__mcast_v4(fd, join, group, ifaddr, ifindex);
    if (ifindex == 0)
      return net__mcast_v4_source(fd, join, group, ifaddr, source);
    return net__mcast_source_group(fd, 0, join, group, ifindex, source);
  }
  if (family == AF_INET6) {
    if (ifaddr)
      return NET_EINVAL;
    if (!source)
      return net__mcast_v6(fd, join, group, ifindex);
    return net__mcast_source_group(fd, 1, join, group, ifindex, source);
  }
  return NET_EAFNOSUPPORT;
}

int net_multicast_interface_v4(int fd, const uint8_t *ifaddr, int ifindex) {
  struct ip_mreqn m;
  if (ifindex < 0)
    return NET_EINVAL;
  memset(&m, 0, sizeof m);
  if (ifaddr)
    memcpy(&m.imr_address, ifaddr, 4);
  m.imr_ifindex = ifindex;
  return net_socket_setopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &m, sizeof m);
}
