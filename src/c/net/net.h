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

/* Parse a numeric IPv4 or IPv6 literal of LEN bytes (not NUL-terminated).
 * OCTETS receives 4 or 16 octets; returns 4 or 16, or NET_EINVAL. */
int net_ip_parse(const char *text, size_t len, uint8_t octets[16], uint32_t *scope_id);
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

/* ---- Sockets --------------------------------------------------------------- */

/* socket(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; returns the fd. */
int net_socket_open(int family, int type, int protocol);
int net_socket_bind(int fd, const net_sockaddr *addr);
int net_socket_listen(int fd, int backlog);
/* accept4(2), non-blocking and close-on-exec; PEER may be NULL. */
int net_socket_accept(int fd, net_sockaddr *peer);
/* Starts a connection: 0 when done, NET_EINPROGRESS when the caller must
 * wait for writability and then call net_socket_connect_result(). */
int net_socket_connect(int fd, const net_sockaddr *addr);
int net_socket_connect_result(int fd);
int net_socket_shutdown(int fd, int how);
int net_socket_name(int fd, net_sockaddr *out);
int net_socket_peer_name(int fd, net_sockaddr *out);
/* After a non-blocking connect: 0 when connected, NET_EAGAIN while still in
 * progress, or the connection's error. */
int net_socket_connect_poll(int fd);
/* socketpair(2) of AF_UNIX, non-blocking and close-on-exec. */
int net_socket_pair(int type, int fds[2]);
/* 1 if the next octet to read is at the out-of-band mark, else 0. */
int net_socket_at_mark(int fd);
/* SO_LINGER {1, 0}: a close then resets the connection (RST). */
int net_socket_set_abortive(int fd);
/* setsockopt(2) of an int option. */
int net_socket_set_int(int fd, int level, int name, int value);
/* What an inherited descriptor is: sets FAMILY, TYPE and LISTENING (0/1),
 * and makes it non-blocking and close-on-exec. */
int net_socket_adopt(int fd, int *family, int *type, int *listening);

/* ---- I/O --------------------------------------------------------------------- */

/* send(2) with MSG_NOSIGNAL, so SIGPIPE never kills the process. */
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
/* Wait for EVENTS on FD until DEADLINE (net_now_ns() scale, or
 * NET_NO_DEADLINE).  Returns the ready events (hang-up and errors count as
 * ready for both directions), NET_ETIMEOUT, or NET_EINTR. */
int net_wait(int fd, int events, int64_t deadline);

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
/* Closes if still open, then frees; for finalizers. */
void net_handle_free(net_handle *h);

#ifdef __cplusplus
}
#endif

#endif /* NET_H */
