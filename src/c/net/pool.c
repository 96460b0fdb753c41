/* pool.c -- the hand-off of accepted descriptors to a pool of threads.
 *
 * One thread accepts and pushes descriptors; worker threads take them.  A
 * pthread mutex guards the queue and the counts; idle workers sleep on a
 * futex that a push wakes one at a time, and the pusher waiting for room
 * (on a full queue) on another.  A futex wait ends early on a signal
 * (EINTR): the caller can then run what the signal asked for, holding
 * nothing, and wait again. */
#include "net.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NET__POOL_RING0 16

struct net_pool {
  pthread_mutex_t lock;
  atomic_uint work;     /* futex word: changes when a descriptor is queued or the pool stops */
  atomic_uint room;     /* futex word: changes when the queue may have room */
  int *ring;            /* queued descriptors, oldest at head */
  int cap, head, count;
  int threads, queue_limit;
  int started;          /* workers the pusher was told to start */
  int idle;             /* workers in net_pool_take, not yet holding a descriptor */
  int sleepers;         /* of those, asleep on WORK */
  int room_waiter;      /* the pusher sleeps on ROOM */
  int stopping;
  long accepted, handled, refused, taken, errors;
};

static int net__futex_wait(atomic_uint *word, unsigned seen) {
  if (syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0) < 0)
    return errno == EINTR ? NET_EINTR : 0; /* EAGAIN: it changed already */
  return 0;
}

static void net__futex_wake(atomic_uint *word, int n) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

net_pool *net_pool_new(int threads, int queue_limit) {
  net_pool *p;
  if (threads < 1 || queue_limit < 0)
    return NULL;
  p = calloc(1, sizeof(*p));
  if (!p)
    return NULL;
  p->ring = malloc(sizeof(int) * NET__POOL_RING0);
  if (!p->ring || pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p->ring);
    free(p);
    return NULL;
  }
  p->cap = NET__POOL_RING0;
  p->threads = threads;
  p->queue_limit = queue_limit;
  return p;
}

static int net__pool_pop(net_pool *p) {
  int fd = p->ring[p->head];
  p->head = (p->head + 1) % p->cap;
  p->count--;
  return fd;
}

static int net__pool_grow(net_pool *p) {
  int i, *ring = malloc(sizeof(int) * (size_t) p->cap * 2);
  if (!ring)
    return NET_ENOMEM;
  for (i = 0; i < p->count; i++)
    ring[i] = p->ring[(p->head + i) % p->cap];
  free(p->ring);
  p->ring = ring;
  p->head = 0;
  p->cap *= 2;
  return 0;
}

/* Queued beyond what idle or unstarted workers will take, at the bound. */
static int net__pool_full(const net_pool *p) {
  return p->count - p->idle - (p->threads - p->started) >= p->queue_limit;
}

/* Holding the lock: the pusher, if it waits for room, looks again. */
static void net__pool_wake_room(net_pool *p) {
  if (p->room_waiter) {
    atomic_fetch_add(&p->room, 1);
    net__futex_wake(&p->room, 1);
  }
}

/* Resets (SO_LINGER 0) and closes FD: a connection no thread will serve. */
static void net__pool_reset(int fd) {
  net_socket_set_abortive(fd);
  close(fd);
}

void net_pool_free(net_pool *p) {
  if (!p)
    return;
  while (p->count > 0)
    net__pool_reset(net__pool_pop(p));
  pthread_mutex_destroy(&p->lock);
  free(p->ring);
  free(p);
}

int net_pool_push(net_pool *p, int fd, int may_refuse) {
  int r = 0, wake;
  pthread_mutex_lock(&p->lock);
  p->accepted++;
  if (p->stopping) {
    r = NET_ECLOSED;
  } else if (may_refuse && net__pool_full(p)) {
    p->refused++;
    r = -EBUSY;
  } else if (p->count == p->cap && (r = net__pool_grow(p)) < 0) {
    p->refused++;
  } else {
    p->ring[(p->head + p->count) % p->cap] = fd;
    p->count++;
    if (p->idle < p->count && p->started < p->threads) {
      p->started++;
      r = 1;
    }
    atomic_fetch_add(&p->work, 1);
  }
  wake = r >= 0 && p->sleepers > 0;
  pthread_mutex_unlock(&p->lock);
  /* Woken after the unlock: the worker does not find the lock held. */
  if (wake)
    net__futex_wake(&p->work, 1);
  return r;
}

int net_pool_take(net_pool *p, int done) {
  int fd, r;
  unsigned seen;
  pthread_mutex_lock(&p->lock);
  p->handled += done;
  p->idle++;
  net__pool_wake_room(p);
  for (;;) {
    if (p->stopping) {
      fd = NET_ECLOSED;
      break;
    }
    if (p->count > 0) {
      fd = net__pool_pop(p);
      p->taken++;
      break;
    }
    seen = atomic_load(&p->work);
    p->sleepers++;
    pthread_mutex_unlock(&p->lock);
    r = net__futex_wait(&p->work, seen);
    pthread_mutex_lock(&p->lock);
    p->sleepers--;
    if (r == NET_EINTR) {
      fd = NET_EINTR;
      break;
    }
  }
  p->idle--;
  if (fd >= 0)
    net__pool_wake_room(p);
  pthread_mutex_unlock(&p->lock);
  return fd;
}

void net_pool_done(net_pool *p) {
  pthread_mutex_lock(&p->lock);
  p->handled++;
  pthread_mutex_unlock(&p->lock);
}

void net_pool_error(net_pool *p) {
  pthread_mutex_lock(&p->lock);
  p->errors++;
  pthread_mutex_unlock(&p->lock);
}

int net_pool_wait_room(net_pool *p) {
  int r = 0;
  unsigned seen;
  pthread_mutex_lock(&p->lock);
  while (!p->stopping && net__pool_full(p)) {
    seen = atomic_load(&p->room);
    p->room_waiter = 1;
    pthread_mutex_unlock(&p->lock);
    r = net__futex_wait(&p->room, seen);
    pthread_mutex_lock(&p->lock);
    p->room_waiter = 0;
    if (r < 0)
      break;
  }
  if (r == 0 && p->stopping)
    r = NET_ECLOSED;
  pthread_mutex_unlock(&p->lock);
  return r;
}

int net_pool_stop(net_pool *p) {
  int n = 0;
  pthread_mutex_lock(&p->lock);
  if (p->stopping) {
    pthread_mutex_unlock(&p->lock);
    return NET_ECLOSED;
  }
  p->stopping = 1;
  atomic_fetch_add(&p->work, 1);
  atomic_fetch_add(&p->room, 1);
  while (p->count > 0) {
    net__pool_reset(net__pool_pop(p));
    n++;
  }
  pthread_mutex_unlock(&p->lock);
  net__futex_wake(&p->work, INT_MAX);
  net__futex_wake(&p->room, INT_MAX);
  return n;
}

void net_pool_stats(net_pool *p, long out[NET_POOL_NSTATS]) {
  pthread_mutex_lock(&p->lock);
  out[0] = p->accepted;
  out[1] = p->handled;
  out[2] = p->refused;
  out[3] = p->taken - p->handled;
  out[4] = p->count;
  out[5] = p->started;
  out[6] = p->errors;
  pthread_mutex_unlock(&p->lock);
}
