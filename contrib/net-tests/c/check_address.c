/* check_address.c -- tests of address.c: the strict parser, the RFC 5952
 * printer and sockaddrs. */
#include "check_net.h"

#include <netinet/in.h>
#include <stdio.h>
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
  ck_assert_int_eq(parse("0.0.0.0", o), 4);
  ck_assert_int_eq(parse("255.255.255.255", o), 4);
  ck_assert_int_eq(o[2], 255);
  ck_assert_int_eq(parse("::1", o), 16);
  ck_assert_int_eq(o[15], 1);
  ck_assert_int_eq(net_ip_parse("fe80::1%lo", 10, o, &scope), 16);
  ck_assert_uint_eq(scope, 1); /* lo is interface 1 on Linux */
  ck_assert_int_eq(net_ip_parse("fe80::1%42", 10, o, &scope), 16);
  ck_assert_uint_eq(scope, 42);
  ck_assert_int_eq(parse("::ffff:1.2.3.4", o), 16);
  ck_assert_int_eq(o[10], 0xff);
  ck_assert_int_eq(o[12], 1);
  ck_assert_int_eq(o[15], 4);
  ck_assert_int_eq(parse("2001:DB8::A", o), 16);
  ck_assert_int_eq(o[1], 0x01);
  ck_assert_int_eq(o[3], 0xb8);
  ck_assert_int_eq(o[15], 0xa);
}
END_TEST

/* Each bad literal, and the start of the reason the parser must give. */
static const struct {
  const char *text;
  const char *why;
} bad[] = {
  {"256.1.1.1", "an IPv4 part is greater than 255"},
  {"1.2.3", "an IPv4 address has four parts, not fewer"},
  {"1.2.3.4.5", "an IPv4 address has four parts, not more"},
  {"01.2.3.4", "an IPv4 part has a leading zero"},
  {"0177.0.0.1", "an IPv4 part has more than three digits"},
  {"1.2.3.04", "an IPv4 part has a leading zero"},
  {"1..2.3", "an IPv4 address has four decimal parts"},
  {"1.2.3.", "an IPv4 address has four decimal parts"},
  {".1.2.3", "an IPv4 address has four decimal parts"},
  {"1.2.3.4x", "unexpected character in an IPv4 address"},
  {"0x7f.0.0.1", "unexpected character in an IPv4 address"},
  {"1.2.3.1000", "an IPv4 part has more than three digits"},
  {"::1::", "an IPv6 address has more than one \"::\""},
  {"1:2:3:4:5:6:7:8:9", "an IPv6 address has more than eight groups"},
  {"1:2:3:4:5:6:7", "an IPv6 address has eight groups"},
  {"1:2:3:4:5:6:7::8", "\"::\" stands for at least one zero group"},
  {"12345::", "an IPv6 group has more than four hex digits"},
  {":1::", "an IPv6 address does not start with a single colon"},
  {"1::2:", "an IPv6 address does not end with a single colon"},
  {":::", "unexpected character in an IPv6 address"},
  {"1:::2", "unexpected character in an IPv6 address"},
  {"g::1", "unexpected character in an IPv6 address"},
  {"::1.2.3", "an IPv4 address has four parts, not fewer"},
  {"::01.2.3.4", "an IPv4 part has a leading zero"},
  {"1:2:3:4:5:6:7:1.2.3.4", "an IPv6 address has too many groups before its IPv4 part"},
  {"::1.2.3.4:5", "unexpected character in an IPv4 address"},
  {"[::1]", "brackets are not part of an address"},
  {" 1.2.3.4", "the text contains white space"},
  {"1.2.3.4 ", "the text contains white space"},
  {"1.2.3.4\n", "the text contains white space"},
  {"1.2.3.\xc3\xa9", "the text contains white space, a control or a non-ASCII"},
  {"", "the text is empty"},
  {"fe80::1%", "the zone after % is empty"},
  {"fe80::1%nosuchif0", "the zone after % names no network interface"},
  {"fe80::1%a/b", "the zone after % is not an interface name or number"},
  {"fe80::1%lo%lo", "the zone after % is not an interface name or number"},
  {"fe80::1%abcdefghijklmnop", "the zone after % is longer"},
  {"fe80::1%9999999999", "the zone number after % is too large"},
  {"1.2.3.4%lo", "a zone (%...) is allowed only on IPv6 addresses"},
  {"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd:eeee", "the text is too long"},
};

START_TEST(rejects_bad_literals) {
  uint8_t o[16];
  uint32_t scope = 5;
  const char *why = NULL;
  const char *t = bad[_i].text;
  ck_assert_int_eq(net_ip_parse_why(t, strlen(t), o, &scope, &why), NET_EINVAL);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strncmp(why, bad[_i].why, strlen(bad[_i].why)) == 0,
                "\"%s\": reason \"%s\", expected \"%s\"", t, why, bad[_i].why);
  ck_assert_uint_eq(scope, 0);
}
END_TEST

START_TEST(rejects_embedded_nul) {
  uint8_t o[16];
  uint32_t scope;
  const char *why;
  ck_assert_int_eq(net_ip_parse_why("1.2.3.4\0junk", 12, o, &scope, &why), NET_EINVAL);
  ck_assert_str_eq(why, "the text contains a NUL character");
  ck_assert_int_eq(net_ip_parse("::1\0", 4, o, &scope), NET_EINVAL);
}
END_TEST

/* Input text and its RFC 5952 form. */
static const char *const canonical[][2] = {
  {"0.0.0.0", "0.0.0.0"},
  {"255.255.255.255", "255.255.255.255"},
  {"10.0.0.1", "10.0.0.1"},
  {"::", "::"},
  {"::1", "::1"},
  {"1::", "1::"},
  {"0:0:0:0:0:0:0:1", "::1"},
  {"2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"},
  {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},    /* first longest run */
  {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"}, /* one zero group stays */
  {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},          /* longest run wins */
  {"2001:DB8::AbCd", "2001:db8::abcd"},
  {"1:0:0:0:0:0:0:0", "1::"},
  {"0:0:0:0:0:0:0:0", "::"},
  {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},
  {"1:2:3:4:5:6::", "1:2:3:4:5:6::"},
  {"1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"},
  {"::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"},
  {"::ffff:1.2.3.4", "::ffff:1.2.3.4"},
  {"::FFFF:102:304", "::ffff:1.2.3.4"},
  {"::1.2.3.4", "::102:304"},
  {"64:ff9b::192.0.2.33", "64:ff9b::c000:221"},
  {"fe80::1%7", "fe80::1%7"},
  {"fe80::1%lo", "fe80::1%1"},
  {"fe80::1%0", "fe80::1"},
};

START_TEST(formats_canonically_and_round_trips) {
  uint8_t o[16], o2[16];
  uint32_t scope, scope2;
  char buf[NET_IP_STRLEN];
  const char *in = canonical[_i][0], *want = canonical[_i][1];
  int n = net_ip_parse(in, strlen(in), o, &scope), k;
  ck_assert_msg(n == 4 || n == 16, "cannot parse %s", in);
  k = net_ip_format(o, (size_t) n, scope, buf, sizeof(buf));
  ck_assert_int_eq(k, (int) strlen(want));
  ck_assert_str_eq(buf, want);
  ck_assert_int_eq(net_ip_parse(buf, (size_t) k, o2, &scope2), n);
  ck_assert_mem_eq(o, o2, (size_t) n);
  ck_assert_uint_eq(scope, scope2);
}
END_TEST

START_TEST(format_checks_its_arguments) {
  uint8_t o[16] = {0};
  char small[4];
  char buf[NET_IP_STRLEN];
  ck_assert_int_eq(net_ip_format(o, 5, 0, buf, sizeof(buf)), NET_EINVAL);
  ck_assert_int_eq(net_ip_format(o, 4, 3, buf, sizeof(buf)), NET_EINVAL);
  ck_assert_int_eq(net_ip_format(o, 4, 0, small, sizeof(small)), NET_ENOBUFS);
  ck_assert_int_eq(net_ip_format(o, 16, 0, small, sizeof(small)), 2); /* "::" */
  memset(o, 0xff, 16);
  ck_assert_int_eq(net_ip_format(o, 16, 2147483647u, buf, sizeof(buf)),
                   (int) strlen("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%2147483647"));
}
END_TEST

/* Every 16-octet pattern of zero and non-zero groups prints in a form
 * that parses back to the same octets, with at most one "::". */
START_TEST(every_zero_pattern_round_trips) {
  int mask;
  for (mask = 0; mask < 256; mask++) {
    uint8_t o[16] = {0}, back[16];
    uint32_t scope;
    char buf[NET_IP_STRLEN];
    int i, k;
    for (i = 0; i < 8; i++)
      if (mask & (1 << i))
        o[2 * i + 1] = (uint8_t) (i + 1);
    k = net_ip_format(o, 16, 0, buf, sizeof(buf));
    ck_assert_int_gt(k, 0);
    ck_assert_int_eq(net_ip_parse(buf, (size_t) k, back, &scope), 16);
    ck_assert_msg(memcmp(o, back, 16) == 0, "mask %d: %s", mask, buf);
    ck_assert_ptr_null(strstr(strstr(buf, "::") ? strstr(buf, "::") + 1 : buf, "::"));
  }
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

#define N_OF(a) ((int) (sizeof(a) / sizeof((a)[0])))

Suite *address_suite(void) {
  Suite *s = suite_create("address");
  TCase *tc = tcase_create("literals");
  tcase_add_test(tc, parses_valid_literals);
  tcase_add_loop_test(tc, rejects_bad_literals, 0, N_OF(bad));
  tcase_add_test(tc, rejects_embedded_nul);
  tcase_add_loop_test(tc, formats_canonically_and_round_trips, 0, N_OF(canonical));
  tcase_add_test(tc, format_checks_its_arguments);
  tcase_add_test(tc, every_zero_pattern_round_trips);
  tcase_add_test(tc, sockaddr_round_trip);
  suite_add_tcase(s, tc);
  return s;
}
