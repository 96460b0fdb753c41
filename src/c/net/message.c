/* message.c -- sendmsg/recvmsg: scatter/gather and ancillary data. */
#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static void net__msghdr(struct msghdr *mh, const net_msg *m) {
  memset(mh, 0, sizeof(*mh));
  mh->msg_iov = m->iov;
  mh->msg_iovlen = (size_t) m->iovcnt;
  mh->msg_control = m->controllen ? m->control : NULL;
  mh->msg_controllen = m->controllen;
}

ssize_t net_msg_send(int fd, net_msg *m, int flags) {
  struct msghdr mh;
  ssize_t r;
  net__msghdr(&mh, m);
  if (m->addr) {
    mh.msg_name = &m->addr->u.ss;
    mh.msg_namelen = m->addr->len;
  }
  r = sendmsg(fd, &mh, flags | MSG_NOSIGNAL);
  return r < 0 ? -errno : r;
}

ssize_t net_msg_recv(int fd, net_msg *m, int flags) {
  struct msghdr mh;
  ssize_t r;
  net__msghdr(&mh, m);
  if (m->addr) {
    m->addr->u.sa.sa_family = AF_UNSPEC;
    mh.msg_name = &m->addr->u.ss;
    mh.msg_namelen = sizeof(m->addr->u.ss);
  }
  r = recvmsg(fd, &mh, flags | MSG_CMSG_CLOEXEC);
  if (r < 0)
    return -errno;
  if (m->addr)
    m->addr->len = mh.msg_namelen;
  m->controllen = mh.msg_controllen;
  m->flags = mh.msg_flags;
  return r;
}

/* Appends one control message of LEN data bytes; returns its data. */
static unsigned char *net__cmsg_put(void *buf, size_t size, size_t *used, int level, int type,
                                    size_t len) {
  struct cmsghdr *c;
  if (*used + CMSG_SPACE(len) > size)
    return NULL;
  c = (struct cmsghdr *) ((char *) buf + *used);
  memset(c, 0, CMSG_SPACE(len));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(len);
  *used += CMSG_SPACE(len);
  return CMSG_DATA(c);
}

int net_cmsg_put_fds(void *buf, size_t size, size_t *used, const int *fds, int n) {
  unsigned char *d;
  if (n < 1 || n > NET_MAX_FDS)
    return NET_EINVAL;
  d = net__cmsg_put(buf, size, used, SOL_SOCKET, SCM_RIGHTS, sizeof(int) * (size_t) n);
  if (!d)
    return NET_EMSGSIZE;
  memcpy(d, fds, sizeof(int) * (size_t) n);
  return 0;
}

int net_cmsg_put_credentials(void *buf, size_t size, size_t *used, pid_t pid, uid_t uid,
                             gid_t gid) {
  struct ucred cr;
  unsigned char *d = net__cmsg_put(buf, size, used, SOL_SOCKET, SCM_CREDENTIALS, sizeof(cr));
  if (!d)
    return NET_EMSGSIZE;
  cr.pid = pid;
  cr.uid = uid;
  cr.gid = gid;
  memcpy(d, &cr, sizeof(cr));
  return 0;
}

static void net__cmsg_decode(const struct cmsghdr *c, net_cmsg *out) {
  const unsigned char *d = CMSG_DATA(c);
  size_t len = c->cmsg_len - CMSG_LEN(0);
  memset(out, 0, sizeof(*out));
  if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    out->kind = NET_CMSG_FDS;
    out->nfds = (int) (len / sizeof(int));
    out->fds = d;
  } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
             len >= sizeof(struct ucred)) {
    struct ucred cr;
    memcpy(&cr, d, sizeof(cr));
    out->kind = NET_CMSG_CREDENTIALS;
    out->pid = cr.pid;
    out->uid = cr.uid;
    out->gid = cr.gid;
  } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
             len >= sizeof(struct in_pktinfo)) {
    struct in_pktinfo pi;
    memcpy(&pi, d, sizeof(pi));
    out->kind = NET_CMSG_PKTINFO4;
    memcpy(out->addr, &pi.ipi_addr, 4);
    out->addrlen = 4;
    out->ifindex = (unsigned) pi.ipi_ifindex;
  } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
             len >= sizeof(struct in6_pktinfo)) {
    struct in6_pktinfo pi;
    memcpy(&pi, d, sizeof(pi));
    out->kind = NET_CMSG_PKTINFO6;
    memcpy(out->addr, &pi.ipi6_addr, 16);
    out->addrlen = 16;
    out->ifindex = pi.ipi6_ifindex;
  }
}

/* Each message is checked against what is left of the buffer before it is
 * read: a header whose length runs past the end (which the kernel never
 * writes, but a control buffer is data) ends the walk. */
int net_cmsg_next(const net_msg *m, size_t *pos, net_cmsg *out) {
  const unsigned char *base = m->control;
  size_t size = m->controllen;
  struct cmsghdr h;
  if (!base || *pos >= size || size - *pos < sizeof(h))
    return 0;
  memcpy(&h, base + *pos, sizeof(h));
  if (h.cmsg_len < CMSG_LEN(0) || h.cmsg_len > size - *pos)
    return 0;
  net__cmsg_decode((const struct cmsghdr *) (base + *pos), out);
  *pos += CMSG_ALIGN(h.cmsg_len);
  return 1;
}
