/* check_local.c -- tests of local.c and Unix-domain sockets. */
#include "check_net.h"

#include <stdio.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define SECOND 1000000000LL

START_TEST(file_names_round_trip) {
  net_sockaddr sa;
  const char *p;
  size_t n;
  int abstract;
  ck_assert_int_eq(net_sockaddr_make_local(&sa, "/tmp/x.sock", 11, 0), 0);
  ck_assert_int_eq(net_sockaddr_split_local(&sa, &p, &n, &abstract), 1);
  ck_assert_int_eq(n, 11);
  ck_assert_mem_eq(p, "/tmp/x.sock", 11);
  ck_assert_int_eq(abstract, 0);
}
END_TEST

START_TEST(abstract_names_round_trip_with_nuls) {
  net_sockaddr sa;
  const char *p;
  size_t n;
  int abstract;
  ck_assert_int_eq(net_sockaddr_make_local(&sa, "a\0b", 3, 1), 0);
  ck_assert_int_eq(net_sockaddr_split_local(&sa, &p, &n, &abstract), 1);
  ck_assert_int_eq(abstract, 1);
  ck_assert_int_eq(n, 3);
  ck_assert_mem_eq(p, "a\0b", 3);
}
END_TEST

START_TEST(bad_names_are_refused) {
  net_sockaddr sa;
  char longname[200];
  memset(longname, 'x', sizeof longname);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, "", 0, 0), NET_EINVAL);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, "a\0b", 3, 0), NET_EINVAL);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, longname, 108, 0), NET_ENAMETOOLONG);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, longname, 107, 0), 0);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, longname, 108, 1), NET_ENAMETOOLONG);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, longname, 107, 1), 0);
}
END_TEST

START_TEST(stream_over_a_file_name) {
  net_sockaddr sa, peer;
  char path[64], buf[8];
  const char *p;
  size_t n;
  int abstract, l, c, s, r;
  snprintf(path, sizeof path, "/tmp/net-check-%d.sock", (int) getpid());
  unlink(path);
  ck_assert_int_eq(net_sockaddr_make_local(&sa, path, strlen(path), 0), 0);
  l = net_socket_open(AF_UNIX, SOCK_STREAM, 0);
  ck_assert_int_eq(net_socket_bind(l, &sa), 0);
  ck_assert_int_eq(net_socket_listen(l, 4), 0);
  c = net_socket_open(AF_UNIX, SOCK_STREAM, 0);
  r = net_socket_connect(c, &sa);
  ck_assert(r == 0 || r == NET_EINPROGRESS);
  ck_assert_int_eq(net_wait(l, NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  s = net_socket_accept(l, &peer);
  ck_assert_int_ge(s, 0);
  /* The client never bound: its name is empty. */
  ck_assert_int_eq(net_sockaddr_split_local(&peer, &p, &n, &abstract), 0);
  ck_assert_int_eq(net_socket_name(l, &peer), 0);
  ck_assert_int_eq(net_sockaddr_split_local(&peer, &p, &n, &abstract), 1);
  ck_assert_int_eq(n, strlen(path));
  ck_assert_int_eq(net_send(c, "hi", 2, 0), 2);
  ck_assert_int_eq(net_wait(s, NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  ck_assert_int_eq(net_recv(s, buf, sizeof buf, 0), 2);
  close(c);
  close(s);
  close(l);
  unlink(path);
}
END_TEST

START_TEST(socket_pairs_of_each_type) {
  int types[3] = {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET}, i, fds[2];
  char buf[8];
  for (i = 0; i < 3; i++) {
    ck_assert_int_eq(net_socket_pair(types[i], fds), 0);
    ck_assert_int_eq(net_send(fds[0], "abc", 3, 0), 3);
    ck_assert_int_eq(net_send(fds[0], "de", 2, 0), 2);
    ck_assert_int_eq(net_wait(fds[1], NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
    /* A stream runs messages together; the others keep each whole. */
    ck_assert_int_eq(net_recv(fds[1], buf, sizeof buf, 0), types[i] == SOCK_STREAM ? 5 : 3);
    close(fds[0]);
    close(fds[1]);
  }
}
END_TEST

Suite *local_suite(void) {
  Suite *s = suite_create("local");
  TCase *tc = tcase_create("unix-domain");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, file_names_round_trip);
  tcase_add_test(tc, abstract_names_round_trip_with_nuls);
  tcase_add_test(tc, bad_names_are_refused);
  tcase_add_test(tc, stream_over_a_file_name);
  tcase_add_test(tc, socket_pairs_of_each_type);
  suite_add_tcase(s, tc);
  return s;
}
