/* resolver.c -- host names, services and protocols: getaddrinfo,
 * getnameinfo and the reentrant netdb lookups, with strict name checks. */
#include "net-private.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

/* The resolver rows of errors.def are -3000 + glibc's EAI_x values. */
#define NET__EAI_SAME(x) (NET_##x == -3000 + (x))
typedef char net__eai_values_match[
    (NET__EAI_SAME(EAI_NONAME) && NET__EAI_SAME(EAI_AGAIN) && NET__EAI_SAME(EAI_FAIL) &&
     NET__EAI_SAME(EAI_NODATA) && NET__EAI_SAME(EAI_FAMILY) && NET__EAI_SAME(EAI_SOCKTYPE) &&
     NET__EAI_SAME(EAI_SERVICE) && NET__EAI_SAME(EAI_ADDRFAMILY) &&
     NET__EAI_SAME(EAI_MEMORY) && NET__EAI_SAME(EAI_SYSTEM) && NET__EAI_SAME(EAI_OVERFLOW))
        ? 1 : -1];

/* Buffer for the *_r lookups; /etc/services lines are short. */
#define NET__NETDB_BUF 4096

int net_resolver_code(int eai) {
  if (eai <= EAI_NONAME && eai >= EAI_OVERFLOW)
    return -3000 + eai;
  return NET_EAI_FAIL;
}

const char *net_resolver_strerror(int code) {
  if (code <= -3001 && code >= -3099)
    return gai_strerror(code + 3000);
  return net_strerror(code);
}

/* Would inet_aton (which getaddrinfo uses for numeric names) take NAME? */
static int net__libc_numeric(const char *name) {
  struct in_addr a;
  return inet_aton(name, &a) != 0;
}

/* Labels of 1 to 63 printable ASCII characters, 253 in all (one more for a
 * final dot). */
static const char *net__host_chars(const char *name, size_t len) {
  size_t i, label = 0;
  if (len == 0)
    return "the host name is empty";
  if (len > 254 || (len == 254 && name[253] != '.'))
    return "the host name is longer than 253 characters";
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char) name[i];
    if (c == '\0')
      return "the host name contains a NUL character";
    if (c <= ' ' || c >= 0x7f)
      return "the host name contains white space, a control or a non-ASCII character"
             " (use the ASCII, punycode form)";
    if (c != '.')
      label++;
    else if (label == 0)
      return "the host name has an empty label (two dots, or a leading dot)";
    else
      label = 0;
    if (label > 63)
      return "a label of the host name is longer than 63 characters";
  }
  return NULL;
}

int net_host_check(const char *name, size_t len, net_ip_addr *literal, const char **why) {
  char buf[256];
  const char *w = net__host_chars(name, len);
  int n;
  *why = w;
  if (w)
    return NET_EINVAL;
  memcpy(buf, name, len);
  buf[len] = '\0';
  if (strspn(buf, "0123456789.") != len && !strpbrk(buf, ":%") && !net__libc_numeric(buf))
    return 0; /* a name, not a number */
  n = net_ip_parse_why(name, len, literal->octets, &literal->scope_id, why);
  if (n < 0)
    return NET_EINVAL;
  literal->len = n;
  return n;
}

static int net__same_addr(const net_ip_addr *a, const net_ip_addr *b) {
  return a->len == b->len && a->scope_id == b->scope_id && memcmp(a->octets, b->octets, 16) == 0;
}

/* Appends the address of AI to OUT unless it is there already. */
static int net__add_ai(const struct addrinfo *ai, net_ip_addr *out, int count) {
  net_ip_addr a;
  net_sockaddr sa;
  int i, port;
  memset(&a, 0, sizeof(a));
  if (ai->ai_addrlen > sizeof(sa.u.ss))
    return count;
  sa.len = ai->ai_addrlen;
  memcpy(&sa.u.ss, ai->ai_addr, ai->ai_addrlen);
  a.len = net_sockaddr_split(&sa, a.octets, &a.scope_id, &port);
  if (a.len < 0)
    return count;
  for (i = 0; i < count; i++)
    if (net__same_addr(&out[i], &a))
      return count;
  out[count] = a;
  return count + 1;
}

static void net__copy_name(char *dst, size_t size, const char *src, size_t len) {
  if (size == 0)
    return;
  if (len >= size)
    len = size - 1;
  memcpy(dst, src, len);
  dst[len] = '\0';
}

int net__addrinfo_collect(const struct addrinfo *res, net_ip_addr *out, int max, char *canon,
                          size_t canon_size) {
  const struct addrinfo *ai;
  int count = 0;
  if (res && res->ai_canonname)
    net__copy_name(canon, canon_size, res->ai_canonname, strlen(res->ai_canonname));
  for (ai = res; ai && count < max; ai = ai->ai_next)
    count = net__add_ai(ai, out, count);
  return count > 0 ? count : NET_EAI_NODATA;
}

void net__addrinfo_hints(struct addrinfo *hints, int family) {
  memset(hints, 0, sizeof(*hints));
  hints->ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
  /* One socket type, so each address comes once rather than once per type. */
  hints->ai_socktype = SOCK_STREAM;
  hints->ai_flags = AI_CANONNAME;
}

static int net__getaddrinfo(const char *name, int family, net_ip_addr *out, int max,
                            char *canon, size_t canon_size) {
  struct addrinfo hints, *res;
  int r, count;
  net__addrinfo_hints(&hints, family);
  r = getaddrinfo(name, NULL, &hints, &res);
  if (r != 0)
    return net_resolver_code(r);
  count = net__addrinfo_collect(res, out, max, canon, canon_size);
  freeaddrinfo(res);
  return count;
}

int net_resolve_host(const char *name, size_t len, int family, net_ip_addr *out, int max,
                     char *canon, size_t canon_size, const char **why) {
  char buf[256];
  net_ip_addr lit;
  int n;
  if (canon_size > 0)
    canon[0] = '\0';
  if (max <= 0 || (family != 0 && family != 4 && family != 6))
    return NET_EINVAL;
  n = net_host_check(name, len, &lit, why);
  if (n < 0)
    return n;
  if (n > 0) {
    /* A literal needs no lookup; it has only its own family. */
    if (family != 0 && (family == 4) != (n == 4))
      return NET_EAI_ADDRFAMILY;
    out[0] = lit;
    if (canon_size > 0 && net_ip_format(lit.octets, (size_t) n, lit.scope_id, canon, canon_size) < 0)
      canon[0] = '\0';
    return 1;
  }
  memcpy(buf, name, len);
  buf[len] = '\0';
  return net__getaddrinfo(buf, family, out, max, canon, canon_size);
}

int net_resolve_address(const net_ip_addr *addr, char *host, size_t size) {
  net_sockaddr sa;
  int r;
  if (net_sockaddr_make(&sa, addr->octets, (size_t) addr->len, addr->scope_id, 0) < 0)
    return NET_EINVAL;
  r = getnameinfo(&sa.u.sa, sa.len, host, (socklen_t) size, NULL, 0, NI_NAMEREQD);
  return r == 0 ? 0 : net_resolver_code(r);
}

int net_resolve_service(const char *name, const char *proto, char *official, size_t size) {
  struct servent se, *res = NULL;
  char buf[NET__NETDB_BUF];
  if (getservbyname_r(name, proto, &se, buf, sizeof(buf), &res) != 0 || !res)
    return NET_ESERVICE;
  net__copy_name(official, size, res->s_name, strlen(res->s_name));
  return ntohs((uint16_t) res->s_port);
}

int net_service_name(int port, const char *proto, char *name, size_t size) {
  struct servent se, *res = NULL;
  char buf[NET__NETDB_BUF];
  if (port < 0 || port > 65535)
    return NET_EINVAL;
  if (getservbyport_r(htons((uint16_t) port), proto, &se, buf, sizeof(buf), &res) != 0 || !res)
    return NET_ESERVICE;
  net__copy_name(name, size, res->s_name, strlen(res->s_name));
  return 0;
}

int net_resolve_protocol(const char *name, char *official, size_t size) {
  struct protoent pe, *res = NULL;
  char buf[NET__NETDB_BUF];
  if (getprotobyname_r(name, &pe, buf, sizeof(buf), &res) != 0 || !res)
    return NET_EPROTOCOL;
  net__copy_name(official, size, res->p_name, strlen(res->p_name));
  return res->p_proto;
}

int net_protocol_name(int number, char *name, size_t size) {
  struct protoent pe, *res = NULL;
  char buf[NET__NETDB_BUF];
  if (number < 0 || number > 255)
    return NET_EINVAL;
  if (getprotobynumber_r(number, &pe, buf, sizeof(buf), &res) != 0 || !res)
    return NET_EPROTOCOL;
  net__copy_name(name, size, res->p_name, strlen(res->p_name));
  return 0;
}
