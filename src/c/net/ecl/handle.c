/* handle.c -- glue: Lisp handle objects that own descriptors. */
#include "netsys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

/* The finalizer function; a C static is no GC root, so it is registered. */
static cl_object finalizer = OBJNULL;
static atomic_long finalized;

static cl_object finalize(cl_object handle) {
  net_handle *h = (net_handle *) handle->foreign.data;
  if (h) {
    int fd = net_handle_fd(h);
    if (fd >= 0) {
      atomic_fetch_add(&finalized, 1);
      fprintf(stderr, ";;; net: socket on fd %d became garbage while open; closed it\n", fd);
    }
    handle->foreign.data = NULL;
    net_handle_free(h);
  }
  ecl_return0(ecl_process_env());
}

void netsys__make_finalizer(cl_object *slot, cl_object (*f)(cl_object), const char *name) {
  if (*slot == OBJNULL) {
    *slot = ecl_make_cfun((cl_objectfn_fixed) f, ecl_make_symbol(name, "NET-SYS"), ECL_NIL, 1);
    ecl_register_root(slot);
  }
}

void netsys__handle_init(void) {
  netsys__make_finalizer(&finalizer, finalize, "%FINALIZE-HANDLE");
}

cl_object netsys_handle_prealloc(void) {
  cl_object obj = ecl_make_foreign_data(NETSYS_SYMBOL("SOCKET-HANDLE", "NET-SYS"), 0, NULL);
  si_set_finalizer(obj, finalizer);
  return obj;
}

int netsys_handle_attach(cl_object obj, int fd) {
  net_handle *h = net_handle_new(fd);
  if (!h) {
    close(fd);
    return NET_ENOMEM;
  }
  obj->foreign.data = (char *) h;
  return 0;
}

int netsys_fd_enter(cl_object handle, const char *call, cl_object sock) {
  net_handle *h = netsys_handle(handle);
  const cl_env_ptr env = ecl_process_env();
  int fd;
  ecl_disable_interrupts_env(env);
  fd = net_handle_acquire(h);
  if (fd < 0) {
    ecl_enable_interrupts_env(env);
    netsys_raise(fd, call, sock);
  }
  return fd;
}

void netsys_fd_leave(cl_object handle) {
  net_handle_release((net_handle *) handle->foreign.data);
  ecl_enable_interrupts_env(ecl_process_env());
}

cl_object netsys_handle_close(cl_object handle) {
  return net_handle_close(netsys_handle(handle)) ? ECL_T : ECL_NIL;
}

cl_object netsys_handle_fd(cl_object handle) {
  int fd = net_handle_fd(netsys_handle(handle));
  return fd < 0 ? ECL_NIL : ecl_make_fixnum(fd);
}

cl_object netsys_handle_open_p(cl_object handle) {
  return net_handle_closed_p(netsys_handle(handle)) ? ECL_NIL : ECL_T;
}

cl_object netsys_finalized_count(void) {
  return ecl_make_fixnum(atomic_load(&finalized));
}

/* Marks HANDLE closed and returns its fd, which its finalizer no longer
 * owns; signals socket-closed if it was closed already. */
cl_object netsys_handle_detach(cl_object handle, cl_object sock) {
  int fd = net_handle_detach(netsys_handle(handle));
  if (fd < 0)
    netsys_raise(fd, "close", sock);
  return ecl_make_fixnum(fd);
}

/* A new handle owning a dup(2) of HANDLE's fd. */
cl_object netsys_handle_dup(cl_object handle, cl_object sock) {
  cl_object obj = netsys_handle_prealloc();
  int fd = netsys_fd_enter(handle, "dup", sock), r;
  r = net_socket_dup(fd);
  if (r >= 0)
    r = netsys_handle_attach(obj, r);
  netsys_fd_leave(handle);
  if (r < 0)
    netsys_raise(r, "dup", sock);
  return obj;
}

/* T if HANDLE's socket has a peer; NIL if not or if it is closed (a close
 * racing with this call from another thread signals socket-closed). */
cl_object netsys_socket_connected(cl_object handle, cl_object sock) {
  int fd, r;
  if (net_handle_closed_p(netsys_handle(handle)))
    return ECL_NIL;
  fd = netsys_fd_enter(handle, "getpeername", sock);
  r = net_socket_connected(fd);
  netsys_fd_leave(handle);
  if (r < 0)
    netsys_raise(r, "getpeername", sock);
  return r > 0 ? ECL_T : ECL_NIL;
}
