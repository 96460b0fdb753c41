/* wait.c -- glue: the blocking policy: retry, wait, and let Lisp interrupts run. */
#include "netsys.h"

static int64_t deadline_ns(cl_object deadline, int *nonblocking) {
  *nonblocking = 0;
  netsys__check_deadline(deadline);
  if (Null(deadline))
    return NET_NO_DEADLINE;
  if (ecl_fixnum(deadline) == NETSYS_NONBLOCKING) {
    *nonblocking = 1;
    return 0;
  }
  return (int64_t) ecl_fixnum(deadline);
}

/* One attempt: OP, and if it would block, one wait.  Runs with interrupts
 * disabled and the fd acquired, so that nothing can unwind while the fd is
 * held; returns 1 when the caller should try again. */
static inline int attempt(net_handle *h, int events, int64_t dl, int nonblocking, int wait_first,
                   netsys_op op, void *arg, ssize_t *result) {
  int fd = net_handle_acquire(h);
  ssize_t r;
  if (fd < 0) {
    *result = fd;
    return 0;
  }
  r = wait_first ? net_wait(fd, events, dl) : 0;
  /* A close from another thread wakes the wait (handle.c): the call
   * ends with NET_ECLOSED, not with what the shut-down fd then reads. */
  if (wait_first && r >= 0 && net_handle_closed_p(h))
    r = NET_ECLOSED;
  if (r >= 0)
    r = op(fd, arg);
  if (r == NET_EAGAIN && !nonblocking) {
    int w = net_wait(fd, events, dl);
    r = (w == NET_ETIMEOUT || (w < 0 && w != NET_EINTR)) ? w : NET_EINTR;
  }
  if (r == NET_EINTR && net_handle_closed_p(h))
    r = NET_ECLOSED;
  net_handle_release(h);
  *result = r;
  return r == NET_EINTR;
}

/* The retry loop; WAIT_FIRST waits for EVENTS before the first try. */
static ssize_t run(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                   int wait_first, netsys_op op, void *arg) {
  int nonblocking;
  int64_t dl = deadline_ns(deadline, &nonblocking);
  ssize_t r;
  int again;
  wait_first = wait_first && !nonblocking;
  do {
    ecl_disable_interrupts_env(env);
    again = attempt(h, events, dl, nonblocking, wait_first, op, arg, &r);
    /* Re-enabling runs the Lisp interrupts that arrived meanwhile (GC,
     * mp:interrupt-process); they may unwind, and we hold nothing here. */
    ecl_enable_interrupts_env(env);
    wait_first = 0;
  } while (again);
  return r;
}

ssize_t netsys_io_env(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                      netsys_op op, void *arg) {
  return run(env, h, events, deadline, 0, op, arg);
}

ssize_t netsys_io_wait_env(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                           netsys_op op, void *arg, int wait_first) {
  return run(env, h, events, deadline, wait_first, op, arg);
}

ssize_t netsys_io(cl_object handle, int events, cl_object deadline, netsys_op op, void *arg) {
  return run(ecl_process_env(), netsys_handle(handle), events, deadline, 0, op, arg);
}

ssize_t netsys_io_read_env(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                           netsys_op op, void *arg, size_t want) {
  ssize_t r = run(env, h, events, deadline, net_handle_drained_p(h), op, arg);
  netsys__note_read(h, r, want);
  return r;
}

cl_object netsys_now(void) {
  return ecl_make_fixnum(net_now_ns());
}
