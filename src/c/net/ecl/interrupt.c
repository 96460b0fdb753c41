/* interrupt.c -- glue: an event loop waits in libuv's own epoll_wait, and ECL's interrupts still wake it.
 *
 * ECL delivers mp:interrupt-process (and Ctrl-C, which its signal thread
 * forwards) to a thread as one signal, ECL_OPT_THREAD_INTERRUPT_SIGNAL.
 * A loop's thread waits with ECL's interrupts disabled, so the handler
 * only queues the interrupt; the queued one runs when the wait is over and
 * interrupts are enabled again.  libuv retries epoll_wait when a signal
 * interrupts it, so the wait would only end with the next event.  We put a
 * handler of our own in front of ECL's: when the signal arrives in a thread
 * that waits in a loop, it wakes that loop (uv_async_send, which libuv
 * documents as async-signal-safe), then hands the signal on.  A pass then
 * costs one system call (epoll_wait), as libuv's own, instead of a ppoll on
 * the loop's descriptor followed by a non-blocking epoll_wait.
 *
 * Where this cannot be set up (no interrupt signal, or no handler of ECL's
 * found), netsys__run_once answers 0 and the caller waits in ppoll. */
#include "netsys.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>

/* The loop this thread waits in, or NULL.  Initial-exec: static TLS, which
 * a signal handler may read without any allocation. */
static __thread net_loop *volatile waiting __attribute__((tls_model("initial-exec")));

static int interrupt_signal;          /* 0: not set up */
static struct sigaction ecl_action;   /* ECL's handler, called after ours */

static void on_interrupt_signal(int sig, siginfo_t *info, void *context) {
  int saved = errno;
  net_loop *l = waiting;
  if (l)
    net_loop_wake(l);
  errno = saved;
  if (ecl_action.sa_flags & SA_SIGINFO)
    ecl_action.sa_sigaction(sig, info, context);
  else if (ecl_action.sa_handler != SIG_IGN && ecl_action.sa_handler != SIG_DFL)
    ecl_action.sa_handler(sig);
}

void netsys__interrupt_init(void) {
  struct sigaction ours;
  int sig = (int) ecl_get_option(ECL_OPT_THREAD_INTERRUPT_SIGNAL);
  if (interrupt_signal != 0 || sig <= 0 || sigaction(sig, NULL, &ecl_action) < 0)
    return;
  if (!(ecl_action.sa_flags & SA_SIGINFO) &&
      (ecl_action.sa_handler == SIG_IGN || ecl_action.sa_handler == SIG_DFL))
    return;
  ours = ecl_action;
  ours.sa_sigaction = on_interrupt_signal;
  ours.sa_flags |= SA_SIGINFO;
  if (sigaction(sig, &ours, NULL) == 0)
    interrupt_signal = sig;
}

/* Nothing queued since ENV disabled interrupts: ECL's handler marks a
 * queued interrupt in both places. */
static int nothing_queued(cl_env_ptr env) {
  return env->disable_interrupts == 1 && env->interrupt_struct->pending_interrupt == ECL_NIL;
}

/* One pass of L that may wait for ever (or until L's next timer), with
 * ENV's interrupts disabled by the caller.  Returns 0, having done nothing,
 * when the wait could not be woken by an interrupt: the caller waits its
 * own way. */
int netsys__run_once(cl_env_ptr env, net_loop *l) {
  if (interrupt_signal == 0)
    return 0;
  waiting = l;
  atomic_signal_fence(memory_order_seq_cst);
  /* An interrupt queued before WAITING was set woke nobody: do not wait. */
  if (nothing_queued(env))
    net_loop_run_once(l);
  else
    net_loop_run_nowait(l);
  atomic_signal_fence(memory_order_seq_cst);
  waiting = NULL;
  return 1;
}
