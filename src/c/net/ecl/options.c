/* options.c -- glue for socket options: a few generic getters and
 * setters (int, timeval, linger, raw bytes, tcp_info) and the table of the
 * system's option constants, from which Lisp builds its option table. */
#include "netsys.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>

/* Releases what netsys_fd_enter acquired, then raises if R is an error. */
static void opt_done(cl_object handle, int r, const char *call, cl_object sock) {
  netsys_fd_leave(handle);
  if (r < 0)
    netsys_raise(r, call, sock);
}

cl_object netsys_sockopt_int(cl_object handle, cl_object level, cl_object name, cl_object sock) {
  int l = NETSYS_INDEX(level), n = NETSYS_INDEX(name), v, r;
  int fd = netsys_fd_enter(handle, "getsockopt", sock);
  r = net_socket_getopt_int(fd, l, n, &v);
  opt_done(handle, r, "getsockopt", sock);
  return ecl_make_integer(v);
}

cl_object netsys_set_sockopt_int(cl_object handle, cl_object level, cl_object name,
                                 cl_object value, cl_object sock) {
  int l = NETSYS_INDEX(level), n = NETSYS_INDEX(name);
  int v = netsys__int(value, INT32_MIN, INT32_MAX, "(SIGNED-BYTE 32)"), r;
  int fd = netsys_fd_enter(handle, "setsockopt", sock);
  r = net_socket_setopt_int(fd, l, n, v);
  opt_done(handle, r, "setsockopt", sock);
  return value;
}

cl_object netsys_sockopt_usec(cl_object handle, cl_object level, cl_object name, cl_object sock) {
  int l = NETSYS_INDEX(level), n = NETSYS_INDEX(name), r;
  int64_t usec;
  int fd = netsys_fd_enter(handle, "getsockopt", sock);
  r = net_socket_getopt_usec(fd, l, n, &usec);
  opt_done(handle, r, "getsockopt", sock);
  return ecl_make_int64_t(usec);
}

cl_object netsys_set_sockopt_usec(cl_object handle, cl_object level, cl_object name,
                                  cl_object usec, cl_object sock) {
  int l = NETSYS_INDEX(level), n = NETSYS_INDEX(name), r, fd;
  int64_t u;
  if (!ECL_FIXNUMP(usec) || ecl_fixnum(usec) < 0)
    netsys_type_error(usec, "(AND FIXNUM (INTEGER 0))");
  u = ecl_fixnum(usec);
  fd = netsys_fd_enter(handle, "setsockopt", sock);
  r = net_socket_setopt_usec(fd, l, n, u);
  opt_done(handle, r, "setsockopt", sock);
  return usec;
}

cl_object netsys_sockopt_linger(cl_object handle, cl_object sock) {
  int on, secs, r;
  int fd = netsys_fd_enter(handle, "getsockopt", sock);
  r = net_socket_getopt_linger(fd, &on, &secs);
  opt_done(handle, r, "getsockopt", sock);
  return on ? ecl_make_fixnum(secs) : ECL_NIL;
}

/* SECONDS NIL turns lingering off. */
cl_object netsys_set_sockopt_linger(cl_object handle, cl_object seconds, cl_object sock) {
  int s = Null(seconds) ? 0 : netsys__int(seconds, 0, INT32_MAX, "(OR NULL (INTEGER 0 2147483647))");
  int fd = netsys_fd_enter(handle, "setsockopt", sock), r;
  r = net_socket_setopt_linger(fd, !Null(seconds), s);
  opt_done(handle, r, "setsockopt", sock);
  return seconds;
}

/* getsockopt into BUFFER[START,END); returns the length the kernel wrote. */
cl_object netsys_sockopt_raw(cl_object handle, cl_object level, cl_object name, cl_object buffer,
                             cl_object start, cl_object end, cl_object sock) {
  int l = NETSYS_INDEX(level), n = NETSYS_INDEX(name), r, fd;
  size_t len;
  uint8_t *p = netsys_octets(buffer, start, end, &len);
  socklen_t sl = (socklen_t) len;
  fd = netsys_fd_enter(handle, "getsockopt", sock);
  r = net_socket_getopt(fd, l, n, p, &sl);
  opt_done(handle, r, "getsockopt", sock);
  return ecl_make_fixnum(sl);
}

cl_object netsys_set_sockopt_raw(cl_object handle, cl_object level, cl_object name,
                                 cl_object buffer, cl_object start, cl_object end,
                                 cl_object sock) {
  int l = NETSYS_INDEX(level), n = NETSYS_INDEX(name), r, fd;
  size_t len;
  uint8_t *p = netsys_octets(buffer, start, end, &len);
  fd = netsys_fd_enter(handle, "setsockopt", sock);
  r = net_socket_setopt(fd, l, n, p, (socklen_t) len);
  opt_done(handle, r, "setsockopt", sock);
  return ecl_make_fixnum(len);
}

cl_object netsys_tcp_info(cl_object handle, cl_object sock) {
  uint32_t v[NET_TCP_INFO_FIELDS];
  cl_object list = ECL_NIL;
  int fd = netsys_fd_enter(handle, "getsockopt", sock), r, i;
  r = net_socket_tcp_info(fd, v);
  opt_done(handle, r, "getsockopt", sock);
  for (i = NET_TCP_INFO_FIELDS - 1; i >= 0; i--)
    list = ecl_cons(ecl_make_uint32_t(v[i]), list);
  return list;
}

static ssize_t tcp_idle_op(int fd, void *arg) {
  (void) arg;
  return (ssize_t) net_socket_tcp_idle_ms(fd);
}

/* The idle milliseconds of a TCP connection as a fixnum, NIL when they
 * cannot be had (not TCP, closed): one getsockopt, nothing consed, nothing
 * signalled, for a server's sweep over every connection. */
cl_object netsys_tcp_idle_ms(cl_object handle) {
  ssize_t r = netsys_fd_try(ecl_process_env(), netsys_handle(handle), tcp_idle_op, NULL);
  return r < 0 ? ECL_NIL : ecl_make_fixnum(r);
}

cl_object netsys_peer_credentials(cl_object handle, cl_object sock) {
  int64_t v[3];
  int fd = netsys_fd_enter(handle, "getsockopt", sock);
  int r = net_socket_peer_credentials(fd, v);
  opt_done(handle, r, "getsockopt", sock);
  return cl_list(3, ecl_make_int64_t(v[0]), ecl_make_int64_t(v[1]), ecl_make_int64_t(v[2]));
}

/* The system's values of the constants the option table names. */
#define C(x) {#x, x}
static const struct {
  const char *name;
  int value;
} option_constants[] = {
  C(SOL_SOCKET), C(IPPROTO_IP), C(IPPROTO_IPV6), C(IPPROTO_TCP), C(IPPROTO_UDP),
  C(SO_REUSEADDR), C(SO_REUSEPORT), C(SO_KEEPALIVE), C(SO_BROADCAST), C(SO_LINGER),
  C(SO_SNDBUF), C(SO_RCVBUF), C(SO_SNDLOWAT), C(SO_RCVLOWAT), C(SO_SNDTIMEO),
  C(SO_RCVTIMEO), C(SO_OOBINLINE), C(SO_ERROR), C(SO_TYPE), C(SO_PROTOCOL), C(SO_DOMAIN),
  C(SO_ACCEPTCONN), C(SO_BINDTODEVICE), C(SO_PRIORITY), C(SO_MARK), C(SO_DONTROUTE),
  C(SO_PASSCRED), C(SO_PEERCRED), C(SO_TIMESTAMP), C(SO_RCVBUFFORCE), C(SO_SNDBUFFORCE), C(SO_BUSY_POLL),
  C(SO_INCOMING_CPU),
#ifdef SO_ZEROCOPY
  C(SO_ZEROCOPY),
#endif
  C(TCP_NODELAY), C(TCP_CORK), C(TCP_KEEPIDLE), C(TCP_KEEPINTVL), C(TCP_KEEPCNT),
  C(TCP_FASTOPEN), C(TCP_QUICKACK), C(TCP_USER_TIMEOUT), C(TCP_MAXSEG), C(TCP_CONGESTION),
  C(TCP_INFO), C(TCP_DEFER_ACCEPT), C(TCP_WINDOW_CLAMP), C(TCP_SYNCNT), C(TCP_LINGER2),
  C(TCP_NOTSENT_LOWAT),
#ifdef TCP_FASTOPEN_CONNECT
  C(TCP_FASTOPEN_CONNECT),
#endif
  C(UDP_CORK),
#ifdef UDP_SEGMENT
  C(UDP_SEGMENT),
#endif
  C(IP_TTL), C(IP_TOS), C(IP_PKTINFO), C(IP_RECVTOS), C(IP_RECVTTL), C(IP_FREEBIND),
  C(IP_TRANSPARENT), C(IP_MTU_DISCOVER), C(IP_MTU), C(IP_HDRINCL), C(IP_RECVERR),
  C(IP_MULTICAST_TTL), C(IP_MULTICAST_LOOP), C(IP_MULTICAST_IF), C(IP_MULTICAST_ALL),
#ifdef IP_BIND_ADDRESS_NO_PORT
  C(IP_BIND_ADDRESS_NO_PORT),
#endif
  C(IP_PMTUDISC_DONT), C(IP_PMTUDISC_WANT), C(IP_PMTUDISC_DO), C(IP_PMTUDISC_PROBE),
  C(IP_PMTUDISC_INTERFACE), C(IP_PMTUDISC_OMIT),
  C(IPV6_V6ONLY), C(IPV6_UNICAST_HOPS), C(IPV6_MULTICAST_HOPS), C(IPV6_MULTICAST_LOOP),
  C(IPV6_MULTICAST_IF), C(IPV6_RECVPKTINFO), C(IPV6_TCLASS), C(IPV6_RECVTCLASS),
  C(IPV6_RECVHOPLIMIT), C(IPV6_MTU_DISCOVER), C(IPV6_MTU), C(IPV6_RECVERR),
#ifdef IPV6_MULTICAST_ALL
  C(IPV6_MULTICAST_ALL),
#endif
#ifdef IPV6_FREEBIND
  C(IPV6_FREEBIND),
#endif
#ifdef IPV6_TRANSPARENT
  C(IPV6_TRANSPARENT),
#endif
  C(SOCK_STREAM), C(SOCK_DGRAM), C(SOCK_SEQPACKET), C(SOCK_RAW),
  C(AF_INET), C(AF_INET6), C(AF_UNIX),
};
#undef C

cl_object netsys_option_constants(void) {
  cl_object list = ECL_NIL;
  int i = (int) (sizeof option_constants / sizeof option_constants[0]);
  while (i-- > 0)
    list = ecl_cons(ecl_cons(ecl_make_simple_base_string(option_constants[i].name, -1),
                             ecl_make_fixnum(option_constants[i].value)),
                    list);
  return list;
}
