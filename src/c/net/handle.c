/* handle.c -- descriptor ownership shared by threads: use counts and close. */
#include "net.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* STATE holds the number of calls using the fd, plus the CLOSED bit.  The
 * fd is released by whoever brings the state to exactly CLOSED: the closer
 * when no call is in flight, otherwise the last call to leave. */
#define NET__CLOSED ((long) 1 << 40)

struct net_handle {
  atomic_long state;
  int fd;
  atomic_int drained; /* the last read emptied the socket: wait before the next */
};

net_handle *net_handle_new(int fd) {
  net_handle *h = malloc(sizeof(*h));
  if (!h)
    return NULL;
  atomic_init(&h->state, 0);
  atomic_init(&h->drained, 0);
  h->fd = fd;
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
  if (old == (NET__CLOSED | 1))
    net__release_fd(h);
}

int net_handle_closed_p(const net_handle *h) {
  return (atomic_load(&((net_handle *) h)->state) & NET__CLOSED) != 0;
}

int net_handle_fd(const net_handle *h) {
  return net_handle_closed_p(h) ? -1 : h->fd;
}

int net_handle_close(net_handle *h) {
  long old = atomic_fetch_or(&h->state, NET__CLOSED);
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
  if (!h)
    return;
  net_handle_close(h);
  free(h);
}
