/* net.h -- the C core of net: BSD sockets with libuv-style error codes.
 *
 * This header knows nothing of ECL.  Every function returns a non-negative
 * result or a negative error code: -errno for system errors, or one of net's
 * own codes (NET_ECLOSED, ...) from errors.def.  Every descriptor is created
 * non-blocking and close-on-exec; "blocking" is a policy of the caller,
 * which waits with net_wait() against an absolute deadline.
 */
#ifndef NET_H
#define NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ------------------------------------------------------------ */

#include <errno.h>

#define NET_ERRNO(name, lisp, parent, msg) NET_##name = -name,
#define NET_OWN(name, code, lisp, parent, msg) NET_##name = code,
enum net_error {
#include "errors.def"
  NET__ERROR_END = 0
};
#undef NET_ERRNO
#undef NET_OWN

/* "ECONNREFUSED" for NET_ECONNREFUSED; "UNKNOWN" for codes not in the table. */
const char *net_err_name(int code);
/* A human-readable description; never NULL, thread-safe. */
const char *net_strerror(int code);
/* The condition class errors.def gives CODE, e.g. "connection-refused";
 * NULL when the code is not in the table. */
const char *net_err_class(int code);
/* Number of rows of errors.def, and row I as (code, class); for the glue,
 * which hands the table to Lisp. */
int net_err_count(void);
int net_err_row(int i, const char **lisp_class);

/* ---- Versions ---------------------------------------------------------- */

/* The version of the libuv net runs on, e.g. "1.44.2". */
const char *net_libuv_version(void);

/* ---- Time ---------------------------------------------------------------- */

/* Monotonic clock in nanoseconds; deadlines are absolute values of it. */
int64_t net_now_ns(void);
#define NET_NO_DEADLINE INT64_MAX

/* ---- Addresses ----------------------------------------------------------- */

typedef struct net_sockaddr {
  socklen_t len;
  union {
    struct sockaddr sa;
    struct sockaddr_storage ss;
  } u;
} net_sockaddr;

/* Room for the text of any IP address net prints or parses, with its NUL. */
#define NET_IP_STRLEN 64

/* Parse a numeric IPv4 or IPv6 literal of LEN bytes (not NUL-terminated),
 * strictly: four decimal parts without leading zeros for IPv4; RFC 4291
 * text with an optional "%zone" (interface name or number) for IPv6.
 * OCTETS receives 4 or 16 octets; returns 4 or 16, or NET_EINVAL. */
int net_ip_parse(const char *text, size_t len, uint8_t octets[16], uint32_t *scope_id);
/* The same, and on failure *WHY (if WHY is not NULL) points to a static
 * sentence saying what was wrong; NULL on success. */
int net_ip_parse_why(const char *text, size_t len, uint8_t octets[16], uint32_t *scope_id,
                     const char **why);
/* The text of N (4 or 16) octets and a scope id into BUF of SIZE bytes:
 * dotted decimal for IPv4, the RFC 5952 canonical form for IPv6 (IPv4-mapped
 * addresses as ::ffff:a.b.c.d), "%N" for a scope id.  Returns the length, or
 * NET_EINVAL (bad N, or a scope id on IPv4) or NET_ENOBUFS. */
int net_ip_format(const uint8_t *octets, size_t n, uint32_t scope_id, char *buf, size_t size);
/* Build a sockaddr from 4 or 16 octets and a port; returns 0 or NET_EINVAL. */
int net_sockaddr_make(net_sockaddr *out, const uint8_t *octets, size_t n,
                      uint32_t scope_id, int port);
/* Split a sockaddr into family, octets (4 or 16), scope id and port;
 * returns the number of octets, or NET_EAFNOSUPPORT for other families. */
int net_sockaddr_split(const net_sockaddr *sa, uint8_t octets[16],
                       uint32_t *scope_id, int *port);

/* Build a Unix-domain sockaddr from PATH of LEN bytes (not NUL-terminated):
 * a file name, or with ABSTRACT a Linux abstract name.  NET_ENAMETOOLONG if
 * it does not fit, NET_EINVAL for an empty name or a file name holding NUL. */
int net_sockaddr_make_local(net_sockaddr *out, const char *path, size_t len, int abstract);
/* The name of a Unix-domain sockaddr: sets PATH and LEN (not NUL-terminated)
 * and ABSTRACT; returns 1, 0 for an unnamed socket, or NET_EAFNOSUPPORT. */
int net_sockaddr_split_local(const net_sockaddr *sa, const char **path, size_t *len,
                             int *abstract);
/* ---- Resolver (resolver.c) ------------------------------------------------ */

/* One resolved address: LEN is 4 or 16. */
typedef struct net_ip_addr {
  uint8_t octets[16];
  uint32_t scope_id;
  int len;
} net_ip_addr;

/* Most addresses net_resolve_host returns for one name. */
#define NET_RESOLVE_MAX 64
/* Room for a host name with its NUL (NI_MAXHOST). */
#define NET_HOST_STRLEN 1025

/* Checks NAME (LEN bytes) as a host name before any libc call: not empty,
 * at most 253 characters in labels of 1 to 63, printable ASCII only, and a
 * name that libc would read as a number (all digits and dots, "0x7f.1", a
 * colon or a %) must be a valid literal for net_ip_parse.  Returns 0, 4 or 16
 * (a literal, parsed into *LITERAL), or NET_EINVAL with *WHY set. */
int net_host_check(const char *name, size_t len, net_ip_addr *literal, const char **why);
/* getaddrinfo: every address of NAME (FAMILY 0 for both, 4 or 6), in
 * getaddrinfo's order without duplicates, at most MAX of them, into OUT;
 * the canonical name into CANON (CANON_SIZE bytes, may be 0; for a numeric
 * NAME, its net_ip_format text: no lookup is made).  Returns the
 * count, NET_EINVAL for a bad name (see net_host_check; *WHY set), or a
 * resolver code (NET_EAI_NONAME, ...). */
int net_resolve_host(const char *name, size_t len, int family, net_ip_addr *out, int max,
                     char *canon, size_t canon_size, const char **why);
/* getnameinfo with NI_NAMEREQD: the host name of an address into HOST. */
int net_resolve_address(const net_ip_addr *addr, char *host, size_t size);
/* getservbyname_r: the port of service NAME for PROTO ("tcp", "udp", ...);
 * its official name into OFFICIAL.  Returns the port or NET_ESERVICE. */
int net_resolve_service(const char *name, const char *proto, char *official, size_t size);
/* getservbyport_r: the name of PORT for PROTO into NAME; 0 or NET_ESERVICE. */
int net_service_name(int port, const char *proto, char *name, size_t size);
/* getprotobyname_r: the number of protocol NAME, its official name into
 * OFFICIAL; or NET_EPROTOCOL. */
int net_resolve_protocol(const char *name, char *official, size_t size);
/* getprotobynumber_r: the name of protocol NUMBER; 0 or NET_EPROTOCOL. */
int net_protocol_name(int number, char *name, size_t size);
/* The resolver code of a getaddrinfo/getnameinfo EAI_* result. */
int net_resolver_code(int eai);
/* gai_strerror's message for a resolver code; never NULL. */
const char *net_resolver_strerror(int code);

/* ---- Sockets --------------------------------------------------------------- */

/* socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; returns the fd. */
int net_socket_open(int family, int type, int protocol);
int net_socket_bind(int fd, const net_sockaddr *addr);
int net_socket_listen(int fd, int backlog);
/* accept4(2), non-blocking and close-on-exec; PEER may be NULL. */
int net_socket_accept(int fd, net_sockaddr *peer);
/* Starts a connection: 0 when done, NET_EINPROGRESS when the caller must
 * wait for writability and then call net_socket_connect_poll(). */
int net_socket_connect(int fd, const net_sockaddr *addr);
/* The pending error of a connection (SO_ERROR): 0 or a negative errno. */
int net_socket_connect_result(int fd);
int net_socket_shutdown(int fd, int how);
int net_socket_name(int fd, net_sockaddr *out);
int net_socket_peer_name(int fd, net_sockaddr *out);
/* After a non-blocking connect: 0 when connected (and the socket moved to
 * the connected state, so a second connect gets EISCONN), NET_EAGAIN while
 * still in progress, or the connection's error. */
int net_socket_connect_poll(int fd);
/* socketpair(2) of AF_UNIX, non-blocking and close-on-exec. */
int net_socket_pair(int type, int fds[2]);
/* 1 if the next octet to read is at the out-of-band mark, else 0. */
int net_socket_at_mark(int fd);
/* SO_LINGER {1, 0}: a close then resets the connection (RST). */
int net_socket_set_abortive(int fd);
/* What an inherited descriptor is: sets FAMILY, TYPE and LISTENING (0/1),
 * and makes it non-blocking and close-on-exec. */
int net_socket_adopt(int fd, int *family, int *type, int *listening);
/* A new descriptor, close-on-exec, sharing FD's open file description
 * (dup(2): same socket, same O_NONBLOCK). */
int net_socket_dup(int fd);
/* 1 if FD has a peer (a connected stream, a connected datagram socket, one
 * end of a pair), 0 if not (ENOTCONN), or another negative code. */
int net_socket_connected(int fd);

/* ---- I/O --------------------------------------------------------------------- */

/* These make one system call each and return the count or a negative
 * errno.  On Linux they make it directly, not through glibc's wrappers:
 * they are not cancellation points (pthread_cancel does not stop a thread
 * in them), and cost no switch of cancellation state per call.
 *
 * send(2) with MSG_NOSIGNAL, so SIGPIPE never kills the process. */
ssize_t net_send(int fd, const void *buf, size_t len, int flags);
ssize_t net_recv(int fd, void *buf, size_t len, int flags);
/* sendto(2) with MSG_NOSIGNAL; TO may be NULL on a connected socket. */
ssize_t net_send_to(int fd, const void *buf, size_t len, int flags, const net_sockaddr *to);
/* recvfrom(2) that also tells whether the datagram was longer than LEN
 * (its excess is lost): *TRUNCATED is set to 0 or 1.  FROM may be NULL. */
ssize_t net_recv_from(int fd, void *buf, size_t len, int flags, net_sockaddr *from,
                      int *truncated);

/* ---- Messages and ancillary data ------------------------------------------ */

#include <sys/uio.h>

/* One sendmsg(2)/recvmsg(2): scatter/gather over IOV, an optional peer
 * address, and a control buffer of ancillary data. */
typedef struct net_msg {
  struct iovec *iov;
  int iovcnt;
  net_sockaddr *addr;   /* destination (send) or source (receive); may be NULL */
  void *control;        /* ancillary data; may be NULL */
  size_t controllen;    /* its size; on receive, set to the size used */
  int flags;            /* on receive: msg_flags (MSG_TRUNC, MSG_CTRUNC, ...) */
} net_msg;

/* Most descriptors one SCM_RIGHTS message carries (Linux's SCM_MAX_FD). */
#define NET_MAX_FDS 253

/* sendmsg(2) with MSG_NOSIGNAL. */
ssize_t net_msg_send(int fd, net_msg *m, int flags);
/* recvmsg(2) with MSG_CMSG_CLOEXEC: received descriptors are close-on-exec. */
ssize_t net_msg_recv(int fd, net_msg *m, int flags);
/* Append SCM_RIGHTS for FDS[N] / SCM_CREDENTIALS to the control buffer
 * BUF of SIZE bytes, of which *USED are taken; returns 0 or NET_EMSGSIZE. */
int net_cmsg_put_fds(void *buf, size_t size, size_t *used, const int *fds, int n);
int net_cmsg_put_credentials(void *buf, size_t size, size_t *used, pid_t pid, uid_t uid,
                             gid_t gid);

/* The kinds of ancillary data net decodes. */
enum net_cmsg_kind {
  NET_CMSG_OTHER = 0,
  NET_CMSG_FDS,         /* SCM_RIGHTS */
  NET_CMSG_CREDENTIALS, /* SCM_CREDENTIALS */
  NET_CMSG_PKTINFO4,    /* IP_PKTINFO */
  NET_CMSG_PKTINFO6     /* IPV6_PKTINFO */
};

/* One decoded control message. */
typedef struct net_cmsg {
  int kind;
  int nfds;
  const unsigned char *fds;   /* NFDS ints, unaligned: read with memcpy */
  pid_t pid;
  uid_t uid;
  gid_t gid;
  uint8_t addr[16];           /* packet info: destination address */
  int addrlen;                /* 4 or 16 */
  unsigned ifindex;           /* packet info: interface */
} net_cmsg;

/* Iterate over the control messages of a received M: *POS starts at 0;
 * returns 1 and fills OUT while there is one, else 0. */
int net_cmsg_next(const net_msg *m, size_t *pos, net_cmsg *out);

#define NET_WAIT_READ 1
#define NET_WAIT_WRITE 2
#define NET_WAIT_URGENT 4
#define NET_WAIT_DISCONNECT 8 /* the peer shut its side down (POLLRDHUP) */
/* Wait for EVENTS on FD until DEADLINE (net_now_ns() scale, or
 * NET_NO_DEADLINE).  Returns the ready events (hang-up and errors count as
 * ready for both directions), NET_ETIMEOUT, or NET_EINTR.  One ppoll(2),
 * made directly on Linux like the transfers below: not a cancellation
 * point. */
int net_wait(int fd, int events, int64_t deadline);
/* Up to this many descriptors, net_wait_many() allocates nothing. */
#define NET_WAIT_SMALL 64
/* Wait until one of the N descriptors FDS is ready for its EVENTS[i] (a
 * negative fd is skipped), or DEADLINE.  On return EVENTS[i] holds the
 * ready events of FDS[i] (0 when not ready).  Returns how many are ready,
 * NET_ETIMEOUT, NET_EINTR, NET_EINVAL when N is negative, or NET_ENOMEM.
 * N has no upper bound (poll(2), not select(2)). */
int net_wait_many(const int *fds, int *events, int n, int64_t deadline);

/* ---- Options (options.c) ------------------------------------------------ */

/* getsockopt(2) and setsockopt(2) on raw bytes. */
int net_socket_getopt(int fd, int level, int name, void *value, socklen_t *len);
int net_socket_setopt(int fd, int level, int name, const void *value, socklen_t len);
/* Options whose value is an int. */
int net_socket_getopt_int(int fd, int level, int name, int *value);
int net_socket_setopt_int(int fd, int level, int name, int value);
/* Options whose value is a struct timeval, in microseconds. */
int net_socket_getopt_usec(int fd, int level, int name, int64_t *usec);
int net_socket_setopt_usec(int fd, int level, int name, int64_t usec);
/* SO_LINGER. */
int net_socket_getopt_linger(int fd, int *on, int *seconds);
int net_socket_setopt_linger(int fd, int on, int seconds);
/* TCP_INFO as NET_TCP_INFO_FIELDS numbers, in struct tcp_info's order:
 * state ca_state retransmits probes backoff options snd_wscale rcv_wscale
 * rto ato snd_mss rcv_mss unacked sacked lost retrans fackets
 * last_data_sent last_ack_sent last_data_recv last_ack_recv pmtu
 * rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss reordering rcv_rtt
 * rcv_space total_retrans. */
#define NET_TCP_INFO_FIELDS 32
int net_socket_tcp_info(int fd, uint32_t out[NET_TCP_INFO_FIELDS]);
/* Milliseconds since data last went either way on a TCP socket: the lesser
 * of tcpi_last_data_sent and tcpi_last_data_recv, from one TCP_INFO, never
 * negative; or a negative code (NET_EOPNOTSUPP and the like for a socket
 * that is not TCP). */
int64_t net_socket_tcp_idle_ms(int fd);
/* SO_PEERCRED of a Unix-domain socket: the peer's pid, uid and gid as they
 * were when it connected (or made the pair). */
int net_socket_peer_credentials(int fd, int64_t out[3]);

/* ---- Multicast (multicast.c) ----------------------------------------------- */

/* The index of the interface called NAME, or NET_ENODEV. */
int net_interface_index(const char *name);
/* Join (JOIN non-zero) or leave GROUP (4 or 16 octets by FAMILY) on the
 * interface given by IFADDR (IPv4 only; NULL: none) and/or IFINDEX (0:
 * none; the kernel chooses when both are missing).  With SOURCE (same
 * length as GROUP), a source-specific membership (RFC 4607). */
int net_multicast_membership(int fd, int family, int join, const uint8_t *group,
                             const uint8_t *ifaddr, int ifindex, const uint8_t *source);
/* IP_MULTICAST_IF of an IPv4 socket, by address (NULL: none) and/or index. */
int net_multicast_interface_v4(int fd, const uint8_t *ifaddr, int ifindex);

/* ---- Interfaces (interface.c) ------------------------------------------------ */

#define NET_IFNAME_MAX 16     /* IF_NAMESIZE: a name and its NUL */
enum { NET_IFADDR_NONE = 0, NET_IFADDR_BROADCAST = 1, NET_IFADDR_DESTINATION = 2 };

/* One interface address as getifaddrs(3) reports it. */
typedef struct net_ifaddr {
  char name[NET_IFNAME_MAX];
  unsigned index;             /* if_nametoindex of NAME; 0 if it has none */
  unsigned flags;             /* the IFF_ bits, IFF_LOWER_UP (0x10000) included */
  int family;                 /* AF_INET, AF_INET6, or 0: the interface itself */
  uint8_t addr[16];           /* 4 or 16 octets by FAMILY */
  int prefix;                 /* the netmask's length in bits */
  int other_kind;             /* NET_IFADDR_BROADCAST, _DESTINATION or _NONE */
  uint8_t other[16];          /* the broadcast or point-to-point peer address */
  unsigned scope_id;          /* IPv6: the address's scope id */
} net_ifaddr;

/* Fills OUT (room for MAX) with one entry per interface (FAMILY 0, in the
 * order of the system's list) and one per IPv4 or IPv6 address; returns
 * how many there are, which may exceed MAX (call again with more room), or
 * a negative code.  Other families' addresses are left out. */
int net_interface_list(net_ifaddr *out, int max);
/* The name of the interface of INDEX into BUF; 0, or NET_ENODEV. */
int net_interface_name(unsigned index, char buf[NET_IFNAME_MAX]);

/* ---- Handles ----------------------------------------------------------------- */

/* A handle owns one descriptor and counts the calls using it, so that a close
 * from one thread wakes the others (shutdown) and the descriptor number is
 * released only when the last call has left: never a close of a number
 * that a newer socket already reuses. */
typedef struct net_handle net_handle;

net_handle *net_handle_new(int fd);
/* The fd for one call, or NET_ECLOSED; pair every success with release. */
int net_handle_acquire(net_handle *h);
void net_handle_release(net_handle *h);
int net_handle_closed_p(const net_handle *h);
/* The fd, without acquiring it (for printing); -1 once closed. */
int net_handle_fd(const net_handle *h);
/* Idempotent.  Returns 1 if this call closed it, 0 if it was closed already. */
int net_handle_close(net_handle *h);
/* Closes if still open, then frees, for finalizers: at once, or when the
 * last call holding it (a watcher of a loop not yet freed) releases it. */
void net_handle_free(net_handle *h);
/* Marks H closed without closing its fd, which is returned (the caller now
 * owns it), or NET_ECLOSED if H was closed already.  Calls in flight go on
 * with the fd; new ones see NET_ECLOSED. */
int net_handle_detach(net_handle *h);
/* For the event loop, which holds the fd (acquired) while it watches it:
 * a close of H on the calling thread first calls ON_CLOSE(ARG), which lets
 * go; ON_CLOSE NULL forgets it.  Call only from the loop's thread. */
void net_handle_watch(net_handle *h, void (*on_close)(void *arg), void *arg);
/* For a finalizer freeing a loop nobody can reach: takes H's watcher hook
 * from the loop's thread, which will no longer call it.  Returns 1 if
 * taken (the caller may then let the watcher go, from any thread), 0 if
 * the loop's thread is calling it now or H has no watcher. */
int net_handle_unwatch(net_handle *h);

/* ---- Thread pools (pool.c) --------------------------------------------------- */

/* The hand-off of accepted descriptors from one pushing thread to up to
 * THREADS workers, with QUEUE_LIMIT descriptors at most queued beyond those
 * that idle or not yet started workers will take.  Linux futexes: a push
 * wakes one idle worker; a wait ends with NET_EINTR on a signal, having
 * counted nothing, so that the caller can let the signal's work run and
 * wait again. */
typedef struct net_pool net_pool;

/* NULL when out of memory or THREADS < 1 or QUEUE_LIMIT < 0. */
net_pool *net_pool_new(int threads, int queue_limit);
/* Resets and closes the descriptors still queued, then frees P. */
void net_pool_free(net_pool *p);
/* Queues FD (counted accepted): 1 when a worker should be started for it
 * (counted started), else 0; -EBUSY if MAY_REFUSE and the queue is full
 * (counted refused), NET_ENOMEM, or NET_ECLOSED once stopped.  On failure FD
 * is still the caller's. */
int net_pool_push(net_pool *p, int fd, int may_refuse);
/* For a worker: counts DONE (0 or 1) connections handled, then waits for a
 * queued descriptor.  The fd, now the caller's; NET_ECLOSED once stopped;
 * NET_EINTR if a signal came first. */
int net_pool_take(net_pool *p, int done);
/* Counts one connection handled (a worker left its handler abnormally). */
void net_pool_done(net_pool *p);
/* For the pusher: waits until a push would not be refused.  0;
 * NET_ECLOSED once stopped; NET_EINTR if a signal came first. */
int net_pool_wait_room(net_pool *p);
/* Stops P: every wait ends with NET_ECLOSED, and the queued descriptors
 * are reset and closed.  Their number, or NET_ECLOSED if P was stopped
 * already. */
int net_pool_stop(net_pool *p);
/* Counts one handler that failed. */
void net_pool_error(net_pool *p);
/* Accepted, handled, refused, active (taken and not yet handled), queued,
 * started, errors. */
#define NET_POOL_NSTATS 7
void net_pool_stats(net_pool *p, long out[NET_POOL_NSTATS]);

/* ---- Event loop (loop.c) ---------------------------------------------------- */

/* A libuv loop whose callbacks only record events: (id, NET_EV_* mask)
 * records in a queue, which the owner takes after each pass and dispatches
 * itself, so that none of its code runs under uv_run.  IDs are the owner's
 * small integers: a watcher's, a timer's or a lookup's.  Everything but
 * net_loop_wake and net_loop_stop belongs to the loop's one thread. */
typedef struct net_loop net_loop;
typedef struct net_watch net_watch;
typedef struct net_timer net_timer;
typedef struct net_lookup net_lookup;
typedef struct net_signal net_signal;

typedef struct net_event {
  int32_t id;
  int32_t events;
} net_event;

#define NET_EV_READ 1         /* = NET_WAIT_READ */
#define NET_EV_WRITE 2        /* = NET_WAIT_WRITE */
#define NET_EV_URGENT 4       /* = NET_WAIT_URGENT: out-of-band data */
#define NET_EV_DISCONNECT 8   /* the peer shut its side down (EPOLLRDHUP) */
#define NET_EV_TIMER 16       /* a timer fired */
#define NET_EV_CLOSED 32      /* the watched socket was closed: the watcher is gone */
#define NET_EV_WAKE 64        /* net_loop_wake or net_loop_stop was called */
#define NET_EV_LOOKUP 128     /* a host lookup finished */
#define NET_EV_SIGNAL 256     /* a watched signal arrived */
/* The id of events of the loop itself (NET_EV_WAKE). */
#define NET_LOOP_ID (-1)

int net_loop_new(net_loop **out);
/* Frees the loop; the owner must have freed its watchers and timers.
 * Lookups still running are waited for. */
int net_loop_close(net_loop *l);
/* For a loop its owner dropped without net_loop_close (a finalizer, from
 * any thread): takes every watcher from its socket's handle
 * (net_handle_unwatch), lets go of the sockets and frees the loop, its
 * watchers, timers and signal watchers.  Returns 0 when freed; -EBUSY,
 * freeing nothing, while a lookup still runs (its callback would record
 * into the loop) or when the loop's thread is closing a watched socket
 * at this very moment (its close reaches the loop). */
int net_loop_collect(net_loop *l);
/* The epoll descriptor: readable when a pass has work.  Waiting on it with
 * net_wait() and then running a pass with net_loop_run_nowait() is
 * uv_run(UV_RUN_ONCE) with an interruptible wait. */
int net_loop_backend_fd(const net_loop *l);
/* How long a pass may wait, in milliseconds: -1 forever, 0 not at all. */
int net_loop_timeout(net_loop *l);
/* One pass of uv_run(UV_RUN_NOWAIT); non-zero while something is watched. */
int net_loop_run_nowait(net_loop *l);
/* One pass of uv_run(UV_RUN_ONCE): waits in epoll_wait, one system call,
 * until an event, a wake-up or the next timer; same result.  libuv retries
 * the wait when a signal interrupts it: a caller that must wake for a
 * signal calls net_loop_wake() from its handler (it is async-signal-safe). */
int net_loop_run_once(net_loop *l);
/* True when the last pass recorded several events: under load another
 * pass without waiting likely finds more, and saves the wait's syscall. */
int net_loop_busy(const net_loop *l);
int net_loop_alive(const net_loop *l);
/* Thread-safe, and net_loop_wake async-signal-safe: wake the loop (a NET_EV_WAKE event, coalesced), or also ask
 * it to stop (net_loop_stop_requested then answers 1, once). */
int net_loop_wake(net_loop *l);
int net_loop_stop(net_loop *l);
int net_loop_stop_requested(net_loop *l);
/* Copy up to MAX recorded events to OUT, oldest first; returns the count. */
size_t net_loop_take(net_loop *l, net_event *out, size_t max);
size_t net_loop_pending(const net_loop *l);
/* Events dropped because memory ran out (should stay 0). */
int net_loop_lost(const net_loop *l);

/* Watch H's fd for EVENTS (NET_EV_READ ... NET_EV_DISCONNECT) under ID.
 * The watcher holds the fd (acquired) until freed or until H is closed on
 * this thread (it then records NET_EV_CLOSED and lets go at once); a close
 * from another thread shuts the fd down, which wakes the watcher, and the
 * owner frees it on seeing the socket closed.  Fails with -EEXIST when the fd is
 * watched in this loop already. */
int net_watch_start(net_loop *l, net_handle *h, int id, int events, net_watch **out);
/* Change the events (0: none, the watcher stays); NET_ECLOSED once detached. */
int net_watch_set_events(net_watch *w, int events);
/* 0 once the socket was closed (NET_EV_CLOSED recorded). */
int net_watch_attached(const net_watch *w);
void net_watch_free(net_watch *w);

/* A timer firing NET_EV_TIMER under ID after MS milliseconds, then every
 * REPEAT_MS (0: once). */
int net_timer_start(net_loop *l, int id, uint64_t ms, uint64_t repeat_ms, net_timer **out);
/* 1 while it will fire again. */
int net_timer_active(const net_timer *x);
void net_timer_free(net_timer *x);

/* Record NET_EV_SIGNAL under ID each time SIGNUM arrives (uv_signal_t).
 * -EBUSY when the signal has a handler that is not libuv's (ECL's own:
 * SIGINT, SIGSEGV, SIGPWR...; or an embedder's): libuv would take it over,
 * and restore SIG_DFL, not that handler, when done. */
int net_signal_start(net_loop *l, int id, int signum, net_signal **out);
void net_signal_free(net_signal *x);

/* getaddrinfo on libuv's thread pool (a numeric NAME is answered at once),
 * recording NET_EV_LOOKUP under ID when done.  NAME is checked first as by
 * net_host_check (NET_EINVAL, *WHY set). */
int net_lookup_start(net_loop *l, int id, const char *name, size_t len, int family,
                     net_lookup **out, const char **why);
/* As net_resolve_host once NET_EV_LOOKUP was seen; NET_EAGAIN before. */
int net_lookup_result(const net_lookup *q, net_ip_addr *out, int max, char *canon,
                      size_t canon_size);
/* Frees it, cancelling it if it is still running. */
void net_lookup_free(net_lookup *q);
/* A hint kept for blocking readers: true when the last read emptied the
 * socket (it would block, or returned less than asked), so that the next
 * read waits for data first instead of trying, failing and then waiting:
 * two system calls instead of three. */
int net_handle_drained_p(const net_handle *h);
void net_handle_set_drained(net_handle *h, int drained);

#ifdef __cplusplus
}
#endif

#endif /* NET_H */
