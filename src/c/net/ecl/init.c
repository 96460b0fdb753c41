/* init.c -- glue: module initialisation, run when net's Lisp code loads. */
#include "netsys.h"

#include <signal.h>

cl_object netsys_init(void) {
  struct sigaction sa;
  netsys__handle_init();
  netsys__loop_init();
  netsys__interrupt_init();
  netsys__pool_init();
  /* Sends use MSG_NOSIGNAL, but libuv's writes do not: where nobody handles
   * SIGPIPE (an embedder that turned off ECL's trap), ignore it so that a
   * peer's reset is an error code, never the death of the process. */
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
  }
  return netsys_error_table();
}

cl_object netsys_libuv_version(void) {
  return ecl_make_simple_base_string(net_libuv_version(), -1);
}
