/* check_address.c -- tests of the glue's address.c: octet vectors, IP text
 * and strings made for, and taken from, Lisp. */
#include "check_glue.h"

#include <string.h>

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

static const char *text_of(cl_object s) {
  static char buf[128];
  cl_object base = si_coerce_to_base_string(s);
  size_t n = base->base_string.fillp < sizeof(buf) - 1 ? base->base_string.fillp : sizeof(buf) - 1;
  memcpy(buf, base->base_string.self, n);
  buf[n] = 0;
  return buf;
}

START_TEST(ip_parse_text_gives_octets_or_a_reason) {
  cl_object r = netsys_ip_parse_text(ecl_make_simple_base_string("10.1.2.3", -1));
  cl_object e = ecl_alloc_simple_extended_string(3);
  ck_assert(ECL_CONSP(r));
  ck_assert_int_eq(ecl_length(ecl_car(r)), 4);
  ck_assert_int_eq(ecl_fixnum(ecl_aref1(ecl_car(r), 3)), 3);
  ck_assert(ecl_cdr(r) == ecl_make_fixnum(0));
  r = netsys_ip_parse_text(ecl_make_simple_base_string("10.1.2", -1));
  ck_assert(ecl_stringp(r));
  e->string.self[0] = '1';
  e->string.self[1] = 0x3bb;
  e->string.self[2] = '1';
  r = netsys_ip_parse_text(e);
  ck_assert(ecl_stringp(r));
  ck_assert_msg(strstr(text_of(r), "non-ASCII") != NULL, "reason: %s", text_of(r));
}
END_TEST

struct format_call {
  cl_object octets, scope;
};

static void call_format(void *arg) {
  struct format_call *c = arg;
  netsys_ip_format(c->octets, c->scope);
}

START_TEST(ip_format_checks_its_arguments) {
  uint8_t lo[4] = {127, 0, 0, 1};
  struct format_call c = {netsys_octet_vector(lo, 4), ecl_make_fixnum(0)};
  ck_assert_str_eq(text_of(netsys_ip_format(c.octets, c.scope)), "127.0.0.1");
  c.scope = ecl_make_fixnum(-1);
  ck_assert(check_glue_typep(check_glue_signal(call_format, &c), "TYPE-ERROR"));
  c.scope = ecl_make_fixnum(0);
  c.octets = check_glue_octets(5);
  ck_assert(check_glue_typep(check_glue_signal(call_format, &c), "TYPE-ERROR"));
  c.octets = ecl_make_simple_base_string("127.0.0.1", -1);
  ck_assert(check_glue_typep(check_glue_signal(call_format, &c), "TYPE-ERROR"));
}
END_TEST

Suite *glue_address_suite(void) {
  Suite *s = suite_create("glue address");
  TCase *tc = check_glue_tcase("octet vectors and strings");
  tcase_add_test(tc, octet_vector_holds_the_octets);
  tcase_add_test(tc, base_string_of_base_and_latin1_text);
  tcase_add_test(tc, base_string_is_nil_beyond_latin1);
  tcase_add_test(tc, base_string_rejects_non_strings);
  tcase_add_test(tc, ip_parse_text_gives_octets_or_a_reason);
  tcase_add_test(tc, ip_format_checks_its_arguments);
  suite_add_tcase(s, tc);
  return s;
}
