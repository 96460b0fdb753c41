/* thread-echo.c -- the reference servers of the benchmarks with blocking sockets and a thread per connection: TCP echo, TCP discard, UDP echo. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server-args.h"

/* What the net servers in threads do: a buffer per connection, a blocking
 * receive of what is there, a blocking send of all of it; the connection
 * closed at end of file or on an error.  UDP: one thread, blocking
 * recvfrom and sendto back to the sender. */
#define BUFFER_SIZE 65536
#define STACK_SIZE (128 * 1024)

static int discard;

/* Send BUF[0,N) whole; 0, or -1 on an error. */
static int send_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static void *serve_connection(void *arg) {
  int fd = (int)(intptr_t)arg;
  char *buf = malloc(BUFFER_SIZE);
  while (buf) {
    ssize_t n = recv(fd, buf, BUFFER_SIZE, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!discard && send_all(fd, buf, (size_t)n) < 0) break;
  }
  free(buf);
  close(fd);
  return NULL;
}

static int serve_tcp(int listener) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, STACK_SIZE);
  for (;;) {
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        usleep(100000);   /* out of descriptors: breathe, go on */
        continue;
      }
      perror("thread-echo: accept");
      return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    if (pthread_create(&t, &attr, serve_connection, (void *)(intptr_t)fd) != 0) close(fd);
  }
}

static int serve_udp(int fd) {
  static char buf[BUFFER_SIZE];
  for (;;) {
    struct sockaddr_storage from;
    socklen_t len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("thread-echo: recvfrom");
      return 1;
    }
    sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
  }
}

static void on_signal(int signum) {
  (void)signum;
  _exit(0);
}

int main(int argc, char **argv) {
  enum server_mode mode;
  int port;
  server_args(argc, argv, "thread-echo", &mode, &port);
  int use_udp = mode == SERVE_UDP;
  discard = mode == SERVE_DISCARD;
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  int fd = socket(AF_INET, (use_udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
      (!use_udp && listen(fd, 4096) < 0) ||
      getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
    fprintf(stderr, "thread-echo: cannot listen on port %d: %s\n", port, strerror(errno));
    return 1;
  }
  printf("port=%d\n", ntohs(addr.sin_port));
  fflush(stdout);
  return use_udp ? serve_udp(fd) : serve_tcp(fd);
}
