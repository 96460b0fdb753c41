/* io.c -- glue for sending and receiving into Lisp octet vectors in place. */
#include "netsys.h"

#include <sys/socket.h>

struct netsys__buf {
  uint8_t *p;
  size_t len;
  int flags;
};

static ssize_t netsys__send_op(int fd, void *arg) {
  struct netsys__buf *b = arg;
  return net_send(fd, b->p, b->len, b->flags);
}

static ssize_t netsys__recv_op(int fd, void *arg) {
  struct netsys__buf *b = arg;
  ssize_t r = net_recv(fd, b->p, b->len, b->flags);
  /* Out-of-band: EINVAL means no urgent octet is there yet; wait for one
   * (POLLPRI) like for ordinary data. */
  if (r == NET_EINVAL && (b->flags & MSG_OOB))
    return NET_EAGAIN;
  return r;
}

static int netsys__flags(cl_object flags) {
  if (!ECL_FIXNUMP(flags) || ecl_fixnum(flags) < 0 || ecl_fixnum(flags) > INT32_MAX)
    netsys_type_error(flags, "(INTEGER 0 2147483647)");
  return (int) ecl_fixnum(flags);
}

/* One send(2), waiting until at least one octet can go: returns the count
 * sent (maybe partial), or NIL when non-blocking and nothing went. */
cl_object netsys_send(cl_object handle, cl_object buffer, cl_object start, cl_object end,
                      cl_object flags, cl_object deadline, cl_object sock) {
  struct netsys__buf b;
  ssize_t r;
  b.p = netsys_octets(buffer, start, end, &b.len);
  b.flags = netsys__flags(flags);
  r = netsys_io(handle, NET_WAIT_WRITE, deadline, netsys__send_op, &b);
  if (!netsys_io_done(r, "send", sock))
    return ECL_NIL;
  return ecl_make_fixnum(r);
}

/* One recv(2): the count received, 0 at end of file, NIL when
 * non-blocking and nothing is there. */
cl_object netsys_recv(cl_object handle, cl_object buffer, cl_object start, cl_object end,
                      cl_object flags, cl_object deadline, cl_object sock) {
  struct netsys__buf b;
  ssize_t r;
  b.p = netsys_octets(buffer, start, end, &b.len);
  b.flags = netsys__flags(flags);
  r = netsys_io(handle, (b.flags & MSG_OOB) ? NET_WAIT_URGENT : NET_WAIT_READ, deadline,
                netsys__recv_op, &b);
  if (!netsys_io_done(r, "recv", sock))
    return ECL_NIL;
  return ecl_make_fixnum(r);
}

struct netsys__dgram {
  struct netsys__buf b;
  net_sockaddr addr;
  int has_addr;
  int truncated;
};

static ssize_t netsys__send_to_op(int fd, void *arg) {
  struct netsys__dgram *d = arg;
  return net_send_to(fd, d->b.p, d->b.len, d->b.flags, d->has_addr ? &d->addr : NULL);
}

static ssize_t netsys__recv_from_op(int fd, void *arg) {
  struct netsys__dgram *d = arg;
  return net_recv_from(fd, d->b.p, d->b.len, d->b.flags, &d->addr, &d->truncated);
}

/* One sendto(2) of BUFFER[START,END) to ADDR (octets or a Unix name; NIL on
 * a connected socket), PORT and SCOPE: the count, or NIL if it would block. */
cl_object netsys_send_to(cl_object handle, cl_object buffer, cl_object start, cl_object end,
                         cl_object flags, cl_object addr, cl_object port, cl_object scope,
                         cl_object deadline, cl_object sock) {
  struct netsys__dgram d;
  ssize_t r;
  d.b.p = netsys_octets(buffer, start, end, &d.b.len);
  d.b.flags = netsys__flags(flags);
  d.has_addr = !Null(addr);
  if (d.has_addr)
    netsys__sockaddr(&d.addr, addr, port, scope);
  r = netsys_io(handle, NET_WAIT_WRITE, deadline, netsys__send_to_op, &d);
  if (!netsys_io_done(r, "sendto", sock))
    return ECL_NIL;
  return ecl_make_fixnum(r);
}

/* One recvfrom(2) into BUFFER[START,END): (count truncated-p . sender),
 * the sender as netsys__sockaddr_list gives it; NIL if it would block. */
cl_object netsys_recv_from(cl_object handle, cl_object buffer, cl_object start, cl_object end,
                           cl_object flags, cl_object deadline, cl_object sock) {
  struct netsys__dgram d;
  ssize_t r;
  d.b.p = netsys_octets(buffer, start, end, &d.b.len);
  d.b.flags = netsys__flags(flags);
  d.truncated = 0;
  r = netsys_io(handle, NET_WAIT_READ, deadline, netsys__recv_from_op, &d);
  if (!netsys_io_done(r, "recvfrom", sock))
    return ECL_NIL;
  return cl_listX(3, ecl_make_fixnum(r), d.truncated ? ECL_T : ECL_NIL,
                  netsys__sockaddr_list(&d.addr));
}
