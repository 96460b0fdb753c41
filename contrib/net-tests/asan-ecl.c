/* asan-ecl.c -- ECL's top level in an executable linked with the
 * sanitizers, for make check-asan: the instrumented net.fas needs their
 * runtime in the process, and linking it here (rather than preloading it)
 * keeps it out of the peers the tests start (curl, python3, socat). */
#include <ecl/ecl.h>

int main(int argc, char **argv) {
  cl_env_ptr env;
  cl_boot(argc, argv);
  env = ecl_process_env();
  ECL_CATCH_ALL_BEGIN(env) {
    si_safe_eval(2, c_string_to_object("(si::top-level t)"), ECL_NIL);
  } ECL_CATCH_ALL_END;
  si_exit(0);
  return 0;
}
