/* cmsg_fuzz.c -- fuzz target for the ancillary-data walker of
 * receive-message (net_cmsg_next) and the builders of send-message
 * (net_cmsg_put_fds, net_cmsg_put_credentials); libFuzzer entry point,
 * replayed without libFuzzer by fuzz/replay.c.
 *
 * Input: byte 0 chooses the mode, the rest is the payload.
 *  - Mode even: the payload is a control buffer as recvmsg(2) might leave
 *    it, in an allocation of exactly its size, walked to the end.  Every
 *    message returned lies inside the buffer (header, and for descriptors
 *    every fd), positions strictly increase, and the walk ends within one
 *    step per header's worth of bytes.
 *  - Mode odd: the payload chooses descriptors and credentials, which are
 *    built into a control buffer of a payload-chosen size and walked back:
 *    what fits is what comes back, in order; what does not is NET_EMSGSIZE.
 */
#include "net.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CHECK(x) do { if (!(x)) abort(); } while (0)

/* Reads every descriptor of C, so that a read out of bounds is caught. */
static long sum_fds(const net_cmsg *c) {
  long sum = 0;
  int i, fd;
  for (i = 0; i < c->nfds; i++) {
    memcpy(&fd, c->fds + (size_t) i * sizeof(int), sizeof(int));
    sum += fd;
  }
  return sum;
}

static void walk(const uint8_t *data, size_t size) {
  /* An exact-size copy (malloc aligns it as recvmsg's buffer would be). */
  unsigned char *buf = malloc(size ? size : 1);
  net_msg m;
  net_cmsg c;
  size_t pos = 0, last = 0, steps = 0;
  volatile long sink = 0;
  if (!buf)
    return;
  memcpy(buf, data, size);
  memset(&m, 0, sizeof(m));
  m.control = size ? buf : NULL;
  m.controllen = size;
  while (net_cmsg_next(&m, &pos, &c)) {
    CHECK(++steps <= size / sizeof(struct cmsghdr));
    CHECK(pos > last && pos <= size + sizeof(struct cmsghdr));
    last = pos;
    if (c.kind == NET_CMSG_FDS) {
      CHECK(c.nfds >= 0);
      CHECK(c.fds >= buf && c.fds + (size_t) c.nfds * sizeof(int) <= buf + size);
      sink += sum_fds(&c);
    } else if (c.kind == NET_CMSG_PKTINFO4 || c.kind == NET_CMSG_PKTINFO6) {
      CHECK(c.addrlen == (c.kind == NET_CMSG_PKTINFO4 ? 4 : 16));
    } else {
      CHECK(c.kind == NET_CMSG_OTHER || c.kind == NET_CMSG_CREDENTIALS);
    }
  }
  (void) sink;
  free(buf);
}

/* Builds descriptors and credentials chosen by DATA, then walks them back. */
static void build(const uint8_t *data, size_t size) {
  int fds[NET_MAX_FDS + 2];
  int nfds = size > 0 ? data[0] % (NET_MAX_FDS + 2) : 0, i, rf = 0, rc = 1;
  size_t cap = size > 1 ? (size_t) data[1] * 8 : 0, used = 0, pos = 0;
  int with_creds = size > 2 && (data[2] & 1);
  unsigned char *buf = malloc(cap ? cap : 1);
  net_msg m;
  net_cmsg c;
  if (!buf)
    return;
  for (i = 0; i < nfds; i++)
    fds[i] = (int) (i * 7 + (size > 3 ? data[3] : 0));
  if (nfds > 0) {
    rf = net_cmsg_put_fds(buf, cap, &used, fds, nfds);
    if (nfds > NET_MAX_FDS)
      CHECK(rf == NET_EINVAL && used == 0);
    else
      CHECK(rf == 0 ? used == CMSG_SPACE(sizeof(int) * (size_t) nfds) && used <= cap
                    : rf == NET_EMSGSIZE && CMSG_SPACE(sizeof(int) * (size_t) nfds) > cap);
  }
  if (with_creds) {
    size_t before = used;
    rc = net_cmsg_put_credentials(buf, cap, &used, 11, 22, 33);
    CHECK(rc == 0 ? used <= cap && used > before : rc == NET_EMSGSIZE && used == before);
  }
  memset(&m, 0, sizeof(m));
  m.control = buf;
  m.controllen = used;
  if (nfds > 0 && rf == 0) {
    CHECK(net_cmsg_next(&m, &pos, &c) == 1 && c.kind == NET_CMSG_FDS && c.nfds == nfds);
    for (i = 0; i < nfds; i++) {
      int fd;
      memcpy(&fd, c.fds + (size_t) i * sizeof(int), sizeof(int));
      CHECK(fd == fds[i]);
    }
  }
  if (with_creds && rc == 0) {
    CHECK(net_cmsg_next(&m, &pos, &c) == 1 && c.kind == NET_CMSG_CREDENTIALS);
    CHECK(c.pid == 11 && c.uid == 22 && c.gid == 33);
  }
  CHECK(net_cmsg_next(&m, &pos, &c) == 0);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  if (data[0] & 1)
    build(data + 1, size - 1);
  else
    walk(data + 1, size - 1);
  return 0;
}
