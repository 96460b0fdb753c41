/* io.c -- send and receive on a descriptor, never raising SIGPIPE. */
#include "net.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

ssize_t net_send(int fd, const void *buf, size_t len, int flags) {
  ssize_t r = send(fd, buf, len, flags | MSG_NOSIGNAL);
  return r < 0 ? -errno : r;
}

ssize_t net_recv(int fd, void *buf, size_t len, int flags) {
  ssize_t r = recv(fd, buf, len, flags);
  return r < 0 ? -errno : r;
}

ssize_t net_send_to(int fd, const void *buf, size_t len, int flags, const net_sockaddr *to) {
  ssize_t r = sendto(fd, buf, len, flags | MSG_NOSIGNAL, to ? &to->u.sa : NULL, to ? to->len : 0);
  return r < 0 ? -errno : r;
}

ssize_t net_recv_from(int fd, void *buf, size_t len, int flags, net_sockaddr *from,
                      int *truncated) {
  struct iovec iov;
  struct msghdr mh;
  ssize_t r;
  iov.iov_base = buf;
  iov.iov_len = len;
  memset(&mh, 0, sizeof(mh));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (from) {
    /* A connected stream socket reports no name: leave none behind. */
    from->u.sa.sa_family = AF_UNSPEC;
    mh.msg_name = &from->u.ss;
    mh.msg_namelen = sizeof(from->u.ss);
  }
  r = recvmsg(fd, &mh, flags);
  if (r < 0)
    return -errno;
  if (from)
    from->len = mh.msg_namelen;
  *truncated = (mh.msg_flags & MSG_TRUNC) != 0;
  return r;
}
