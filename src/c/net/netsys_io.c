/* netsys_io.c -- glue for sending and receiving into Lisp octet vectors in place. */
#include "netsys.h"

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
  return net_recv(fd, b->p, b->len, b->flags);
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
  if (r == NET_EAGAIN)
    return ECL_NIL;
  if (r < 0)
    netsys_raise((int) r, "send", sock);
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
  r = netsys_io(handle, NET_WAIT_READ, deadline, netsys__recv_op, &b);
  if (r == NET_EAGAIN)
    return ECL_NIL;
  if (r < 0)
    netsys_raise((int) r, "recv", sock);
  return ecl_make_fixnum(r);
}
