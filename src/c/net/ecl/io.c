/* io.c -- glue for sending and receiving into Lisp octet vectors in place. */
#include "netsys.h"

#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

struct transfer {
  uint8_t *p;
  size_t len;
  int flags;
  net_sockaddr addr; /* send_to: the destination; recv_from: the sender */
  int has_addr;
  int truncated;
  int return_error; /* NETSYS_RETURN_ERROR was in the flags */
};

static ssize_t send_op(int fd, void *arg) {
  struct transfer *t = arg;
  return net_send_to(fd, t->p, t->len, t->flags, t->has_addr ? &t->addr : NULL);
}

static ssize_t recv_op(int fd, void *arg) {
  struct transfer *t = arg;
  ssize_t r = net_recv(fd, t->p, t->len, t->flags);
  /* Out-of-band: EINVAL means no urgent octet is there yet; wait for one
   * (POLLPRI) like for ordinary data. */
  if (r == NET_EINVAL && (t->flags & MSG_OOB))
    return NET_EAGAIN;
  return r;
}

static ssize_t recv_from_op(int fd, void *arg) {
  struct transfer *t = arg;
  return net_recv_from(fd, t->p, t->len, t->flags, &t->addr, &t->truncated);
}

/* netsys_octets, its common case (an octet vector, START and END fixnums
 * in range or NIL) inline: it runs for every datagram. */
static inline uint8_t *octets(cl_object buffer, cl_object start, cl_object end, size_t *len) {
  if (!ECL_IMMEDIATE(buffer) && buffer->d.t == t_vector && buffer->vector.elttype == ecl_aet_b8) {
    cl_index n = buffer->vector.fillp, s = 0, e = n;
    if (!Null(end)) {
      if (!ECL_FIXNUMP(end) || ecl_fixnum(end) < 0 || (cl_index) ecl_fixnum(end) > n)
        goto checked;
      e = (cl_index) ecl_fixnum(end);
    }
    if (!Null(start)) {
      if (!ECL_FIXNUMP(start) || ecl_fixnum(start) < 0 || (cl_index) ecl_fixnum(start) > e)
        goto checked;
      s = (cl_index) ecl_fixnum(start);
    }
    *len = e - s;
    return buffer->vector.self.b8 + s;
  }
checked: /* the type error */
  return netsys_octets(buffer, start, end, len);
}

/* The checked arguments every transfer shares. */
static inline void prepare(struct transfer *t, cl_object buffer, cl_object start, cl_object end,
                    cl_object flags) {
  t->p = octets(buffer, start, end, &t->len);
  /* A fixnum of the MSG_* bits (0 to INT32_MAX) and NETSYS_RETURN_ERROR:
   * one test; anything else is a type error. */
  if (ECL_FIXNUMP(flags) && (ecl_fixnum(flags) & ~(NETSYS_RETURN_ERROR | INT32_MAX)) == 0) {
    t->flags = (int) (ecl_fixnum(flags) & INT32_MAX);
    t->return_error = (ecl_fixnum(flags) & NETSYS_RETURN_ERROR) != 0;
  } else {
    t->flags = NETSYS_INDEX(flags);
    t->return_error = 0;
  }
  t->has_addr = 0;
  t->truncated = 0;
}

/* netsys__sockaddr, with its common case inline: four octets and a port,
 * a datagram's IPv4 destination. */
static void destination(net_sockaddr *out, cl_object addr, cl_object port, cl_object scope) {
  if (!ECL_IMMEDIATE(addr) && addr->d.t == t_vector && addr->vector.elttype == ecl_aet_b8 &&
      addr->vector.fillp == 4 && ECL_FIXNUMP(port) && ecl_fixnum(port) >= 0 &&
      ecl_fixnum(port) <= 65535 && (Null(scope) || scope == ecl_make_fixnum(0))) {
    struct sockaddr_in *in = (struct sockaddr_in *) &out->u.ss;
    memset(in, 0, sizeof(*in));
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t) ecl_fixnum(port));
    memcpy(&in->sin_addr, addr->vector.self.b8, 4);
    out->len = sizeof(*in);
    return;
  }
  netsys__sockaddr(out, addr, port, scope);
}

/* A non-blocking call (deadline -1) is one netsys_fd_try, inline with its
 * OP: the whole of a transfer on an event loop's socket.  NET_EINTR (a
 * signal came) goes the general way, which lets the Lisp interrupts run
 * and retries. */
#define NONBLOCKING_P(deadline) ((deadline) == ecl_make_fixnum(NETSYS_NONBLOCKING))

/* OP on HANDLE for EVENTS until DEADLINE: tried now first, blocking or
 * not (a send mostly finds room); a blocking call that would block then
 * waits before it tries again (netsys_io_wait_env). */
static inline ssize_t io(cl_env_ptr env, cl_object handle, int events, cl_object deadline,
                         netsys_op op, struct transfer *t) {
  net_handle *h = netsys_handle(handle);
  ssize_t r;
  netsys__check_deadline(deadline);
  r = netsys_fd_try(env, h, op, t);
  if (r == NET_EINTR || (r == NET_EAGAIN && !NONBLOCKING_P(deadline)))
    return netsys_io_wait_env(env, h, events, deadline, op, t, r == NET_EAGAIN);
  return r;
}

/* The same for a read of WANT octets (netsys_io_read_env): tried now
 * when non-blocking, or blocking with the last read having left data
 * (a datagram server's socket that always holds more); a blocking read
 * whose last read drained the socket waits first. */
static inline ssize_t io_read(cl_env_ptr env, cl_object handle, cl_object deadline,
                              netsys_op op, struct transfer *t, size_t want) {
  net_handle *h = netsys_handle(handle);
  int nonblocking = NONBLOCKING_P(deadline);
  if (nonblocking || !net_handle_drained_p(h)) {
    ssize_t r;
    netsys__check_deadline(deadline);
    r = netsys_fd_try(env, h, op, t);
    netsys__note_read(h, r, want); /* NET_EAGAIN: drained, the wait below waits first */
    if (r != NET_EINTR && (nonblocking || r != NET_EAGAIN))
      return r;
  }
  return netsys_io_read_env(env, h, NET_WAIT_READ, deadline, op, t, want);
}

/* The result of a transfer: the count, or NIL when it would block; a
 * failure raised, or returned as its negative code when T asked for that. */
static inline cl_object count(ssize_t r, const struct transfer *t, const char *call,
                              cl_object sock) {
  if (r < 0 && r != NET_EAGAIN && t->return_error)
    return ecl_make_fixnum(r);
  return netsys_io_done(r, call, sock) ? ecl_make_fixnum(r) : ECL_NIL;
}

/* One send(2), waiting until at least one octet can go: returns the count
 * sent (maybe partial), or NIL when non-blocking and nothing went. */
cl_object netsys_send_env(cl_env_ptr env, cl_object handle, cl_object buffer, cl_object start,
                          cl_object end, cl_object flags, cl_object deadline, cl_object sock) {
  struct transfer t;
  prepare(&t, buffer, start, end, flags);
  return count(io(env, handle, NET_WAIT_WRITE, deadline, send_op, &t), &t, "send", sock);
}

/* One recv(2): the count received, 0 at end of file, NIL when
 * non-blocking and nothing is there. */
cl_object netsys_recv_env(cl_env_ptr env, cl_object handle, cl_object buffer, cl_object start,
                          cl_object end, cl_object flags, cl_object deadline, cl_object sock) {
  struct transfer t;
  ssize_t r;
  prepare(&t, buffer, start, end, flags);
  if (t.flags & MSG_OOB)
    r = io(env, handle, NET_WAIT_URGENT, deadline, recv_op, &t);
  else
    r = io_read(env, handle, deadline, recv_op, &t,
                (t.flags & MSG_PEEK) ? NETSYS_WANT_MESSAGE : t.len);
  return count(r, &t, "recv", sock);
}

/* One sendto(2) of BUFFER[START,END) to ADDR (octets or a Unix name; NIL on
 * a connected socket), PORT and SCOPE: the count, or NIL if it would block. */
cl_object netsys_send_to_env(cl_env_ptr env, cl_object handle, cl_object buffer,
                             cl_object start, cl_object end, cl_object flags, cl_object addr,
                             cl_object port, cl_object scope, cl_object deadline,
                             cl_object sock) {
  struct transfer t;
  prepare(&t, buffer, start, end, flags);
  t.has_addr = !Null(addr);
  if (t.has_addr)
    destination(&t.addr, addr, port, scope);
  return count(io(env, handle, NET_WAIT_WRITE, deadline, send_op, &t), &t, "sendto", sock);
}

/* One recvfrom(2) into BUFFER[START,END): (count truncated-p . sender),
 * the sender as netsys__sockaddr_list gives it; NIL if it would block. */
cl_object netsys_recv_from_env(cl_env_ptr env, cl_object handle, cl_object buffer,
                               cl_object start, cl_object end, cl_object flags,
                               cl_object deadline, cl_object sock) {
  struct transfer t;
  ssize_t r;
  prepare(&t, buffer, start, end, flags);
  r = io_read(env, handle, deadline, recv_from_op, &t, NETSYS_WANT_MESSAGE);
  if (!netsys_io_done(r, "recvfrom", sock))
    return ECL_NIL;
  return cl_listX(3, ecl_make_fixnum(r), t.truncated ? ECL_T : ECL_NIL,
                  netsys__sockaddr_list(&t.addr));
}

/* recvfrom(2) as netsys_recv_from_env, but the sender's IP address goes
 * into OCTETS, the caller's octet vector of 4 or 16 (the socket's family),
 * so that a server learns each sender without consing.  Returns one
 * fixnum, count + truncated-p * 2^32 + port * 2^33 (count < 2^32), or NIL
 * if it would block.  A sender of another size (or a Unix-domain one) is
 * NET_EAFNOSUPPORT. */
cl_object netsys_recv_from_into_env(cl_env_ptr env, cl_object handle, cl_object buffer,
                                    cl_object start, cl_object end, cl_object flags,
                                    cl_object deadline, cl_object sock, cl_object sender) {
  struct transfer t;
  uint8_t from[16];
  uint32_t scope;
  size_t n;
  uint8_t *out = octets(sender, ECL_NIL, ECL_NIL, &n);
  int port, k;
  ssize_t r;
  if (n != 4 && n != 16)
    netsys_type_error(sender, "(VECTOR (UNSIGNED-BYTE 8) 4) or 16");
  prepare(&t, buffer, start, end, flags);
  r = io_read(env, handle, deadline, recv_from_op, &t, NETSYS_WANT_MESSAGE);
  if (!netsys_io_done(r, "recvfrom", sock))
    return ECL_NIL;
  k = net_sockaddr_split(&t.addr, from, &scope, &port);
  if (k != (int) n)
    netsys_raise(NET_EAFNOSUPPORT, "recvfrom", sock);
  if (n == 4) /* constant sizes: inline copies, not a call of memcpy */
    memcpy(out, from, 4);
  else
    memcpy(out, from, 16);
  return ecl_make_fixnum((cl_fixnum) r + ((cl_fixnum) (t.truncated != 0) << 32) +
                         ((cl_fixnum) port << 33));
}
