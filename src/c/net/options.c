/* options.c -- getsockopt/setsockopt and the few option structures that
 * are not plain ints: timeval, linger, tcp_info. */
#include "net.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

int net_socket_getopt(int fd, int level, int name, void *value, socklen_t *len) {
  return getsockopt(fd, level, name, value, len) < 0 ? -errno : 0;
}

int net_socket_setopt(int fd, int level, int name, const void *value, socklen_t len) {
  return setsockopt(fd, level, name, value, len) < 0 ? -errno : 0;
}

int net_socket_getopt_int(int fd, int level, int name, int *value) {
  socklen_t len = sizeof *value;
  *value = 0;
  return net_socket_getopt(fd, level, name, value, &len);
}

int net_socket_setopt_int(int fd, int level, int name, int value) {
  return net_socket_setopt(fd, level, name, &value, sizeof value);
}

/* The kernel keeps a timeout in clock ticks and rounds it up when read
 * back, so a timeout set near INT64_MAX microseconds reads back a little
 * larger: it saturates at INT64_MAX instead of overflowing (found by
 * fuzz/options_fuzz.c). */
int net_socket_getopt_usec(int fd, int level, int name, int64_t *usec) {
  struct timeval tv = {0, 0};
  socklen_t len = sizeof tv;
  int r = net_socket_getopt(fd, level, name, &tv, &len);
  if (tv.tv_sec > (INT64_MAX - tv.tv_usec) / 1000000)
    *usec = INT64_MAX;
  else
    *usec = (int64_t) tv.tv_sec * 1000000 + tv.tv_usec;
  return r;
}

int net_socket_setopt_usec(int fd, int level, int name, int64_t usec) {
  struct timeval tv;
  if (usec < 0)
    return NET_EINVAL;
  tv.tv_sec = (time_t) (usec / 1000000);
  tv.tv_usec = (suseconds_t) (usec % 1000000);
  return net_socket_setopt(fd, level, name, &tv, sizeof tv);
}

int net_socket_getopt_linger(int fd, int *on, int *seconds) {
  struct linger l = {0, 0};
  socklen_t len = sizeof l;
  int r = net_socket_getopt(fd, SOL_SOCKET, SO_LINGER, &l, &len);
  *on = l.l_onoff;
  *seconds = l.l_linger;
  return r;
}

int net_socket_setopt_linger(int fd, int on, int seconds) {
  struct linger l;
  if (seconds < 0)
    return NET_EINVAL;
  l.l_onoff = on;
  l.l_linger = seconds;
  return net_socket_setopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/* TCP_INFO of FD into TI, zeroed first (an older kernel fills less). */
static int read_tcp_info(int fd, struct tcp_info *ti) {
  socklen_t len = sizeof *ti;
  memset(ti, 0, sizeof *ti);
  return net_socket_getopt(fd, IPPROTO_TCP, TCP_INFO, ti, &len);
}

/* The fields of struct tcp_info that glibc's header has everywhere, in the
 * order NET_TCP_INFO_FIELDS documents. */
int net_socket_tcp_info(int fd, uint32_t out[NET_TCP_INFO_FIELDS]) {
  struct tcp_info ti;
  int r = read_tcp_info(fd, &ti);
  if (r < 0)
    return r;
  {
    uint32_t v[NET_TCP_INFO_FIELDS] = {
      ti.tcpi_state, ti.tcpi_ca_state, ti.tcpi_retransmits, ti.tcpi_probes,
      ti.tcpi_backoff, ti.tcpi_options, ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale,
      ti.tcpi_rto, ti.tcpi_ato, ti.tcpi_snd_mss, ti.tcpi_rcv_mss,
      ti.tcpi_unacked, ti.tcpi_sacked, ti.tcpi_lost, ti.tcpi_retrans,
      ti.tcpi_fackets, ti.tcpi_last_data_sent, ti.tcpi_last_ack_sent,
      ti.tcpi_last_data_recv, ti.tcpi_last_ack_recv, ti.tcpi_pmtu,
      ti.tcpi_rcv_ssthresh, ti.tcpi_rtt, ti.tcpi_rttvar, ti.tcpi_snd_ssthresh,
      ti.tcpi_snd_cwnd, ti.tcpi_advmss, ti.tcpi_reordering, ti.tcpi_rcv_rtt,
      ti.tcpi_rcv_space, ti.tcpi_total_retrans};
    memcpy(out, v, sizeof v);
  }
  return 0;
}

int64_t net_socket_tcp_idle_ms(int fd) {
  struct tcp_info ti;
  int r = read_tcp_info(fd, &ti);
  if (r < 0)
    return r;
  return ti.tcpi_last_data_sent < ti.tcpi_last_data_recv ? ti.tcpi_last_data_sent
                                                         : ti.tcpi_last_data_recv;
}

int net_socket_peer_credentials(int fd, int64_t out[3]) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  int r;
  memset(&cred, 0, sizeof cred);
  r = net_socket_getopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len);
  if (r < 0)
    return r;
  out[0] = cred.pid;
  out[1] = cred.uid;
  out[2] = cred.gid;
  return 0;
}
