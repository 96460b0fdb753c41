/* sockaddr.c -- glue: socket addresses and small integers between Lisp and C. */
#include "netsys.h"

#include <string.h>

int netsys__int(cl_object x, int lo, int hi, const char *type) {
  if (!ECL_FIXNUMP(x) || ecl_fixnum(x) < lo || ecl_fixnum(x) > hi)
    netsys_type_error(x, type);
  return (int) ecl_fixnum(x);
}

/* Socket names are octets; Lisp strings hold them as UTF-8, and an octet
 * that is not part of valid UTF-8 as the character U+DC00 + octet (U+DC80
 * to U+DCFF, the "surrogateescape" convention), so that every name the
 * kernel reports converts back to the same octets: a reply reaches the
 * peer that sent. */
#define ESCAPED(c) ((c) >= 0xDC80 && (c) <= 0xDCFF)

/* The UTF-8 of code C into TMP; returns its length. */
static size_t utf8_char(unsigned c, unsigned char tmp[4]) {
  if (c < 0x80 || ESCAPED(c)) {
    tmp[0] = (unsigned char) (ESCAPED(c) ? c - 0xDC00 : c);
    return 1;
  } else if (c < 0x800) {
    tmp[0] = (unsigned char) (0xC0 | (c >> 6));
    tmp[1] = (unsigned char) (0x80 | (c & 0x3F));
    return 2;
  } else if (c < 0x10000) {
    tmp[0] = (unsigned char) (0xE0 | (c >> 12));
    tmp[1] = (unsigned char) (0x80 | ((c >> 6) & 0x3F));
    tmp[2] = (unsigned char) (0x80 | (c & 0x3F));
    return 3;
  }
  tmp[0] = (unsigned char) (0xF0 | (c >> 18));
  tmp[1] = (unsigned char) (0x80 | ((c >> 12) & 0x3F));
  tmp[2] = (unsigned char) (0x80 | ((c >> 6) & 0x3F));
  tmp[3] = (unsigned char) (0x80 | (c & 0x3F));
  return 4;
}

/* The octets of the Lisp string S into BUF; returns the length, or -1 when
 * they do not fit in SIZE. */
static long utf8(cl_object s, char *buf, size_t size) {
  cl_index i, n = ecl_length(s);
  size_t k = 0;
  for (i = 0; i < n; i++) {
    unsigned char tmp[4];
    size_t m = utf8_char((unsigned) ecl_char(s, i), tmp);
    if (k + m > size)
      return -1;
    memcpy(buf + k, tmp, m);
    k += m;
  }
  return (long) k;
}

/* The character of the UTF-8 sequence at P[0, N), storing its length in
 * *LEN; an octet that does not start a valid, shortest-form sequence of a
 * scalar value is escaped (one octet). */
static unsigned utf8_decode(const unsigned char *p, size_t n, size_t *len) {
  static const unsigned least[4] = {0, 0x80, 0x800, 0x10000};
  unsigned c = p[0], need = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0, v, j;
  *len = 1;
  if (c < 0x80)
    return c;
  if (need == 0 || need >= n)
    return 0xDC00 + c;
  v = c & (0x3F >> need);
  for (j = 1; j <= need; j++) {
    if ((p[j] & 0xC0) != 0x80)
      return 0xDC00 + c;
    v = (v << 6) | (p[j] & 0x3F);
  }
  if (v < least[need] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0xDC00 + c;
  *len = need + 1;
  return v;
}

/* A Lisp string of the octets P[N] (a socket name: at most 108). */
static cl_object from_utf8(const unsigned char *p, size_t n) {
  ecl_character out[128];
  size_t i = 0, k = 0, len;
  cl_object s;
  while (i < n && k < 128) {
    out[k++] = utf8_decode(p + i, n - i, &len);
    i += len;
  }
  s = ecl_alloc_simple_extended_string(k);
  for (i = 0; i < k; i++)
    s->string.self[i] = out[i];
  return s;
}

void netsys__sockaddr(net_sockaddr *out, cl_object addr, cl_object port, cl_object scope) {
  if (ecl_stringp(addr)) {
    /* A Unix-domain name; SCOPE true means a Linux abstract name. */
    char path[128];
    long n = utf8(addr, path, sizeof(path));
    int r = n < 0 ? NET_ENAMETOOLONG : net_sockaddr_make_local(out, path, (size_t) n, !Null(scope));
    if (r < 0)
      netsys_raise(r, "sockaddr", addr);
    return;
  } else {
    size_t n;
    uint8_t *p = netsys_octets(addr, ECL_NIL, ECL_NIL, &n);
    int pt = netsys__int(port, 0, 65535, "(INTEGER 0 65535)");
    uint32_t sc = Null(scope) ? 0 : (uint32_t) NETSYS_INDEX(scope);
    if ((n != 4 && n != 16) || net_sockaddr_make(out, p, n, sc, pt) < 0)
      netsys_type_error(addr, "(OR (VECTOR (UNSIGNED-BYTE 8) 4) (VECTOR (UNSIGNED-BYTE 8) 16))");
  }
}

cl_object netsys__sockaddr_list(const net_sockaddr *sa) {
  uint8_t oct[16];
  uint32_t scope;
  int port, n = net_sockaddr_split(sa, oct, &scope, &port);
  if (n < 0) {
    const char *path;
    size_t len;
    int abstract;
    if (net_sockaddr_split_local(sa, &path, &len, &abstract) <= 0)
      return ECL_NIL;
    return cl_list(3, from_utf8((const unsigned char *) path, len), ECL_NIL,
                   abstract ? ECL_T : ECL_NIL);
  }
  return cl_list(3, netsys_octet_vector(oct, n), ecl_make_fixnum(port),
                 ecl_make_fixnum(scope));
}
