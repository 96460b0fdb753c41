/* loop.c -- the event loop over libuv: callbacks only record events, the caller dispatches. */
#include "net-private.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct net_loop {
  uv_loop_t uv;
  uv_async_t async;
  uv_prepare_t prepare;  /* a pass that has recorded events does not wait */
  net_event *queue;      /* events recorded since the caller last took them */
  size_t count, taken, cap;
  atomic_int stop;       /* set by net_loop_stop from any thread */
  int lost;              /* events dropped because the queue could not grow */
  size_t last_pass;      /* events the last pass recorded */
};

struct net_watch {
  uv_poll_t poll;
  net_loop *loop;
  net_handle *handle;    /* acquired while attached: the fd cannot be reused */
  int id;
  int events;            /* NET_EV_* asked for */
  int refs;              /* libuv until the close callback, the owner until net_watch_free */
};

struct net_timer {
  uv_timer_t timer;
  net_loop *loop;
  int id;
};

struct net_signal {
  uv_signal_t sig;
  net_loop *loop;
  int id;
};

struct net_lookup {
  uv_getaddrinfo_t req;
  net_loop *loop;
  int id;
  int refs;              /* libuv while the request runs, the owner until net_lookup_free */
  int status;            /* 0 while running, then the count or a negative code */
  net_ip_addr addrs[NET_RESOLVE_MAX];
  char canon[NET_HOST_STRLEN];
};

/* ---- The event queue ------------------------------------------------------ */

static void net__record(net_loop *l, int id, int events) {
  if (l->count == l->cap) {
    size_t cap = l->cap * 2;
    net_event *q = realloc(l->queue, cap * sizeof(*q));
    if (!q) {
      /* Nothing better to do in a libuv callback; the caller can see it. */
      l->lost++;
      return;
    }
    l->queue = q;
    l->cap = cap;
  }
  l->queue[l->count].id = id;
  l->queue[l->count].events = events;
  l->count++;
}

size_t net_loop_take(net_loop *l, net_event *out, size_t max) {
  size_t n = l->count - l->taken;
  if (n > max)
    n = max;
  memcpy(out, l->queue + l->taken, n * sizeof(*out));
  l->taken += n;
  if (l->taken == l->count)
    l->taken = l->count = 0;
  return n;
}

size_t net_loop_pending(const net_loop *l) {
  return l->count - l->taken;
}

int net_loop_lost(const net_loop *l) {
  return l->lost;
}

/* ---- The loop ---------------------------------------------------------------- */

static void net__async_cb(uv_async_t *a) {
  net__record(a->data, NET_LOOP_ID, NET_EV_WAKE);
}

/* Runs just before libuv polls.  Timers due at the start of the pass have
 * recorded their events already: then the poll must not wait (it would
 * wait for the next event with them undelivered).  uv_stop makes libuv's
 * timeout 0 for this pass only. */
static void net__prepare_cb(uv_prepare_t *p) {
  net_loop *l = p->data;
  if (l->count > l->taken)
    uv_stop(&l->uv);
}

static void net__close_walk(uv_handle_t *h, void *arg) {
  (void) arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Closes every handle of L and runs the close callbacks. */
static void net__close_all(net_loop *l) {
  uv_walk(&l->uv, net__close_walk, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT);
}

int net_loop_new(net_loop **out) {
  net_loop *l = calloc(1, sizeof(*l));
  int r;
  *out = NULL;
  if (!l)
    return NET_ENOMEM;
  l->cap = 256;
  l->queue = malloc(l->cap * sizeof(*l->queue));
  r = l->queue ? uv_loop_init(&l->uv) : NET_ENOMEM;
  if (r == 0) {
    r = uv_async_init(&l->uv, &l->async, net__async_cb);
    if (r == 0) {
      uv_prepare_init(&l->uv, &l->prepare);
      r = uv_prepare_start(&l->prepare, net__prepare_cb);
    }
    if (r < 0) {
      net__close_all(l);
      uv_loop_close(&l->uv);
    }
  }
  if (r < 0) {
    free(l->queue);
    free(l);
    return r;
  }
  l->async.data = l;
  l->prepare.data = l;
  /* Neither the wake-up handle nor the prepare handle keeps the loop alive. */
  uv_unref((uv_handle_t *) &l->async);
  uv_unref((uv_handle_t *) &l->prepare);
  atomic_init(&l->stop, 0);
  *out = l;
  return 0;
}


/* Every watcher and timer must have been freed by the owner first; what is
 * left (the wake-up handle, lookups still running) is closed here. */
int net_loop_close(net_loop *l) {
  int r;
  net__close_all(l);
  r = uv_loop_close(&l->uv);
  if (r < 0)
    return r;
  free(l->queue);
  free(l);
  return 0;
}

int net_loop_backend_fd(const net_loop *l) {
  return uv_backend_fd(&l->uv);
}

/* The wake-up handle does not keep the loop alive for net_loop_alive, but
 * libuv neither waits nor polls for a loop it finds dead: within a pass it
 * counts, so that a wake-up is seen even when nothing else is watched. */
int net_loop_timeout(net_loop *l) {
  int t;
  /* libuv's clock only moves in uv_run: time spent dispatching counts. */
  uv_update_time(&l->uv);
  uv_ref((uv_handle_t *) &l->async);
  t = uv_backend_timeout(&l->uv);
  uv_unref((uv_handle_t *) &l->async);
  return t;
}

static int net__run(net_loop *l, uv_run_mode mode) {
  size_t before = l->count;
  uv_ref((uv_handle_t *) &l->async);
  uv_run(&l->uv, mode);
  uv_unref((uv_handle_t *) &l->async);
  l->last_pass = l->count - before;
  return uv_loop_alive(&l->uv);
}

int net_loop_run_nowait(net_loop *l) {
  return net__run(l, UV_RUN_NOWAIT);
}

int net_loop_run_once(net_loop *l) {
  return net__run(l, UV_RUN_ONCE);
}

int net_loop_busy(const net_loop *l) {
  return l->last_pass >= 2;
}

int net_loop_alive(const net_loop *l) {
  return uv_loop_alive(&l->uv);
}

int net_loop_wake(net_loop *l) {
  return uv_async_send(&l->async);
}

int net_loop_stop(net_loop *l) {
  atomic_store(&l->stop, 1);
  return uv_async_send(&l->async);
}

int net_loop_stop_requested(net_loop *l) {
  return atomic_exchange(&l->stop, 0);
}

/* ---- Watchers ---------------------------------------------------------------- */

static int net__uv_events(int events) {
  int e = 0;
  if (events & NET_EV_READ)
    e |= UV_READABLE;
  if (events & NET_EV_WRITE)
    e |= UV_WRITABLE;
  if (events & NET_EV_URGENT)
    e |= UV_PRIORITIZED;
  if (events & NET_EV_DISCONNECT)
    e |= UV_DISCONNECT;
  return e;
}

static int net__net_events(int uv) {
  int e = 0;
  if (uv & UV_READABLE)
    e |= NET_EV_READ;
  if (uv & UV_WRITABLE)
    e |= NET_EV_WRITE;
  if (uv & UV_PRIORITIZED)
    e |= NET_EV_URGENT;
  if (uv & UV_DISCONNECT)
    e |= NET_EV_DISCONNECT;
  return e;
}

static void net__poll_cb(uv_poll_t *p, int status, int events) {
  /* The watcher from P's address, not from p->data: libuv has read the
   * cache lines of P's io_watcher and poll_cb, which the watcher's own
   * fields share, while data lies in another (at 10,000 connections, one
   * cache miss per event less). */
  net_watch *w = (net_watch *) ((char *) p - offsetof(net_watch, poll));
  if (status < 0) {
    /* POLLERR: libuv has stopped the handle.  Report every asked event, so
     * that the next call on the socket meets the error, and keep watching,
     * as for any readiness the owner does not act on. */
    net__record(w->loop, w->id, w->events);
    uv_poll_start(p, net__uv_events(w->events), net__poll_cb);
    return;
  }
  events = net__net_events(events) & w->events;
  if (events)
    net__record(w->loop, w->id, events);
}

static void net__watch_unref(net_watch *w) {
  if (--w->refs == 0)
    free(w);
}

static void net__watch_closed(uv_handle_t *h) {
  net__watch_unref(h->data);
}

/* Stop watching and let go of the fd: after uv_close libuv no longer
 * touches it, so the fd may close (and its number be reused) at once. */
static void net__watch_detach(net_watch *w) {
  net_handle *h = w->handle;
  if (!h)
    return;
  uv_close((uv_handle_t *) &w->poll, net__watch_closed);
  net_handle_watch(h, NULL, NULL);
  w->handle = NULL;
  net_handle_release(h);
}

/* The socket is being closed on the loop's thread. */
static void net__watch_on_close(void *arg) {
  net_watch *w = arg;
  net__watch_detach(w);
  net__record(w->loop, w->id, NET_EV_CLOSED);
}

int net_watch_start(net_loop *l, net_handle *h, int id, int events, net_watch **out) {
  net_watch *w = calloc(1, sizeof(*w));
  int fd, r;
  *out = NULL;
  if (!w)
    return NET_ENOMEM;
  fd = net_handle_acquire(h);
  if (fd < 0) {
    free(w);
    return fd;
  }
  r = uv_poll_init_socket(&l->uv, &w->poll, fd);
  if (r == 0) {
    w->poll.data = w;
    r = uv_poll_start(&w->poll, net__uv_events(events), net__poll_cb);
    if (r < 0) {
      uv_close((uv_handle_t *) &w->poll, net__watch_closed);
      w->refs = 1;
      net_handle_release(h);
      return r;
    }
  }
  if (r < 0) {
    net_handle_release(h);
    free(w);
    return r;
  }
  w->loop = l;
  w->handle = h;
  w->id = id;
  w->events = events;
  w->refs = 2;
  net_handle_watch(h, net__watch_on_close, w);
  *out = w;
  return 0;
}

int net_watch_set_events(net_watch *w, int events) {
  int r;
  if (!w->handle)
    return NET_ECLOSED;
  r = events ? uv_poll_start(&w->poll, net__uv_events(events), net__poll_cb)
             : uv_poll_stop(&w->poll);
  if (r == 0)
    w->events = events;
  return r;
}

int net_watch_attached(const net_watch *w) {
  return w->handle != NULL;
}

void net_watch_free(net_watch *w) {
  net__watch_detach(w);
  net__watch_unref(w);
}

/* ---- Timers -------------------------------------------------------------------- */

static void net__timer_cb(uv_timer_t *t) {
  net_timer *x = t->data;
  net__record(x->loop, x->id, NET_EV_TIMER);
}

static void net__timer_closed(uv_handle_t *h) {
  free(h->data);
}

int net_timer_start(net_loop *l, int id, uint64_t ms, uint64_t repeat_ms, net_timer **out) {
  net_timer *x = calloc(1, sizeof(*x));
  int r;
  *out = NULL;
  if (!x)
    return NET_ENOMEM;
  r = uv_timer_init(&l->uv, &x->timer);
  if (r < 0) {
    free(x);
    return r;
  }
  x->timer.data = x;
  x->loop = l;
  x->id = id;
  /* The clock may be stale after a long dispatch: count from now. */
  uv_update_time(&l->uv);
  r = uv_timer_start(&x->timer, net__timer_cb, ms, repeat_ms);
  if (r < 0) {
    uv_close((uv_handle_t *) &x->timer, net__timer_closed);
    return r;
  }
  *out = x;
  return 0;
}

int net_timer_active(const net_timer *x) {
  return uv_is_active((const uv_handle_t *) &x->timer);
}

void net_timer_free(net_timer *x) {
  uv_close((uv_handle_t *) &x->timer, net__timer_closed);
}

/* ---- Signals ------------------------------------------------------------------ */

/* libuv's handler, once it installed one: a signal that has it is free to
 * watch again; one with any other handler belongs to someone else. */
static void (*net__uv_handler)(int);

static void net__signal_cb(uv_signal_t *s, int signum) {
  net_signal *x = s->data;
  (void) signum;
  net__record(x->loop, x->id, NET_EV_SIGNAL);
}

static void net__signal_closed(uv_handle_t *h) {
  free(h->data);
}

int net_signal_start(net_loop *l, int id, int signum, net_signal **out) {
  struct sigaction sa;
  net_signal *x;
  int r;
  *out = NULL;
  if (sigaction(signum, NULL, &sa) < 0)
    return -errno;
  if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN &&
      (!net__uv_handler || sa.sa_handler != net__uv_handler))
    return -EBUSY;
  x = calloc(1, sizeof(*x));
  if (!x)
    return NET_ENOMEM;
  r = uv_signal_init(&l->uv, &x->sig);
  if (r < 0) {
    free(x);
    return r;
  }
  x->sig.data = x;
  x->loop = l;
  x->id = id;
  r = uv_signal_start(&x->sig, net__signal_cb, signum);
  if (r < 0) {
    uv_close((uv_handle_t *) &x->sig, net__signal_closed);
    return r;
  }
  if (sigaction(signum, NULL, &sa) == 0)
    net__uv_handler = sa.sa_handler;
  *out = x;
  return 0;
}

void net_signal_free(net_signal *x) {
  uv_close((uv_handle_t *) &x->sig, net__signal_closed);
}

/* ---- Host lookups ------------------------------------------------------------- */

static void net__lookup_unref(net_lookup *q) {
  if (--q->refs == 0)
    free(q);
}

/* libuv reports getaddrinfo's EAI_x as its own UV_EAI_x: back to net's. */
static int net__uv_eai(int status) {
  switch (status) {
  case UV_EAI_NONAME: return NET_EAI_NONAME;
  case UV_EAI_AGAIN: return NET_EAI_AGAIN;
  case UV_EAI_NODATA: return NET_EAI_NODATA;
  case UV_EAI_FAMILY: return NET_EAI_FAMILY;
  case UV_EAI_ADDRFAMILY: return NET_EAI_ADDRFAMILY;
  case UV_EAI_MEMORY: return NET_EAI_MEMORY;
  case UV_EAI_SERVICE: return NET_EAI_SERVICE;
  case UV_EAI_SOCKTYPE: return NET_EAI_SOCKTYPE;
  case UV_EAI_OVERFLOW: return NET_EAI_OVERFLOW;
  default: return status > -4096 && status < 0 ? status : NET_EAI_FAIL;
  }
}

static void net__lookup_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  net_lookup *q = req->data;
  if (status < 0)
    q->status = net__uv_eai(status);
  else
    q->status = net__addrinfo_collect(res, q->addrs, NET_RESOLVE_MAX, q->canon,
                                      sizeof(q->canon));
  if (res)
    uv_freeaddrinfo(res);
  if (q->refs == 2)
    net__record(q->loop, q->id, NET_EV_LOOKUP);
  net__lookup_unref(q);
}

int net_lookup_start(net_loop *l, int id, const char *name, size_t len, int family,
                     net_lookup **out, const char **why) {
  net_lookup *q;
  net_ip_addr lit;
  struct addrinfo hints;
  char buf[256];
  int n, r;
  *out = NULL;
  if (family != 0 && family != 4 && family != 6)
    return NET_EINVAL;
  n = net_host_check(name, len, &lit, why);
  if (n < 0)
    return n;
  q = calloc(1, sizeof(*q));
  if (!q)
    return NET_ENOMEM;
  q->loop = l;
  q->id = id;
  q->req.data = q;
  *out = q;
  if (n > 0) {
    /* A literal needs no lookup (as for net_resolve_host). */
    q->refs = 1;
    q->addrs[0] = lit;
    q->status = (family == 0 || (family == 4) == (n == 4)) ? 1 : NET_EAI_ADDRFAMILY;
    if (q->status == 1 && net_ip_format(lit.octets, (size_t) n, lit.scope_id, q->canon,
                                        sizeof(q->canon)) < 0)
      q->canon[0] = '\0';
    net__record(l, id, NET_EV_LOOKUP);
    return 0;
  }
  memcpy(buf, name, len);
  buf[len] = '\0';
  net__addrinfo_hints(&hints, family);
  q->refs = 2;
  r = uv_getaddrinfo(&l->uv, &q->req, net__lookup_cb, buf, NULL, &hints);
  if (r < 0) {
    free(q);
    *out = NULL;
  }
  return r;
}

int net_lookup_result(const net_lookup *q, net_ip_addr *out, int max, char *canon,
                      size_t canon_size) {
  int n = q->status;
  if (n <= 0)
    return n == 0 ? NET_EAGAIN : n;
  if (n > max)
    n = max;
  memcpy(out, q->addrs, (size_t) n * sizeof(*out));
  if (canon_size > 0) {
    strncpy(canon, q->canon, canon_size - 1);
    canon[canon_size - 1] = '\0';
  }
  return n;
}

void net_lookup_free(net_lookup *q) {
  /* A request still running is cancelled if it has not started; its
   * callback then frees it, without recording an event. */
  if (q->refs == 2)
    uv_cancel((uv_req_t *) &q->req);
  net__lookup_unref(q);
}

/* ---- A loop dropped without net_loop_close ------------------------------- */

/* Takes every watcher still on a socket from the socket's side: once all
 * are taken, nothing outside the loop can reach it. */
static void net__collect_take(uv_handle_t *h, void *busy) {
  net_watch *w = h->data;
  if (h->type == UV_POLL && w->handle && !net_handle_unwatch(w->handle))
    *(int *) busy = 1;
}

/* Watchers let go of their sockets (the fd of a socket closed meanwhile is
 * closed now) and are freed by their close callback, the owner's
 * reference dropped here.  Timers and signal watchers the owner never
 * freed are closed too. */
static void net__collect_close(uv_handle_t *h, void *arg) {
  (void) arg;
  if (h->type == UV_POLL) {
    net_watch *w = h->data;
    net__watch_detach(w);
    if (w->refs == 2)
      w->refs--;
  } else if (!uv_is_closing(h)) {
    uv_close(h, h->type == UV_TIMER    ? net__timer_closed
                : h->type == UV_SIGNAL ? net__signal_closed
                                       : NULL);
  }
}

int net_loop_collect(net_loop *l) {
  int busy = l->uv.active_reqs.count > 0;
  if (!busy)
    uv_walk(&l->uv, net__collect_take, &busy);
  if (busy)
    return -EBUSY;
  uv_walk(&l->uv, net__collect_close, NULL);
  uv_run(&l->uv, UV_RUN_DEFAULT);
  if (uv_loop_close(&l->uv) < 0)
    return -EBUSY;
  free(l->queue);
  free(l);
  return 0;
}
