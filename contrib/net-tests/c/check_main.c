/* check_main.c -- runs every Check suite, one forked process per test. */
#include "check_net.h"

#include <stdio.h>
#include <stdlib.h>

int main(void) {
  SRunner *sr = srunner_create(error_suite());
  int run, failed;
  srunner_add_suite(sr, address_suite());
  srunner_add_suite(sr, resolver_suite());
  srunner_add_suite(sr, socket_suite());
  srunner_add_suite(sr, handle_suite());
  srunner_add_suite(sr, io_suite());
  srunner_add_suite(sr, local_suite());
  srunner_add_suite(sr, loop_suite());
  srunner_add_suite(sr, message_suite());
  srunner_add_suite(sr, options_suite());
  srunner_add_suite(sr, multicast_suite());
  srunner_add_suite(sr, interface_suite());
  srunner_add_suite(sr, wait_suite());
  srunner_add_suite(sr, pool_suite());
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  run = srunner_ntests_run(sr);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  printf("C suites: %d run, %d failing\n", run, failed);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
