/* socket.c -- glue for creating, naming and connecting sockets. */
#include "netsys.h"

#include <sys/socket.h>
#include <unistd.h>

cl_object netsys_socket_open(cl_object family, cl_object type, cl_object protocol) {
  const cl_env_ptr env = ecl_process_env();
  int f = netsys__int(family, 0, 255, "(INTEGER 0 255)");
  int t = netsys__int(type, 0, 255, "(INTEGER 0 255)");
  int p = netsys__int(protocol, 0, 65535, "(INTEGER 0 65535)");
  cl_object h = netsys_handle_prealloc();
  int fd;
  ecl_disable_interrupts_env(env);
  fd = net_socket_open(f, t, p);
  if (fd >= 0)
    fd = netsys_handle_attach(h, fd);
  ecl_enable_interrupts_env(env);
  if (fd < 0)
    netsys_raise(fd, "socket", ECL_NIL);
  return h;
}

cl_object netsys_bind(cl_object handle, cl_object octets, cl_object port, cl_object scope, cl_object sock) {
  net_sockaddr sa;
  int fd, r;
  netsys__sockaddr(&sa, octets, port, scope);
  fd = netsys_fd_enter(handle, "bind", sock);
  r = net_socket_bind(fd, &sa);
  netsys_fd_leave(handle);
  return netsys_check(r, "bind", sock);
}

cl_object netsys_listen(cl_object handle, cl_object backlog, cl_object sock) {
  int b = netsys__int(backlog, 0, 65535, "(INTEGER 0 65535)");
  int fd = netsys_fd_enter(handle, "listen", sock), r;
  r = net_socket_listen(fd, b);
  netsys_fd_leave(handle);
  return netsys_check(r, "listen", sock);
}

struct accept_arg {
  net_sockaddr peer;
  cl_object handle;
};

/* Runs with interrupts disabled: the new fd goes to the preallocated,
 * finalized handle before anything can unwind. */
static ssize_t accept_op(int fd, void *arg) {
  struct accept_arg *a = arg;
  int nfd = net_socket_accept(fd, &a->peer);
  return nfd < 0 ? nfd : netsys_handle_attach(a->handle, nfd);
}

/* The new handle, consed onto the peer's address list when PEER is true:
 * a caller that does not use the address does not pay for it. */
cl_object netsys_accept(cl_object handle, cl_object deadline, cl_object peer, cl_object sock) {
  struct accept_arg a;
  ssize_t r;
  a.handle = netsys_handle_prealloc();
  r = netsys_io(handle, NET_WAIT_READ, deadline, accept_op, &a);
  if (!netsys_io_done(r, "accept", sock))
    return ECL_NIL;
  if (Null(peer))
    return a.handle;
  return ecl_cons(a.handle, netsys__sockaddr_list(&a.peer));
}

struct connect_arg {
  net_sockaddr addr;
  int started;
};

/* First call starts the connection; later calls, made once the fd is
 * writable, collect its result. */
static ssize_t connect_op(int fd, void *arg) {
  struct connect_arg *a = arg;
  int r;
  if (!a->started) {
    a->started = 1;
    r = net_socket_connect(fd, &a->addr);
  } else {
    r = net_socket_connect_poll(fd);
  }
  return r == NET_EINPROGRESS ? NET_EAGAIN : r;
}

cl_object netsys_connect(cl_object handle, cl_object octets, cl_object port, cl_object scope,
                         cl_object deadline, cl_object sock) {
  struct connect_arg a;
  ssize_t r;
  netsys__sockaddr(&a.addr, octets, port, scope);
  a.started = 0;
  r = netsys_io(handle, NET_WAIT_WRITE, deadline, connect_op, &a);
  if (!netsys_io_done(r, "connect", sock))
    return ECL_NIL; /* non-blocking: in progress, completion shows as :write */
  return ECL_T;
}

cl_object netsys_shutdown(cl_object handle, cl_object how, cl_object sock) {
  int hw = netsys__int(how, SHUT_RD, SHUT_RDWR, "(INTEGER 0 2)");
  int fd = netsys_fd_enter(handle, "shutdown", sock), r;
  r = net_socket_shutdown(fd, hw);
  netsys_fd_leave(handle);
  return netsys_check(r, "shutdown", sock);
}

cl_object netsys_socket_name(cl_object handle, cl_object peer_p, cl_object sock) {
  net_sockaddr sa;
  const char *call = Null(peer_p) ? "getsockname" : "getpeername";
  int fd = netsys_fd_enter(handle, call, sock), r;
  r = Null(peer_p) ? net_socket_name(fd, &sa) : net_socket_peer_name(fd, &sa);
  netsys_fd_leave(handle);
  netsys_check(r, call, sock);
  return netsys__sockaddr_list(&sa);
}

/* FN on HANDLE's fd, acquired for the call; raises on failure (after the
 * release), else returns FN's result. */
static int on_fd(cl_object handle, const char *call, cl_object sock,
                         int (*fn)(int fd, void *arg), void *arg) {
  int fd = netsys_fd_enter(handle, call, sock), r;
  r = fn(fd, arg);
  netsys_fd_leave(handle);
  if (r < 0)
    netsys_raise(r, call, sock);
  return r;
}

static int at_mark_op(int fd, void *arg) {
  (void) arg;
  return net_socket_at_mark(fd);
}

cl_object netsys_socket_at_mark(cl_object handle, cl_object sock) {
  return on_fd(handle, "sockatmark", sock, at_mark_op, NULL) ? ECL_T : ECL_NIL;
}

static ssize_t abortive_op(int fd, void *arg) {
  (void) arg;
  return net_socket_set_abortive(fd);
}

/* Best effort, for CLOSE :ABORT: T if closing HANDLE's socket now resets
 * the connection, NIL if that could not be set (a socket never connected,
 * or closed meanwhile by another thread).  Signals nothing, so that its
 * caller needs no handler. */
cl_object netsys_set_abortive(cl_object handle) {
  ssize_t r = netsys_fd_try(ecl_process_env(), netsys_handle(handle), abortive_op, NULL);
  return r < 0 ? ECL_NIL : ECL_T;
}

static ssize_t connect_poll_op(int fd, void *arg) {
  (void) arg;
  return net_socket_connect_poll(fd);
}

/* Completes a connection started by a non-blocking connect: T when
 * connected, NIL if non-blocking and still in progress. */
cl_object netsys_finish_connect(cl_object handle, cl_object deadline, cl_object sock) {
  ssize_t r = netsys_io(handle, NET_WAIT_WRITE, deadline, connect_poll_op, NULL);
  if (!netsys_io_done(r, "connect", sock))
    return ECL_NIL;
  return ECL_T;
}

/* Two connected Unix-domain sockets of TYPE, as a cons of handles. */
cl_object netsys_socket_pair(cl_object type) {
  const cl_env_ptr env = ecl_process_env();
  int t = netsys__int(type, 0, 255, "(INTEGER 0 255)");
  cl_object a = netsys_handle_prealloc(), b = netsys_handle_prealloc();
  int fds[2], r;
  ecl_disable_interrupts_env(env);
  r = net_socket_pair(t, fds);
  if (r == 0) {
    r = netsys_handle_attach(a, fds[0]);
    if (r < 0)
      close(fds[1]);
    else
      r = netsys_handle_attach(b, fds[1]);
  }
  ecl_enable_interrupts_env(env);
  if (r < 0)
    netsys_raise(r, "socketpair", ECL_NIL);
  return ecl_cons(a, b);
}

/* Takes ownership of descriptor FD: (handle family type listening-p). */
cl_object netsys_adopt(cl_object fd) {
  const cl_env_ptr env = ecl_process_env();
  int f = NETSYS_INDEX(fd);
  int family, type, listening, r;
  cl_object h = netsys_handle_prealloc();
  r = net_socket_adopt(f, &family, &type, &listening);
  if (r < 0)
    netsys_raise(r, "getsockopt", fd);
  ecl_disable_interrupts_env(env);
  r = netsys_handle_attach(h, f);
  ecl_enable_interrupts_env(env);
  if (r < 0)
    netsys_raise(r, "socket", ECL_NIL);
  return cl_list(4, h, ecl_make_fixnum(family), ecl_make_fixnum(type), listening ? ECL_T : ECL_NIL);
}
