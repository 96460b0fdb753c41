/* check_error.c -- tests of error.c: the errors.def table. */
#include "check_net.h"

#include <string.h>

START_TEST(names_follow_the_table) {
  ck_assert_str_eq(net_err_name(NET_ECONNREFUSED), "ECONNREFUSED");
  ck_assert_int_eq(NET_ECONNREFUSED, -ECONNREFUSED);
  ck_assert_str_eq(net_err_class(NET_ECONNRESET), "connection-reset");
  ck_assert_str_eq(net_err_class(NET_ECLOSED), "socket-closed");
  ck_assert_str_eq(net_err_name(-99999), "UNKNOWN");
  ck_assert_ptr_null(net_err_class(-99999));
}
END_TEST

START_TEST(strerror_always_text) {
  ck_assert_str_eq(net_strerror(NET_EPIPE), "broken pipe");
  ck_assert_str_eq(net_strerror(NET_ETIMEOUT), "operation timed out");
  /* Not in the table: the system's text; beyond errno's range: generic. */
  ck_assert_ptr_nonnull(net_strerror(-EIO));
  ck_assert_int_gt((int) strlen(net_strerror(-EIO)), 0);
  ck_assert_str_eq(net_strerror(-123456), "unknown error");
}
END_TEST

START_TEST(rows_are_distinct) {
  int n = net_err_count(), i, j;
  ck_assert_int_gt(n, 30);
  for (i = 0; i < n; i++) {
    const char *ci, *cj;
    int a = net_err_row(i, &ci);
    ck_assert_int_lt(a, 0);
    for (j = i + 1; j < n; j++) {
      int b = net_err_row(j, &cj);
      ck_assert_int_ne(a, b);
      /* Resolver rows may share a class (EAI_NONAME, EAI_NODATA and
       * EAI_ADDRFAMILY are all host-not-found); others may not. */
      if (a > -3000 || a <= -4000)
        ck_assert_str_ne(ci, cj);
    }
  }
  ck_assert_int_eq(net_err_row(n, NULL), 0);
}
END_TEST

START_TEST(libuv_version_is_linked) {
  /* Debian 12 ships 1.44; configure asks for at least that. */
  ck_assert_int_eq(strncmp(net_libuv_version(), "1.", 2), 0);
}
END_TEST

Suite *error_suite(void) {
  Suite *s = suite_create("error");
  TCase *tc = tcase_create("table");
  tcase_add_test(tc, names_follow_the_table);
  tcase_add_test(tc, strerror_always_text);
  tcase_add_test(tc, rows_are_distinct);
  tcase_add_test(tc, libuv_version_is_linked);
  suite_add_tcase(s, tc);
  return s;
}
