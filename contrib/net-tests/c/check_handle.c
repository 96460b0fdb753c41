/* check_handle.c -- tests of handle.c: use counts, close and wake-up. */
#include "check_net.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

START_TEST(close_is_idempotent_and_releases_fd) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  net_handle *h = net_handle_new(fd);
  ck_assert_int_eq(net_handle_fd(h), fd);
  ck_assert_int_eq(net_handle_close(h), 1);
  ck_assert_int_eq(net_handle_close(h), 0);
  ck_assert_int_eq(net_handle_fd(h), -1);
  ck_assert_int_eq(net_handle_acquire(h), NET_ECLOSED);
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* really closed */
  net_handle_free(h);
}
END_TEST

START_TEST(fd_released_by_last_user) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  net_handle *h = net_handle_new(fd);
  ck_assert_int_eq(net_handle_acquire(h), fd);
  ck_assert_int_eq(net_handle_close(h), 1);
  ck_assert_int_ne(fcntl(fd, F_GETFD), -1); /* still in use */
  net_handle_release(h);
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
  net_handle_free(h);
}
END_TEST

struct reader {
  net_handle *h;
  int result;
  atomic_int acquired;
};

static void *blocked_reader(void *p) {
  struct reader *r = p;
  int fd = net_handle_acquire(r->h), w;
  atomic_store(&r->acquired, 1);
  if (fd < 0) {
    r->result = fd;
    return NULL;
  }
  w = net_wait(fd, NET_WAIT_READ, net_now_ns() + 5000000000LL);
  r->result = net_handle_closed_p(r->h) ? NET_ECLOSED : w;
  net_handle_release(r->h);
  return NULL;
}

START_TEST(close_wakes_a_blocked_reader) {
  int fds[2];
  pthread_t t;
  struct reader r;
  int64_t t0;
  int i;
  check_tcp_pair(0, fds);
  r.h = net_handle_new(fds[1]);
  r.result = 0;
  atomic_init(&r.acquired, 0);
  pthread_create(&t, NULL, blocked_reader, &r);
  /* Close only once the reader holds the fd (on a loaded machine 100 ms
   * were not always enough): it is then in poll, or about to be, and the
   * close's shutdown makes the fd ready either way. */
  for (i = 0; i < 5000 && !atomic_load(&r.acquired); i++)
    usleep(1000);
  usleep(50000);
  t0 = net_now_ns();
  net_handle_close(r.h);
  pthread_join(t, NULL);
  ck_assert_int_eq(r.result, NET_ECLOSED);
  ck_assert_int_lt(net_now_ns() - t0, 1000000000LL);
  net_handle_free(r.h);
  close(fds[0]);
}
END_TEST

START_TEST(freeing_a_closed_handle_spares_a_reused_fd) {
  /* What a finalizer does to a socket closed long ago: nothing, even
   * though its old number now belongs to a newer descriptor. */
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0), fd2;
  net_handle *h = net_handle_new(fd);
  ck_assert_int_eq(net_handle_close(h), 1);
  fd2 = net_socket_open(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(fd2, fd); /* the lowest free number: reused */
  net_handle_free(h);
  ck_assert_int_ne(fcntl(fd2, F_GETFD), -1);
  close(fd2);
}
END_TEST

START_TEST(freeing_an_open_handle_closes_its_fd) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  net_handle *h = net_handle_new(fd);
  net_handle_free(h);
  ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
}
END_TEST

START_TEST(detach_hands_over_the_fd) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  net_handle *h = net_handle_new(fd);
  ck_assert_int_eq(net_handle_detach(h), fd);
  ck_assert_int_eq(net_handle_detach(h), NET_ECLOSED);
  ck_assert_int_eq(net_handle_acquire(h), NET_ECLOSED);
  ck_assert_int_eq(net_handle_fd(h), -1);
  ck_assert_int_eq(net_handle_close(h), 0);
  net_handle_free(h);
  ck_assert_int_ne(fcntl(fd, F_GETFD), -1); /* still open: the caller's */
  close(fd);
}
END_TEST

START_TEST(detach_during_a_call_never_closes) {
  int fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  net_handle *h = net_handle_new(fd);
  ck_assert_int_eq(net_handle_acquire(h), fd);
  ck_assert_int_eq(net_handle_detach(h), fd);
  net_handle_release(h); /* the last user of a detached handle */
  net_handle_free(h);
  ck_assert_int_ne(fcntl(fd, F_GETFD), -1);
  close(fd);
}
END_TEST

Suite *handle_suite(void) {
  Suite *s = suite_create("handle");
  TCase *tc = tcase_create("lifecycle");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, close_is_idempotent_and_releases_fd);
  tcase_add_test(tc, fd_released_by_last_user);
  tcase_add_test(tc, close_wakes_a_blocked_reader);
  tcase_add_test(tc, freeing_a_closed_handle_spares_a_reused_fd);
  tcase_add_test(tc, freeing_an_open_handle_closes_its_fd);
  tcase_add_test(tc, detach_hands_over_the_fd);
  tcase_add_test(tc, detach_during_a_call_never_closes);
  suite_add_tcase(s, tc);
  return s;
}
