/* check_main.c -- runs every Check suite, one forked process per test. */
#include "check_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int check_listener(int v6, net_sockaddr *addr) {
  uint8_t oct[16] = {0};
  int fd;
  if (v6)
    oct[15] = 1;
  else {
    oct[0] = 127;
    oct[3] = 1;
  }
  ck_assert_int_eq(net_sockaddr_make(addr, oct, v6 ? 16 : 4, 0, 0), 0);
  fd = net_socket_open(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(net_socket_bind(fd, addr), 0);
  ck_assert_int_eq(net_socket_listen(fd, 16), 0);
  ck_assert_int_eq(net_socket_name(fd, addr), 0);
  return fd;
}

void check_tcp_pair(int v6, int fds[2]) {
  net_sockaddr addr;
  int l = check_listener(v6, &addr), r, w;
  fds[0] = net_socket_open(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(fds[0], 0);
  r = net_socket_connect(fds[0], &addr);
  ck_assert(r == 0 || r == NET_EINPROGRESS);
  w = net_wait(fds[0], NET_WAIT_WRITE, net_now_ns() + 2000000000LL);
  ck_assert_int_eq(w & NET_WAIT_WRITE, NET_WAIT_WRITE);
  ck_assert_int_eq(net_socket_connect_result(fds[0]), 0);
  ck_assert_int_eq(net_wait(l, NET_WAIT_READ, net_now_ns() + 2000000000LL), NET_WAIT_READ);
  fds[1] = net_socket_accept(l, NULL);
  ck_assert_int_ge(fds[1], 0);
  close(l);
}

int main(void) {
  SRunner *sr = srunner_create(error_suite());
  int run, failed;
  srunner_add_suite(sr, address_suite());
  srunner_add_suite(sr, resolver_suite());
  srunner_add_suite(sr, socket_suite());
  srunner_add_suite(sr, handle_suite());
  srunner_add_suite(sr, io_suite());
  srunner_add_suite(sr, local_suite());
  srunner_add_suite(sr, loop_suite());
  srunner_add_suite(sr, message_suite());
  srunner_add_suite(sr, options_suite());
  srunner_add_suite(sr, multicast_suite());
  srunner_add_suite(sr, wait_suite());
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  run = srunner_ntests_run(sr);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  printf("C suites: %d run, %d failing\n", run, failed);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
