/* handle.c -- descriptor ownership shared by threads: use counts and close. */
#include "net.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* STATE holds the number of calls using the fd, plus the CLOSED bit.  The
 * fd is released by whoever brings the state to exactly CLOSED: the closer
 * when no call is in flight, otherwise the last call to leave. */
#define NET__CLOSED ((long) 1 << 40)
/* Set with CLOSED by a detach: nobody releases the fd, its new owner does. */
#define NET__DETACHED ((long) 1 << 41)
/* Set by net_handle_free while calls (a watcher) still hold the handle: the
 * last of them frees it. */
#define NET__FREED ((long) 1 << 42)

struct net_handle {
  atomic_long state;
  int fd;
  /* An event-loop watcher on the fd: WATCH_THREAD is its loop's thread
   * (0: none), the only thread that reads or writes ON_CLOSE and ARG. */
  atomic_ulong watch_thread;
  void (*on_close)(void *arg);
  void *arg;
  atomic_int drained; /* the last read emptied the socket: wait before the next */
};

net_handle *net_handle_new(int fd) {
  net_handle *h = malloc(sizeof(*h));
  if (!h)
    return NULL;
  atomic_init(&h->state, 0);
  atomic_init(&h->watch_thread, 0);
  atomic_init(&h->drained, 0);
  h->fd = fd;
  h->on_close = NULL;
  h->arg = NULL;
  return h;
}

static void net__release_fd(net_handle *h) {
  /* close(2) is never retried: on Linux the fd is gone even on EINTR. */
  close(h->fd);
}

int net_handle_acquire(net_handle *h) {
  long s = atomic_load(&h->state);
  do {
    if (s & NET__CLOSED)
      return NET_ECLOSED;
  } while (!atomic_compare_exchange_weak(&h->state, &s, s + 1));
  return h->fd;
}

void net_handle_release(net_handle *h) {
  long old = atomic_fetch_sub(&h->state, 1);
  if ((old & ~NET__FREED) == (NET__CLOSED | 1))
    net__release_fd(h);
  if ((old & ~NET__DETACHED) == (NET__CLOSED | NET__FREED | 1))
    free(h);
}

int net_handle_closed_p(const net_handle *h) {
  return (atomic_load(&((net_handle *) h)->state) & NET__CLOSED) != 0;
}

int net_handle_fd(const net_handle *h) {
  return net_handle_closed_p(h) ? -1 : h->fd;
}

void net_handle_watch(net_handle *h, void (*on_close)(void *arg), void *arg) {
  h->on_close = on_close;
  h->arg = arg;
  atomic_store(&h->watch_thread, on_close ? (unsigned long) pthread_self() : 0UL);
}

/* Closed or detached on the watcher's own thread: the watcher lets go of
 * the fd first, so that it is closed now rather than shut down and closed
 * when the loop next looks, and no libuv handle stays on an fd that is no
 * longer ours.  Other threads only shut it down (below); the loop then sees
 * the socket closed and lets go itself. */
static void net__unwatch(net_handle *h) {
  unsigned long me = (unsigned long) pthread_self();
  /* Taken, not just read: a finalizer may take it too (net_handle_unwatch). */
  if (!net_handle_closed_p(h) && atomic_load(&h->watch_thread) == me &&
      atomic_compare_exchange_strong(&h->watch_thread, &me, 0UL))
    h->on_close(h->arg);
}

int net_handle_unwatch(net_handle *h) {
  unsigned long t = atomic_load(&h->watch_thread);
  return t != 0 && atomic_compare_exchange_strong(&h->watch_thread, &t, 0UL);
}

int net_handle_close(net_handle *h) {
  long old;
  net__unwatch(h);
  old = atomic_fetch_or(&h->state, NET__CLOSED);
  if (old & NET__CLOSED)
    return 0;
  if (old == 0)
    net__release_fd(h);
  else
    /* Calls are blocked on it: wake them; the last one releases the fd. */
    shutdown(h->fd, SHUT_RDWR);
  return 1;
}

int net_handle_drained_p(const net_handle *h) {
  return atomic_load_explicit(&((net_handle *) h)->drained, memory_order_relaxed);
}

void net_handle_set_drained(net_handle *h, int drained) {
  atomic_store_explicit(&h->drained, drained != 0, memory_order_relaxed);
}

void net_handle_free(net_handle *h) {
  long old;
  if (!h)
    return;
  net_handle_close(h);
  old = atomic_fetch_or(&h->state, NET__FREED);
  if ((old & ~(NET__CLOSED | NET__DETACHED)) == 0)
    free(h);
}

int net_handle_detach(net_handle *h) {
  long s;
  net__unwatch(h);
  s = atomic_load(&h->state);
  do {
    if (s & NET__CLOSED)
      return NET_ECLOSED;
  } while (!atomic_compare_exchange_weak(&h->state, &s, s | NET__CLOSED | NET__DETACHED));
  /* Calls in flight keep using the fd, now the caller's; their release
   * never matches CLOSED | 1 and so never closes it. */
  return h->fd;
}
