/* address.c -- numeric IP literals (strict parser, RFC 5952 printer) and
 * socket addresses.
 *
 * The parser is written here rather than left to inet_pton/inet_aton, whose
 * grammars differ between libcs and are lax (inet_aton reads "1.2.3" as
 * 1.2.0.3 and "0177.0.0.1" as octal).  Accepted forms:
 *   IPv4: exactly four decimal parts 0-255, no leading zeros ("0" itself is
 *         fine, "01" is not);
 *   IPv6: RFC 4291 text: eight groups of one to four hex digits, one "::"
 *         standing for one or more zero groups, an optional dotted IPv4 tail
 *         (with the IPv4 rules), and an optional zone "%NAME" or "%NUMBER".
 * Anything else, brackets and white space included, is refused with a reason.
 */
#include "net.h"

#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#define NET__ZONE_MAX (IF_NAMESIZE - 1)

static int net__digit(char c) {
  return c >= '0' && c <= '9';
}

static int net__hex(char c) {
  if (net__digit(c))
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* One decimal IPv4 part at *P, stored in *OUT; advances *P. */
static const char *net__v4_part(const char **p, const char *end, unsigned *out) {
  const char *s = *p;
  unsigned v = 0;
  while (*p < end && net__digit(**p)) {
    if (*p - s == 3)
      return "an IPv4 part has more than three digits";
    v = v * 10 + (unsigned) (**p - '0');
    (*p)++;
  }
  if (*p == s)
    return "an IPv4 address has four decimal parts separated by dots";
  if (*p - s > 1 && *s == '0')
    return "an IPv4 part has a leading zero (octal and zero-padded forms are not accepted)";
  if (v > 255)
    return "an IPv4 part is greater than 255";
  *out = v;
  return NULL;
}

/* Exactly four parts filling [P, END). */
static const char *net__parse_v4(const char *p, const char *end, uint8_t out[4]) {
  int i;
  for (i = 0; i < 4; i++) {
    unsigned v;
    const char *why;
    if (i > 0) {
      if (p == end)
        return "an IPv4 address has four parts, not fewer";
      if (*p != '.')
        return "unexpected character in an IPv4 address";
      p++;
    }
    if ((why = net__v4_part(&p, end, &v)))
      return why;
    out[i] = (uint8_t) v;
  }
  if (p != end)
    return *p == '.' ? "an IPv4 address has four parts, not more"
                     : "unexpected character in an IPv4 address";
  return NULL;
}

struct net__v6 {
  uint16_t g[8];
  int n;   /* groups read */
  int gap; /* index where "::" stands, or -1 */
};

/* A dotted IPv4 tail from S to END becomes the last two groups. */
static const char *net__v6_tail(struct net__v6 *v, const char *s, const char *end) {
  uint8_t q[4];
  const char *why;
  if (v->n > 6)
    return "an IPv6 address has too many groups before its IPv4 part";
  if ((why = net__parse_v4(s, end, q)))
    return why;
  v->g[v->n++] = (uint16_t) (q[0] << 8 | q[1]);
  v->g[v->n++] = (uint16_t) (q[2] << 8 | q[3]);
  return NULL;
}

/* One hex group at *P, or an IPv4 tail (then *P becomes END). */
static const char *net__v6_group(struct net__v6 *v, const char **p, const char *end) {
  const char *s = *p;
  unsigned val = 0;
  int d;
  while (*p < end && (d = net__hex(**p)) >= 0) {
    if (*p - s == 4) {
      while (*p < end && net__hex(**p) >= 0)
        (*p)++;
      if (*p < end && **p == '.')
        break; /* let the IPv4 parser say what is wrong */
      return "an IPv6 group has more than four hex digits";
    }
    val = val << 4 | (unsigned) d;
    (*p)++;
  }
  if (*p < end && **p == '.') {
    *p = end;
    return net__v6_tail(v, s, end);
  }
  if (*p == s)
    return *p == end ? "an IPv6 address does not end with a single colon"
                     : "unexpected character in an IPv6 address";
  if (v->n == 8)
    return "an IPv6 address has more than eight groups";
  v->g[v->n++] = (uint16_t) val;
  return NULL;
}

/* The separator after a group: ":" or "::" (once); *DONE at the end. */
static const char *net__v6_sep(struct net__v6 *v, const char **p, const char *end, int *done) {
  if (*p == end) {
    *done = 1;
    return NULL;
  }
  if (**p != ':')
    return "unexpected character in an IPv6 address";
  (*p)++;
  if (*p < end && **p == ':') {
    if (v->gap >= 0)
      return "an IPv6 address has more than one \"::\"";
    v->gap = v->n;
    (*p)++;
    *done = *p == end;
  } else if (*p == end) {
    return "an IPv6 address does not end with a single colon";
  }
  return NULL;
}

static const char *net__v6_expand(const struct net__v6 *v, uint8_t out[16]) {
  uint16_t g[8] = {0};
  int i;
  if (v->gap < 0 && v->n != 8)
    return "an IPv6 address has eight groups, or \"::\" for the missing ones";
  if (v->gap >= 0 && v->n == 8)
    return "\"::\" stands for at least one zero group, but all eight are given";
  if (v->gap < 0) {
    memcpy(g, v->g, sizeof(g));
  } else {
    memcpy(g, v->g, (size_t) v->gap * sizeof(uint16_t));
    memcpy(g + 8 - (v->n - v->gap), v->g + v->gap, (size_t) (v->n - v->gap) * sizeof(uint16_t));
  }
  for (i = 0; i < 8; i++) {
    out[2 * i] = (uint8_t) (g[i] >> 8);
    out[2 * i + 1] = (uint8_t) g[i];
  }
  return NULL;
}

static const char *net__parse_v6(const char *p, const char *end, uint8_t out[16]) {
  struct net__v6 v = {{0}, 0, -1};
  int done = 0;
  const char *why;
  if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
    v.gap = 0;
    p += 2;
    done = p == end;
  } else if (p < end && *p == ':') {
    return "an IPv6 address does not start with a single colon";
  }
  while (!done) {
    if ((why = net__v6_group(&v, &p, end)) || (why = net__v6_sep(&v, &p, end, &done)))
      return why;
  }
  return net__v6_expand(&v, out);
}

/* "%ZONE": an interface name, or a decimal interface index. */
static const char *net__parse_zone(const char *z, const char *end, uint32_t *scope_id) {
  char name[IF_NAMESIZE];
  size_t len = (size_t) (end - z), i;
  int numeric = 1;
  if (len == 0)
    return "the zone after % is empty";
  if (len > NET__ZONE_MAX)
    return "the zone after % is longer than an interface name can be";
  for (i = 0; i < len; i++) {
    if (z[i] == '/' || z[i] == ':' || z[i] == '%')
      return "the zone after % is not an interface name or number";
    numeric = numeric && net__digit(z[i]);
  }
  if (numeric) {
    uint64_t n = 0;
    for (i = 0; i < len; i++)
      n = n * 10 + (uint64_t) (z[i] - '0');
    if (n > INT32_MAX)
      return "the zone number after % is too large";
    *scope_id = (uint32_t) n;
    return NULL;
  }
  memcpy(name, z, len);
  name[len] = '\0';
  if ((*scope_id = if_nametoindex(name)) == 0)
    return "the zone after % names no network interface of this host";
  return NULL;
}

/* Checks what holds for every literal: length, characters, brackets. */
static const char *net__literal_chars(const char *text, size_t len) {
  size_t i;
  if (len == 0)
    return "the text is empty";
  if (len >= NET_IP_STRLEN)
    return "the text is too long to be an IP address";
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char) text[i];
    if (c == '\0')
      return "the text contains a NUL character";
    if (c <= ' ' || c >= 0x7f)
      return "the text contains white space, a control or a non-ASCII character";
  }
  if (text[0] == '[')
    return "brackets are not part of an address (write ::1, not [::1])";
  return NULL;
}

int net_ip_parse_why(const char *text, size_t len, uint8_t octets[16], uint32_t *scope_id,
                     const char **why) {
  const char *end = text + len, *pct, *w;
  uint32_t scope = 0;
  int n;
  if ((w = net__literal_chars(text, len)) == NULL) {
    pct = memchr(text, '%', len);
    if (memchr(text, ':', len) == NULL) {
      n = 4;
      w = pct ? "a zone (%...) is allowed only on IPv6 addresses"
              : net__parse_v4(text, end, octets);
    } else {
      n = 16;
      w = net__parse_v6(text, pct ? pct : end, octets);
      if (!w && pct)
        w = net__parse_zone(pct + 1, end, &scope);
    }
  }
  if (scope_id)
    *scope_id = w ? 0 : scope;
  if (why)
    *why = w;
  return w ? NET_EINVAL : n;
}

int net_ip_parse(const char *text, size_t len, uint8_t octets[16], uint32_t *scope_id) {
  return net_ip_parse_why(text, len, octets, scope_id, NULL);
}

/* First longest run of two or more zero groups (RFC 5952, 4.2). */
static void net__zero_run(const uint16_t g[8], int *start, int *len) {
  int i, run = 0;
  *start = -1;
  *len = 1;
  for (i = 0; i <= 8; i++) {
    if (i < 8 && g[i] == 0) {
      run++;
    } else {
      if (run > *len) {
        *start = i - run;
        *len = run;
      }
      run = 0;
    }
  }
}

static int net__v4_mapped(const uint8_t o[16]) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(o, prefix, 12) == 0;
}

/* RFC 5952 text of 16 octets into BUF (at least NET_IP_STRLEN). */
static int net__format_v6(const uint8_t o[16], char *buf) {
  uint16_t g[8];
  int i, start, len, k = 0;
  if (net__v4_mapped(o))
    return sprintf(buf, "::ffff:%u.%u.%u.%u", o[12], o[13], o[14], o[15]);
  for (i = 0; i < 8; i++)
    g[i] = (uint16_t) (o[2 * i] << 8 | o[2 * i + 1]);
  net__zero_run(g, &start, &len);
  for (i = 0; i < 8; i++) {
    if (i == start) {
      k += sprintf(buf + k, "::");
      i += len - 1;
      continue;
    }
    k += sprintf(buf + k, "%s%x", (i > 0 && i != start + len) ? ":" : "", g[i]);
  }
  return k;
}

int net_ip_format(const uint8_t *octets, size_t n, uint32_t scope_id, char *buf, size_t size) {
  char tmp[NET_IP_STRLEN + 16];
  int k;
  if (n == 4 && scope_id == 0)
    k = sprintf(tmp, "%u.%u.%u.%u", octets[0], octets[1], octets[2], octets[3]);
  else if (n == 16 && scope_id <= INT32_MAX)
    k = net__format_v6(octets, tmp);
  else
    return NET_EINVAL;
  if (scope_id)
    k += sprintf(tmp + k, "%%%u", (unsigned) scope_id);
  if ((size_t) k >= size)
    return NET_ENOBUFS;
  memcpy(buf, tmp, (size_t) k + 1);
  return k;
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
