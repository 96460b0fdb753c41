/* netsys.h -- the ECL glue: the only C of net that includes ECL's headers.
 *
 * Each netsys_* primitive takes and returns cl_objects, checks its
 * arguments, handles ECL's interrupts around system calls, and reports
 * failure through netsys_raise(), the one place where an error code becomes
 * a Lisp condition.  Compiled Lisp calls them with ffi:c-inline
 * (src/lsp/net/sys.lsp).
 *
 * Names: netsys_NAME for what Lisp calls (the primitives) and for the
 * glue's services every file uses (errors, handles, waiting); netsys__NAME
 * for the conversions of arguments and results shared between glue files
 * (netsys__int, netsys__sockaddr); file-static functions, variables and
 * types carry no prefix.  Integer arguments are checked by netsys__int
 * (NETSYS_INDEX for the non-negative ints), never by hand.
 */
#ifndef NETSYS_H
#define NETSYS_H

#include <ecl/ecl.h>
#include <netinet/in.h>
#include "net.h"

/* ---- Errors (netsys_error.c) -------------------------------------------- */

/* Signals the condition for CODE, raised by SYSCALL on SOCKET (a Lisp
 * object or NIL).  Never returns. */
void netsys_raise(int code, const char *syscall, cl_object socket) ecl_attr_noreturn;
/* A type-error for DATUM, which should have been of type TYPE (text). */
void netsys_type_error(cl_object datum, const char *type) ecl_attr_noreturn;
/* The octets of BUFFER between START and END (NIL: its length), checked. */
uint8_t *netsys_octets(cl_object buffer, cl_object start, cl_object end, size_t *len);
/* CODE if non-negative, else raises.  For primitives that cannot block. */
cl_object netsys_check(int code, const char *syscall, cl_object socket);
/* The description of error CODE, a string. */
cl_object netsys_strerror(cl_object code);
/* The table of errors.def as a list of (code . "class-name"). */
cl_object netsys_error_table(void);

/* ---- Handles (netsys_handle.c) ------------------------------------------ */

/* A handle object with a finalizer and no fd yet.  Made before the system
 * call that creates the fd, because allocating Lisp objects re-enables
 * interrupts: the fd is then attached with netsys_handle_attach while
 * interrupts are still disabled, and cannot leak between its birth and its
 * owner.  A handle never attached is invalid and its finalizer does nothing. */
cl_object netsys_handle_prealloc(void);
/* Gives FD to the preallocated OBJ; 0, or NET_ENOMEM (FD is then closed). */
int netsys_handle_attach(cl_object obj, int fd);
/* The net_handle of HANDLE, a SOCKET-HANDLE still attached; else a
 * type-error.  Inline: every transfer starts with it. */
static inline net_handle *netsys_handle(cl_object handle) {
  if (ecl_t_of(handle) != t_foreign || handle->foreign.data == NULL)
    netsys_type_error(handle, "NET-SYS::SOCKET-HANDLE");
  return (net_handle *) handle->foreign.data;
}
/* The fd of HANDLE for one short system call, with ECL interrupts disabled
 * until netsys_fd_leave, so that nothing unwinds while it is held; raises
 * (holding nothing) if the handle is closed. */
int netsys_fd_enter(cl_object handle, const char *call, cl_object sock);
void netsys_fd_leave(cl_object handle);
cl_object netsys_handle_close(cl_object handle);
cl_object netsys_handle_fd(cl_object handle);
cl_object netsys_handle_open_p(cl_object handle);
cl_object netsys_finalized_count(void);
/* The fd of HANDLE, which becomes closed without closing it. */
cl_object netsys_handle_detach(cl_object handle, cl_object sock);
/* A new handle owning a close-on-exec dup(2) of HANDLE's fd. */
cl_object netsys_handle_dup(cl_object handle, cl_object sock);
/* T if HANDLE's socket has a peer, NIL if not or closed. */
cl_object netsys_socket_connected(cl_object handle, cl_object sock);
/* Registers the finalizer function as a GC root; from netsys_init. */
void netsys__handle_init(void);
/* Makes *SLOT, if not yet made, the function F of one argument named NAME
 * in NET-SYS, registered as a GC root: a finalizer for si_set_finalizer. */
void netsys__make_finalizer(cl_object *slot, cl_object (*f)(cl_object), const char *name);
/* The symbol NAME of package PKG (string literals), interned on the first
 * use at this place only: ecl_make_symbol interns (~2,000 instructions).
 * The package holds the symbol, so the static needs no GC root. */
#define NETSYS_SYMBOL(name, pkg)                                                             \
  ({                                                                                          \
    static cl_object netsys__sym = OBJNULL;                                                   \
    if (netsys__sym == OBJNULL)                                                               \
      netsys__sym = ecl_make_symbol((name), (pkg));                                           \
    netsys__sym;                                                                              \
  })

/* ---- Waiting (netsys_wait.c) -------------------------------------------- */

/* Deadlines are fixnums on net_now_ns()'s scale; NIL waits forever and
 * NETSYS_NONBLOCKING (-1) never waits. */
#define NETSYS_NONBLOCKING (-1)
/* A type error unless DEADLINE is one. */
static inline void netsys__check_deadline(cl_object deadline) {
  if (!Null(deadline) && (!ECL_FIXNUMP(deadline) || ecl_fixnum(deadline) < NETSYS_NONBLOCKING))
    netsys_type_error(deadline, "(OR NULL FIXNUM)");
}
typedef ssize_t (*netsys_op)(int fd, void *arg);
/* OP once on H's fd, with ECL's interrupts disabled and the fd held
 * around it, so that nothing unwinds meanwhile: OP's result, or H's
 * negative code (NET_ECLOSED) if it is closed.  Never waits, never raises:
 * the whole of a non-blocking transfer, and of a best-effort call. */
static inline ssize_t netsys_fd_try(cl_env_ptr env, net_handle *h, netsys_op op, void *arg) {
  ssize_t r;
  int fd;
  ecl_disable_interrupts_env(env);
  fd = net_handle_acquire(h);
  if (fd >= 0) {
    r = op(fd, arg);
    net_handle_release(h);
  } else {
    r = fd;
  }
  ecl_enable_interrupts_env(env);
  return r;
}
/* Runs OP on HANDLE's fd, waiting for EVENTS whenever it would block,
 * until DEADLINE.  Returns OP's result, NET_EAGAIN if non-blocking and not
 * ready, NET_ETIMEOUT, NET_ECLOSED or another negative code.  Pending Lisp
 * interrupts run between attempts, never while the fd is held. */
ssize_t netsys_io(cl_object handle, int events, cl_object deadline, netsys_op op, void *arg);
/* netsys_io on the handle H with the calling thread's ENV given (a
 * compiled Lisp caller has it: no ecl_process_env per call). */
ssize_t netsys_io_env(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                      netsys_op op, void *arg);
/* netsys_io_env after a try of OP of the caller's own: with WAIT_FIRST
 * (the try would have blocked) it waits for EVENTS before trying again. */
ssize_t netsys_io_wait_env(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                           netsys_op op, void *arg, int wait_first);
/* netsys_io for a read of WANT octets that remembers on the handle whether
 * it emptied the socket (it would block, or got less than WANT): the next
 * blocking read then waits before trying, two system calls instead of
 * three.  WANT is NETSYS_WANT_MESSAGE for datagrams and messages, whose
 * short reads say nothing; only would-block counts there. */
#define NETSYS_WANT_MESSAGE 0
ssize_t netsys_io_read_env(cl_env_ptr env, net_handle *h, int events, cl_object deadline,
                           netsys_op op, void *arg, size_t want);
/* What a read of WANT octets that returned R tells of H (above). */
static inline void netsys__note_read(net_handle *h, ssize_t r, size_t want) {
  if (r == NET_EAGAIN)
    net_handle_set_drained(h, 1);
  else if (r >= 0)
    net_handle_set_drained(h, want != NETSYS_WANT_MESSAGE && (size_t) r < want);
}
/* After netsys_io: 0 when R says a non-blocking call would block (the
 * primitive then returns NIL), 1 when it succeeded; raises CALL's
 * condition on SOCK for any other error. */
static inline int netsys_io_done(ssize_t r, const char *call, cl_object sock) {
  if (r == NET_EAGAIN)
    return 0;
  if (r < 0)
    netsys_raise((int) r, call, sock);
  return 1;
}
cl_object netsys_now(void);
/* Waits until one of the handles of the list HANDLES (any number) is
 * ready for EVENTS (NET_WAIT_* bits) or DEADLINE: the list of the ready
 * indices, or NIL at the deadline (poll.c). */
cl_object netsys_wait_many(cl_object handles, cl_object events, cl_object deadline);

/* ---- Sockets (netsys_socket.c) ------------------------------------------ */

cl_object netsys_socket_open(cl_object family, cl_object type, cl_object protocol);
cl_object netsys_bind(cl_object handle, cl_object octets, cl_object port, cl_object scope, cl_object sock);
cl_object netsys_listen(cl_object handle, cl_object backlog, cl_object sock);
cl_object netsys_accept(cl_object handle, cl_object deadline, cl_object peer, cl_object sock);
cl_object netsys_connect(cl_object handle, cl_object octets, cl_object port, cl_object scope,
                         cl_object deadline, cl_object sock);
cl_object netsys_shutdown(cl_object handle, cl_object how, cl_object sock);
cl_object netsys_socket_name(cl_object handle, cl_object peer_p, cl_object sock);

cl_object netsys_socket_at_mark(cl_object handle, cl_object sock);
cl_object netsys_set_abortive(cl_object handle);
cl_object netsys_finish_connect(cl_object handle, cl_object deadline, cl_object sock);
cl_object netsys_socket_pair(cl_object type);
cl_object netsys_adopt(cl_object fd);

/* ---- Addresses and arguments (netsys_sockaddr.c) ------------------------ */

/* X as an int in [LO, HI], else a type-error naming TYPE. */
int netsys__int(cl_object x, int lo, int hi, const char *type);
/* X as a non-negative int: flags, indexes, option levels and names. */
/* A bit of a transfer's FLAGS argument above the MSG_* flags (send, recv,
 * send_to): a failure is returned as its negative code instead of raised,
 * for RECEIVE and SEND with :ERRORP NIL.  NET-SYS:+RETURN-ERROR+ in Lisp. */
#define NETSYS_RETURN_ERROR ((cl_fixnum) 1 << 32)
#define NETSYS_INDEX(x) netsys__int((x), 0, INT32_MAX, "(INTEGER 0 2147483647)")
/* Fills OUT from ADDR: an octet vector of 4 or 16 with PORT and SCOPE (a
 * fixnum or NIL), or a string naming a Unix-domain socket (SCOPE true: a
 * Linux abstract name). */
void netsys__sockaddr(net_sockaddr *out, cl_object addr, cl_object port, cl_object scope);
/* A sockaddr for Lisp: (octets port scope-id), ("path" NIL abstract-p) for
 * a Unix-domain name, or NIL for an unnamed one. */
cl_object netsys__sockaddr_list(const net_sockaddr *sa);

/* ---- Addresses (netsys_address.c) --------------------------------------- */

/* A fresh (unsigned-byte 8) vector of N octets. */
cl_object netsys_octet_vector(const uint8_t *octets, int n);
/* TEXT (type-checked as a string) as a base string, or NIL when it holds a
 * character outside Latin-1. */
cl_object netsys_base_string(cl_object text);
/* (octets . scope-id), or a string saying why TEXT is no IP address. */
cl_object netsys_ip_parse_text(cl_object text);
/* The text of OCTETS (4 or 16) with SCOPE: RFC 5952 for IPv6. */
cl_object netsys_ip_format(cl_object octets, cl_object scope);

/* ---- Resolver (netsys_resolver.c) --------------------------------------- */

/* (canonical-name (octets . scope) ...), or a string saying why NAME is no
 * valid host name; FAMILY is 0, 4 or 6.  Resolver errors are signalled. */
cl_object netsys_lookup_host(cl_object name, cl_object family);
cl_object netsys_lookup_address(cl_object octets, cl_object scope, cl_object address);
cl_object netsys_lookup_service(cl_object service, cl_object protocol);
cl_object netsys_lookup_protocol(cl_object protocol);
/* gai_strerror's text for a resolver code. */
cl_object netsys_resolver_strerror(cl_object code);

/* ---- I/O (netsys_io.c) -------------------------------------------------- */

/* The transfers take the calling thread's ENV first (the compiled Lisp
 * caller's, see define-primitive's :ENV): they run once per message. */
/* One send(2): the count sent (maybe partial), or NIL if it would block. */
cl_object netsys_send_env(cl_env_ptr env, cl_object handle, cl_object buffer, cl_object start,
                          cl_object end, cl_object flags, cl_object deadline, cl_object sock);
/* One recv(2): the count, 0 at end of file, or NIL if it would block. */
cl_object netsys_recv_env(cl_env_ptr env, cl_object handle, cl_object buffer, cl_object start,
                          cl_object end, cl_object flags, cl_object deadline, cl_object sock);
cl_object netsys_send_to_env(cl_env_ptr env, cl_object handle, cl_object buffer,
                             cl_object start, cl_object end, cl_object flags, cl_object addr,
                             cl_object port, cl_object scope, cl_object deadline,
                             cl_object sock);
/* (count truncated-p . sender), or NIL. */
cl_object netsys_recv_from_env(cl_env_ptr env, cl_object handle, cl_object buffer,
                               cl_object start, cl_object end, cl_object flags,
                               cl_object deadline, cl_object sock);
/* recv_from with the sender's octets written into the caller's OCTETS:
 * count + truncated-p * 2^32 + port * 2^33 as one fixnum, or NIL. */
cl_object netsys_recv_from_into_env(cl_env_ptr env, cl_object handle, cl_object buffer,
                                    cl_object start, cl_object end, cl_object flags,
                                    cl_object deadline, cl_object sock, cl_object octets);

/* ---- Messages (netsys_message.c) ---------------------------------------- */

cl_object netsys_send_message(cl_object handle, cl_object buffers, cl_object addr,
                              cl_object port, cl_object scope, cl_object fds, cl_object creds,
                              cl_object flags, cl_object deadline, cl_object sock);
cl_object netsys_recv_message(cl_object handle, cl_object buffers, cl_object control_size,
                              cl_object flags, cl_object deadline, cl_object sock);
/* ---- Options (netsys_options.c) ---------------------------------------- */

/* LEVEL and NAME are the option's numbers; SOCK is the Lisp socket, for
 * error reports.  The setters return the value they were given. */
cl_object netsys_sockopt_int(cl_object handle, cl_object level, cl_object name, cl_object sock);
cl_object netsys_set_sockopt_int(cl_object handle, cl_object level, cl_object name,
                                 cl_object value, cl_object sock);
/* struct timeval options, in microseconds. */
cl_object netsys_sockopt_usec(cl_object handle, cl_object level, cl_object name, cl_object sock);
cl_object netsys_set_sockopt_usec(cl_object handle, cl_object level, cl_object name,
                                  cl_object usec, cl_object sock);
/* SO_LINGER: NIL when off, else the seconds. */
cl_object netsys_sockopt_linger(cl_object handle, cl_object sock);
cl_object netsys_set_sockopt_linger(cl_object handle, cl_object seconds, cl_object sock);
/* The escape hatch: raw bytes in an octet vector range. */
cl_object netsys_sockopt_raw(cl_object handle, cl_object level, cl_object name, cl_object buffer,
                             cl_object start, cl_object end, cl_object sock);
cl_object netsys_set_sockopt_raw(cl_object handle, cl_object level, cl_object name,
                                 cl_object buffer, cl_object start, cl_object end,
                                 cl_object sock);
/* TCP_INFO as a list of NET_TCP_INFO_FIELDS integers. */
cl_object netsys_tcp_info(cl_object handle, cl_object sock);
/* The lesser of TCP_INFO's last_data_sent and last_data_recv: a fixnum of
 * milliseconds, or NIL (not TCP, closed).  Conses nothing, never raises. */
cl_object netsys_tcp_idle_ms(cl_object handle);
cl_object netsys_peer_credentials(cl_object handle, cl_object sock);
/* The system's option constants as a list of ("NAME" . value). */
cl_object netsys_option_constants(void);

/* ---- Multicast (netsys_multicast.c) -------------------------------------- */

cl_object netsys_multicast_membership(cl_object handle, cl_object family, cl_object join,
                                      cl_object group, cl_object ifaddr, cl_object ifindex,
                                      cl_object source, cl_object sock);
cl_object netsys_multicast_interface_v4(cl_object handle, cl_object ifaddr, cl_object ifindex,
                                        cl_object sock);
cl_object netsys_interface_index(cl_object name);

/* ---- Interfaces (netsys_interface.c) ------------------------------------ */

/* Every interface, (name index flags), and every IP address of one, (name
 * index flags octets prefix other-kind other scope), in the system's order. */
cl_object netsys_interfaces(void);
/* The name of the interface of INDEX, or NIL. */
cl_object netsys_interface_name(cl_object index);
/* ---- Event loop (netsys_loop.c) ------------------------------------------ */

/* (canonical-name (octets . scope) ...) of N resolved addresses (resolver.c). */
cl_object netsys__addr_list(const net_ip_addr *a, int n);
cl_object netsys_loop_new(void);
/* (collected . left): loops freed by their finalizer, and loops it had to
 * leave (a lookup running, or a watched socket being closed at that moment). */
cl_object netsys_loops_finalized(void);
/* Registers the loop finalizer as a GC root; from netsys_init. */
void netsys__loop_init(void);
/* Puts a handler before ECL's for its interrupt signal, so that an
 * interrupt wakes a loop waiting in netsys__run_once (interrupt.c); from
 * netsys_init. */
void netsys__interrupt_init(void);
/* One pass of L that may wait until an event, a wake-up, an interrupt or
 * L's next timer, in one epoll_wait; ENV's interrupts disabled by the
 * caller.  0 (nothing done) where interrupts could not wake it. */
int netsys__run_once(cl_env_ptr env, net_loop *l);
cl_object netsys_loop_close(cl_object loop);
cl_object netsys_loop_pass(cl_env_ptr env, cl_object loop, cl_object wait_ms, cl_object vector);
cl_object netsys_loop_take(cl_object loop, cl_object vector);
cl_object netsys_loop_wake(cl_object loop);
cl_object netsys_loop_stop(cl_object loop);
/* One call per pass of run-event-loop: NIL once a stop was asked (the
 * request is taken) or nothing is watched, else T. */
cl_object netsys_loop_go_on(cl_object loop);
cl_object netsys_loop_alive(cl_object loop);
cl_object netsys_watch_start(cl_object loop, cl_object handle, cl_object id, cl_object events,
                             cl_object sock);
cl_object netsys_watch_set_events(cl_object watch, cl_object events, cl_object sock);
cl_object netsys_watch_attached(cl_object watch);
cl_object netsys_watch_free(cl_object watch);
cl_object netsys_timer_start(cl_object loop, cl_object id, cl_object ms, cl_object repeat_ms);
cl_object netsys_timer_active(cl_object timer);
cl_object netsys_timer_free(cl_object timer);
cl_object netsys_lookup_start(cl_object loop, cl_object id, cl_object name, cl_object family);
cl_object netsys_lookup_result(cl_object lookup);
cl_object netsys_lookup_free(cl_object lookup);
cl_object netsys_signal_start(cl_object loop, cl_object id, cl_object signum);
cl_object netsys_signal_free(cl_object sig);

/* ---- Thread pool (pool.c) ----------------------------------------------- */

/* A pool for THREADS workers and a queue of QUEUE (net_pool_new). */
cl_object netsys_pool_new(cl_object threads, cl_object queue);
/* A handle with no fd yet, for netsys_pool_accept's SPARE. */
cl_object netsys_handle_spare(void);
/* Accepts one connection on HANDLE (waiting until DEADLINE) and queues its
 * fd: 0, or 1 when a worker should be started for it.  When refused (the
 * queue full and MAY-REFUSE true) or the pool stopped, SPARE owns the fd
 * and the result is (T . peer) or (NIL); NIL if non-blocking and none is
 * pending. */
cl_object netsys_pool_accept(cl_object pool, cl_object handle, cl_object deadline,
                             cl_object sock, cl_object may_refuse, cl_object spare);
/* Counts one connection handled if DONE is true, then waits for one: a
 * new handle owning it, or NIL once the pool stops. */
cl_object netsys_pool_take(cl_object pool, cl_object done);
cl_object netsys_pool_done(cl_object pool);
cl_object netsys_pool_error(cl_object pool);
/* Waits until the queue has room: T, or NIL once the pool stops. */
cl_object netsys_pool_wait_room(cl_object pool);
/* The number of queued connections reset, or NIL if stopped already. */
cl_object netsys_pool_stop(cl_object pool);
/* (accepted handled refused active queued started errors). */
cl_object netsys_pool_statistics(cl_object pool);
/* Registers the pool finalizer as a GC root; from netsys_init. */
void netsys__pool_init(void);

/* ---- Module (netsys_init.c) --------------------------------------------- */

/* Called once when the module is loaded. */
cl_object netsys_init(void);
/* The libuv version string. */
cl_object netsys_libuv_version(void);

#endif /* NETSYS_H */
