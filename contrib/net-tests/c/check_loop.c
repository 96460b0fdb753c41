/* check_loop.c -- tests of loop.c: recorded events, watchers, close, timers, wake-ups, lookups. */
#include "check_net.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define SECOND 1000000000LL

/* One pass as the glue runs it: wait on the backend fd (at most MS, or the
 * loop's own timeout if sooner), then uv_run(UV_RUN_NOWAIT). */
static void pass(net_loop *l, int ms) {
  int t = net_loop_timeout(l);
  if (t < 0 || t > ms)
    t = ms;
  net_wait(net_loop_backend_fd(l), NET_WAIT_READ, net_now_ns() + (int64_t) t * 1000000);
  net_loop_run_nowait(l);
}

/* Passes until an event for ID with a bit of MASK is recorded (or 2 s);
 * returns its events, 0 if none came.  Other events are dropped. */
static int await(net_loop *l, int id, int mask) {
  int64_t end = net_now_ns() + 2 * SECOND;
  net_event ev[16];
  while (net_now_ns() < end) {
    size_t n, i;
    pass(l, 100);
    while ((n = net_loop_take(l, ev, 16)) > 0)
      for (i = 0; i < n; i++)
        if (ev[i].id == id && (ev[i].events & mask))
          return ev[i].events;
  }
  return 0;
}

static net_loop *new_loop(void) {
  net_loop *l;
  ck_assert_int_eq(net_loop_new(&l), 0);
  return l;
}

START_TEST(watcher_reports_read_then_write_after_change) {
  net_loop *l = new_loop();
  net_watch *w;
  int fds[2];
  net_handle *h;
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  h = net_handle_new(fds[0]);
  ck_assert_int_eq(net_watch_start(l, h, 3, NET_EV_READ, &w), 0);
  ck_assert(net_loop_alive(l));
  /* Nothing to read yet: a pass records nothing. */
  pass(l, 10);
  ck_assert_uint_eq(net_loop_pending(l), 0);
  ck_assert_int_eq(write(fds[1], "x", 1), 1);
  ck_assert_int_eq(await(l, 3, NET_EV_READ), NET_EV_READ);
  /* The same watcher, now for writing only. */
  ck_assert_int_eq(net_watch_set_events(w, NET_EV_WRITE), 0);
  ck_assert_int_eq(await(l, 3, NET_EV_READ | NET_EV_WRITE), NET_EV_WRITE);
  net_watch_free(w);
  pass(l, 0);
  ck_assert(!net_loop_alive(l));
  ck_assert_int_eq(net_handle_close(h), 1);
  net_handle_free(h);
  close(fds[1]);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(second_watcher_on_one_fd_is_refused) {
  net_loop *l = new_loop();
  net_watch *w, *w2;
  int fds[2];
  net_handle *h;
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  h = net_handle_new(fds[0]);
  ck_assert_int_eq(net_watch_start(l, h, 0, NET_EV_READ, &w), 0);
  ck_assert_int_eq(net_watch_start(l, h, 1, NET_EV_READ, &w2), -EEXIST);
  ck_assert_ptr_null(w2);
  net_watch_free(w);
  net_handle_free(h);
  close(fds[1]);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(close_on_loop_thread_detaches_and_closes_fd_now) {
  net_loop *l = new_loop();
  net_watch *w;
  int fds[2];
  net_handle *h;
  net_event ev[4];
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  h = net_handle_new(fds[0]);
  ck_assert_int_eq(net_watch_start(l, h, 7, NET_EV_READ, &w), 0);
  ck_assert_int_eq(net_handle_close(h), 1);
  /* The fd is gone at once: its number may be reused, and libuv no longer
   * has it. */
  ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1);
  ck_assert(!net_watch_attached(w));
  ck_assert_int_eq(net_watch_set_events(w, NET_EV_WRITE), NET_ECLOSED);
  ck_assert_uint_eq(net_loop_take(l, ev, 4), 1);
  ck_assert_int_eq(ev[0].id, 7);
  ck_assert_int_eq(ev[0].events, NET_EV_CLOSED);
  /* A new socket on the same number can be watched in the same loop. */
  {
    int fds2[2];
    net_handle *h2;
    net_watch *w2;
    ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds2), 0);
    h2 = net_handle_new(fds2[0]);
    ck_assert_int_eq(net_watch_start(l, h2, 8, NET_EV_READ, &w2), 0);
    ck_assert_int_eq(write(fds2[1], "y", 1), 1);
    ck_assert_int_eq(await(l, 8, NET_EV_READ), NET_EV_READ);
    net_watch_free(w2);
    net_handle_free(h2);
    close(fds2[1]);
  }
  net_watch_free(w);
  net_handle_free(h);
  close(fds[1]);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

static void *closer(void *p) {
  net_handle_close(p);
  return NULL;
}

START_TEST(close_from_other_thread_wakes_watcher_and_keeps_fd_until_freed) {
  net_loop *l = new_loop();
  net_watch *w;
  pthread_t t;
  int fds[2];
  net_handle *h;
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  h = net_handle_new(fds[0]);
  ck_assert_int_eq(net_watch_start(l, h, 2, NET_EV_READ, &w), 0);
  ck_assert_int_eq(pthread_create(&t, NULL, closer, h), 0);
  pthread_join(t, NULL);
  /* The close shut the fd down, which the watcher sees as readable. */
  ck_assert_int_eq(await(l, 2, NET_EV_READ), NET_EV_READ);
  ck_assert(net_handle_closed_p(h));
  ck_assert_int_ne(fcntl(fds[0], F_GETFD), -1);
  net_watch_free(w);
  ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1);
  net_handle_free(h);
  close(fds[1]);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(peer_hang_up_is_disconnect) {
  net_loop *l = new_loop();
  net_watch *w;
  int fds[2];
  net_handle *h;
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  h = net_handle_new(fds[0]);
  ck_assert_int_eq(net_watch_start(l, h, 1, NET_EV_DISCONNECT, &w), 0);
  ck_assert_int_eq(net_socket_shutdown(fds[1], SHUT_WR), 0);
  ck_assert_int_eq(await(l, 1, NET_EV_DISCONNECT), NET_EV_DISCONNECT);
  net_watch_free(w);
  net_handle_free(h);
  close(fds[1]);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(refused_connect_is_reported_as_write) {
  net_loop *l = new_loop();
  net_sockaddr addr;
  net_watch *w;
  net_handle *h;
  int lfd = check_listener(0, &addr), fd, r;
  close(lfd); /* nobody listens there now */
  fd = net_socket_open(AF_INET, SOCK_STREAM, 0);
  r = net_socket_connect(fd, &addr);
  ck_assert(r == NET_EINPROGRESS || r == NET_ECONNREFUSED);
  h = net_handle_new(fd);
  ck_assert_int_eq(net_watch_start(l, h, 4, NET_EV_WRITE, &w), 0);
  if (r == NET_EINPROGRESS) {
    ck_assert_int_eq(await(l, 4, NET_EV_WRITE) & NET_EV_WRITE, NET_EV_WRITE);
    ck_assert_int_eq(net_socket_connect_result(fd), NET_ECONNREFUSED);
  }
  net_watch_free(w);
  net_handle_free(h);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(timers_once_and_repeating) {
  net_loop *l = new_loop();
  net_timer *once, *rep;
  net_event ev[16];
  int64_t end = net_now_ns() + 2 * SECOND;
  int fired_once = 0, fired_rep = 0;
  ck_assert_int_eq(net_timer_start(l, 1, 20, 0, &once), 0);
  ck_assert_int_eq(net_timer_start(l, 2, 5, 5, &rep), 0);
  ck_assert_int_le(net_loop_timeout(l), 5);
  while (net_now_ns() < end && fired_rep < 5) {
    size_t n, i;
    pass(l, 100);
    n = net_loop_take(l, ev, 16);
    for (i = 0; i < n; i++) {
      ck_assert_int_eq(ev[i].events, NET_EV_TIMER);
      fired_once += ev[i].id == 1;
      fired_rep += ev[i].id == 2;
    }
  }
  ck_assert_int_ge(fired_rep, 5);
  ck_assert_int_eq(net_timer_active(rep), 1);
  /* The one-shot timer fires once and is done. */
  if (!fired_once)
    fired_once = await(l, 1, NET_EV_TIMER) == NET_EV_TIMER;
  ck_assert_int_eq(fired_once, 1);
  ck_assert_int_eq(net_timer_active(once), 0);
  net_timer_free(once);
  net_timer_free(rep);
  pass(l, 0);
  ck_assert(!net_loop_alive(l));
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

static void *waker(void *p) {
  int i;
  for (i = 0; i < 100; i++)
    net_loop_wake(p);
  net_loop_stop(p);
  return NULL;
}

START_TEST(wake_and_stop_from_other_thread_coalesce) {
  net_loop *l = new_loop();
  pthread_t t;
  net_event ev[256];
  size_t n, i, wakes = 0;
  /* Nothing is watched: the wake-up handle does not keep the loop alive. */
  ck_assert(!net_loop_alive(l));
  ck_assert_int_eq(pthread_create(&t, NULL, waker, l), 0);
  pthread_join(t, NULL);
  pass(l, 2000);
  n = net_loop_take(l, ev, 256);
  for (i = 0; i < n; i++) {
    ck_assert_int_eq(ev[i].id, NET_LOOP_ID);
    wakes += ev[i].events == NET_EV_WAKE;
  }
  ck_assert_uint_ge(wakes, 1);
  ck_assert_uint_lt(wakes, 100);
  ck_assert_int_eq(net_loop_stop_requested(l), 1);
  ck_assert_int_eq(net_loop_stop_requested(l), 0);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

/* The loop a signal handler wakes, as the glue's handler for ECL's
 * interrupt signal does. */
static net_loop *signal_loop;
static volatile sig_atomic_t signal_seen;

static void wake_on_signal(int sig) {
  (void) sig;
  signal_seen = 1;
  net_loop_wake(signal_loop);
}

static void *signal_sender(void *p) {
  usleep(50000);
  pthread_kill(*(pthread_t *) p, SIGUSR2);
  return NULL;
}

START_TEST(run_once_waits_in_libuv_until_a_handler_wakes_it) {
  net_loop *l = new_loop();
  net_timer *guard;
  net_event ev[16];
  struct sigaction sa, old;
  pthread_t self = pthread_self(), t;
  int64_t start;
  size_t n, i, wakes = 0, timers = 0;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = wake_on_signal;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old), 0);
  signal_loop = l;
  signal_seen = 0;
  /* A guard timer bounds the wait: 5 s, should the wake-up be lost. */
  ck_assert_int_eq(net_timer_start(l, 1, 5000, 0, &guard), 0);
  start = net_now_ns();
  ck_assert_int_eq(pthread_create(&t, NULL, signal_sender, &self), 0);
  /* libuv retries epoll_wait after the signal: only the wake-up ends it. */
  net_loop_run_once(l);
  pthread_join(t, NULL);
  ck_assert_int_eq(signal_seen, 1);
  ck_assert_int_lt(net_now_ns() - start, 2 * SECOND);
  n = net_loop_take(l, ev, 16);
  for (i = 0; i < n; i++) {
    wakes += ev[i].id == NET_LOOP_ID && ev[i].events == NET_EV_WAKE;
    timers += ev[i].events == NET_EV_TIMER;
  }
  ck_assert_uint_eq(wakes, 1);
  ck_assert_uint_eq(timers, 0);
  sigaction(SIGUSR2, &old, NULL);
  net_timer_free(guard);
  net_loop_run_nowait(l);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(run_once_returns_at_the_next_timer) {
  net_loop *l = new_loop();
  net_timer *timer;
  net_event ev[16];
  int64_t start = net_now_ns(), took;
  ck_assert_int_eq(net_timer_start(l, 7, 30, 0, &timer), 0);
  net_loop_run_once(l);
  took = net_now_ns() - start;
  ck_assert_uint_eq(net_loop_take(l, ev, 16), 1);
  ck_assert_int_eq(ev[0].id, 7);
  ck_assert_int_eq(ev[0].events, NET_EV_TIMER);
  ck_assert_int_ge(took, 25 * 1000000LL);
  ck_assert_int_lt(took, 2 * SECOND);
  net_timer_free(timer);
  net_loop_run_nowait(l);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(run_once_does_not_wait_after_a_due_timer_recorded) {
  net_loop *l = new_loop();
  net_timer *due, *guard;
  net_event ev[16];
  int64_t start;
  ck_assert_int_eq(net_timer_start(l, 1, 1, 0, &due), 0);
  ck_assert_int_eq(net_timer_start(l, 2, 5000, 0, &guard), 0);
  usleep(20000);
  /* libuv runs the due timer first, then would poll until the guard. */
  start = net_now_ns();
  net_loop_run_once(l);
  ck_assert_int_lt(net_now_ns() - start, 2 * SECOND);
  ck_assert_uint_eq(net_loop_take(l, ev, 16), 1);
  ck_assert_int_eq(ev[0].id, 1);
  ck_assert_int_eq(ev[0].events, NET_EV_TIMER);
  net_timer_free(due);
  net_timer_free(guard);
  net_loop_run_nowait(l);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(queue_grows_and_is_taken_in_order) {
  net_loop *l = new_loop();
  net_timer *t[600];
  net_event ev[100];
  int i, seen = 0, last = -1;
  size_t n;
  for (i = 0; i < 600; i++)
    ck_assert_int_eq(net_timer_start(l, i, 0, 0, &t[i]), 0);
  pass(l, 100);
  ck_assert_uint_eq(net_loop_pending(l), 600);
  while ((n = net_loop_take(l, ev, 100)) > 0) {
    size_t k;
    for (k = 0; k < n; k++) {
      ck_assert_int_gt(ev[k].id, last);
      last = ev[k].id;
      seen++;
    }
  }
  ck_assert_int_eq(seen, 600);
  ck_assert_int_eq(net_loop_lost(l), 0);
  for (i = 0; i < 600; i++)
    net_timer_free(t[i]);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(lookup_of_literal_and_localhost) {
  net_loop *l = new_loop();
  net_lookup *q, *q2, *bad;
  net_ip_addr a[4];
  char canon[NET_HOST_STRLEN];
  const char *why = NULL;
  ck_assert_int_eq(net_lookup_start(l, 5, "127.0.0.1", 9, 0, &q, &why), 0);
  ck_assert_int_eq(await(l, 5, NET_EV_LOOKUP), NET_EV_LOOKUP);
  ck_assert_int_eq(net_lookup_result(q, a, 4, canon, sizeof canon), 1);
  ck_assert_int_eq(a[0].len, 4);
  ck_assert_str_eq(canon, "127.0.0.1");
  net_lookup_free(q);
  ck_assert_int_eq(net_lookup_start(l, 6, "localhost", 9, 4, &q2, &why), 0);
  ck_assert_int_eq(net_lookup_result(q2, a, 4, canon, sizeof canon), NET_EAGAIN);
  ck_assert_int_eq(await(l, 6, NET_EV_LOOKUP), NET_EV_LOOKUP);
  ck_assert_int_ge(net_lookup_result(q2, a, 4, canon, sizeof canon), 1);
  ck_assert_int_eq(a[0].octets[0], 127);
  net_lookup_free(q2);
  ck_assert_int_eq(net_lookup_start(l, 7, "bad name", 8, 0, &bad, &why), NET_EINVAL);
  ck_assert_ptr_nonnull(why);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

START_TEST(lookup_freed_while_running_is_harmless) {
  net_loop *l = new_loop();
  net_lookup *q;
  const char *why = NULL;
  ck_assert_int_eq(net_lookup_start(l, 1, "localhost", 9, 0, &q, &why), 0);
  net_lookup_free(q);
  /* Closing waits for it; no event is recorded for a freed lookup. */
  pass(l, 100);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

static void someone_elses_handler(int sig) {
  (void) sig;
}

START_TEST(signal_watcher_records_and_refuses_owned_signals) {
  net_loop *l = new_loop();
  net_signal *x, *y;
  struct sigaction sa;
  ck_assert_int_eq(net_signal_start(l, 9, SIGUSR1, &x), 0);
  ck_assert_int_eq(raise(SIGUSR1), 0);
  ck_assert_int_eq(await(l, 9, NET_EV_SIGNAL), NET_EV_SIGNAL);
  /* A second watcher of the same signal shares libuv's handler. */
  ck_assert_int_eq(net_signal_start(l, 10, SIGUSR1, &y), 0);
  net_signal_free(y);
  net_signal_free(x);
  /* A signal someone else handles is refused. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = someone_elses_handler;
  sigemptyset(&sa.sa_mask);
  ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
  ck_assert_int_eq(net_signal_start(l, 11, SIGUSR2, &y), -EBUSY);
  ck_assert_ptr_null(y);
  pass(l, 0);
  ck_assert_int_eq(net_loop_close(l), 0);
}
END_TEST

static void *freer(void *p) {
  net_handle_free(p);
  return NULL;
}

/* A loop dropped by its owner (its finalizer's call).  Under valgrind
 * (make valgrind) nothing is left behind: the loop, its timer, the watcher
 * of a socket closed since (never freed by its owner), the watcher of an
 * open socket, and the handle freed while a watcher still held it. */
START_TEST(collect_frees_the_loop_and_lets_go_of_its_sockets) {
  net_loop *l = new_loop();
  net_watch *w, *closed, *orphan;
  net_timer *x;
  net_handle *h, *hc, *hf;
  int fds[2], fdc[2], fdf[2], fd;
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fdc), 0);
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fdf), 0);
  h = net_handle_new(fds[0]);
  hc = net_handle_new(fdc[0]);
  hf = net_handle_new(fdf[0]);
  ck_assert_int_eq(net_watch_start(l, h, 1, NET_EV_READ, &w), 0);
  ck_assert_int_eq(net_watch_start(l, hc, 2, NET_EV_READ, &closed), 0);
  ck_assert_int_eq(net_watch_start(l, hf, 3, NET_EV_READ, &orphan), 0);
  ck_assert_int_eq(net_timer_start(l, 4, 60000, 0, &x), 0);
  ck_assert_int_eq(net_handle_close(hc), 1);   /* on the loop's thread: detached */
  ck_assert(!net_watch_attached(closed));
  /* The socket's own finalizer ran first, on another thread: the watcher
   * still holds the fd, and the handle is freed when the watcher lets go. */
  {
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, freer, hf), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
  }
  ck_assert_int_ne(fcntl(fdf[0], F_GETFD), -1);
  ck_assert_int_eq(net_loop_collect(l), 0);
  ck_assert_int_eq(fcntl(fdf[0], F_GETFD), -1);
  /* The open socket is the owner's again, without its watcher: usable,
   * and its close closes the fd at once. */
  fd = net_handle_acquire(h);
  ck_assert_int_eq(fd, fds[0]);
  ck_assert_int_eq(write(fds[1], "x", 1), 1);
  {
    char c;
    ck_assert_int_eq(read(fd, &c, 1), 1);
  }
  net_handle_release(h);
  ck_assert_int_eq(net_handle_close(h), 1);
  ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1);
  net_handle_free(h);
  net_handle_free(hc);
  close(fds[1]);
  close(fdc[1]);
  close(fdf[1]);
}
END_TEST

Suite *loop_suite(void) {
  Suite *s = suite_create("loop");
  TCase *tc = tcase_create("loop");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, watcher_reports_read_then_write_after_change);
  tcase_add_test(tc, second_watcher_on_one_fd_is_refused);
  tcase_add_test(tc, close_on_loop_thread_detaches_and_closes_fd_now);
  tcase_add_test(tc, close_from_other_thread_wakes_watcher_and_keeps_fd_until_freed);
  tcase_add_test(tc, peer_hang_up_is_disconnect);
  tcase_add_test(tc, refused_connect_is_reported_as_write);
  tcase_add_test(tc, timers_once_and_repeating);
  tcase_add_test(tc, wake_and_stop_from_other_thread_coalesce);
  tcase_add_test(tc, run_once_waits_in_libuv_until_a_handler_wakes_it);
  tcase_add_test(tc, run_once_returns_at_the_next_timer);
  tcase_add_test(tc, run_once_does_not_wait_after_a_due_timer_recorded);
  tcase_add_test(tc, queue_grows_and_is_taken_in_order);
  tcase_add_test(tc, lookup_of_literal_and_localhost);
  tcase_add_test(tc, lookup_freed_while_running_is_harmless);
  tcase_add_test(tc, signal_watcher_records_and_refuses_owned_signals);
  tcase_add_test(tc, collect_frees_the_loop_and_lets_go_of_its_sockets);
  suite_add_tcase(s, tc);
  return s;
}
