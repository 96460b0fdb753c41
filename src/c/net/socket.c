/* socket.c -- creating, binding, connecting and shutting down sockets. */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

int net_socket_open(int family, int type, int protocol) {
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  return fd < 0 ? -errno : fd;
}

int net_socket_bind(int fd, const net_sockaddr *addr) {
  return bind(fd, &addr->u.sa, addr->len) < 0 ? -errno : 0;
}

int net_socket_listen(int fd, int backlog) {
  return listen(fd, backlog) < 0 ? -errno : 0;
}

int net_socket_accept(int fd, net_sockaddr *peer) {
  int r;
  if (peer) {
    peer->len = sizeof(peer->u.ss);
    r = accept4(fd, &peer->u.sa, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } else {
    r = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  return r < 0 ? -errno : r;
}

int net_socket_connect(int fd, const net_sockaddr *addr) {
  if (connect(fd, &addr->u.sa, addr->len) == 0)
    return 0;
  /* An interrupted connect goes on in the kernel (POSIX): never issue it
   * again, wait for writability like EINPROGRESS. */
  if (errno == EINTR)
    return NET_EINPROGRESS;
  return -errno;
}

int net_socket_connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return -errno;
  return -err;
}

int net_socket_shutdown(int fd, int how) {
  return shutdown(fd, how) < 0 ? -errno : 0;
}

int net_socket_name(int fd, net_sockaddr *out) {
  out->len = sizeof(out->u.ss);
  return getsockname(fd, &out->u.sa, &out->len) < 0 ? -errno : 0;
}

int net_socket_peer_name(int fd, net_sockaddr *out) {
  out->len = sizeof(out->u.ss);
  return getpeername(fd, &out->u.sa, &out->len) < 0 ? -errno : 0;
}

int net_socket_connect_poll(int fd) {
  net_sockaddr sa;
  int r = net_socket_connect_result(fd);
  if (r < 0)
    return r;
  /* No pending error: either connected, or the handshake still runs. */
  if (net_socket_peer_name(fd, &sa) == 0) {
    /* Linux leaves a socket whose non-blocking connect completed in its
     * "connecting" state until connect(2) is called again, and a later
     * connect(2) to any address would then return 0.  Calling it now, to
     * the peer itself, moves it to "connected": a second connect by the
     * user gets EISCONN.  Its answer (0, or EISCONN) tells nothing new. */
    (void) connect(fd, &sa.u.sa, sa.len);
    return 0;
  }
  return errno == ENOTCONN ? NET_EAGAIN : -errno;
}

int net_socket_pair(int type, int fds[2]) {
  return socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0 ? -errno : 0;
}

int net_socket_at_mark(int fd) {
  /* sockatmark(3) is this ioctl; calling it with an initialised answer
   * keeps memory checkers from reading the kernel's output as input. */
  int mark = 0;
  return ioctl(fd, SIOCATMARK, &mark) < 0 ? -errno : (mark != 0);
}

int net_socket_set_abortive(int fd) {
  return net_socket_setopt_linger(fd, 1, 0);
}

static int net__get_int(int fd, int level, int name, int *value) {
  socklen_t len = sizeof(*value);
  return getsockopt(fd, level, name, value, &len) < 0 ? -errno : 0;
}

int net_socket_adopt(int fd, int *family, int *type, int *listening) {
  int r, fl;
  if ((r = net__get_int(fd, SOL_SOCKET, SO_DOMAIN, family)) < 0 ||
      (r = net__get_int(fd, SOL_SOCKET, SO_TYPE, type)) < 0 ||
      (r = net__get_int(fd, SOL_SOCKET, SO_ACCEPTCONN, listening)) < 0)
    return r;
  fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
    return -errno;
  return 0;
}

int net_socket_dup(int fd) {
  int r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return r < 0 ? -errno : r;
}

int net_socket_connected(int fd) {
  net_sockaddr sa;
  int r = net_socket_peer_name(fd, &sa);
  return r == 0 ? 1 : r == -ENOTCONN ? 0 : r;
}
