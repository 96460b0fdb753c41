/* io.c -- send and receive on a descriptor, never raising SIGPIPE. */
#include "net.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* On Linux, the system calls themselves rather than glibc's wrappers.
 * Those are cancellation points: in a process with more than one thread
 * (an ECL image always has one more) each call turns asynchronous
 * cancellation on and off around the system call, two atomic operations
 * and about 60 instructions, a tenth of the loop's work per echo.  net's
 * calls are therefore not cancellation points (net.h says so). */
#if defined(__linux__) && defined(SYS_sendto) && defined(SYS_recvfrom) && defined(SYS_recvmsg)
#define net__sendto(fd, b, n, f, a, al) syscall(SYS_sendto, (fd), (b), (n), (f), (a), (al))
#define net__recvfrom(fd, b, n, f) syscall(SYS_recvfrom, (fd), (b), (n), (f), NULL, NULL)
#define net__recvmsg(fd, m, f) syscall(SYS_recvmsg, (fd), (m), (f))
#else
#define net__sendto(fd, b, n, f, a, al) sendto((fd), (b), (n), (f), (a), (al))
#define net__recvfrom(fd, b, n, f) recv((fd), (b), (n), (f))
#define net__recvmsg(fd, m, f) recvmsg((fd), (m), (f))
#endif

ssize_t net_send(int fd, const void *buf, size_t len, int flags) {
  ssize_t r = net__sendto(fd, buf, len, flags | MSG_NOSIGNAL, NULL, 0);
  return r < 0 ? -errno : r;
}

ssize_t net_recv(int fd, void *buf, size_t len, int flags) {
  ssize_t r = net__recvfrom(fd, buf, len, flags);
  return r < 0 ? -errno : r;
}

ssize_t net_send_to(int fd, const void *buf, size_t len, int flags, const net_sockaddr *to) {
  ssize_t r = net__sendto(fd, buf, len, flags | MSG_NOSIGNAL, to ? &to->u.sa : NULL,
                          to ? to->len : 0);
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
  r = net__recvmsg(fd, &mh, flags);
  if (r < 0)
    return -errno;
  if (from)
    from->len = mh.msg_namelen;
  *truncated = (mh.msg_flags & MSG_TRUNC) != 0;
  return r;
}
