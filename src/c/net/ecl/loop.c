/* loop.c -- glue for the event loop: loop, watcher, timer and lookup objects, and the batch of events. */
#include "netsys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

/* Each C object is a foreign-data object of its own tag whose pointer
 * becomes NULL once freed, so that a second free does nothing and any
 * other use is a type error rather than a use after free. */
static void *ptr_of(cl_object obj, const char *tag) {
  if (ecl_t_of(obj) != t_foreign || obj->foreign.data == NULL)
    netsys_type_error(obj, tag);
  return obj->foreign.data;
}

/* TAG a string literal: its symbol is interned once per call site. */
#define wrap(tag, p) ecl_make_foreign_data(NETSYS_SYMBOL((tag), "NET-SYS"), 0, (p))

#define NETSYS__LOOP(x) ((net_loop *) ptr_of((x), "NET-SYS::EVENT-LOOP-POINTER"))

/* libuv calls run with interrupts disabled: an interrupt running Lisp in
 * the middle of one could re-enter the loop. */
#define NETSYS__QUIET(env, stmt)                                                             \
  do {                                                                                        \
    ecl_disable_interrupts_env(env);                                                          \
    stmt;                                                                                     \
    ecl_enable_interrupts_env(env);                                                           \
  } while (0)

/* A loop pointer that becomes garbage unclosed is freed by its finalizer
 * with net_loop_collect, from whatever thread runs finalizers: the loop is
 * unreachable from Lisp, and net_loop_collect first takes its watchers
 * from their sockets, the only way C reaches it.  When it cannot, the
 * memory is left, and said so.  The function is a GC root, as a C static
 * is none. */
static cl_object loop_finalizer = OBJNULL;
static atomic_long loops_collected, loops_left;

static cl_object finalize_loop(cl_object obj) {
  const cl_env_ptr env = ecl_process_env();
  net_loop *l = (net_loop *) obj->foreign.data;
  int r;
  if (l) {
    NETSYS__QUIET(env, r = net_loop_collect(l));
    obj->foreign.data = NULL;
    if (r == 0) {
      atomic_fetch_add(&loops_collected, 1);
    } else {
      atomic_fetch_add(&loops_left, 1);
      fprintf(stderr, ";;; net: an event loop became garbage unclosed while a host lookup "
                      "ran or a watched socket was being closed; its memory is left\n");
    }
  }
  ecl_return0(env);
}

void netsys__loop_init(void) {
  netsys__make_finalizer(&loop_finalizer, finalize_loop, "%FINALIZE-LOOP");
}

cl_object netsys_loops_finalized(void) {
  return ecl_cons(ecl_make_fixnum(atomic_load(&loops_collected)),
                  ecl_make_fixnum(atomic_load(&loops_left)));
}

cl_object netsys_loop_new(void) {
  const cl_env_ptr env = ecl_process_env();
  cl_object obj = wrap("EVENT-LOOP-POINTER", NULL);
  net_loop *l;
  int r;
  si_set_finalizer(obj, loop_finalizer);   /* before: nothing to do while data is NULL */
  NETSYS__QUIET(env, r = net_loop_new(&l); if (r == 0) obj->foreign.data = (char *) l);
  if (r < 0)
    netsys_raise(r, "uv_loop_init", ECL_NIL);
  return obj;
}

cl_object netsys_loop_close(cl_object loop) {
  const cl_env_ptr env = ecl_process_env();
  int r;
  if (ecl_t_of(loop) != t_foreign || loop->foreign.data == NULL)
    return ECL_NIL;
  NETSYS__QUIET(env, r = net_loop_close((net_loop *) loop->foreign.data);
                if (r == 0) loop->foreign.data = NULL);
  if (r < 0)
    netsys_raise(r, "uv_loop_close", ECL_NIL);
  return ECL_T;
}

static cl_object take_into(net_loop *l, cl_object vector);

/* One pass: wait (up to WAIT-MS milliseconds, -1 forever, 0 not at all,
 * and no longer than the loop's next timer) with ECL's interrupts able to
 * run, then run libuv once.  A wait without end is libuv's own epoll_wait
 * (uv_run(UV_RUN_ONCE)), which an interrupt wakes (interrupt.c).  A
 * bounded wait, or where interrupts cannot wake epoll_wait, is a ppoll on
 * libuv's backend fd, then uv_run(UV_RUN_NOWAIT): libuv itself retries
 * epoll_wait on EINTR, the ppoll lets mp:interrupt-process and Ctrl-C run
 * at once.  The events recorded are copied into VECTOR as by
 * netsys_loop_take; returns their count.  When it fills VECTOR, more may
 * wait: netsys_loop_take takes them. */
cl_object netsys_loop_pass(cl_env_ptr env, cl_object loop, cl_object wait_ms, cl_object vector) {
  net_loop *l = NETSYS__LOOP(loop);
  int ms = netsys__int(wait_ms, -1, INT32_MAX, "(INTEGER -1 2147483647)");
  if (ms < 0 && net_loop_pending(l) == 0 && net_loop_alive(l)) {
    int done;
    ecl_disable_interrupts_env(env);
    done = netsys__run_once(env, l);
    /* Interrupts that arrived while waiting run here; we hold nothing. */
    ecl_enable_interrupts_env(env);
    if (done)
      return take_into(l, vector);
  }
  if (ms != 0 && net_loop_pending(l) == 0 && net_loop_busy(l)) {
    NETSYS__QUIET(env, net_loop_run_nowait(l));
    if (net_loop_pending(l) > 0)
      return take_into(l, vector);
  }
  /* Nothing watched (maybe since the pass just run closed the last
   * handle): a wait without end could only be ended by call-in-loop. */
  if (ms < 0 && !net_loop_alive(l))
    ms = 0;
  if (ms != 0 && net_loop_pending(l) == 0) {
    int t;
    ecl_disable_interrupts_env(env);
    t = net_loop_timeout(l);
    if (t >= 0 && (ms < 0 || t < ms))
      ms = t;
    if (ms != 0)
      net_wait(net_loop_backend_fd(l), NET_WAIT_READ,
               ms < 0 ? NET_NO_DEADLINE : net_now_ns() + (int64_t) ms * 1000000);
    /* Interrupts that arrived while waiting run here; we hold nothing. */
    ecl_enable_interrupts_env(env);
  }
  NETSYS__QUIET(env, net_loop_run_nowait(l));
  return take_into(l, vector);
}

/* Copies the recorded events into VECTOR, a (simple-array fixnum (*)) --
 * which ECL stores as 64-bit integers (ext:integer64) -- as
 * id, events, id, events ...: one crossing for a whole batch.  Returns the
 * number of events copied. */
static cl_object take_into(net_loop *l, cl_object vector) {
  net_event ev[256];
  size_t room, n, i, total = 0;
  int64_t *out;
  if (ecl_t_of(vector) != t_vector || vector->vector.elttype != ecl_aet_i64)
    netsys_type_error(vector, "(SIMPLE-ARRAY FIXNUM (*))");
  out = vector->vector.self.i64;
  room = vector->vector.dim / 2;
  while (total < room) {
    size_t want = room - total < 256 ? room - total : 256;
    n = net_loop_take(l, ev, want);
    for (i = 0; i < n; i++) {
      out[2 * (total + i)] = ev[i].id;
      out[2 * (total + i) + 1] = ev[i].events;
    }
    total += n;
    if (n < want)               /* none left */
      break;
  }
  return ecl_make_fixnum((cl_fixnum) total);
}

cl_object netsys_loop_take(cl_object loop, cl_object vector) {
  return take_into(NETSYS__LOOP(loop), vector);
}

cl_object netsys_loop_wake(cl_object loop) {
  net_loop_wake(NETSYS__LOOP(loop));
  return ECL_NIL;
}

cl_object netsys_loop_stop(cl_object loop) {
  net_loop_stop(NETSYS__LOOP(loop));
  return ECL_NIL;
}

cl_object netsys_loop_go_on(cl_object loop) {
  net_loop *l = NETSYS__LOOP(loop);
  return !net_loop_stop_requested(l) && net_loop_alive(l) ? ECL_T : ECL_NIL;
}

cl_object netsys_loop_alive(cl_object loop) {
  return net_loop_alive(NETSYS__LOOP(loop)) ? ECL_T : ECL_NIL;
}

/* ---- Watchers -------------------------------------------------------------- */

cl_object netsys_watch_start(cl_object loop, cl_object handle, cl_object id, cl_object events,
                             cl_object sock) {
  const cl_env_ptr env = ecl_process_env();
  net_loop *l = NETSYS__LOOP(loop);
  net_handle *h = netsys_handle(handle);
  int i = NETSYS_INDEX(id), e = netsys__int(events, 0, 15, "(INTEGER 0 15)"), r;
  cl_object obj = wrap("WATCH-POINTER", NULL);
  net_watch *w;
  NETSYS__QUIET(env, r = net_watch_start(l, h, i, e, &w); if (r == 0) obj->foreign.data = (char *) w);
  if (r < 0)
    netsys_raise(r, "uv_poll_start", sock);
  return obj;
}

cl_object netsys_watch_set_events(cl_object watch, cl_object events, cl_object sock) {
  const cl_env_ptr env = ecl_process_env();
  net_watch *w = ptr_of(watch, "NET-SYS::WATCH-POINTER");
  int e = netsys__int(events, 0, 15, "(INTEGER 0 15)"), r;
  NETSYS__QUIET(env, r = net_watch_set_events(w, e));
  if (r < 0)
    netsys_raise(r, "uv_poll_start", sock);
  return events;
}

cl_object netsys_watch_attached(cl_object watch) {
  net_watch *w = ptr_of(watch, "NET-SYS::WATCH-POINTER");
  return net_watch_attached(w) ? ECL_T : ECL_NIL;
}

cl_object netsys_watch_free(cl_object watch) {
  const cl_env_ptr env = ecl_process_env();
  if (ecl_t_of(watch) == t_foreign && watch->foreign.data)
    NETSYS__QUIET(env, net_watch_free((net_watch *) watch->foreign.data);
                  watch->foreign.data = NULL);
  return ECL_NIL;
}

/* ---- Timers ---------------------------------------------------------------- */

cl_object netsys_timer_start(cl_object loop, cl_object id, cl_object ms, cl_object repeat_ms) {
  const cl_env_ptr env = ecl_process_env();
  net_loop *l = NETSYS__LOOP(loop);
  int i = NETSYS_INDEX(id), r;
  cl_fixnum m, rep;
  cl_object obj = wrap("TIMER-POINTER", NULL);
  net_timer *x;
  if (!ECL_FIXNUMP(ms) || ecl_fixnum(ms) < 0)
    netsys_type_error(ms, "(INTEGER 0)");
  if (!ECL_FIXNUMP(repeat_ms) || ecl_fixnum(repeat_ms) < 0)
    netsys_type_error(repeat_ms, "(INTEGER 0)");
  m = ecl_fixnum(ms);
  rep = ecl_fixnum(repeat_ms);
  NETSYS__QUIET(env, r = net_timer_start(l, i, (uint64_t) m, (uint64_t) rep, &x);
                if (r == 0) obj->foreign.data = (char *) x);
  if (r < 0)
    netsys_raise(r, "uv_timer_start", ECL_NIL);
  return obj;
}

cl_object netsys_timer_active(cl_object timer) {
  if (ecl_t_of(timer) != t_foreign || timer->foreign.data == NULL)
    return ECL_NIL;
  return net_timer_active((net_timer *) timer->foreign.data) ? ECL_T : ECL_NIL;
}

cl_object netsys_timer_free(cl_object timer) {
  const cl_env_ptr env = ecl_process_env();
  if (ecl_t_of(timer) == t_foreign && timer->foreign.data)
    NETSYS__QUIET(env, net_timer_free((net_timer *) timer->foreign.data);
                  timer->foreign.data = NULL);
  return ECL_NIL;
}

/* ---- Host lookups ---------------------------------------------------------- */

/* A lookup object, or a string saying why NAME is no valid host name. */
cl_object netsys_lookup_start(cl_object loop, cl_object id, cl_object name, cl_object family) {
  const cl_env_ptr env = ecl_process_env();
  net_loop *l = NETSYS__LOOP(loop);
  int i = NETSYS_INDEX(id), fam = netsys__int(family, 0, 6, "(INTEGER 0 6)"), r;
  cl_object base = netsys_base_string(name);
  cl_object obj = wrap("LOOKUP-POINTER", NULL);
  const char *why = NULL;
  net_lookup *q;
  if (Null(base))
    return ecl_make_simple_base_string("the host name contains a non-ASCII character"
                                       " (use the ASCII, punycode form)", -1);
  NETSYS__QUIET(env, r = net_lookup_start(l, i, (const char *) base->base_string.self,
                                          base->base_string.fillp, fam, &q, &why);
                if (r == 0) obj->foreign.data = (char *) q);
  if (r == NET_EINVAL && why)
    return ecl_make_simple_base_string(why, -1);
  if (r < 0)
    netsys_raise(r, "getaddrinfo", name);
  return obj;
}

/* (canonical-name (octets . scope) ...) as LOOKUP-HOST's primitive, or
 * the resolver code (a negative fixnum) it failed with. */
cl_object netsys_lookup_result(cl_object lookup) {
  net_lookup *q = ptr_of(lookup, "NET-SYS::LOOKUP-POINTER");
  net_ip_addr out[NET_RESOLVE_MAX];
  char canon[NET_HOST_STRLEN];
  int n = net_lookup_result(q, out, NET_RESOLVE_MAX, canon, sizeof(canon));
  if (n < 0)
    return ecl_make_fixnum(n);
  return ecl_cons(ecl_make_simple_base_string(canon, -1), netsys__addr_list(out, n));
}

cl_object netsys_lookup_free(cl_object lookup) {
  const cl_env_ptr env = ecl_process_env();
  if (ecl_t_of(lookup) == t_foreign && lookup->foreign.data)
    NETSYS__QUIET(env, net_lookup_free((net_lookup *) lookup->foreign.data);
                  lookup->foreign.data = NULL);
  return ECL_NIL;
}

/* ---- Signals --------------------------------------------------------------- */

/* A signal watcher object, or NIL when the signal has a handler that is not
 * libuv's (ECL's own, or an embedder's). */
cl_object netsys_signal_start(cl_object loop, cl_object id, cl_object signum) {
  const cl_env_ptr env = ecl_process_env();
  net_loop *l = NETSYS__LOOP(loop);
  int i = NETSYS_INDEX(id), n = netsys__int(signum, 1, 64, "(INTEGER 1 64)"), r;
  cl_object obj = wrap("SIGNAL-POINTER", NULL);
  net_signal *x;
  NETSYS__QUIET(env, r = net_signal_start(l, i, n, &x); if (r == 0) obj->foreign.data = (char *) x);
  if (r == -EBUSY)
    return ECL_NIL;
  if (r < 0)
    netsys_raise(r, "uv_signal_start", ECL_NIL);
  return obj;
}

cl_object netsys_signal_free(cl_object sig) {
  const cl_env_ptr env = ecl_process_env();
  if (ecl_t_of(sig) == t_foreign && sig->foreign.data)
    NETSYS__QUIET(env, net_signal_free((net_signal *) sig->foreign.data);
                  sig->foreign.data = NULL);
  return ECL_NIL;
}
