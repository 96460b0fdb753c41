/* pool.c -- glue for the threaded server's pool: accepted descriptors handed
 * from the acceptor thread to worker threads in C.
 *
 * The descriptors wait in C as plain numbers, no Lisp object: a worker
 * wraps its descriptor in a handle of its own.  Every wait runs with ECL's
 * interrupts disabled in a futex wait that a signal ends (ECL's interrupt
 * signal has no SA_RESTART): the interrupt is queued, the wait returns
 * NET_EINTR having counted nothing, and re-enabling interrupts runs it
 * (mp:interrupt-process, a stopping server's throw) holding nothing. */
#include "netsys.h"

static cl_object pool_finalizer = OBJNULL;

static cl_object finalize_pool(cl_object obj) {
  net_pool *p = (net_pool *) obj->foreign.data;
  obj->foreign.data = NULL;
  net_pool_free(p);
  ecl_return0(ecl_process_env());
}

void netsys__pool_init(void) {
  netsys__make_finalizer(&pool_finalizer, finalize_pool, "%FINALIZE-POOL");
}

static net_pool *pool_of(cl_object obj) {
  if (ecl_t_of(obj) != t_foreign || obj->foreign.data == NULL)
    netsys_type_error(obj, "NET-SYS::POOL-POINTER");
  return (net_pool *) obj->foreign.data;
}

cl_object netsys_pool_new(cl_object threads, cl_object queue) {
  const cl_env_ptr env = ecl_process_env();
  int t = netsys__int(threads, 1, INT32_MAX / 4, "(INTEGER 1 536870911)");
  int q = netsys__int(queue, 0, INT32_MAX / 4, "(INTEGER 0 536870911)");
  cl_object obj = ecl_make_foreign_data(NETSYS_SYMBOL("POOL-POINTER", "NET-SYS"), 0, NULL);
  net_pool *p;
  si_set_finalizer(obj, pool_finalizer);
  ecl_disable_interrupts_env(env);
  p = net_pool_new(t, q);
  obj->foreign.data = (char *) p;
  ecl_enable_interrupts_env(env);
  if (!p)
    netsys_raise(NET_ENOMEM, "malloc", ECL_NIL);
  return obj;
}

cl_object netsys_handle_spare(void) {
  return netsys_handle_prealloc();
}

struct pool_accept_arg {
  net_pool *pool;
  int may_refuse;
  cl_object spare;
  net_sockaddr peer;
};

#define POOL_REFUSED 2
#define POOL_STOPPED 3

/* Runs with interrupts disabled: the new fd is queued, or given to the
 * spare handle, before anything can unwind. */
static ssize_t pool_accept_op(int fd, void *arg) {
  struct pool_accept_arg *a = arg;
  int nfd = net_socket_accept(fd, &a->peer), r, q;
  if (nfd < 0)
    return nfd;
  q = net_pool_push(a->pool, nfd, a->may_refuse);
  if (q >= 0)
    return q;
  if ((r = netsys_handle_attach(a->spare, nfd)) < 0)
    return r;
  return q == NET_ECLOSED ? POOL_STOPPED : POOL_REFUSED;
}

cl_object netsys_pool_accept(cl_object pool, cl_object handle, cl_object deadline,
                             cl_object sock, cl_object may_refuse, cl_object spare) {
  struct pool_accept_arg a;
  ssize_t r;
  a.pool = pool_of(pool);
  a.may_refuse = !Null(may_refuse);
  a.spare = spare;
  if (ecl_t_of(spare) != t_foreign || spare->foreign.data != NULL)
    netsys_type_error(spare, "(AND NET-SYS::SOCKET-HANDLE (SATISFIES UNATTACHED))");
  r = netsys_io(handle, NET_WAIT_READ, deadline, pool_accept_op, &a);
  if (!netsys_io_done(r, "accept", sock))
    return ECL_NIL;
  if (r == POOL_REFUSED)
    return ecl_cons(ECL_T, netsys__sockaddr_list(&a.peer));
  if (r == POOL_STOPPED)
    return ecl_cons(ECL_NIL, ECL_NIL);
  return ecl_make_fixnum(r);
}

cl_object netsys_pool_take(cl_object pool, cl_object done) {
  const cl_env_ptr env = ecl_process_env();
  net_pool *p = pool_of(pool);
  cl_object h = netsys_handle_prealloc();
  int d = !Null(done), r;
  do {
    ecl_disable_interrupts_env(env);
    r = net_pool_take(p, d);
    d = 0;
    if (r >= 0 && netsys_handle_attach(h, r) < 0) {
      /* Out of memory: that connection is lost (its fd closed); next. */
      net_pool_done(p);
      r = NET_EINTR;
    }
    /* A queued interrupt runs here; nothing is held. */
    ecl_enable_interrupts_env(env);
  } while (r == NET_EINTR);
  return r == NET_ECLOSED ? ECL_NIL : h;
}

cl_object netsys_pool_done(cl_object pool) {
  net_pool_done(pool_of(pool));
  return ECL_NIL;
}

cl_object netsys_pool_error(cl_object pool) {
  net_pool_error(pool_of(pool));
  return ECL_NIL;
}

cl_object netsys_pool_wait_room(cl_object pool) {
  const cl_env_ptr env = ecl_process_env();
  net_pool *p = pool_of(pool);
  int r;
  do {
    ecl_disable_interrupts_env(env);
    r = net_pool_wait_room(p);
    ecl_enable_interrupts_env(env);
  } while (r == NET_EINTR);
  return r == 0 ? ECL_T : ECL_NIL;
}

cl_object netsys_pool_stop(cl_object pool) {
  int r = net_pool_stop(pool_of(pool));
  return r < 0 ? ECL_NIL : ecl_make_fixnum(r);
}

cl_object netsys_pool_statistics(cl_object pool) {
  long s[NET_POOL_NSTATS];
  cl_object list = ECL_NIL;
  int i;
  net_pool_stats(pool_of(pool), s);
  for (i = NET_POOL_NSTATS - 1; i >= 0; i--)
    list = ecl_cons(ecl_make_fixnum(s[i]), list);
  return list;
}
