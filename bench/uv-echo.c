/* uv-echo.c -- the reference servers of the benchmarks in plain C libuv: TCP echo (what examples/c10k-echo.lsp does), TCP discard, UDP echo. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "server-args.h"

/* Like the Lisp server: one shared receive buffer (the echo is sent at
 * once), a copy only of what the socket does not take now, and reading
 * paused while a connection's queue is past the high-water mark. */
#define BUFFER_SIZE 65536
#define HIGH_WATER (256 * 1024)

struct conn {
  uv_tcp_t tcp;        /* first: a handle pointer is a conn pointer */
  int paused;          /* reading stopped until the queue drains */
};

struct write_req {
  uv_write_t req;
  char data[];
};

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_udp_t udp;
static int discard;   /* --discard: read and drop, close at end of file */
static uv_signal_t sigterm, sigint;
static char shared[BUFFER_SIZE];

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(shared, sizeof shared);
}

static void on_close(uv_handle_t *handle) { free(handle); }

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  uv_stream_t *stream = req->handle;
  free(req);
  struct conn *c = (struct conn *)stream;
  if (status < 0) return;   /* the read side sees the error and closes */
  if (c->paused && stream->write_queue_size == 0 && !uv_is_closing((uv_handle_t *)stream)) {
    c->paused = 0;
    uv_read_start(stream, on_alloc, on_read);
  }
}

/* Send BUF[0,N) now if the socket takes it, else queue a copy of the rest. */
static void echo(uv_stream_t *stream, const char *data, size_t n) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)n);
  int sent = stream->write_queue_size ? 0 : uv_try_write(stream, &b, 1);
  if (sent == UV_EAGAIN) sent = 0;
  if (sent < 0) {
    uv_close((uv_handle_t *)stream, on_close);
    return;
  }
  if ((size_t)sent == n) return;
  struct write_req *w = malloc(sizeof *w + (n - sent));
  if (!w) abort();
  memcpy(w->data, data + sent, n - sent);
  b = uv_buf_init(w->data, (unsigned)(n - sent));
  if (uv_write(&w->req, stream, &b, 1, on_write) < 0) {
    free(w);
    uv_close((uv_handle_t *)stream, on_close);
    return;
  }
  if (stream->write_queue_size > HIGH_WATER) {
    ((struct conn *)stream)->paused = 1;
    uv_read_stop(stream);
  }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0 && discard) return;
  if (nread > 0) {
    echo(stream, buf->base, (size_t)nread);
  } else if (nread < 0) {
    /* End of file, or a reset: close at once, as the Lisp server does. */
    if (!uv_is_closing((uv_handle_t *)stream)) uv_close((uv_handle_t *)stream, on_close);
  }
}

static void on_connection(uv_stream_t *server, int status) {
  if (status < 0) return;   /* libuv itself handles EMFILE with a reserve fd */
  struct conn *c = malloc(sizeof *c);
  if (!c) abort();
  c->paused = 0;
  uv_tcp_t *client = &c->tcp;
  uv_tcp_init(loop, client);
  if (uv_accept(server, (uv_stream_t *)client) < 0) {
    uv_close((uv_handle_t *)client, on_close);
    return;
  }
  uv_tcp_nodelay(client, 1);
  uv_read_start((uv_stream_t *)client, on_alloc, on_read);
}

/* --udp: each datagram straight back to its sender from the shared buffer;
 * one the socket does not take now is dropped, as UDP may. */
static void on_datagram(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  (void)flags;
  if (nread <= 0 || !addr) return;
  uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
  uv_udp_try_send(handle, &b, 1, addr);
}

static void close_any(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (uv_is_closing(handle)) return;
  /* The connections were malloc'ed; the listener and signals are static. */
  int ours = handle == (uv_handle_t *)&listener || handle == (uv_handle_t *)&sigterm ||
             handle == (uv_handle_t *)&sigint || handle == (uv_handle_t *)&udp;
  uv_close(handle, ours ? NULL : on_close);
}

/* SIGTERM or SIGINT: close every handle, so uv_run returns and we exit 0. */
static void on_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  uv_walk(loop, close_any, NULL);
}

/* Listen on ADDR: a TCP listener, or with USE_UDP the UDP socket. */
static int start(const struct sockaddr_in *addr, int use_udp) {
  if (use_udp) {
    uv_udp_init(loop, &udp);
    int r = uv_udp_bind(&udp, (const struct sockaddr *)addr, 0);
    return r < 0 ? r : uv_udp_recv_start(&udp, on_alloc, on_datagram);
  }
  uv_tcp_init(loop, &listener);
  int r = uv_tcp_bind(&listener, (const struct sockaddr *)addr, 0);
  return r < 0 ? r : uv_listen((uv_stream_t *)&listener, 4096, on_connection);
}

int main(int argc, char **argv) {
  enum server_mode mode;
  int port;
  server_args(argc, argv, "uv-echo", &mode, &port);
  int use_udp = mode == SERVE_UDP;
  discard = mode == SERVE_DISCARD;
  loop = uv_default_loop();
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  int r = start(&addr, use_udp);
  if (r < 0) {
    fprintf(stderr, "uv-echo: cannot listen on port %d: %s\n", port, uv_strerror(r));
    return 1;
  }
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_signal_init(loop, &sigint);
  uv_signal_start(&sigint, on_signal, SIGINT);
  struct sockaddr_storage name;
  int len = sizeof name;
  if (use_udp) uv_udp_getsockname(&udp, (struct sockaddr *)&name, &len);
  else uv_tcp_getsockname(&listener, (struct sockaddr *)&name, &len);
  printf("port=%d\n", ntohs(((struct sockaddr_in *)&name)->sin_port));
  fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return 0;
}
