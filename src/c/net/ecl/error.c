/* error.c -- glue: turning error codes into Lisp conditions, in one place. */
#include "netsys.h"

void netsys_raise(int code, const char *syscall, cl_object socket) {
  cl_object fn = NETSYS_SYMBOL("%SIGNAL-ERROR", "NET-SYS");
  cl_funcall(4, fn, ecl_make_fixnum(code), ecl_make_simple_base_string(syscall, -1), socket);
  /* %signal-error never returns; make sure we do not either. */
  ecl_internal_error("net: %signal-error returned");
}

void netsys_type_error(cl_object datum, const char *type) {
  FEwrong_type_argument(ecl_read_from_cstring(type), datum);
}

cl_object netsys_check(int code, const char *syscall, cl_object socket) {
  if (code < 0)
    netsys_raise(code, syscall, socket);
  return ecl_make_fixnum(code);
}

static cl_index octet_index(cl_object x, cl_index limit, cl_index dflt) {
  if (Null(x))
    return dflt;
  if (!ECL_FIXNUMP(x) || ecl_fixnum(x) < 0 || (cl_index) ecl_fixnum(x) > limit) {
    cl_object type = cl_list(3, ecl_make_symbol("INTEGER", "CL"), ecl_make_fixnum(0),
                             ecl_make_fixnum(limit));
    FEwrong_type_argument(type, x);
  }
  return (cl_index) ecl_fixnum(x);
}

uint8_t *netsys_octets(cl_object buffer, cl_object start, cl_object end, size_t *len) {
  cl_index s, e, n;
  if (ecl_t_of(buffer) != t_vector || buffer->vector.elttype != ecl_aet_b8)
    netsys_type_error(buffer, "(VECTOR (UNSIGNED-BYTE 8))");
  n = buffer->vector.fillp;
  e = octet_index(end, n, n);
  s = octet_index(start, e, 0);
  *len = e - s;
  return buffer->vector.self.b8 + s;
}

cl_object netsys_strerror(cl_object code) {
  if (!ECL_FIXNUMP(code))
    netsys_type_error(code, "FIXNUM");
  return ecl_make_simple_base_string(net_strerror((int) ecl_fixnum(code)), -1);
}

cl_object netsys_error_table(void) {
  cl_object list = ECL_NIL;
  int i;
  for (i = net_err_count() - 1; i >= 0; i--) {
    const char *name;
    int code = net_err_row(i, &name);
    list = ecl_cons(ecl_cons(ecl_make_fixnum(code), ecl_make_simple_base_string(name, -1)), list);
  }
  return list;
}
