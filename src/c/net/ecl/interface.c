/* interface.c -- glue for the list of network interfaces and their names. */
#include "netsys.h"

#include <net/if.h>
#include <string.h>

#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif
#ifndef IFF_DORMANT
#define IFF_DORMANT 0x20000
#endif

static const struct {
  unsigned bit;
  const char *keyword;
} netsys__if_flags[] = {
    {IFF_UP, "UP"},
    {IFF_BROADCAST, "BROADCAST"},
    {IFF_DEBUG, "DEBUG"},
    {IFF_LOOPBACK, "LOOPBACK"},
    {IFF_POINTOPOINT, "POINT-TO-POINT"},
    {IFF_NOTRAILERS, "NO-TRAILERS"},
    {IFF_RUNNING, "RUNNING"},
    {IFF_NOARP, "NO-ARP"},
    {IFF_PROMISC, "PROMISCUOUS"},
    {IFF_ALLMULTI, "ALL-MULTICAST"},
    {IFF_MASTER, "MASTER"},
    {IFF_SLAVE, "SLAVE"},
    {IFF_MULTICAST, "MULTICAST"},
    {IFF_PORTSEL, "PORT-SELECT"},
    {IFF_AUTOMEDIA, "AUTOMEDIA"},
    {IFF_DYNAMIC, "DYNAMIC"},
    {IFF_LOWER_UP, "LOWER-UP"},
    {IFF_DORMANT, "DORMANT"},
};

/* The IFF_ bits of FLAGS as a list of keywords, in the table's order. */
static cl_object flag_list(unsigned flags) {
  cl_object list = ECL_NIL;
  int i = (int) (sizeof(netsys__if_flags) / sizeof(netsys__if_flags[0]));
  while (i-- > 0)
    if (flags & netsys__if_flags[i].bit)
      list = ecl_cons(ecl_make_keyword(netsys__if_flags[i].keyword), list);
  return list;
}

/* (name index flags) for an interface entry, and for an address
 * (name index flags octets prefix other-kind other scope). */
static cl_object ifaddr_list(const net_ifaddr *e) {
  cl_object head = cl_list(3, ecl_make_simple_base_string(e->name, -1),
                           ecl_make_integer(e->index), flag_list(e->flags));
  int n = e->family == AF_INET ? 4 : 16;
  cl_object kind = e->other_kind == NET_IFADDR_BROADCAST     ? ecl_make_keyword("BROADCAST")
                   : e->other_kind == NET_IFADDR_DESTINATION ? ecl_make_keyword("DESTINATION")
                                                             : ECL_NIL;
  if (e->family == 0)
    return head;
  return ecl_append(head, cl_list(5, netsys_octet_vector(e->addr, n), ecl_make_fixnum(e->prefix),
                                  kind, Null(kind) ? ECL_NIL : netsys_octet_vector(e->other, n),
                                  ecl_make_integer(e->scope_id)));
}

/* Every interface and address, as lists (see above), in the system's order.
 * The entries go to collected memory, so that nothing leaks if converting
 * them is interrupted. */
cl_object netsys_interfaces(void) {
  net_ifaddr *v = NULL;
  int max = 0, n, i, tries;
  cl_object list = ECL_NIL;
  for (tries = 0; tries < 4; tries++) {
    n = net_interface_list(v, max);
    if (n < 0)
      netsys_raise(n, "getifaddrs", ECL_NIL);
    if (n <= max)
      break;
    /* Interfaces came and went between two calls: make more room. */
    max = n + 8;
    v = (net_ifaddr *) ecl_alloc_atomic(sizeof(net_ifaddr) * (size_t) max);
  }
  if (n > max)
    n = max;
  for (i = n - 1; i >= 0; i--)
    list = ecl_cons(ifaddr_list(&v[i]), list);
  return list;
}

/* The name of the interface of INDEX, or NIL if there is none. */
cl_object netsys_interface_name(cl_object index) {
  char buf[NET_IFNAME_MAX];
  int i = netsys__int(index, 0, INT32_MAX, "(INTEGER 0 2147483647)");
  if (net_interface_name((unsigned) i, buf) < 0)
    return ECL_NIL;
  return ecl_make_simple_base_string(buf, -1);
}
