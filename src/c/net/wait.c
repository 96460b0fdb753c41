/* wait.c -- waiting for readiness against an absolute deadline. */
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* As in io.c: on Linux the system call itself, not glibc's ppoll, which is
 * a cancellation point and switches the cancellation state around the
 * call in a threaded process.  Only where long is 64 bits: there the
 * kernel's timespec is the C library's. */
#if defined(__linux__) && defined(SYS_ppoll) && defined(__LP64__)
#define net__ppoll(p, n, ts) syscall(SYS_ppoll, (p), (n), (ts), NULL, (size_t) 0)
#else
#define net__ppoll(p, n, ts) ppoll((p), (n), (ts), NULL)
#endif

static int net__events_to_poll(int events) {
  int p = 0;
  if (events & NET_WAIT_READ)
    p |= POLLIN;
  if (events & NET_WAIT_WRITE)
    p |= POLLOUT;
  if (events & NET_WAIT_URGENT)
    p |= POLLPRI;
  if (events & NET_WAIT_DISCONNECT)
    p |= POLLRDHUP;
  return p;
}

static int net__poll_to_events(int revents, int asked) {
  int e = 0;
  if (revents & POLLIN)
    e |= NET_WAIT_READ;
  if (revents & POLLOUT)
    e |= NET_WAIT_WRITE;
  if (revents & POLLPRI)
    e |= NET_WAIT_URGENT;
  if (revents & POLLRDHUP)
    e |= NET_WAIT_DISCONNECT;
  /* Hang-up and errors make the next call fail or read EOF at once:
   * report them as ready for whatever the caller waits on. */
  if (revents & (POLLERR | POLLHUP | POLLNVAL))
    e |= asked;
  return e;
}

/* DEADLINE as ppoll's relative timeout in TS; NULL for no deadline. */
static struct timespec *net__timeout(int64_t deadline, struct timespec *ts) {
  int64_t left;
  if (deadline == NET_NO_DEADLINE)
    return NULL;
  left = deadline - net_now_ns();
  if (left < 0)
    left = 0;
  ts->tv_sec = (time_t) (left / 1000000000);
  ts->tv_nsec = (long) (left % 1000000000);
  return ts;
}

static inline int net__poll(struct pollfd *p, const int *fds, int *events, int n, int64_t deadline) {
  struct timespec ts;
  int i, r;
  for (i = 0; i < n; i++) {
    /* poll() skips a negative fd: a closed entry is never ready. */
    p[i].fd = fds[i];
    p[i].events = (short) net__events_to_poll(events[i]);
    p[i].revents = 0;
  }
  r = (int) net__ppoll(p, (nfds_t) n, net__timeout(deadline, &ts));
  if (r < 0)
    return -errno;
  if (r == 0)
    return NET_ETIMEOUT;
  for (i = 0; i < n; i++)
    events[i] = p[i].fd < 0 ? 0 : net__poll_to_events(p[i].revents, events[i]);
  return r;
}

int net_wait_many(const int *fds, int *events, int n, int64_t deadline) {
  /* Few descriptors (the usual case) are polled from the stack; any number
   * more from the heap: poll has no FD_SETSIZE limit, neither have we. */
  struct pollfd small[NET_WAIT_SMALL], *p = small;
  int r;
  if (n < 0)
    return NET_EINVAL;
  if (n > NET_WAIT_SMALL && !(p = malloc(sizeof(*p) * (size_t) n)))
    return NET_ENOMEM;
  r = net__poll(p, fds, events, n, deadline);
  if (p != small)
    free(p);
  return r;
}

int net_wait(int fd, int events, int64_t deadline) {
  /* net__poll inline for one descriptor: every blocking call's wait. */
  struct pollfd p;
  int r = net__poll(&p, &fd, &events, 1, deadline);
  return r < 0 ? r : events;
}
