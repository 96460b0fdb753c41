/* check_address.c -- tests of address.c: literals and sockaddrs. */
#include "check_net.h"

#include <netinet/in.h>
#include <string.h>

static int parse(const char *s, uint8_t oct[16]) {
  uint32_t scope;
  return net_ip_parse(s, strlen(s), oct, &scope);
}

START_TEST(parses_valid_literals) {
  uint8_t o[16];
  uint32_t scope = 99;
  ck_assert_int_eq(parse("127.0.0.1", o), 4);
  ck_assert_int_eq(o[0], 127);
  ck_assert_int_eq(o[3], 1);
  ck_assert_int_eq(parse("::1", o), 16);
  ck_assert_int_eq(o[15], 1);
  ck_assert_int_eq(net_ip_parse("fe80::1%lo", 10, o, &scope), 16);
  ck_assert_uint_eq(scope, 1); /* lo is interface 1 on Linux */
}
END_TEST

static const char *const bad[] = {
  "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "0177.0.0.1", "::1::",
  "1:2:3:4:5:6:7:8:9", "[::1]", " 1.2.3.4", "1.2.3.4 ", "", "fe80::1%",
  "fe80::1%nosuchif0", "1.2.3.4%lo",
};

START_TEST(rejects_bad_literals) {
  uint8_t o[16];
  ck_assert_int_eq(parse(bad[_i], o), NET_EINVAL);
}
END_TEST

START_TEST(rejects_embedded_nul) {
  uint8_t o[16];
  uint32_t scope;
  ck_assert_int_eq(net_ip_parse("1.2.3.4\0junk", 12, o, &scope), NET_EINVAL);
}
END_TEST

START_TEST(sockaddr_round_trip) {
  uint8_t in[16] = {0x20, 0x01, 0x0d, 0xb8}, out[16];
  net_sockaddr sa;
  uint32_t scope;
  int port;
  ck_assert_int_eq(net_sockaddr_make(&sa, in, 16, 7, 8080), 0);
  ck_assert_int_eq(net_sockaddr_split(&sa, out, &scope, &port), 16);
  ck_assert_mem_eq(in, out, 16);
  ck_assert_uint_eq(scope, 7);
  ck_assert_int_eq(port, 8080);
  ck_assert_int_eq(net_sockaddr_make(&sa, in, 4, 0, 65536), NET_EINVAL);
  ck_assert_int_eq(net_sockaddr_make(&sa, in, 4, 0, -1), NET_EINVAL);
  ck_assert_int_eq(net_sockaddr_make(&sa, in, 5, 0, 1), NET_EINVAL);
}
END_TEST

Suite *address_suite(void) {
  Suite *s = suite_create("address");
  TCase *tc = tcase_create("literals");
  tcase_add_test(tc, parses_valid_literals);
  tcase_add_loop_test(tc, rejects_bad_literals, 0, (int) (sizeof(bad) / sizeof(bad[0])));
  tcase_add_test(tc, rejects_embedded_nul);
  tcase_add_test(tc, sockaddr_round_trip);
  suite_add_tcase(s, tc);
  return s;
}
