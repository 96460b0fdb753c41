/* address.c -- numeric IP literals and socket addresses. */
#include "net.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define NET__MAX_LITERAL 64

/* Copies TEXT into BUF as a C string, refusing embedded NULs (which would
 * silently truncate the text in libc). */
static int net__cstring(const char *text, size_t len, char *buf, size_t size) {
  if (len == 0 || len >= size || memchr(text, '\0', len))
    return NET_EINVAL;
  memcpy(buf, text, len);
  buf[len] = '\0';
  return 0;
}

static int net__parse_scope(const char *zone, uint32_t *scope_id) {
  unsigned idx;
  if (*zone == '\0')
    return NET_EINVAL;
  idx = if_nametoindex(zone);
  if (idx == 0) {
    char *end;
    unsigned long n = strtoul(zone, &end, 10);
    if (*end != '\0' || zone[0] < '0' || zone[0] > '9' || n == 0 || n > UINT32_MAX)
      return NET_EINVAL;
    idx = (unsigned) n;
  }
  *scope_id = idx;
  return 0;
}

int net_ip_parse(const char *text, size_t len, uint8_t octets[16], uint32_t *scope_id) {
  char buf[NET__MAX_LITERAL];
  char *pct;

  if (scope_id)
    *scope_id = 0;
  if (net__cstring(text, len, buf, sizeof(buf)) < 0)
    return NET_EINVAL;
  /* inet_pton(AF_INET) takes only four decimal parts with no leading zeros,
   * unlike inet_aton, which takes "1.2.3" and octal. */
  if (inet_pton(AF_INET, buf, octets) == 1)
    return 4;
  pct = strchr(buf, '%');
  if (pct) {
    *pct = '\0';
    if (!scope_id || net__parse_scope(pct + 1, scope_id) < 0)
      return NET_EINVAL;
  }
  if (inet_pton(AF_INET6, buf, octets) == 1)
    return 16;
  return NET_EINVAL;
}

int net_sockaddr_make(net_sockaddr *out, const uint8_t *octets, size_t n,
                      uint32_t scope_id, int port) {
  memset(out, 0, sizeof(*out));
  if (port < 0 || port > 65535)
    return NET_EINVAL;
  if (n == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *) &out->u.ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t) port);
    memcpy(&in->sin_addr, octets, 4);
    out->len = sizeof(*in);
    return 0;
  }
  if (n == 16) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &out->u.ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t) port);
    in6->sin6_scope_id = scope_id;
    memcpy(&in6->sin6_addr, octets, 16);
    out->len = sizeof(*in6);
    return 0;
  }
  return NET_EINVAL;
}

int net_sockaddr_split(const net_sockaddr *sa, uint8_t octets[16],
                       uint32_t *scope_id, int *port) {
  *scope_id = 0;
  *port = 0;
  if (sa->u.sa.sa_family == AF_INET && sa->len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *) &sa->u.ss;
    memcpy(octets, &in->sin_addr, 4);
    *port = ntohs(in->sin_port);
    return 4;
  }
  if (sa->u.sa.sa_family == AF_INET6 && sa->len >= sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &sa->u.ss;
    memcpy(octets, &in6->sin6_addr, 16);
    *scope_id = in6->sin6_scope_id;
    *port = ntohs(in6->sin6_port);
    return 16;
  }
  return NET_EAFNOSUPPORT;
}
