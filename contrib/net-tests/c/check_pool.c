/* check_pool.c -- tests of pool.c: the hand-off of descriptors to worker threads. */
#include "check_net.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static long stat_of(net_pool *p, int i) {
  long s[NET_POOL_NSTATS];
  net_pool_stats(p, s);
  return s[i];
}

enum { ACCEPTED, HANDLED, REFUSED, ACTIVE, QUEUED, STARTED };

/* A descriptor to queue: one end of a fresh socket pair, the other closed. */
static int some_fd(void) {
  int fds[2];
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  close(fds[1]);
  return fds[0];
}

struct taker {
  net_pool *pool;
  int taken;            /* descriptors taken and closed */
  int last;             /* what the last take returned */
};

/* A worker: take and close until the pool stops. */
static void *take_all(void *arg) {
  struct taker *t = arg;
  int done = 0, fd;
  while ((fd = net_pool_take(t->pool, done)) >= 0) {
    close(fd);
    t->taken++;
    done = 1;
  }
  t->last = fd;
  return NULL;
}

START_TEST(pool_hands_every_descriptor_to_few_workers) {
  net_pool *p = net_pool_new(3, 1000);
  struct taker t[3];
  pthread_t th[3];
  int i, started = 0, r, total = 0;
  memset(t, 0, sizeof(t));
  for (i = 0; i < 500; i++) {
    r = net_pool_push(p, some_fd(), 1);
    ck_assert_int_ge(r, 0);
    if (r == 1) {
      ck_assert_int_lt(started, 3);
      t[started].pool = p;
      ck_assert_int_eq(pthread_create(&th[started], NULL, take_all, &t[started]), 0);
      started++;
    }
  }
  for (i = 0; i < 500 && stat_of(p, QUEUED) > 0; i++)
    pause_ms(10);
  ck_assert_int_eq(net_pool_stop(p), 0);
  ck_assert_int_eq(net_pool_stop(p), NET_ECLOSED);
  for (i = 0; i < started; i++) {
    pthread_join(th[i], NULL);
    ck_assert_int_eq(t[i].last, NET_ECLOSED);
    total += t[i].taken;
  }
  ck_assert_int_eq(total, 500);
  ck_assert_int_ge(started, 1);
  ck_assert_int_eq(stat_of(p, ACCEPTED), 500);
  ck_assert_int_eq(stat_of(p, STARTED), started);
  ck_assert_int_eq(net_pool_push(p, 0, 1), NET_ECLOSED);
  net_pool_free(p);
}
END_TEST

START_TEST(pool_refuses_past_its_bound_and_resets_the_queue_on_stop) {
  /* One thread, a queue of 2: the first starts the thread, which has not
   * taken it yet, so it counts in the queue; the third is refused. */
  net_pool *p = net_pool_new(1, 2);
  int fds[2];
  char c;
  ck_assert_int_eq(net_pool_push(p, some_fd(), 1), 1);
  check_tcp_pair(0, fds);
  ck_assert_int_eq(net_pool_push(p, fds[1], 1), 0);
  ck_assert_int_eq(net_pool_push(p, 0, 1), -EBUSY);
  ck_assert_int_eq(stat_of(p, REFUSED), 1);
  ck_assert_int_eq(stat_of(p, QUEUED), 2);
  ck_assert_int_eq(stat_of(p, ACCEPTED), 3);
  /* Not refused when told not to. */
  ck_assert_int_eq(net_pool_push(p, some_fd(), 0), 0);
  ck_assert_int_eq(net_pool_stop(p), 3);
  /* The peer of a queued descriptor sees it reset. */
  ck_assert_int_eq(net_wait(fds[0], NET_WAIT_READ, net_now_ns() + 5000000000LL), NET_WAIT_READ);
  ck_assert_int_eq(recv(fds[0], &c, 1, 0), -1);
  ck_assert_int_eq(errno, ECONNRESET);
  close(fds[0]);
  net_pool_free(p);
}
END_TEST

static atomic_int signalled;
static void on_signal(int sig) {
  (void) sig;
  atomic_store(&signalled, 1);
}

/* A waiter ends its wait on a signal (no SA_RESTART) with NET_EINTR,
 * counted idle no longer; stop ends it with NET_ECLOSED. */
static atomic_int finished;
static void *take_once(void *arg) {
  struct taker *t = arg;
  t->last = net_pool_take(t->pool, 0);
  atomic_store(&finished, 1);
  return NULL;
}

START_TEST(pool_wait_ends_on_a_signal_and_on_stop) {
  net_pool *p = net_pool_new(1, 0);
  struct sigaction sa;
  struct taker t = {p, 0, 1};
  pthread_t th;
  int i, fd;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
  ck_assert_int_eq(net_pool_push(p, some_fd(), 1), 1);
  fd = net_pool_take(p, 0);
  ck_assert_int_ge(fd, 0);
  close(fd);
  ck_assert_int_eq(stat_of(p, ACTIVE), 1);
  net_pool_done(p);
  ck_assert_int_eq(stat_of(p, HANDLED), 1);
  ck_assert_int_eq(stat_of(p, ACTIVE), 0);
  ck_assert_int_eq(pthread_create(&th, NULL, take_once, &t), 0);
  /* The worker, idle, makes room: the wait for it ends. */
  ck_assert_int_eq(net_pool_wait_room(p), 0);
  /* Signalled until its wait ends (a signal just before it sleeps is missed). */
  for (i = 0; i < 100 && !atomic_load(&finished); i++) {
    ck_assert_int_eq(pthread_kill(th, SIGUSR1), 0);
    pause_ms(20);
  }
  pthread_join(th, NULL);
  ck_assert_int_eq(atomic_load(&signalled), 1);
  ck_assert_int_eq(t.last, NET_EINTR);
  /* No longer idle: the queue of 0 is full. */
  ck_assert_int_eq(net_pool_push(p, 0, 1), -EBUSY);
  atomic_store(&finished, 0);
  ck_assert_int_eq(pthread_create(&th, NULL, take_once, &t), 0);
  pause_ms(50);
  ck_assert_int_eq(net_pool_stop(p), 0);
  pthread_join(th, NULL);
  ck_assert_int_eq(t.last, NET_ECLOSED);
  ck_assert_int_eq(net_pool_wait_room(p), NET_ECLOSED);
  net_pool_free(p);
}
END_TEST

Suite *pool_suite(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("hand-off");
  tcase_set_timeout(tc, 20);
  tcase_add_test(tc, pool_hands_every_descriptor_to_few_workers);
  tcase_add_test(tc, pool_refuses_past_its_bound_and_resets_the_queue_on_stop);
  tcase_add_test(tc, pool_wait_ends_on_a_signal_and_on_stop);
  suite_add_tcase(s, tc);
  return s;
}
