/* io.c -- send and receive on a descriptor, never raising SIGPIPE. */
#include "net.h"

#include <errno.h>
#include <sys/socket.h>

ssize_t net_send(int fd, const void *buf, size_t len, int flags) {
  ssize_t r = send(fd, buf, len, flags | MSG_NOSIGNAL);
  return r < 0 ? -errno : r;
}

ssize_t net_recv(int fd, void *buf, size_t len, int flags) {
  ssize_t r = recv(fd, buf, len, flags);
  return r < 0 ? -errno : r;
}
