/* check_main.c -- runs every Check suite of the glue, one forked process
 * per test, each booting ECL in its fixture. */
#include "check_glue.h"

#include <stdio.h>
#include <stdlib.h>

int main(void) {
  SRunner *sr = srunner_create(glue_error_suite());
  int run, failed;
  srunner_add_suite(sr, glue_sockaddr_suite());
  srunner_add_suite(sr, glue_address_suite());
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  run = srunner_ntests_run(sr);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  printf("C suites: %d run, %d failing\n", run, failed);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
