/* options_fuzz.c -- fuzz target for socket option value encoding
 * (options.c): timeouts as microseconds in a struct timeval, linger, plain
 * ints and raw bytes, on real sockets of every family and type the option
 * table serves; libFuzzer entry point, replayed by fuzz/replay.c.
 *
 * Input: byte 0 chooses the operation, byte 1 the socket (byte 1 mod 5)
 * and the option (byte 1 / 5),
 * the rest is the value.  Properties:
 *  - a negative timeout or linger time is NET_EINVAL, any other is set;
 *    a timeout reads back as 0 (none, or beyond the kernel's range) or at
 *    least what was set and less than set plus two clock ticks (rounding
 *    up to ticks), never negative;
 *  - linger reads back on/off as set, with its seconds when moderate;
 *  - a boolean option reads back as whether the value was non-zero;
 *  - every call returns 0 or a negative errno, never another value;
 *  - getsockopt into a buffer of any size reports no more than its size,
 *    and setsockopt reads the value from an allocation of exactly its
 *    size, so neither side overruns.
 * Only the options of the table are touched (no SO_ATTACH_FILTER, no
 * TCP_ULP, which could load kernel modules).
 */
#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK(x) do { if (!(x)) abort(); } while (0)
#define TICKS_USEC 20000 /* two ticks at HZ=100, the coarsest clock */

static const struct { int level, name, boolean; } options[] = {
  {SOL_SOCKET, SO_REUSEADDR, 1}, {SOL_SOCKET, SO_REUSEPORT, 1}, {SOL_SOCKET, SO_KEEPALIVE, 1},
  {SOL_SOCKET, SO_BROADCAST, 1}, {SOL_SOCKET, SO_OOBINLINE, 1}, {SOL_SOCKET, SO_SNDBUF, 0},
  {SOL_SOCKET, SO_RCVBUF, 0}, {SOL_SOCKET, SO_RCVLOWAT, 0}, {SOL_SOCKET, SO_PRIORITY, 0},
  {SOL_SOCKET, SO_LINGER, 0}, {SOL_SOCKET, SO_RCVTIMEO, 0}, {SOL_SOCKET, SO_SNDTIMEO, 0},
  {SOL_SOCKET, SO_ERROR, 0}, {SOL_SOCKET, SO_TYPE, 0}, {SOL_SOCKET, SO_PASSCRED, 1},
  {IPPROTO_TCP, TCP_NODELAY, 1}, {IPPROTO_TCP, TCP_CORK, 1}, {IPPROTO_TCP, TCP_KEEPIDLE, 0},
  {IPPROTO_TCP, TCP_KEEPINTVL, 0}, {IPPROTO_TCP, TCP_KEEPCNT, 0}, {IPPROTO_TCP, TCP_MAXSEG, 0},
  {IPPROTO_TCP, TCP_USER_TIMEOUT, 0}, {IPPROTO_TCP, TCP_INFO, 0}, {IPPROTO_TCP, TCP_CONGESTION, 0},
  {IPPROTO_TCP, TCP_QUICKACK, 0}, {IPPROTO_TCP, TCP_NOTSENT_LOWAT, 0},
  {IPPROTO_IP, IP_TTL, 0}, {IPPROTO_IP, IP_TOS, 0}, {IPPROTO_IP, IP_PKTINFO, 1},
  {IPPROTO_IP, IP_MULTICAST_TTL, 0}, {IPPROTO_IP, IP_MULTICAST_LOOP, 1},
  {IPPROTO_IP, IP_MTU_DISCOVER, 0}, {IPPROTO_IP, IP_RECVTOS, 1},
  {IPPROTO_IPV6, IPV6_V6ONLY, 1}, {IPPROTO_IPV6, IPV6_UNICAST_HOPS, 0},
  {IPPROTO_IPV6, IPV6_MULTICAST_HOPS, 0}, {IPPROTO_IPV6, IPV6_RECVPKTINFO, 1},
  {IPPROTO_IPV6, IPV6_TCLASS, 0},
};
#define NOPTIONS ((int) (sizeof options / sizeof options[0]))

/* One socket of each kind, made once: TCP and UDP on IPv4 and IPv6, and
 * a Unix-domain stream socket. */
static int sockets[5] = {-1, -1, -1, -1, -1};

static int sock(unsigned k) {
  static const int kinds[5][2] = {{AF_INET, SOCK_STREAM}, {AF_INET, SOCK_DGRAM},
                                  {AF_INET6, SOCK_STREAM}, {AF_INET6, SOCK_DGRAM},
                                  {AF_UNIX, SOCK_STREAM}};
  k %= 5;
  if (sockets[k] < 0)
    sockets[k] = socket(kinds[k][0], kinds[k][1] | SOCK_CLOEXEC, 0);
  return sockets[k];
}

static int64_t int64_of(const uint8_t *d, size_t n) {
  int64_t v = 0;
  memcpy(&v, d, n < sizeof v ? n : sizeof v);
  return v;
}

static void timeout_op(int fd, int name, const uint8_t *d, size_t n) {
  int64_t usec = int64_of(d, n), back = -1;
  int r = net_socket_setopt_usec(fd, SOL_SOCKET, name, usec);
  if (usec < 0) {
    CHECK(r == NET_EINVAL);
    return;
  }
  CHECK(r == 0 || r == -EDOM);
  if (r < 0)
    return;
  CHECK(net_socket_getopt_usec(fd, SOL_SOCKET, name, &back) == 0);
  CHECK(back >= 0);
  if (usec == 0)
    CHECK(back == 0);
  else
    CHECK(back == 0 || (back >= usec && back - usec < TICKS_USEC));
}

static void linger_op(int fd, const uint8_t *d, size_t n) {
  int on = n > 0 && (d[0] & 1), seconds = (int) int64_of(d + (n > 0), n > 0 ? n - 1 : 0);
  int on2 = -1, seconds2 = -1;
  int r = net_socket_setopt_linger(fd, on, seconds);
  if (seconds < 0) {
    CHECK(r == NET_EINVAL);
    return;
  }
  CHECK(r == 0);
  CHECK(net_socket_getopt_linger(fd, &on2, &seconds2) == 0);
  CHECK(on2 == on);
  if (on && seconds < 100000)
    CHECK(seconds2 == seconds);
}

static void int_op(int fd, int i, const uint8_t *d, size_t n) {
  int value = (int) int64_of(d, n), back = 12345;
  int r = net_socket_setopt_int(fd, options[i].level, options[i].name, value);
  CHECK(r <= 0);
  r = net_socket_getopt_int(fd, options[i].level, options[i].name, &back);
  CHECK(r <= 0);
  if (r == 0 && options[i].boolean &&
      net_socket_setopt_int(fd, options[i].level, options[i].name, value) == 0 &&
      net_socket_getopt_int(fd, options[i].level, options[i].name, &back) == 0)
    CHECK((back != 0) == (value != 0));
}

static void raw_op(int fd, int i, int get, const uint8_t *d, size_t n) {
  /* The value in an allocation of exactly its size (the first byte of D
   * gives the getsockopt size). */
  size_t size = get ? (n > 0 ? d[0] : 0) : n;
  unsigned char *buf = malloc(size ? size : 1);
  int r;
  if (!buf)
    return;
  if (get) {
    socklen_t len = (socklen_t) size;
    memset(buf, 0, size ? size : 1);
    r = net_socket_getopt(fd, options[i].level, options[i].name, buf, &len);
    CHECK(r <= 0);
    if (r == 0)
      CHECK(len <= size);
  } else {
    memcpy(buf, d, n);
    r = net_socket_setopt(fd, options[i].level, options[i].name, buf, (socklen_t) n);
    CHECK(r <= 0);
  }
  free(buf);
}

static void info_op(int fd) {
  uint32_t info[NET_TCP_INFO_FIELDS];
  int64_t cred[3];
  int r = net_socket_tcp_info(fd, info);
  CHECK(r <= 0);
  r = net_socket_peer_credentials(fd, cred);
  CHECK(r <= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int fd, i;
  const uint8_t *d = data + 2;
  size_t n;
  if (size < 2 || size > 512)
    return 0;
  fd = sock(data[1] % 5);
  if (fd < 0)
    return 0;
  i = (data[1] / 5) % NOPTIONS;
  n = size - 2;
  switch (data[0] % 7) {
  case 0: timeout_op(fd, SO_RCVTIMEO, d, n); break;
  case 1: timeout_op(fd, SO_SNDTIMEO, d, n); break;
  case 2: linger_op(fd, d, n); break;
  case 3: int_op(fd, i, d, n); break;
  case 4: raw_op(fd, i, 1, d, n); break;
  case 5: raw_op(fd, i, 0, d, n); break;
  default: info_op(fd); break;
  }
  return 0;
}
