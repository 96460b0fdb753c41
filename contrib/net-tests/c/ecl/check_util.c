/* check_util.c -- the glue tests' fixture: ECL booted in each forked test
 * process, and catching the Lisp conditions a primitive signals. */
#include "check_glue.h"

#include <string.h>

static cl_object eval_text(const char *text) {
  return si_safe_eval(3, ecl_read_from_cstring(text), ECL_NIL, ECL_NIL);
}

void check_glue_boot(void) {
  static char *argv[] = {"check_glue", NULL};
  cl_boot(1, argv);
  /* netsys_raise calls NET-SYS::%SIGNAL-ERROR, which net.fas defines;
   * a stand-in records the code, so that tests can see which error the
   * glue raised without loading the Lisp layer. */
  eval_text("(defpackage \"NET-SYS\" (:use \"CL\"))");
  eval_text("(defvar net-sys::*last-code* 0)");
  eval_text("(defun net-sys::%signal-error (code call socket)"
            " (setf net-sys::*last-code* code)"
            " (error \"~a failed with ~a on ~s\" call code socket))");
}

void check_glue_shutdown(void) {
  cl_shutdown();
}

TCase *check_glue_tcase(const char *name) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, check_glue_boot, check_glue_shutdown);
  tcase_set_timeout(tc, 20);
  return tc;
}

/* ECL_HANDLER_CASE is setjmp/longjmp: CAUGHT is volatile, and the macro's
 * own CONDITION is only read after the jump, which GCC cannot tell. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wclobbered"
cl_object check_glue_signal(check_glue_thunk f, void *arg) {
  cl_env_ptr env = ecl_process_env();
  volatile cl_object caught = ECL_NIL;
  ECL_HANDLER_CASE_BEGIN(env, ecl_list1(ecl_make_symbol("ERROR", "CL"))) {
    f(arg);
  } ECL_HANDLER_CASE(1, condition) {
    caught = condition;
  } ECL_HANDLER_CASE_END;
  return caught;
}
#pragma GCC diagnostic pop

int check_glue_typep(cl_object x, const char *type) {
  return !Null(cl_typep(2, x, ecl_read_from_cstring(type)));
}

const char *check_glue_expected_type(cl_object c) {
  static char buf[256];
  cl_object type = cl_funcall(2, ecl_make_symbol("TYPE-ERROR-EXPECTED-TYPE", "CL"), c);
  cl_object text = cl_prin1_to_string(type);
  cl_object base = si_coerce_to_base_string(text);
  size_t n = base->base_string.fillp < sizeof(buf) - 1 ? base->base_string.fillp : sizeof(buf) - 1;
  memcpy(buf, base->base_string.self, n);
  buf[n] = 0;
  return buf;
}

int check_glue_last_code(void) {
  cl_object v = ecl_symbol_value(ecl_make_symbol("*LAST-CODE*", "NET-SYS"));
  return (int) ecl_fixnum(v);
}

cl_object check_glue_octets(int n) {
  uint8_t oct[64];
  int i;
  for (i = 0; i < n && i < 64; i++)
    oct[i] = (uint8_t) i;
  return netsys_octet_vector(oct, n);
}
