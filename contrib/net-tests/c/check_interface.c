/* check_interface.c -- tests of interface.c: the interface list and names. */
#include "check_net.h"

#include <net/if.h>
#include <string.h>

/* The entries of the list, in memory the test owns. */
static int check_interfaces(net_ifaddr *v, int max) {
  int n = net_interface_list(v, max);
  ck_assert_int_ge(n, 1);
  ck_assert_int_le(n, max);
  return n;
}

START_TEST(loopback_is_listed_with_its_addresses) {
  net_ifaddr v[256];
  int n = check_interfaces(v, 256), i, itself = 0, v4 = 0;
  static const uint8_t lo4[4] = {127, 0, 0, 1};
  for (i = 0; i < n; i++) {
    if (strcmp(v[i].name, "lo") != 0)
      continue;
    ck_assert_uint_eq(v[i].index, if_nametoindex("lo"));
    ck_assert(v[i].flags & IFF_LOOPBACK);
    ck_assert(v[i].flags & IFF_UP);
    if (v[i].family == 0)
      itself++;
    if (v[i].family == AF_INET && memcmp(v[i].addr, lo4, 4) == 0) {
      v4++;
      ck_assert_int_eq(v[i].prefix, 8);
      ck_assert_int_eq(v[i].other_kind, NET_IFADDR_NONE);
    }
    if (v[i].family == AF_INET6) {
      static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
      ck_assert_mem_eq(v[i].addr, lo6, 16);
      ck_assert_int_eq(v[i].prefix, 128);
    }
  }
  ck_assert_int_eq(itself, 1);
  ck_assert_int_eq(v4, 1);
}
END_TEST

START_TEST(too_little_room_reports_the_count) {
  net_ifaddr v[256], one[1];
  int n = check_interfaces(v, 256);
  ck_assert_int_eq(net_interface_list(NULL, 0), n);
  ck_assert_int_eq(net_interface_list(one, 1), n);
  ck_assert_str_eq(one[0].name, v[0].name);
}
END_TEST

START_TEST(names_and_indexes_agree) {
  char name[NET_IFNAME_MAX];
  int lo = net_interface_index("lo");
  ck_assert_int_gt(lo, 0);
  ck_assert_int_eq(net_interface_name((unsigned) lo, name), 0);
  ck_assert_str_eq(name, "lo");
  ck_assert_int_eq(net_interface_name(0, name), NET_ENODEV);
  ck_assert_int_eq(net_interface_name(999999, name), NET_ENODEV);
}
END_TEST

Suite *interface_suite(void) {
  Suite *s = suite_create("interface");
  TCase *tc = tcase_create("interface");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, loopback_is_listed_with_its_addresses);
  tcase_add_test(tc, too_little_room_reports_the_count);
  tcase_add_test(tc, names_and_indexes_agree);
  suite_add_tcase(s, tc);
  return s;
}
