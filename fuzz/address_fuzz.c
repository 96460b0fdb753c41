/* address_fuzz.c -- fuzz target for the IP literal parser, the RFC 5952
 * printer and the host name check (libFuzzer entry point; fuzz/replay.c
 * replays a corpus through it without libFuzzer).
 *
 * Properties checked on every input:
 *  - the parser never reads past LEN, and fails only with a reason;
 *  - parse -> print -> parse gives the same octets and scope, and printing
 *    that again gives the same text (the printed form is canonical);
 *  - the host name check agrees with the parser on literals;
 *  - any 4 or 16 raw octets print to text that parses back to them;
 *  - without a zone, the parser accepts exactly what the C library's
 *    inet_pton accepts (whose IPv4 grammar is as strict as ours; the
 *    parser does not call it, so this compares two implementations).
 */
#include "net.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static void round_trip(const uint8_t *o, int n, uint32_t scope) {
  char buf[NET_IP_STRLEN], buf2[NET_IP_STRLEN];
  uint8_t o2[16];
  uint32_t scope2;
  const char *why;
  int k = net_ip_format(o, (size_t) n, scope, buf, sizeof(buf)), k2;
  CHECK(k > 0 && (size_t) k == strlen(buf));
  CHECK(net_ip_parse_why(buf, (size_t) k, o2, &scope2, &why) == n);
  CHECK(memcmp(o, o2, (size_t) n) == 0);
  CHECK(scope2 == scope);
  k2 = net_ip_format(o2, (size_t) n, scope2, buf2, sizeof(buf2));
  CHECK(k2 == k && strcmp(buf, buf2) == 0);
}

/* The parser and inet_pton agree on TEXT (N: what the parser returned). */
static void differential(const char *text, size_t size, int n, const uint8_t *o) {
  char buf[NET_IP_STRLEN];
  uint8_t ref[16];
  if (size >= sizeof(buf) || memchr(text, '\0', size) || memchr(text, '%', size))
    return;
  memcpy(buf, text, size);
  buf[size] = '\0';
  if (inet_pton(AF_INET, buf, ref) == 1)
    CHECK(n == 4 && memcmp(ref, o, 4) == 0);
  else if (inet_pton(AF_INET6, buf, ref) == 1)
    CHECK(n == 16 && memcmp(ref, o, 16) == 0);
  else
    CHECK(n < 0);
}

static void text_input(const char *text, size_t size) {
  uint8_t o[16];
  uint32_t scope = 12345;
  const char *why = NULL;
  net_ip_addr lit;
  int n = net_ip_parse_why(text, size, o, &scope, &why), h;
  if (n < 0) {
    CHECK(n == NET_EINVAL && why != NULL && scope == 0);
  } else {
    CHECK((n == 4 || n == 16) && why == NULL);
    round_trip(o, n, scope);
  }
  differential(text, size, n, o);
  why = NULL;
  h = net_host_check(text, size, &lit, &why);
  CHECK(h == 0 || h == 4 || h == 16 || (h == NET_EINVAL && why != NULL));
  if (h > 0)
    CHECK(h == n && memcmp(lit.octets, o, (size_t) n) == 0);
}

static void octet_input(const uint8_t *data, size_t size) {
  uint32_t scope;
  if (size >= 4)
    round_trip(data, 4, 0);
  if (size >= 20) {
    memcpy(&scope, data + 16, 4);
    round_trip(data, 16, scope & 0x7fffffffu);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A copy of exactly SIZE bytes, so that a read past the end is caught. */
  char *text = malloc(size ? size : 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text_input(text, size);
  free(text);
  octet_input(data, size);
  return 0;
}
