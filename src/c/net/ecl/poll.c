/* poll.c -- glue: wait for readiness on several sockets at once, against a deadline. */
#include "netsys.h"

/* The arrays of one wait over N handles: on the stack for a few, else
 * collected memory, allocated before interrupts are disabled (allocating
 * would re-enable them) and never leaked by an unwinding interrupt. */
struct waitset {
  int n;
  net_handle **h;
  int *fds, *events;
};

static void *scratch(size_t size, void *small, size_t small_size) {
  return size <= small_size ? small : ecl_alloc_atomic(size);
}

/* The handles of the list HANDLES, checked. */
static void fill_handles(cl_object handles, struct waitset *w) {
  int i = 0;
  cl_object l;
  for (l = handles; !Null(l); l = ECL_CONS_CDR(l))
    w->h[i++] = netsys_handle(ECL_CONS_CAR(l));
}

/* One wait with interrupts disabled and every open fd held; a closed
 * handle takes part as fd -1, which is never ready. */
static int wait_once(struct waitset *w, int mask, int64_t dl) {
  const cl_env_ptr env = ecl_process_env();
  int i, r;
  ecl_disable_interrupts_env(env);
  for (i = 0; i < w->n; i++) {
    w->fds[i] = net_handle_acquire(w->h[i]);
    if (w->fds[i] < 0)
      w->fds[i] = -1;
    w->events[i] = mask;
  }
  r = net_wait_many(w->fds, w->events, w->n, dl);
  for (i = 0; i < w->n; i++)
    if (w->fds[i] >= 0)
      net_handle_release(w->h[i]);
  /* Pending Lisp interrupts run here, holding nothing; they may unwind. */
  ecl_enable_interrupts_env(env);
  return r;
}

/* Waits until one of HANDLES (a proper list, of any length) is ready for
 * EVENTS (NET_WAIT_* bits) or DEADLINE (a fixnum on net_now_ns()'s scale,
 * or NIL: forever).  Returns the list of the indices of the ready handles,
 * ascending, or NIL at the deadline.  An interrupted wait resumes against
 * the same deadline. */
cl_object netsys_wait_many(cl_object handles, cl_object events, cl_object deadline) {
  net_handle *h[NET_WAIT_SMALL];
  int fds[NET_WAIT_SMALL], ev[NET_WAIT_SMALL], i, r;
  struct waitset w;
  int mask = netsys__int(events, 1, 15, "(INTEGER 1 15)");
  int64_t dl = NET_NO_DEADLINE;
  cl_object out = ECL_NIL;
  if (!ECL_LISTP(handles) || Null(cl_list_length(handles)))
    netsys_type_error(handles, "LIST");
  w.n = (int) ecl_fixnum(cl_list_length(handles));
  w.h = scratch(sizeof(*w.h) * (size_t) w.n, h, sizeof(h));
  w.fds = scratch(sizeof(int) * (size_t) w.n, fds, sizeof(fds));
  w.events = scratch(sizeof(int) * (size_t) w.n, ev, sizeof(ev));
  fill_handles(handles, &w);
  if (!Null(deadline)) {
    if (!ECL_FIXNUMP(deadline) || ecl_fixnum(deadline) < 0)
      netsys_type_error(deadline, "(OR NULL (INTEGER 0 *))");
    dl = (int64_t) ecl_fixnum(deadline);
  }
  do
    r = wait_once(&w, mask, dl);
  while (r == NET_EINTR);
  if (r == NET_ETIMEOUT)
    return ECL_NIL;
  if (r < 0)
    netsys_raise(r, "poll", ECL_NIL);
  for (i = w.n - 1; i >= 0; i--)
    if (w.events[i])
      out = ecl_cons(ecl_make_fixnum(i), out);
  return out;
}
