/* net-private.h -- helpers shared between files of the C core, not for C hosts. */
#ifndef NET_PRIVATE_H
#define NET_PRIVATE_H

#include <netdb.h>
#include "net.h"

/* resolver.c: the hints net's lookups use for FAMILY (0, 4 or 6), and the
 * addresses of a getaddrinfo result (without duplicates, at most MAX) with
 * its canonical name; the count, or NET_EAI_NODATA when none is usable. */
void net__addrinfo_hints(struct addrinfo *hints, int family);
int net__addrinfo_collect(const struct addrinfo *res, net_ip_addr *out, int max, char *canon,
                          size_t canon_size);

#endif
