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

/* The control buffer of a send: SCM_RIGHTS for the fixnums of FDS, and
 * SCM_CREDENTIALS for CREDS, a list (pid uid gid). */
static void control(struct msg *x, cl_object fds, cl_object creds) {
  size_t used = 0;
  int v[NET_MAX_FDS], n = 0, r = 0;
  cl_object l;
  for (l = fds; ECL_CONSP(l); l = ECL_CONS_CDR(l)) {
    if (n == NET_MAX_FDS)
      netsys_raise(NET_EMSGSIZE, "sendmsg", ECL_NIL);
    v[n++] = NETSYS_INDEX(ECL_CONS_CAR(l));
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

static ssize_t sendmsg_op(int fd, void *arg) {
  struct msg *x = arg;
  return net_msg_send(fd, &x->m, x->flags);
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
