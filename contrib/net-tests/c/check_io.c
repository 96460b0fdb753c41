/* check_io.c -- tests of io.c: datagrams, truncation, out-of-band data. */
#include "check_net.h"

#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

#define SECOND 1000000000LL

/* A UDP socket bound to 127.0.0.1, any port; ADDR receives its name. */
static int udp_socket(net_sockaddr *addr) {
  uint8_t lo[4] = {127, 0, 0, 1};
  int fd = net_socket_open(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(net_sockaddr_make(addr, lo, 4, 0, 0), 0);
  ck_assert_int_eq(net_socket_bind(fd, addr), 0);
  ck_assert_int_eq(net_socket_name(fd, addr), 0);
  return fd;
}

START_TEST(datagrams_keep_boundaries_and_report_truncation) {
  net_sockaddr a, b, from;
  int x = udp_socket(&a), y = udp_socket(&b), trunc = -1;
  char buf[8];
  uint8_t oct[16];
  uint32_t scope;
  int port;
  ck_assert_int_eq(net_send_to(x, "0123456789", 10, 0, &b), 10);
  ck_assert_int_eq(net_send_to(x, "ab", 2, 0, &b), 2);
  ck_assert_int_eq(net_wait(y, NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  /* 10 octets into 8: truncated, the rest of that datagram is gone. */
  ck_assert_int_eq(net_recv_from(y, buf, sizeof buf, 0, &from, &trunc), 8);
  ck_assert_int_eq(trunc, 1);
  ck_assert_mem_eq(buf, "01234567", 8);
  ck_assert_int_eq(net_sockaddr_split(&from, oct, &scope, &port), 4);
  ck_assert_int_eq(port, ntohs(((struct sockaddr_in *) &a.u.ss)->sin_port));
  /* The next datagram is the next message, whole. */
  ck_assert_int_eq(net_recv_from(y, buf, sizeof buf, 0, NULL, &trunc), 2);
  ck_assert_int_eq(trunc, 0);
  ck_assert_mem_eq(buf, "ab", 2);
  ck_assert_int_eq(net_recv_from(y, buf, sizeof buf, 0, NULL, &trunc), NET_EAGAIN);
  close(x);
  close(y);
}
END_TEST

START_TEST(empty_datagram_is_a_message) {
  net_sockaddr a, b;
  int x = udp_socket(&a), y = udp_socket(&b), trunc = -1;
  char buf[4];
  ck_assert_int_eq(net_send_to(x, "", 0, 0, &b), 0);
  ck_assert_int_eq(net_wait(y, NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  ck_assert_int_eq(net_recv_from(y, buf, sizeof buf, 0, NULL, &trunc), 0);
  ck_assert_int_eq(trunc, 0);
  close(x);
  close(y);
}
END_TEST

START_TEST(out_of_band_octet_and_mark) {
  int fds[2];
  char buf[8];
  check_tcp_pair(0, fds);
  ck_assert_int_eq(net_send(fds[0], "ab", 2, 0), 2);
  ck_assert_int_eq(net_send(fds[0], "!", 1, MSG_OOB), 1);
  ck_assert_int_eq(net_send(fds[0], "cd", 2, 0), 2);
  ck_assert_int_gt(net_wait(fds[1], NET_WAIT_URGENT, net_now_ns() + SECOND) & NET_WAIT_URGENT, 0);
  ck_assert_int_eq(net_recv(fds[1], buf, 1, MSG_OOB), 1);
  ck_assert_int_eq(buf[0], '!');
  /* Reads stop at the mark: first the octets before it. */
  ck_assert_int_eq(net_socket_at_mark(fds[1]), 0);
  ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), 2);
  ck_assert_mem_eq(buf, "ab", 2);
  ck_assert_int_eq(net_socket_at_mark(fds[1]), 1);
  ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), 2);
  ck_assert_mem_eq(buf, "cd", 2);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(abortive_close_resets_the_peer) {
  int fds[2];
  char buf[4];
  check_tcp_pair(0, fds);
  ck_assert_int_eq(net_socket_set_abortive(fds[0]), 0);
  close(fds[0]);
  ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), NET_ECONNRESET);
  close(fds[1]);
}
END_TEST

START_TEST(nonblocking_connect_is_polled_to_completion) {
  net_sockaddr addr;
  int l = check_listener(0, &addr), fd, r, i;
  fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  r = net_socket_connect(fd, &addr);
  ck_assert(r == 0 || r == NET_EINPROGRESS);
  for (i = 0; i < 100 && (r = net_socket_connect_poll(fd)) == NET_EAGAIN; i++)
    net_wait(fd, NET_WAIT_WRITE, net_now_ns() + SECOND / 10);
  ck_assert_int_eq(r, 0);
  close(fd);
  close(l);
  /* And a refused one reports its error. */
  l = check_listener(0, &addr);
  close(l);
  fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  r = net_socket_connect(fd, &addr);
  for (i = 0; i < 100 && r == NET_EINPROGRESS; i++) {
    net_wait(fd, NET_WAIT_WRITE, net_now_ns() + SECOND / 10);
    r = net_socket_connect_poll(fd);
    if (r == NET_EAGAIN)
      r = NET_EINPROGRESS;
  }
  ck_assert_int_eq(r, NET_ECONNREFUSED);
  close(fd);
}
END_TEST

Suite *io_suite(void) {
  Suite *s = suite_create("io");
  TCase *tc = tcase_create("loopback");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, datagrams_keep_boundaries_and_report_truncation);
  tcase_add_test(tc, empty_datagram_is_a_message);
  tcase_add_test(tc, out_of_band_octet_and_mark);
  tcase_add_test(tc, abortive_close_resets_the_peer);
  tcase_add_test(tc, nonblocking_connect_is_polled_to_completion);
  suite_add_tcase(s, tc);
  return s;
}
