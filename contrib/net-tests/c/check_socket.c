/* check_socket.c -- tests of socket.c, io.c and wait.c on loopback. */
#include "check_net.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

START_TEST(descriptors_are_nonblocking_and_cloexec) {
  int fds[2];
  check_tcp_pair(0, fds);
  ck_assert(fcntl(fds[0], F_GETFL) & O_NONBLOCK);
  ck_assert(fcntl(fds[0], F_GETFD) & FD_CLOEXEC);
  ck_assert(fcntl(fds[1], F_GETFL) & O_NONBLOCK);
  ck_assert(fcntl(fds[1], F_GETFD) & FD_CLOEXEC);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

static void exchange(int v6) {
  int fds[2];
  char buf[16];
  check_tcp_pair(v6, fds);
  ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), NET_EAGAIN);
  ck_assert_int_eq(net_send(fds[0], "hello", 5, 0), 5);
  ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, net_now_ns() + 2000000000LL), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), 5);
  ck_assert_mem_eq(buf, "hello", 5);
  ck_assert_int_eq(net_socket_shutdown(fds[0], SHUT_WR), 0);
  ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, net_now_ns() + 2000000000LL), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), 0);
  /* Half close: the other direction still works. */
  ck_assert_int_eq(net_send(fds[1], "back", 4, 0), 4);
  ck_assert_int_eq(net_wait(fds[0], NET_WAIT_READ, net_now_ns() + 2000000000LL), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(fds[0], buf, sizeof buf, 0), 4);
  close(fds[0]);
  close(fds[1]);
}

START_TEST(exchange_ipv4) { exchange(0); }
END_TEST

START_TEST(exchange_ipv6) { exchange(1); }
END_TEST

START_TEST(connect_to_closed_port_is_refused) {
  net_sockaddr addr;
  int l = check_listener(0, &addr), fd, r;
  close(l);
  fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  r = net_socket_connect(fd, &addr);
  if (r == NET_EINPROGRESS) {
    net_wait(fd, NET_WAIT_WRITE, net_now_ns() + 2000000000LL);
    r = net_socket_connect_result(fd);
  }
  ck_assert_int_eq(r, NET_ECONNREFUSED);
  close(fd);
}
END_TEST

START_TEST(second_connect_is_refused) {
  net_sockaddr addr, other;
  int l = check_listener(0, &addr), l2 = check_listener(0, &other), fd, r, i;
  fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  r = net_socket_connect(fd, &addr);
  for (i = 0; i < 100 && r == NET_EINPROGRESS; i++) {
    net_wait(fd, NET_WAIT_WRITE, net_now_ns() + 2000000000LL);
    r = net_socket_connect_poll(fd);
    if (r == NET_EAGAIN)
      r = NET_EINPROGRESS;
  }
  ck_assert_int_eq(r, 0);
  /* Completed through net_socket_connect_poll, the socket is connected for
   * the kernel too: connecting again, anywhere, is EISCONN. */
  ck_assert_int_eq(net_socket_connect(fd, &addr), -EISCONN);
  ck_assert_int_eq(net_socket_connect(fd, &other), -EISCONN);
  close(fd);
  close(l);
  close(l2);
}
END_TEST

START_TEST(wait_times_out_at_deadline) {
  int fds[2];
  int64_t t0, dt;
  check_tcp_pair(0, fds);
  t0 = net_now_ns();
  ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, t0 + 50000000LL), NET_ETIMEOUT);
  dt = net_now_ns() - t0;
  ck_assert_int_ge(dt, 50000000LL);
  ck_assert_int_lt(dt, 1000000000LL);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(send_to_reset_peer_is_an_error_not_sigpipe) {
  int fds[2], i, r = 0;
  char buf[4096];
  struct linger lg = {1, 0};
  check_tcp_pair(0, fds);
  setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fds[1]); /* RST */
  memset(buf, 'x', sizeof buf);
  for (i = 0; i < 100 && r >= 0; i++)
    r = (int) net_send(fds[0], buf, sizeof buf, 0);
  ck_assert(r == NET_EPIPE || r == NET_ECONNRESET);
  close(fds[0]);
}
END_TEST

START_TEST(dup_shares_the_socket) {
  int fds[2], d;
  char c = 0;
  check_tcp_pair(0, fds);
  d = net_socket_dup(fds[0]);
  ck_assert_int_ge(d, 0);
  ck_assert_int_ne(d, fds[0]);
  ck_assert(fcntl(d, F_GETFD) & FD_CLOEXEC);
  close(fds[0]);
  ck_assert_int_eq(net_send(d, "x", 1, 0), 1);
  ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, net_now_ns() + 2000000000LL), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(fds[1], &c, 1, 0), 1);
  ck_assert_int_eq(c, 'x');
  close(d);
  close(fds[1]);
}
END_TEST

START_TEST(connected_means_a_peer) {
  int fds[2], u = net_socket_open(AF_INET, SOCK_DGRAM, 0);
  net_sockaddr addr;
  int l = check_listener(0, &addr);
  check_tcp_pair(0, fds);
  ck_assert_int_eq(net_socket_connected(fds[0]), 1);
  ck_assert_int_eq(net_socket_connected(fds[1]), 1);
  ck_assert_int_eq(net_socket_connected(l), 0);
  ck_assert_int_eq(net_socket_connected(u), 0);
  ck_assert_int_eq(net_socket_connect(u, &addr), 0);
  ck_assert_int_eq(net_socket_connected(u), 1);
  ck_assert_int_eq(net_socket_connected(-1), NET_EBADF);
  close(u);
  close(l);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

Suite *socket_suite(void) {
  Suite *s = suite_create("socket");
  TCase *tc = tcase_create("loopback");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, descriptors_are_nonblocking_and_cloexec);
  tcase_add_test(tc, exchange_ipv4);
  tcase_add_test(tc, exchange_ipv6);
  tcase_add_test(tc, connect_to_closed_port_is_refused);
  tcase_add_test(tc, second_connect_is_refused);
  tcase_add_test(tc, wait_times_out_at_deadline);
  tcase_add_test(tc, send_to_reset_peer_is_an_error_not_sigpipe);
  tcase_add_test(tc, dup_shares_the_socket);
  tcase_add_test(tc, connected_means_a_peer);
  suite_add_tcase(s, tc);
  return s;
}
