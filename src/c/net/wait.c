/* wait.c -- waiting for readiness against an absolute deadline. */
#include "net.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

static int net__events_to_poll(int events) {
  int p = 0;
  if (events & NET_WAIT_READ)
    p |= POLLIN;
  if (events & NET_WAIT_WRITE)
    p |= POLLOUT;
  if (events & NET_WAIT_URGENT)
    p |= POLLPRI;
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
  /* Hang-up and errors make the next call fail or read EOF at once:
   * report them as ready for whatever the caller waits on. */
  if (revents & (POLLERR | POLLHUP | POLLNVAL))
    e |= asked;
  return e;
}

int net_wait(int fd, int events, int64_t deadline) {
  struct pollfd p;
  struct timespec ts, *tsp = NULL;
  int r;

  p.fd = fd;
  p.events = (short) net__events_to_poll(events);
  p.revents = 0;
  if (deadline != NET_NO_DEADLINE) {
    int64_t left = deadline - net_now_ns();
    if (left < 0)
      left = 0;
    ts.tv_sec = (time_t) (left / 1000000000);
    ts.tv_nsec = (long) (left % 1000000000);
    tsp = &ts;
  }
  r = ppoll(&p, 1, tsp, NULL);
  if (r < 0)
    return -errno;
  if (r == 0)
    return NET_ETIMEOUT;
  return net__poll_to_events(p.revents, events);
}

int net_wait_many(const int *fds, int *events, int n, int64_t deadline) {
  struct pollfd p[NET_WAIT_MANY_MAX];
  struct timespec ts, *tsp = NULL;
  int i, r;

  if (n < 0 || n > NET_WAIT_MANY_MAX)
    return NET_EINVAL;
  for (i = 0; i < n; i++) {
    /* poll() skips a negative fd: a closed entry is never ready. */
    p[i].fd = fds[i];
    p[i].events = (short) net__events_to_poll(events[i]);
    p[i].revents = 0;
  }
  if (deadline != NET_NO_DEADLINE) {
    int64_t left = deadline - net_now_ns();
    if (left < 0)
      left = 0;
    ts.tv_sec = (time_t) (left / 1000000000);
    ts.tv_nsec = (long) (left % 1000000000);
    tsp = &ts;
  }
  r = ppoll(p, (nfds_t) n, tsp, NULL);
  if (r < 0)
    return -errno;
  if (r == 0)
    return NET_ETIMEOUT;
  for (i = 0; i < n; i++)
    events[i] = p[i].fd < 0 ? 0 : net__poll_to_events(p[i].revents, events[i]);
  return r;
}
