/* poll.c -- glue: wait for readiness on several sockets at once, against a deadline. */
#include "netsys.h"

/* Up to NET_WAIT_MANY_MAX handles of the list HANDLES, checked. */
static int handle_array(cl_object handles, net_handle **out) {
  int n = 0;
  cl_object l;
  if (!ECL_LISTP(handles))
    netsys_type_error(handles, "LIST");
  for (l = handles; !Null(l); l = ECL_CONS_CDR(l)) {
    if (!ECL_LISTP(l) || n == NET_WAIT_MANY_MAX)
      netsys_type_error(handles, "(LIST NET-SYS::SOCKET-HANDLE) of 64 at most");
    out[n++] = netsys_handle(ECL_CONS_CAR(l));
  }
  return n;
}

/* One wait with interrupts disabled and every open fd held; a closed
 * handle takes part as fd -1, which is never ready. */
static int wait_once(net_handle **h, int n, int mask, int64_t dl, int *events) {
  const cl_env_ptr env = ecl_process_env();
  int fds[NET_WAIT_MANY_MAX], i, r;
  ecl_disable_interrupts_env(env);
  for (i = 0; i < n; i++) {
    fds[i] = net_handle_acquire(h[i]);
    if (fds[i] < 0)
      fds[i] = -1;
    events[i] = mask;
  }
  r = net_wait_many(fds, events, n, dl);
  for (i = 0; i < n; i++)
    if (fds[i] >= 0)
      net_handle_release(h[i]);
  /* Pending Lisp interrupts run here, holding nothing; they may unwind. */
  ecl_enable_interrupts_env(env);
  return r;
}

/* Waits until one of HANDLES is ready for EVENTS (NET_WAIT_* bits) or
 * DEADLINE (a fixnum on net_now_ns()'s scale, or NIL: forever).  Returns
 * the list of the indices of the ready handles, ascending, or NIL at the
 * deadline.  An interrupted wait resumes against the same deadline. */
cl_object netsys_wait_many(cl_object handles, cl_object events, cl_object deadline) {
  net_handle *h[NET_WAIT_MANY_MAX];
  int ready[NET_WAIT_MANY_MAX];
  int n = handle_array(handles, h), i, r;
  int mask = netsys__int(events, 1, 7, "(INTEGER 1 7)");
  int64_t dl = NET_NO_DEADLINE;
  cl_object out = ECL_NIL;
  if (!Null(deadline)) {
    if (!ECL_FIXNUMP(deadline) || ecl_fixnum(deadline) < 0)
      netsys_type_error(deadline, "(OR NULL (INTEGER 0 *))");
    dl = (int64_t) ecl_fixnum(deadline);
  }
  do
    r = wait_once(h, n, mask, dl, ready);
  while (r == NET_EINTR);
  if (r == NET_ETIMEOUT)
    return ECL_NIL;
  if (r < 0)
    netsys_raise(r, "poll", ECL_NIL);
  for (i = n - 1; i >= 0; i--)
    if (ready[i])
      out = ecl_cons(ecl_make_fixnum(i), out);
  return out;
}
