/* check_options.c -- tests of options.c on loopback sockets. */
#include "check_net.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

START_TEST(int_option_round_trip) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0), v = -1;
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(net_socket_getopt_int(fd, IPPROTO_TCP, TCP_NODELAY, &v), 0);
  ck_assert_int_eq(v, 0);
  ck_assert_int_eq(net_socket_setopt_int(fd, IPPROTO_TCP, TCP_NODELAY, 1), 0);
  ck_assert_int_eq(net_socket_getopt_int(fd, IPPROTO_TCP, TCP_NODELAY, &v), 0);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(net_socket_setopt_int(fd, IPPROTO_IP, IP_TTL, 33), 0);
  ck_assert_int_eq(net_socket_getopt_int(fd, IPPROTO_IP, IP_TTL, &v), 0);
  ck_assert_int_eq(v, 33);
  close(fd);
}
END_TEST

START_TEST(errors_are_negative_errno) {
  int fd = net_socket_open(AF_INET, SOCK_DGRAM, 0), v;
  ck_assert_int_eq(net_socket_setopt_int(fd, IPPROTO_IP, IP_TTL, 300), NET_EINVAL);
  ck_assert_int_eq(net_socket_getopt_int(fd, SOL_SOCKET, 9999, &v), NET_ENOPROTOOPT);
  ck_assert_int_eq(net_socket_getopt_int(-1, SOL_SOCKET, SO_TYPE, &v), NET_EBADF);
  close(fd);
}
END_TEST

START_TEST(timeval_round_trip) {
  int fd = net_socket_open(AF_INET6, SOCK_DGRAM, 0);
  int64_t us = -1;
  ck_assert_int_eq(net_socket_getopt_usec(fd, SOL_SOCKET, SO_RCVTIMEO, &us), 0);
  ck_assert_int_eq(us, 0);
  ck_assert_int_eq(net_socket_setopt_usec(fd, SOL_SOCKET, SO_RCVTIMEO, 2500000), 0);
  ck_assert_int_eq(net_socket_getopt_usec(fd, SOL_SOCKET, SO_RCVTIMEO, &us), 0);
  ck_assert_int_eq(us, 2500000);
  ck_assert_int_eq(net_socket_setopt_usec(fd, SOL_SOCKET, SO_RCVTIMEO, -1), NET_EINVAL);
  close(fd);
}
END_TEST

/* Found by fuzz/options_fuzz.c: the kernel rounds a timeout up to clock
 * ticks, so one set near INT64_MAX microseconds read back past it and the
 * conversion overflowed (undefined behaviour, a negative timeout). */
START_TEST(huge_timeout_reads_back_saturated) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  int64_t us = -1;
  ck_assert_int_eq(net_socket_setopt_usec(fd, SOL_SOCKET, SO_SNDTIMEO, INT64_MAX), 0);
  ck_assert_int_eq(net_socket_getopt_usec(fd, SOL_SOCKET, SO_SNDTIMEO, &us), 0);
  ck_assert(us == INT64_MAX);
  close(fd);
}
END_TEST

START_TEST(linger_round_trip) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0), on = -1, secs = -1;
  ck_assert_int_eq(net_socket_getopt_linger(fd, &on, &secs), 0);
  ck_assert_int_eq(on, 0);
  ck_assert_int_eq(net_socket_setopt_linger(fd, 1, 7), 0);
  ck_assert_int_eq(net_socket_getopt_linger(fd, &on, &secs), 0);
  ck_assert_int_ne(on, 0);
  ck_assert_int_eq(secs, 7);
  ck_assert_int_eq(net_socket_setopt_linger(fd, 1, -3), NET_EINVAL);
  close(fd);
}
END_TEST

START_TEST(tcp_info_of_connection) {
  int fds[2];
  uint32_t info[NET_TCP_INFO_FIELDS];
  check_tcp_pair(0, fds);
  ck_assert_int_eq(net_socket_tcp_info(fds[0], info), 0);
  ck_assert_int_eq(info[0], 1); /* TCP_ESTABLISHED */
  ck_assert_int_gt(info[10], 0); /* snd_mss */
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(tcp_idle_ms_counts_since_the_last_data) {
  int fds[2], local[2];
  char c = 'x';
  int64_t ms;
  struct timespec pause = {0, 150 * 1000 * 1000};
  check_tcp_pair(0, fds);
  ck_assert_int_eq(write(fds[1], &c, 1), 1);
  ck_assert_int_eq(read(fds[0], &c, 1), 1);
  ms = net_socket_tcp_idle_ms(fds[0]);
  ck_assert_int_ge(ms, 0);
  ck_assert_int_lt(ms, 100);
  nanosleep(&pause, NULL);
  /* Neither way for 150 ms: both clocks past 100 ms. */
  ck_assert_int_ge(net_socket_tcp_idle_ms(fds[0]), 100);
  /* Sending restarts it, though nothing was received since. */
  ck_assert_int_eq(write(fds[0], &c, 1), 1);
  ck_assert_int_lt(net_socket_tcp_idle_ms(fds[0]), 100);
  /* Not TCP, or no socket: a negative code. */
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, local), 0);
  ck_assert_int_lt(net_socket_tcp_idle_ms(local[0]), 0);
  close(local[0]);
  close(local[1]);
  close(fds[0]);
  close(fds[1]);
  ck_assert_int_eq(net_socket_tcp_idle_ms(fds[0]), NET_EBADF);
}
END_TEST

START_TEST(peer_credentials_of_a_pair) {
  int fds[2];
  int64_t cred[3] = {-1, -1, -1};
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  ck_assert_int_eq(net_socket_peer_credentials(fds[0], cred), 0);
  ck_assert_int_eq(cred[0], getpid());
  ck_assert_int_eq(cred[1], getuid());
  ck_assert_int_eq(cred[2], getgid());
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(raw_bytes_round_trip) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  char name[16] = "cubic";
  char out[16] = {0};
  socklen_t len = sizeof out;
  ck_assert_int_eq(net_socket_getopt(fd, IPPROTO_TCP, TCP_CONGESTION, out, &len), 0);
  ck_assert_int_gt(len, 0);
  ck_assert_int_eq(net_socket_setopt(fd, IPPROTO_TCP, TCP_CONGESTION, "reno", 4), 0);
  len = sizeof name;
  ck_assert_int_eq(net_socket_getopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, &len), 0);
  ck_assert_str_eq(name, "reno");
  close(fd);
}
END_TEST

Suite *options_suite(void) {
  Suite *s = suite_create("options");
  TCase *tc = tcase_create("options");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, int_option_round_trip);
  tcase_add_test(tc, errors_are_negative_errno);
  tcase_add_test(tc, timeval_round_trip);
  tcase_add_test(tc, huge_timeout_reads_back_saturated);
  tcase_add_test(tc, linger_round_trip);
  tcase_add_test(tc, tcp_info_of_connection);
  tcase_add_test(tc, tcp_idle_ms_counts_since_the_last_data);
  tcase_add_test(tc, raw_bytes_round_trip);
  tcase_add_test(tc, peer_credentials_of_a_pair);
  suite_add_tcase(s, tc);
  return s;
}
