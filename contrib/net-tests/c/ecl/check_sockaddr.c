/* check_sockaddr.c -- tests of the glue's sockaddr.c: small integers
 * (netsys__int) and socket addresses from Lisp objects (netsys__sockaddr). */
#include "check_glue.h"

#include <string.h>
#include <sys/socket.h>

struct int_call {
  cl_object x;
  int lo, hi, result;
};

static void call_int(void *arg) {
  struct int_call *c = arg;
  c->result = netsys__int(c->x, c->lo, c->hi, "(INTEGER 0 65535)");
}

/* The condition netsys__int signals for X in [LO, HI], or NIL; *OUT gets
 * its result when it returns. */
static cl_object int_in(cl_object x, int lo, int hi, int *out) {
  struct int_call c = {x, lo, hi, -12345};
  cl_object cond = check_glue_signal(call_int, &c);
  *out = c.result;
  return cond;
}

START_TEST(int_accepts_the_range_inclusive) {
  int v;
  ck_assert(Null(int_in(ecl_make_fixnum(0), 0, 65535, &v)));
  ck_assert_int_eq(v, 0);
  ck_assert(Null(int_in(ecl_make_fixnum(65535), 0, 65535, &v)));
  ck_assert_int_eq(v, 65535);
  ck_assert(Null(int_in(ecl_make_fixnum(-5), -10, 10, &v)));
  ck_assert_int_eq(v, -5);
  ck_assert(Null(int_in(ecl_make_fixnum(INT32_MAX), 0, INT32_MAX, &v)));
  ck_assert_int_eq(v, INT32_MAX);
}
END_TEST

START_TEST(int_rejects_outside_the_range) {
  int v;
  cl_object c = int_in(ecl_make_fixnum(65536), 0, 65535, &v);
  ck_assert(check_glue_typep(c, "TYPE-ERROR"));
  ck_assert_str_eq(check_glue_expected_type(c), "(INTEGER 0 65535)");
  ck_assert(check_glue_typep(int_in(ecl_make_fixnum(-1), 0, 65535, &v), "TYPE-ERROR"));
  ck_assert(check_glue_typep(int_in(ecl_make_fixnum(11), -10, 10, &v), "TYPE-ERROR"));
  /* beyond int: must not wrap around into the range */
  ck_assert(check_glue_typep(int_in(ecl_make_fixnum(4294967296L + 80), 0, 65535, &v),
                             "TYPE-ERROR"));
}
END_TEST

START_TEST(int_rejects_non_fixnums) {
  int v;
  const char *others[] = {"100000000000000000000000", "1.0", "1/2", "\"80\"", "nil", "#\\a"};
  size_t i;
  for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
    ck_assert_msg(check_glue_typep(int_in(ecl_read_from_cstring(others[i]), 0, 65535, &v),
                                   "TYPE-ERROR"),
                  "no type-error for %s", others[i]);
}
END_TEST

struct sockaddr_call {
  net_sockaddr sa;
  cl_object addr, port, scope;
};

static void call_sockaddr(void *arg) {
  struct sockaddr_call *c = arg;
  netsys__sockaddr(&c->sa, c->addr, c->port, c->scope);
}

static cl_object sockaddr_of(struct sockaddr_call *c, cl_object addr, cl_object port,
                             cl_object scope) {
  memset(&c->sa, 0, sizeof(c->sa));
  c->addr = addr;
  c->port = port;
  c->scope = scope;
  return check_glue_signal(call_sockaddr, c);
}

START_TEST(sockaddr_from_ipv4_octets) {
  struct sockaddr_call c;
  uint8_t oct[16];
  uint32_t scope;
  int port;
  ck_assert(Null(sockaddr_of(&c, check_glue_octets(4), ecl_make_fixnum(8080), ECL_NIL)));
  ck_assert_int_eq(net_sockaddr_split(&c.sa, oct, &scope, &port), 4);
  ck_assert_int_eq(port, 8080);
  ck_assert_int_eq(oct[0], 0);
  ck_assert_int_eq(oct[3], 3);
}
END_TEST

START_TEST(sockaddr_from_ipv6_octets_with_scope) {
  struct sockaddr_call c;
  uint8_t oct[16];
  uint32_t scope;
  int port;
  ck_assert(Null(sockaddr_of(&c, check_glue_octets(16), ecl_make_fixnum(0), ecl_make_fixnum(3))));
  ck_assert_int_eq(net_sockaddr_split(&c.sa, oct, &scope, &port), 16);
  ck_assert_int_eq(port, 0);
  ck_assert_uint_eq(scope, 3);
  ck_assert_int_eq(oct[15], 15);
}
END_TEST

START_TEST(sockaddr_list_round_trips) {
  struct sockaddr_call c;
  cl_object list, v;
  ck_assert(Null(sockaddr_of(&c, check_glue_octets(16), ecl_make_fixnum(443), ecl_make_fixnum(2))));
  list = netsys__sockaddr_list(&c.sa);
  ck_assert_int_eq(ecl_length(list), 3);
  v = ecl_car(list);
  ck_assert(!Null(cl_equalp(v, check_glue_octets(16))));
  ck_assert(ecl_cadr(list) == ecl_make_fixnum(443));
  ck_assert(ecl_caddr(list) == ecl_make_fixnum(2));
}
END_TEST

START_TEST(sockaddr_rejects_bad_octets_and_ports) {
  struct sockaddr_call c;
  cl_object cond;
  cond = sockaddr_of(&c, check_glue_octets(5), ecl_make_fixnum(80), ECL_NIL);
  ck_assert(check_glue_typep(cond, "TYPE-ERROR"));
  ck_assert(check_glue_typep(sockaddr_of(&c, check_glue_octets(0), ecl_make_fixnum(80), ECL_NIL),
                             "TYPE-ERROR"));
  cond = sockaddr_of(&c, check_glue_octets(4), ecl_make_fixnum(65536), ECL_NIL);
  ck_assert(check_glue_typep(cond, "TYPE-ERROR"));
  ck_assert_str_eq(check_glue_expected_type(cond), "(INTEGER 0 65535)");
  cond = sockaddr_of(&c, check_glue_octets(16), ecl_make_fixnum(80), ecl_make_fixnum(-1));
  ck_assert(check_glue_typep(cond, "TYPE-ERROR"));
  cond = sockaddr_of(&c, ecl_read_from_cstring("#(127 0 0 1)"), ecl_make_fixnum(80), ECL_NIL);
  ck_assert(check_glue_typep(cond, "TYPE-ERROR"));
}
END_TEST

START_TEST(sockaddr_from_a_local_name) {
  struct sockaddr_call c;
  cl_object list;
  ck_assert(Null(sockaddr_of(&c, ecl_make_simple_base_string("/tmp/net-glue.sock", -1), ECL_NIL,
                             ECL_NIL)));
  ck_assert_int_eq(c.sa.u.ss.ss_family, AF_UNIX);
  list = netsys__sockaddr_list(&c.sa);
  ck_assert(!Null(cl_string_equal(2, ecl_car(list),
                                  ecl_make_simple_base_string("/tmp/net-glue.sock", -1))));
  ck_assert(Null(ecl_caddr(list)));
  /* SCOPE true: a Linux abstract name */
  ck_assert(Null(sockaddr_of(&c, ecl_make_simple_base_string("net-glue", -1), ECL_NIL, ECL_T)));
  list = netsys__sockaddr_list(&c.sa);
  ck_assert(ecl_caddr(list) == ECL_T);
}
END_TEST

START_TEST(sockaddr_local_name_too_long_raises) {
  struct sockaddr_call c;
  char name[300];
  cl_object cond;
  memset(name, 'x', sizeof(name) - 1);
  name[sizeof(name) - 1] = 0;
  cond = sockaddr_of(&c, ecl_make_simple_base_string(name, -1), ECL_NIL, ECL_NIL);
  ck_assert(check_glue_typep(cond, "SIMPLE-ERROR"));
  ck_assert_int_eq(check_glue_last_code(), NET_ENAMETOOLONG);
}
END_TEST

/* Name -> Lisp string -> name gives the same octets, valid UTF-8 or not
 * (invalid octets travel as U+DC80..U+DCFF): fixed cases, then 2000
 * pseudo-random names of 1 to 40 octets biased to UTF-8's lead octets. */
static void name_round_trips(const unsigned char *name, size_t len) {
  net_sockaddr sa;
  struct sockaddr_call c;
  const char *path;
  size_t len2;
  int abstract;
  cl_object list;
  ck_assert_int_eq(net_sockaddr_make_local(&sa, (const char *) name, len, 1), 0);
  list = netsys__sockaddr_list(&sa);
  ck_assert(ecl_caddr(list) == ECL_T);
  ck_assert(Null(sockaddr_of(&c, ecl_car(list), ECL_NIL, ECL_T)));
  ck_assert_int_eq(net_sockaddr_split_local(&c.sa, &path, &len2, &abstract), 1);
  ck_assert_int_eq(abstract, 1);
  ck_assert_uint_eq(len2, len);
  ck_assert(memcmp(path, name, len) == 0);
}

START_TEST(local_names_round_trip_whatever_their_octets) {
  static const char *cases[] = {
    "plain", "caf\xc3\xa9", "\xff", "a\xc3(b", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
    "\xe2\x82", "\xf0\x9f\x98\x80", "x\x00y", "\x80\xbf", "\xf8\x88\x80\x80\x80"};
  static const unsigned char leads[] = {0x00, 0x41, 0x80, 0xbf, 0xc2, 0xdf, 0xe0, 0xed, 0xef,
                                        0xf0, 0xf4, 0xf5, 0xff};
  unsigned long seed = 14;
  size_t i, j;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
    name_round_trips((const unsigned char *) cases[i],
                     i == 9 ? 3 : strlen(cases[i]));
  for (i = 0; i < 2000; i++) {
    unsigned char name[40];
    size_t len;
    seed = seed * 6364136223846793005UL + 1442695040888963407UL;
    len = 1 + (seed >> 33) % 40;
    for (j = 0; j < len; j++) {
      seed = seed * 6364136223846793005UL + 1442695040888963407UL;
      name[j] = (seed >> 60) < 6 ? leads[(seed >> 40) % sizeof leads]
                                 : (unsigned char) (0x80 | ((seed >> 33) & 0x3f));
    }
    name_round_trips(name, len);
  }
}
END_TEST

Suite *glue_sockaddr_suite(void) {
  Suite *s = suite_create("glue sockaddr");
  TCase *tc = check_glue_tcase("integer ranges");
  tcase_add_test(tc, int_accepts_the_range_inclusive);
  tcase_add_test(tc, int_rejects_outside_the_range);
  tcase_add_test(tc, int_rejects_non_fixnums);
  suite_add_tcase(s, tc);
  tc = check_glue_tcase("socket addresses");
  tcase_add_test(tc, sockaddr_from_ipv4_octets);
  tcase_add_test(tc, sockaddr_from_ipv6_octets_with_scope);
  tcase_add_test(tc, sockaddr_list_round_trips);
  tcase_add_test(tc, sockaddr_rejects_bad_octets_and_ports);
  tcase_add_test(tc, sockaddr_from_a_local_name);
  tcase_add_test(tc, local_names_round_trip_whatever_their_octets);
  tcase_add_test(tc, sockaddr_local_name_too_long_raises);
  suite_add_tcase(s, tc);
  return s;
}
