/* wait.c -- glue: the blocking policy: retry, wait, and let Lisp interrupts run. */
#include "netsys.h"

static int64_t netsys__deadline(cl_object deadline, int *nonblocking) {
  *nonblocking = 0;
  if (Null(deadline))
    return NET_NO_DEADLINE;
  if (!ECL_FIXNUMP(deadline) || ecl_fixnum(deadline) < NETSYS_NONBLOCKING)
    netsys_type_error(deadline, "(OR NULL FIXNUM)");
  if (ecl_fixnum(deadline) == NETSYS_NONBLOCKING) {
    *nonblocking = 1;
    return 0;
  }
  return (int64_t) ecl_fixnum(deadline);
}

/* One attempt: OP, and if it would block, one wait.  Runs with interrupts
 * disabled and the fd acquired, so that nothing can unwind while the fd is
 * held; returns 1 when the caller should try again. */
static int netsys__attempt(net_handle *h, int events, int64_t dl, int nonblocking,
                           netsys_op op, void *arg, ssize_t *result) {
  int fd = net_handle_acquire(h);
  ssize_t r;
  if (fd < 0) {
    *result = fd;
    return 0;
  }
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

ssize_t netsys_io(cl_object handle, int events, cl_object deadline, netsys_op op, void *arg) {
  const cl_env_ptr env = ecl_process_env();
  net_handle *h = netsys_handle(handle);
  int nonblocking;
  int64_t dl = netsys__deadline(deadline, &nonblocking);
  ssize_t r;
  int again;
  do {
    ecl_disable_interrupts_env(env);
    again = netsys__attempt(h, events, dl, nonblocking, op, arg, &r);
    /* Re-enabling runs the Lisp interrupts that arrived meanwhile (GC,
     * mp:interrupt-process); they may unwind, and we hold nothing here. */
    ecl_enable_interrupts_env(env);
  } while (again);
  return r;
}

int netsys_io_done(ssize_t r, const char *call, cl_object sock) {
  if (r == NET_EAGAIN)
    return 0;
  if (r < 0)
    netsys_raise((int) r, call, sock);
  return 1;
}

cl_object netsys_now(void) {
  return ecl_make_fixnum(net_now_ns());
}
