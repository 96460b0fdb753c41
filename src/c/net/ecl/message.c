/* message.c -- glue for sendmsg/recvmsg over several Lisp octet vectors. */
#include "netsys.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define NETSYS_MAX_IOV 64
/* Room for the most descriptors one message carries plus credentials. */
#define NETSYS_CONTROL_MAX 2048

struct msg {
  net_msg m;
  struct iovec iov[NETSYS_MAX_IOV];
  net_sockaddr addr;
  int flags;
  /* Sockets whose descriptors are passed: HELD[i] goes into slot SLOT[i]
   * of the SCM_RIGHTS array, acquired around each sendmsg(2) only, so that
   * a close from another thread never lets a reused fd number go out.
   * CLOSED is the socket found closed, for the error report. */
  int nheld;
  net_handle *held[NET_MAX_FDS];
  int slot[NET_MAX_FDS];
  cl_object closed;
  union {
    struct cmsghdr align;
    unsigned char bytes[NETSYS_CONTROL_MAX];
  } control;
};

/* One element of a buffer list: an octet vector, or (vector start end). */
static void iov_entry(struct iovec *iov, cl_object e) {
  size_t len;
  if (ECL_CONSP(e)) {
    cl_object rest = ECL_CONS_CDR(e), start = ECL_NIL, end = ECL_NIL;
    if (ECL_CONSP(rest)) {
      start = ECL_CONS_CAR(rest);
      rest = ECL_CONS_CDR(rest);
      if (ECL_CONSP(rest))
        end = ECL_CONS_CAR(rest);
    }
    iov->iov_base = netsys_octets(ECL_CONS_CAR(e), start, end, &len);
  } else {
    iov->iov_base = netsys_octets(e, ECL_NIL, ECL_NIL, &len);
  }
  iov->iov_len = len;
}

/* Fills the scatter/gather array from the Lisp list BUFFERS. */
static void iov(struct msg *x, cl_object buffers) {
  cl_object l;
  int n = 0;
  if (!ECL_LISTP(buffers))
    netsys_type_error(buffers, "LIST");
  for (l = buffers; !Null(l); l = ECL_CONS_CDR(l)) {
    if (!ECL_CONSP(l))
      netsys_type_error(buffers, "LIST");
    if (n == NETSYS_MAX_IOV)
      netsys_type_error(buffers, "(SATISFIES NET-SYS::AT-MOST-64-BUFFERS-P)");
    iov_entry(&x->iov[n++], ECL_CONS_CAR(l));
  }
  x->m.iov = x->iov;
  x->m.iovcnt = n;
}

/* One element of FDS: a fixnum descriptor, or (handle . socket), whose fd
 * is filled in by hold() at each attempt. */
static int fd_entry(struct msg *x, cl_object e, int i) {
  if (!ECL_CONSP(e))
    return NETSYS_INDEX(e);
  x->slot[x->nheld] = i;
  x->held[x->nheld++] = netsys_handle(ECL_CONS_CAR(e));
  return -1;
}

/* The control buffer of a send: SCM_RIGHTS for the descriptors of FDS, and
 * SCM_CREDENTIALS for CREDS, a list (pid uid gid). */
static void control(struct msg *x, cl_object fds, cl_object creds) {
  size_t used = 0;
  int v[NET_MAX_FDS], n = 0, r = 0;
  cl_object l;
  x->nheld = 0;
  x->closed = ECL_NIL;
  for (l = fds; ECL_CONSP(l); l = ECL_CONS_CDR(l)) {
    if (n == NET_MAX_FDS)
      netsys_raise(NET_EMSGSIZE, "sendmsg", ECL_NIL);
    v[n] = fd_entry(x, ECL_CONS_CAR(l), n);
    n++;
  }
  if (n > 0)
    r = net_cmsg_put_fds(x->control.bytes, sizeof(x->control.bytes), &used, v, n);
  if (r == 0 && ECL_CONSP(creds) && cl_list_length(creds) == ecl_make_fixnum(3)) {
    int pid = NETSYS_INDEX(ecl_car(creds));
    int uid = NETSYS_INDEX(ecl_cadr(creds));
    int gid = NETSYS_INDEX(ecl_caddr(creds));
    r = net_cmsg_put_credentials(x->control.bytes, sizeof(x->control.bytes), &used, pid, uid, gid);
  } else if (!Null(creds) && r == 0) {
    netsys_type_error(creds, "(OR NULL (CONS INTEGER (CONS INTEGER (CONS INTEGER NULL))))");
  }
  if (r < 0)
    netsys_raise(r, "sendmsg", ECL_NIL);
  x->m.control = used ? x->control.bytes : NULL;
  x->m.controllen = used;
}

static void unhold(struct msg *x, int n) {
  while (n-- > 0)
    net_handle_release(x->held[n]);
}

/* Acquires the passed sockets and writes their fds into the SCM_RIGHTS
 * array (the first control message); NET_ECLOSED if one is closed. */
static int hold(struct msg *x) {
  unsigned char *data = CMSG_DATA((struct cmsghdr *) x->control.bytes);
  int i;
  for (i = 0; i < x->nheld; i++) {
    int fd = net_handle_acquire(x->held[i]);
    if (fd < 0) {
      unhold(x, i);
      return i;
    }
    memcpy(data + (size_t) x->slot[i] * sizeof(int), &fd, sizeof(int));
  }
  return -1;
}

static ssize_t sendmsg_op(int fd, void *arg) {
  struct msg *x = arg;
  ssize_t r;
  int closed = hold(x);
  if (closed >= 0) {
    x->closed = ecl_make_fixnum(x->slot[closed]);
    return NET_ECLOSED;
  }
  r = net_msg_send(fd, &x->m, x->flags);
  unhold(x, x->nheld);
  return r;
}

/* The socket of FDS at index I (from x->closed). */
static cl_object fds_socket(cl_object fds, cl_object i) {
  cl_object e = ecl_nth(ecl_fixnum(i), fds);
  return ECL_CONSP(e) ? ECL_CONS_CDR(e) : ECL_NIL;
}

static ssize_t recvmsg_op(int fd, void *arg) {
  struct msg *x = arg;
  return net_msg_recv(fd, &x->m, x->flags);
}

/* One sendmsg(2): the count sent, or NIL if it would block. */
cl_object netsys_send_message(cl_object handle, cl_object buffers, cl_object addr,
                              cl_object port, cl_object scope, cl_object fds, cl_object creds,
                              cl_object flags, cl_object deadline, cl_object sock) {
  struct msg x;
  ssize_t r;
  iov(&x, buffers);
  control(&x, fds, creds);
  x.flags = NETSYS_INDEX(flags);
  x.m.addr = NULL;
  if (!Null(addr)) {
    netsys__sockaddr(&x.addr, addr, port, scope);
    x.m.addr = &x.addr;
  }
  r = netsys_io(handle, NET_WAIT_WRITE, deadline, sendmsg_op, &x);
  if (r == NET_ECLOSED && !Null(x.closed))
    netsys_raise(NET_ECLOSED, "sendmsg", fds_socket(fds, x.closed));
  if (!netsys_io_done(r, "sendmsg", sock))
    return ECL_NIL;
  return ecl_make_fixnum(r);
}

/* The received control messages as a list of (:file-descriptors fd ...),
 * (:credentials pid uid gid), (:packet-info octets interface). */
static cl_object ancillary(const net_msg *m) {
  cl_object list = ECL_NIL;
  size_t pos = 0;
  net_cmsg c;
  while (net_cmsg_next(m, &pos, &c)) {
    cl_object item = ECL_NIL;
    int i;
    if (c.kind == NET_CMSG_FDS) {
      for (i = c.nfds - 1; i >= 0; i--) {
        int fd;
        memcpy(&fd, c.fds + i * sizeof(int), sizeof(int));
        item = ecl_cons(ecl_make_fixnum(fd), item);
      }
      item = ecl_cons(ecl_make_keyword("FILE-DESCRIPTORS"), item);
    } else if (c.kind == NET_CMSG_CREDENTIALS) {
      item = cl_list(4, ecl_make_keyword("CREDENTIALS"), ecl_make_fixnum(c.pid),
                     ecl_make_fixnum(c.uid), ecl_make_fixnum(c.gid));
    } else if (c.kind == NET_CMSG_PKTINFO4 || c.kind == NET_CMSG_PKTINFO6) {
      item = cl_list(3, ecl_make_keyword("PACKET-INFO"),
                     netsys_octet_vector(c.addr, (int) c.addrlen), ecl_make_fixnum(c.ifindex));
    } else {
      continue;
    }
    list = ecl_cons(item, list);
  }
  return cl_nreverse(list);
}

/* One recvmsg(2) into BUFFERS with CONTROL-SIZE bytes for ancillary data:
 * (count msg-flags sender ancillary), or NIL if it would block. */
cl_object netsys_recv_message(cl_object handle, cl_object buffers, cl_object control_size,
                              cl_object flags, cl_object deadline, cl_object sock) {
  struct msg x;
  ssize_t r;
  iov(&x, buffers);
  /* A larger request is clamped: the buffer already holds everything one
   * message can carry on Linux (253 descriptors, credentials, packet info). */
  x.m.controllen = (size_t) netsys__int(control_size, 0, INT32_MAX, "(INTEGER 0 2147483647)");
  if (x.m.controllen > NETSYS_CONTROL_MAX)
    x.m.controllen = NETSYS_CONTROL_MAX;
  x.m.control = x.m.controllen ? x.control.bytes : NULL;
  x.flags = NETSYS_INDEX(flags);
  x.m.addr = &x.addr;
  x.addr.len = 0;
  r = netsys_io(handle, NET_WAIT_READ, deadline, recvmsg_op, &x);
  if (!netsys_io_done(r, "recvmsg", sock))
    return ECL_NIL;
  return cl_list(4, ecl_make_fixnum(r), ecl_make_fixnum(x.m.flags),
                 netsys__sockaddr_list(&x.addr), ancillary(&x.m));
}
