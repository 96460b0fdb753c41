/* check_message.c -- tests of message.c: scatter/gather and ancillary data. */
#include "check_net.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECOND 1000000000LL

union control {
  struct cmsghdr align;
  unsigned char bytes[512];
};

START_TEST(gather_and_scatter) {
  int fds[2];
  char a[] = "hello, ", b[] = "world", x[5], y[16];
  struct iovec out[2] = {{a, 7}, {b, 5}}, in[2] = {{x, 5}, {y, sizeof y}};
  net_msg m;
  memset(&m, 0, sizeof m);
  ck_assert_int_eq(net_socket_pair(SOCK_SEQPACKET, fds), 0);
  m.iov = out;
  m.iovcnt = 2;
  ck_assert_int_eq(net_msg_send(fds[0], &m, 0), 12);
  memset(&m, 0, sizeof m);
  m.iov = in;
  m.iovcnt = 2;
  ck_assert_int_eq(net_msg_recv(fds[1], &m, 0), 12);
  ck_assert_mem_eq(x, "hello", 5);
  ck_assert_mem_eq(y, ", world", 7);
  ck_assert_int_eq(m.flags & MSG_TRUNC, 0);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(descriptors_pass_and_arrive_cloexec) {
  int fds[2], pipefd[2], got = -1;
  union control c;
  size_t used = 0, pos = 0;
  char one = 'x', buf[4];
  struct iovec iov = {&one, 1};
  struct stat s1, s2;
  net_msg m;
  net_cmsg cm;
  ck_assert_int_eq(net_socket_pair(SOCK_STREAM, fds), 0);
  ck_assert_int_eq(pipe(pipefd), 0);
  ck_assert_int_eq(net_cmsg_put_fds(c.bytes, sizeof c.bytes, &used, &pipefd[1], 1), 0);
  memset(&m, 0, sizeof m);
  m.iov = &iov;
  m.iovcnt = 1;
  m.control = c.bytes;
  m.controllen = used;
  ck_assert_int_eq(net_msg_send(fds[0], &m, 0), 1);
  memset(&c, 0, sizeof c);
  m.controllen = sizeof c.bytes;
  ck_assert_int_eq(net_msg_recv(fds[1], &m, 0), 1);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &cm), 1);
  ck_assert_int_eq(cm.kind, NET_CMSG_FDS);
  ck_assert_int_eq(cm.nfds, 1);
  memcpy(&got, cm.fds, sizeof got);
  ck_assert_int_ne(got, pipefd[1]);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &cm), 0);
  ck_assert(fcntl(got, F_GETFD) & FD_CLOEXEC);
  /* The same pipe: what goes in the passed copy comes out of the pipe. */
  fstat(got, &s1);
  fstat(pipefd[1], &s2);
  ck_assert(s1.st_ino == s2.st_ino);
  ck_assert_int_eq(write(got, "ok", 2), 2);
  ck_assert_int_eq(read(pipefd[0], buf, 2), 2);
  ck_assert_mem_eq(buf, "ok", 2);
  close(got);
  close(pipefd[0]);
  close(pipefd[1]);
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(credentials_arrive_with_passcred) {
  int fds[2];
  union control c;
  size_t used = 0, pos = 0;
  char one = 'x';
  struct iovec iov = {&one, 1};
  net_msg m;
  net_cmsg cm;
  ck_assert_int_eq(net_socket_pair(SOCK_DGRAM, fds), 0);
  ck_assert_int_eq(net_socket_setopt_int(fds[1], SOL_SOCKET, SO_PASSCRED, 1), 0);
  ck_assert_int_eq(net_cmsg_put_credentials(c.bytes, sizeof c.bytes, &used, getpid(), getuid(),
                                            getgid()), 0);
  memset(&m, 0, sizeof m);
  m.iov = &iov;
  m.iovcnt = 1;
  m.control = c.bytes;
  m.controllen = used;
  ck_assert_int_eq(net_msg_send(fds[0], &m, 0), 1);
  m.controllen = sizeof c.bytes;
  ck_assert_int_eq(net_msg_recv(fds[1], &m, 0), 1);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &cm), 1);
  ck_assert_int_eq(cm.kind, NET_CMSG_CREDENTIALS);
  ck_assert_int_eq(cm.pid, getpid());
  ck_assert_int_eq(cm.uid, getuid());
  ck_assert_int_eq(cm.gid, getgid());
  close(fds[0]);
  close(fds[1]);
}
END_TEST

START_TEST(packet_info_names_the_destination) {
  uint8_t lo[4] = {127, 0, 0, 1};
  net_sockaddr a;
  union control c;
  char buf[4];
  struct iovec iov = {buf, sizeof buf};
  size_t pos = 0;
  net_msg m;
  net_cmsg cm;
  int x = net_socket_open(AF_INET, SOCK_DGRAM, 0);
  ck_assert_int_eq(net_sockaddr_make(&a, lo, 4, 0, 0), 0);
  ck_assert_int_eq(net_socket_bind(x, &a), 0);
  ck_assert_int_eq(net_socket_name(x, &a), 0);
  ck_assert_int_eq(net_socket_setopt_int(x, IPPROTO_IP, IP_PKTINFO, 1), 0);
  ck_assert_int_eq(net_send_to(x, "p", 1, 0, &a), 1);
  ck_assert_int_eq(net_wait(x, NET_WAIT_READ, net_now_ns() + SECOND), NET_WAIT_READ);
  memset(&m, 0, sizeof m);
  m.iov = &iov;
  m.iovcnt = 1;
  m.control = c.bytes;
  m.controllen = sizeof c.bytes;
  ck_assert_int_eq(net_msg_recv(x, &m, 0), 1);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &cm), 1);
  ck_assert_int_eq(cm.kind, NET_CMSG_PKTINFO4);
  ck_assert_mem_eq(cm.addr, lo, 4);
  ck_assert_uint_gt(cm.ifindex, 0);
  close(x);
}
END_TEST

START_TEST(too_many_descriptors_are_refused) {
  union control c;
  size_t used = 0;
  int fds[NET_MAX_FDS + 1];
  memset(fds, 0, sizeof fds);
  ck_assert_int_eq(net_cmsg_put_fds(c.bytes, sizeof c.bytes, &used, fds, NET_MAX_FDS + 1),
                   NET_EINVAL);
  ck_assert_int_eq(net_cmsg_put_fds(c.bytes, sizeof c.bytes, &used, fds, 200), NET_EMSGSIZE);
  ck_assert_int_eq(used, 0);
}
END_TEST

/* Found by fuzz/cmsg_fuzz.c: a header whose length runs past the end of
 * the control buffer was decoded, its descriptors read out of bounds. */
START_TEST(walk_stops_at_a_header_longer_than_the_buffer) {
  union control c;
  struct cmsghdr *h = (struct cmsghdr *) c.bytes;
  net_msg m;
  net_cmsg out;
  size_t pos = 0;
  int fd = 5;
  memset(&c, 0, sizeof c);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  memcpy(CMSG_DATA(h), &fd, sizeof fd);
  memset(&m, 0, sizeof m);
  m.control = c.bytes;
  m.controllen = CMSG_SPACE(sizeof fd);
  h->cmsg_len = CMSG_LEN(sizeof fd);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &out), 1);
  ck_assert_int_eq(out.nfds, 1);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &out), 0);
  /* the same message claiming 100 descriptors, or a length near SIZE_MAX */
  pos = 0;
  h->cmsg_len = CMSG_LEN(100 * sizeof fd);
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &out), 0);
  h->cmsg_len = (size_t) -1;
  ck_assert_int_eq(net_cmsg_next(&m, &pos, &out), 0);
  ck_assert_int_eq(pos, 0);
}
END_TEST

Suite *message_suite(void) {
  Suite *s = suite_create("message");
  TCase *tc = tcase_create("ancillary");
  tcase_set_timeout(tc, 10);
  tcase_add_test(tc, gather_and_scatter);
  tcase_add_test(tc, descriptors_pass_and_arrive_cloexec);
  tcase_add_test(tc, credentials_arrive_with_passcred);
  tcase_add_test(tc, packet_info_names_the_destination);
  tcase_add_test(tc, too_many_descriptors_are_refused);
  tcase_add_test(tc, walk_stops_at_a_header_longer_than_the_buffer);
  suite_add_tcase(s, tc);
  return s;
}
