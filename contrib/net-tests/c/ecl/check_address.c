/* check_address.c -- tests of the glue's address.c: octet vectors and
 * strings made for, and taken from, Lisp. */
#include "check_glue.h"

START_TEST(octet_vector_holds_the_octets) {
  uint8_t oct[4] = {127, 0, 0, 1};
  cl_object v = netsys_octet_vector(oct, 4);
  ck_assert(check_glue_typep(v, "(SIMPLE-ARRAY (UNSIGNED-BYTE 8) (4))"));
  ck_assert_int_eq(v->vector.elttype, ecl_aet_b8);
  ck_assert_int_eq(ecl_length(v), 4);
  ck_assert_int_eq(ecl_fixnum(ecl_aref1(v, 0)), 127);
  ck_assert_int_eq(ecl_fixnum(ecl_aref1(v, 3)), 1);
  ck_assert_int_eq(ecl_length(netsys_octet_vector(oct, 0)), 0);
}
END_TEST

START_TEST(base_string_of_base_and_latin1_text) {
  cl_object b = netsys_base_string(ecl_make_simple_base_string("example.org", -1));
  cl_object e = ecl_alloc_simple_extended_string(3);
  ck_assert(ECL_BASE_STRING_P(b));
  ck_assert_str_eq((const char *) b->base_string.self, "example.org");
  e->string.self[0] = 'a';
  e->string.self[1] = 0xe9; /* e acute, in Latin-1 */
  e->string.self[2] = 'b';
  b = netsys_base_string(e);
  ck_assert(ECL_BASE_STRING_P(b));
  ck_assert_int_eq(b->base_string.fillp, 3);
  ck_assert_int_eq(b->base_string.self[1], 0xe9);
}
END_TEST

START_TEST(base_string_is_nil_beyond_latin1) {
  cl_object e = ecl_alloc_simple_extended_string(2);
  e->string.self[0] = 'a';
  e->string.self[1] = 0x3bb; /* lambda */
  ck_assert(Null(netsys_base_string(e)));
}
END_TEST

static void call_base_string(void *arg) {
  netsys_base_string((cl_object) arg);
}

START_TEST(base_string_rejects_non_strings) {
  const char *others[] = {"42", "example", "#(1 2)", "#\\a"};
  size_t i;
  for (i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
    cl_object c = check_glue_signal(call_base_string, ecl_read_from_cstring(others[i]));
    ck_assert_msg(check_glue_typep(c, "TYPE-ERROR"), "no type-error for %s", others[i]);
    ck_assert_str_eq(check_glue_expected_type(c), "STRING");
  }
}
END_TEST

Suite *glue_address_suite(void) {
  Suite *s = suite_create("glue address");
  TCase *tc = check_glue_tcase("octet vectors and strings");
  tcase_add_test(tc, octet_vector_holds_the_octets);
  tcase_add_test(tc, base_string_of_base_and_latin1_text);
  tcase_add_test(tc, base_string_is_nil_beyond_latin1);
  tcase_add_test(tc, base_string_rejects_non_strings);
  suite_add_tcase(s, tc);
  return s;
}
