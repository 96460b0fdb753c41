/* check_error.c -- tests of the glue's error.c: type-errors, error codes,
 * and the bounds of octet vector ranges (netsys_octets). */
#include "check_glue.h"

struct octets_call {
  cl_object buffer, start, end;
  uint8_t *p;
  size_t len;
};

static void call_octets(void *arg) {
  struct octets_call *c = arg;
  c->p = netsys_octets(c->buffer, c->start, c->end, &c->len);
}

/* The condition netsys_octets signals for BUFFER from START to END (fixnums,
 * or -1 for NIL), or NIL; fills *LEN and *OFFSET when it returns. */
static cl_object octets(cl_object buffer, long start, long end, size_t *len, long *offset) {
  struct octets_call c;
  cl_object cond;
  c.buffer = buffer;
  c.start = start < 0 ? ECL_NIL : ecl_make_fixnum(start);
  c.end = end < 0 ? ECL_NIL : ecl_make_fixnum(end);
  c.p = NULL;
  c.len = 0;
  cond = check_glue_signal(call_octets, &c);
  if (Null(cond) && ecl_t_of(buffer) == t_vector) {
    *len = c.len;
    *offset = (long) (c.p - buffer->vector.self.b8);
  }
  return cond;
}

static void call_type_error(void *arg) {
  netsys_type_error((cl_object) arg, "(INTEGER 0 7)");
}

START_TEST(type_error_names_datum_and_type) {
  cl_object datum = ecl_make_fixnum(42);
  cl_object c = check_glue_signal(call_type_error, datum);
  ck_assert(check_glue_typep(c, "TYPE-ERROR"));
  ck_assert(cl_funcall(2, ecl_make_symbol("TYPE-ERROR-DATUM", "CL"), c) == datum);
  ck_assert_str_eq(check_glue_expected_type(c), "(INTEGER 0 7)");
}
END_TEST

START_TEST(octets_whole_vector_by_default) {
  size_t len = 99;
  long off = 99;
  ck_assert(Null(octets(check_glue_octets(10), -1, -1, &len, &off)));
  ck_assert_uint_eq(len, 10);
  ck_assert_int_eq(off, 0);
}
END_TEST

START_TEST(octets_start_and_end_select_a_range) {
  size_t len = 99;
  long off = 99;
  cl_object v = check_glue_octets(10);
  ck_assert(Null(octets(v, 2, 7, &len, &off)));
  ck_assert_uint_eq(len, 5);
  ck_assert_int_eq(off, 2);
  ck_assert(Null(octets(v, 10, -1, &len, &off)));
  ck_assert_uint_eq(len, 0);
  ck_assert(Null(octets(v, 4, 4, &len, &off)));
  ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(octets_rejects_bad_bounds) {
  size_t len;
  long off;
  cl_object v = check_glue_octets(10);
  /* end past the length, start past end, start past the length */
  ck_assert(check_glue_typep(octets(v, 0, 11, &len, &off), "TYPE-ERROR"));
  ck_assert(check_glue_typep(octets(v, 6, 5, &len, &off), "TYPE-ERROR"));
  ck_assert(check_glue_typep(octets(v, 11, -1, &len, &off), "TYPE-ERROR"));
  ck_assert_str_eq(check_glue_expected_type(octets(v, 0, 11, &len, &off)), "(INTEGER 0 10)");
}
END_TEST

START_TEST(octets_rejects_non_fixnum_bounds) {
  struct octets_call c;
  cl_object cond;
  c.buffer = check_glue_octets(4);
  c.start = ecl_make_fixnum(-1);
  c.end = ECL_NIL;
  ck_assert(check_glue_typep(check_glue_signal(call_octets, &c), "TYPE-ERROR"));
  c.start = ECL_NIL;
  c.end = ecl_read_from_cstring("100000000000000000000000");
  ck_assert(check_glue_typep(check_glue_signal(call_octets, &c), "TYPE-ERROR"));
  c.end = ecl_make_simple_base_string("3", -1);
  cond = check_glue_signal(call_octets, &c);
  ck_assert(check_glue_typep(cond, "TYPE-ERROR"));
}
END_TEST

START_TEST(octets_rejects_other_vectors) {
  size_t len;
  long off;
  const char *others[] = {"\"abc\"", "#(1 2 3)", "#*101", "(1 2 3)", "42",
                          "(make-array 3 :element-type '(signed-byte 8))",
                          "(make-array 3 :element-type '(unsigned-byte 16))"};
  size_t i;
  for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    cl_object x = si_safe_eval(3, ecl_read_from_cstring(others[i]), ECL_NIL, ECL_NIL);
    cl_object c = octets(x, -1, -1, &len, &off);
    ck_assert_msg(check_glue_typep(c, "TYPE-ERROR"), "no type-error for %s", others[i]);
    ck_assert_str_eq(check_glue_expected_type(c), "(VECTOR (UNSIGNED-BYTE 8))");
  }
}
END_TEST

START_TEST(octets_honours_fill_pointer) {
  size_t len = 99;
  long off = 99;
  cl_object v = si_safe_eval(3, ecl_read_from_cstring(
      "(make-array 8 :element-type '(unsigned-byte 8) :fill-pointer 3)"), ECL_NIL, ECL_NIL);
  ck_assert(Null(octets(v, -1, -1, &len, &off)));
  ck_assert_uint_eq(len, 3);
  ck_assert(check_glue_typep(octets(v, 0, 4, &len, &off), "TYPE-ERROR"));
}
END_TEST

static void call_check(void *arg) {
  netsys_check(*(int *) arg, "connect", ECL_NIL);
}

START_TEST(check_passes_counts_and_raises_codes) {
  int code = NET_ECONNREFUSED;
  cl_object c;
  ck_assert(netsys_check(7, "send", ECL_NIL) == ecl_make_fixnum(7));
  ck_assert(netsys_check(0, "send", ECL_NIL) == ecl_make_fixnum(0));
  c = check_glue_signal(call_check, &code);
  ck_assert(!Null(c));
  ck_assert_int_eq(check_glue_last_code(), NET_ECONNREFUSED);
}
END_TEST

static void call_strerror(void *arg) {
  netsys_strerror((cl_object) arg);
}

START_TEST(strerror_of_codes_and_non_fixnums) {
  cl_object text = netsys_strerror(ecl_make_fixnum(NET_ECONNREFUSED));
  cl_object c;
  ck_assert(ecl_stringp(text));
  ck_assert_int_gt(ecl_length(text), 0);
  c = check_glue_signal(call_strerror, ecl_make_simple_base_string("ECONNREFUSED", -1));
  ck_assert(check_glue_typep(c, "TYPE-ERROR"));
  ck_assert_str_eq(check_glue_expected_type(c), "FIXNUM");
}
END_TEST

Suite *glue_error_suite(void) {
  Suite *s = suite_create("glue error");
  TCase *tc = check_glue_tcase("type errors and octet ranges");
  tcase_add_test(tc, type_error_names_datum_and_type);
  tcase_add_test(tc, octets_whole_vector_by_default);
  tcase_add_test(tc, octets_start_and_end_select_a_range);
  tcase_add_test(tc, octets_rejects_bad_bounds);
  tcase_add_test(tc, octets_rejects_non_fixnum_bounds);
  tcase_add_test(tc, octets_rejects_other_vectors);
  tcase_add_test(tc, octets_honours_fill_pointer);
  tcase_add_test(tc, check_passes_counts_and_raises_codes);
  tcase_add_test(tc, strerror_of_codes_and_non_fixnums);
  suite_add_tcase(s, tc);
  return s;
}
