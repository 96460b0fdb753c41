/* check_resolver.c -- tests of resolver.c: name checks, lookups in the
 * hosts, services and protocols files, error codes.  Only the local files
 * are read: no test here sends a query to a name server. */
#include "check_net.h"

#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

static const struct {
  const char *name;
  const char *why;
} bad_names[] = {
  {"", "the host name is empty"},
  {"a b", "the host name contains white space"},
  {"host\tname", "the host name contains white space"},
  {"h\xc3\xa9llo", "the host name contains white space, a control or a non-ASCII"},
  {"a..b", "the host name has an empty label"},
  {".a", "the host name has an empty label"},
  {"1.2.3", "an IPv4 address has four parts, not fewer"},
  {"0177.0.0.1", "an IPv4 part has more than three digits"},
  {"127.1", "an IPv4 address has four parts, not fewer"},
  {"0x7f.1", "unexpected character in an IPv4 address"},
  {"2130706433", "an IPv4 part has more than three digits"},
  {"1.2.3.4.5", "an IPv4 address has four parts, not more"},
  {"::1::", "an IPv6 address has more than one"},
  {"[::1]", "brackets are not part of an address"},
  {"host%lo", "a zone (%...) is allowed only on IPv6 addresses"},
  {"host:80", "unexpected character in an IPv6 address"},
};

START_TEST(rejects_bad_host_names) {
  net_ip_addr lit;
  const char *why = NULL, *n = bad_names[_i].name;
  ck_assert_int_eq(net_host_check(n, strlen(n), &lit, &why), NET_EINVAL);
  ck_assert_ptr_nonnull(why);
  ck_assert_msg(strncmp(why, bad_names[_i].why, strlen(bad_names[_i].why)) == 0,
                "\"%s\": reason \"%s\", expected \"%s\"", n, why, bad_names[_i].why);
}
END_TEST

START_TEST(checks_name_lengths_and_nul) {
  char name[300];
  net_ip_addr lit;
  const char *why;
  memset(name, 'a', sizeof(name));
  ck_assert_int_eq(net_host_check(name, 63, &lit, &why), 0);
  ck_assert_int_eq(net_host_check(name, 64, &lit, &why), NET_EINVAL);
  ck_assert_str_eq(why, "a label of the host name is longer than 63 characters");
  for (int i = 50; i < 300; i += 51)
    name[i] = '.';
  ck_assert_int_eq(net_host_check(name, 253, &lit, &why), 0);
  ck_assert_int_eq(net_host_check(name, 254, &lit, &why), NET_EINVAL);
  ck_assert_str_eq(why, "the host name is longer than 253 characters");
  name[253] = '.';
  ck_assert_int_eq(net_host_check(name, 254, &lit, &why), 0); /* final dot */
  ck_assert_int_eq(net_host_check("localhost\0.evil.example", 23, &lit, &why), NET_EINVAL);
  ck_assert_str_eq(why, "the host name contains a NUL character");
}
END_TEST

START_TEST(literals_resolve_without_lookup) {
  net_ip_addr out[4];
  char canon[NET_HOST_STRLEN];
  const char *why;
  ck_assert_int_eq(net_resolve_host("::1", 3, 0, out, 4, canon, sizeof(canon), &why), 1);
  ck_assert_int_eq(out[0].len, 16);
  ck_assert_int_eq(out[0].octets[15], 1);
  ck_assert_str_eq(canon, "::1");
  ck_assert_int_eq(net_resolve_host("0:0::0:1", 8, 6, out, 4, canon, sizeof(canon), &why), 1);
  ck_assert_str_eq(canon, "::1");
  ck_assert_int_eq(net_resolve_host("10.1.2.3", 8, 4, out, 4, canon, sizeof(canon), &why), 1);
  ck_assert_int_eq(out[0].octets[0], 10);
  ck_assert_int_eq(net_resolve_host("10.1.2.3", 8, 6, out, 4, canon, sizeof(canon), &why),
                   NET_EAI_ADDRFAMILY);
  ck_assert_int_eq(net_resolve_host("1.2.3", 5, 0, out, 4, canon, sizeof(canon), &why), NET_EINVAL);
  ck_assert_int_eq(net_resolve_host("x", 1, 5, out, 4, canon, sizeof(canon), &why), NET_EINVAL);
}
END_TEST

/* localhost is 127.0.0.1 in every hosts file; whether it is ::1 too varies. */
START_TEST(resolves_localhost) {
  net_ip_addr out[NET_RESOLVE_MAX];
  char canon[NET_HOST_STRLEN];
  const char *why;
  int n = net_resolve_host("localhost", 9, 4, out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ck_assert_int_ge(n, 1);
  ck_assert_int_eq(out[0].len, 4);
  ck_assert_int_eq(out[0].octets[0], 127);
  ck_assert_str_ne(canon, "");
}
END_TEST

START_TEST(reverse_lookup_of_loopback) {
  net_ip_addr a = {{127, 0, 0, 1}, 0, 4};
  char host[NET_HOST_STRLEN];
  ck_assert_int_eq(net_resolve_address(&a, host, sizeof(host)), 0);
  ck_assert_str_ne(host, "");
  a.len = 5;
  ck_assert_int_eq(net_resolve_address(&a, host, sizeof(host)), NET_EINVAL);
}
END_TEST

START_TEST(services_and_protocols) {
  char name[256];
  ck_assert_int_eq(net_resolve_service("http", "tcp", name, sizeof(name)), 80);
  ck_assert_str_eq(name, "http");
  ck_assert_int_eq(net_resolve_service("domain", "udp", name, sizeof(name)), 53);
  ck_assert_int_eq(net_resolve_service("no-such-service", "tcp", name, sizeof(name)), NET_ESERVICE);
  ck_assert_int_eq(net_service_name(22, "tcp", name, sizeof(name)), 0);
  ck_assert_str_eq(name, "ssh");
  ck_assert_int_eq(net_service_name(70000, "tcp", name, sizeof(name)), NET_EINVAL);
  ck_assert_int_eq(net_resolve_protocol("udp", name, sizeof(name)), 17);
  ck_assert_str_eq(name, "udp");
  ck_assert_int_eq(net_protocol_name(6, name, sizeof(name)), 0);
  ck_assert_str_eq(name, "tcp");
  ck_assert_int_eq(net_resolve_protocol("no-such-protocol", name, sizeof(name)), NET_EPROTOCOL);
  ck_assert_int_eq(net_protocol_name(256, name, sizeof(name)), NET_EINVAL);
}
END_TEST

START_TEST(error_codes_and_messages) {
  ck_assert_int_eq(net_resolver_code(EAI_NONAME), NET_EAI_NONAME);
  ck_assert_int_eq(net_resolver_code(EAI_AGAIN), NET_EAI_AGAIN);
  ck_assert_int_eq(net_resolver_code(-999), NET_EAI_FAIL);
  ck_assert_str_eq(net_resolver_strerror(NET_EAI_AGAIN), gai_strerror(EAI_AGAIN));
  ck_assert_str_eq(net_resolver_strerror(NET_ESERVICE), "unknown service");
  ck_assert_str_eq(net_err_class(NET_EAI_NONAME), "host-not-found");
  ck_assert_str_eq(net_err_class(NET_EAI_NODATA), "host-not-found");
  ck_assert_str_eq(net_err_class(NET_EAI_AGAIN), "resolver-again");
  ck_assert_str_eq(net_err_class(NET_EAI_FAIL), "resolver-failure");
  ck_assert_str_eq(net_err_class(NET_EPROTOCOL), "unknown-protocol");
  ck_assert_str_eq(net_err_name(NET_EAI_AGAIN), "EAI_AGAIN");
}
END_TEST

/* Replaces FILE with TEXT in this process's own mount namespace. */
static int bind_file(const char *file, const char *text) {
  char tmp[] = "/tmp/net-check-XXXXXX";
  int fd = mkstemp(tmp), ok;
  if (fd < 0)
    return -1;
  ok = write(fd, text, strlen(text)) == (ssize_t) strlen(text);
  close(fd);
  ok = ok && mount(tmp, file, "none", MS_BIND, NULL) == 0;
  unlink(tmp);
  return ok ? 0 : -1;
}

/* Own network and mount namespaces with our hosts file and no DNS: only
 * possible as root; the test passes vacuously, saying so, otherwise. */
static int private_hosts(const char *hosts) {
  if (geteuid() != 0 || unshare(CLONE_NEWNS | CLONE_NEWNET) != 0 ||
      mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0 ||
      bind_file("/etc/hosts", hosts) != 0 || bind_file("/etc/nsswitch.conf", "hosts: files\n") != 0) {
    fprintf(stderr, "check_resolver: SKIPPED hosts-file test (needs root and unshare)\n");
    return -1;
  }
  return 0;
}

START_TEST(all_addresses_once_in_order) {
  net_ip_addr out[NET_RESOLVE_MAX];
  char canon[NET_HOST_STRLEN];
  const char *why;
  int n;
  if (private_hosts("127.0.0.1 localhost\n127.0.0.7 dup.test dup\n127.0.0.8 dup.test\n"
                    "127.0.0.7 dup.test\n::7 dup.test\n") != 0)
    return;
  n = net_resolve_host("dup.test", 8, 4, out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(out[0].octets[3], 7);
  ck_assert_int_eq(out[1].octets[3], 8);
  ck_assert_str_eq(canon, "dup.test");
  n = net_resolve_host("dup", 3, 0, out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ck_assert_int_ge(n, 1);
  ck_assert_str_eq(canon, "dup.test");
  n = net_resolve_host("dup.test", 8, 0, out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ck_assert_int_eq(n, 3);
  n = net_resolve_host("dup.test", 8, 6, out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ck_assert_int_eq(n, 1);
  ck_assert_int_eq(out[0].len, 16);
  ck_assert_int_eq(out[0].octets[15], 7);
  n = net_resolve_host("dup.test", 8, 0, out, 1, canon, sizeof(canon), &why);
  ck_assert_int_eq(n, 1);
  n = net_resolve_host("nosuch.test", 11, 0, out, NET_RESOLVE_MAX, canon, sizeof(canon), &why);
  ck_assert(n == NET_EAI_NONAME || n == NET_EAI_NODATA);
}
END_TEST

#define N_OF(a) ((int) (sizeof(a) / sizeof((a)[0])))

Suite *resolver_suite(void) {
  Suite *s = suite_create("resolver");
  TCase *tc = tcase_create("names");
  tcase_set_timeout(tc, 20);
  tcase_add_loop_test(tc, rejects_bad_host_names, 0, N_OF(bad_names));
  tcase_add_test(tc, checks_name_lengths_and_nul);
  tcase_add_test(tc, literals_resolve_without_lookup);
  tcase_add_test(tc, resolves_localhost);
  tcase_add_test(tc, reverse_lookup_of_loopback);
  tcase_add_test(tc, services_and_protocols);
  tcase_add_test(tc, error_codes_and_messages);
  tcase_add_test(tc, all_addresses_once_in_order);
  suite_add_tcase(s, tc);
  return s;
}
