/* check_wait.c -- tests of wait.c: waiting on one descriptor or several. */
#include "check_net.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define SECOND 1000000000LL

/* A connected pair of Unix-domain datagram sockets in FDS. */
static void dgram_pair(int fds[2]) {
  ck_assert_int_eq(net_socket_pair(SOCK_DGRAM, fds), 0);
}

START_TEST(wait_many_reports_which_descriptor_is_ready) {
  int a[2], b[2], fds[3], ev[3];
  dgram_pair(a);
  dgram_pair(b);
  ck_assert_int_eq(net_send(b[0], "x", 1, 0), 1);
  fds[0] = a[1];
  fds[1] = -1; /* skipped */
  fds[2] = b[1];
  ev[0] = ev[1] = ev[2] = NET_WAIT_READ;
  ck_assert_int_eq(net_wait_many(fds, ev, 3, net_now_ns() + SECOND), 1);
  ck_assert_int_eq(ev[0], 0);
  ck_assert_int_eq(ev[1], 0);
  ck_assert_int_eq(ev[2], NET_WAIT_READ);
  close(a[0]); close(a[1]); close(b[0]); close(b[1]);
}
END_TEST

START_TEST(wait_many_times_out_and_checks_its_count) {
  int a[2], ev = NET_WAIT_READ;
  int64_t start = net_now_ns();
  dgram_pair(a);
  ck_assert_int_eq(net_wait_many(&a[1], &ev, 1, start + SECOND / 20), NET_ETIMEOUT);
  ck_assert_int_ge(net_now_ns() - start, SECOND / 20);
  ck_assert_int_eq(net_wait_many(&a[1], &ev, -1, start), NET_EINVAL);
  /* Writable at once. */
  ev = NET_WAIT_WRITE;
  ck_assert_int_eq(net_wait_many(&a[1], &ev, 1, start + SECOND), 1);
  ck_assert_int_eq(ev, NET_WAIT_WRITE);
  close(a[0]); close(a[1]);
}
END_TEST

/* More descriptors than NET_WAIT_SMALL, numbered past select()'s
 * FD_SETSIZE (1024) when the descriptor limit allows: the one ready is found. */
START_TEST(wait_many_takes_any_number_of_descriptors) {
  enum { PAIRS = 600 };
  struct rlimit rl;
  int (*pairs)[2] = calloc(PAIRS, sizeof(*pairs)), *fds = calloc(PAIRS, sizeof(int));
  int *ev = calloc(PAIRS, sizeof(int)), i, n = 0;
  ck_assert(pairs && fds && ev);
  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl); /* best effort: the test needs > 2 * NET_WAIT_SMALL */
  while (n < PAIRS && net_socket_pair(SOCK_DGRAM, pairs[n]) == 0)
    n++;
  ck_assert_int_gt(n, NET_WAIT_SMALL + 1);
  for (i = 0; i < n; i++) {
    fds[i] = pairs[i][1];
    ev[i] = NET_WAIT_READ;
  }
  ck_assert_int_eq(net_send(pairs[n - 1][0], "x", 1, 0), 1);
  ck_assert_int_eq(net_wait_many(fds, ev, n, net_now_ns() + SECOND), 1);
  ck_assert_int_eq(ev[n - 1], NET_WAIT_READ);
  ck_assert_int_eq(ev[0], 0);
  for (i = 0; i < n; i++) {
    close(pairs[i][0]);
    close(pairs[i][1]);
  }
  free(pairs); free(fds); free(ev);
}
END_TEST

START_TEST(wait_reports_the_peer_shutting_down) {
  int a[2];
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, a), 0);
  ck_assert_int_eq(net_wait(a[1], NET_WAIT_DISCONNECT, net_now_ns() + SECOND / 20), NET_ETIMEOUT);
  ck_assert_int_eq(shutdown(a[0], SHUT_WR), 0);
  ck_assert_int_eq(net_wait(a[1], NET_WAIT_DISCONNECT, net_now_ns() + SECOND) & NET_WAIT_DISCONNECT,
                   NET_WAIT_DISCONNECT);
  close(a[0]); close(a[1]);
}
END_TEST

Suite *wait_suite(void) {
  Suite *s = suite_create("wait");
  TCase *tc = tcase_create("several");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, wait_many_reports_which_descriptor_is_ready);
  tcase_add_test(tc, wait_many_times_out_and_checks_its_count);
  tcase_add_test(tc, wait_many_takes_any_number_of_descriptors);
  tcase_add_test(tc, wait_reports_the_peer_shutting_down);
  suite_add_tcase(s, tc);
  return s;
}
