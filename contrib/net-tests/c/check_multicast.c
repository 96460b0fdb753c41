/* check_multicast.c -- tests of multicast.c: memberships on the loopback
 * interface (joining needs no multicast route, so these run anywhere). */
#include "check_net.h"

#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>

static const uint8_t group4[4] = {239, 1, 2, 3};
static const uint8_t group6[16] = {0xff, 0x15, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34};
static const uint8_t lo4[4] = {127, 0, 0, 1};
static const uint8_t src4[4] = {127, 0, 0, 9};
static const uint8_t src6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9};

START_TEST(interface_index_of_lo) {
  ck_assert_int_gt(net_interface_index("lo"), 0);
  ck_assert_int_eq(net_interface_index("no-such-if0"), NET_ENODEV);
}
END_TEST

START_TEST(ipv4_join_twice_then_leave_twice) {
  int fd = net_socket_open(AF_INET, SOCK_DGRAM, 0), lo = net_interface_index("lo");
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 1, group4, NULL, lo, NULL), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 1, group4, NULL, lo, NULL), NET_EADDRINUSE);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 0, group4, NULL, lo, NULL), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 0, group4, NULL, lo, NULL), NET_EADDRNOTAVAIL);
  /* by interface address, and source-specific by address and by index */
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 1, group4, lo4, 0, NULL), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 0, group4, lo4, 0, NULL), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 1, group4, lo4, 0, src4), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 0, group4, lo4, 0, src4), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 1, group4, NULL, lo, src4), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 0, group4, NULL, lo, src4), 0);
  close(fd);
}
END_TEST

START_TEST(ipv6_join_and_leave) {
  int fd = net_socket_open(AF_INET6, SOCK_DGRAM, 0), lo = net_interface_index("lo");
  if (fd == NET_EAFNOSUPPORT) {
    fprintf(stderr, "check_multicast: no IPv6 here; ipv6_join_and_leave not run\n");
    return;
  }
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET6, 1, group6, NULL, lo, NULL), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET6, 0, group6, NULL, lo, NULL), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET6, 0, group6, NULL, lo, NULL), NET_EADDRNOTAVAIL);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET6, 1, group6, NULL, lo, src6), 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET6, 0, group6, NULL, lo, src6), 0);
  /* IPv6 interfaces are chosen by index, never by an IPv4 address */
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET6, 1, group6, lo4, lo, NULL), NET_EINVAL);
  close(fd);
}
END_TEST

START_TEST(bad_arguments) {
  int fd = net_socket_open(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_eq(net_multicast_membership(fd, AF_INET, 1, group4, NULL, -1, NULL), NET_EINVAL);
  ck_assert_int_eq(net_multicast_membership(fd, AF_UNIX, 1, group4, NULL, 0, NULL), NET_EAFNOSUPPORT);
  ck_assert_int_eq(net_multicast_interface_v4(fd, NULL, -2), NET_EINVAL);
  ck_assert_int_eq(net_multicast_interface_v4(fd, lo4, 0), 0);
  close(fd);
}
END_TEST

Suite *multicast_suite(void) {
  Suite *s = suite_create("multicast");
  TCase *tc = tcase_create("multicast");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, interface_index_of_lo);
  tcase_add_test(tc, ipv4_join_twice_then_leave_twice);
  tcase_add_test(tc, ipv6_join_and_leave);
  tcase_add_test(tc, bad_arguments);
  suite_add_tcase(s, tc);
  return s;
}
