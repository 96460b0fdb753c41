/* loadgen.c -- an epoll load generator for the benchmarks and the C10K test: echo, pingpong, idle, accept, pump and udp modes, one key=value line per run. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Exit statuses: 0 every connection served with every reply right; 1 the run
 * finished with errors, mismatches or connections not served; 2 bad usage
 * or setup; 77 (the automake "skipped" status) not enough descriptors. */
#define EXIT_ERRORS 1
#define EXIT_USAGE 2
#define EXIT_NOFILE 77

#define MAX_SIZE 65536
#define MAX_PUMP_SIZE (16 * 1024 * 1024)
#define MAX_PROCS 64
#define BATCH 256

enum mode { MODE_ECHO, MODE_PINGPONG, MODE_IDLE, MODE_ACCEPT, MODE_PUMP, MODE_UDP };

enum conn_state {
  CONN_UNUSED,     /* not launched yet */
  CONN_BACKOFF,    /* connect refused: relaunched at retry_at */
  CONN_CONNECTING,
  CONN_SENDING,
  CONN_RECEIVING,
  CONN_READY,      /* warm-up round done: waits for the others */
  CONN_DONE,
  CONN_FAILED
};

struct options {
  enum mode mode;
  const char *host;
  int port;
  int conns;          /* echo, idle: connections; accept: concurrency */
  long rounds;        /* measured rounds per connection (echo, pingpong) */
  long count;         /* accept: connect/request/close cycles */
  double duration;    /* seconds; 0: bounded by rounds or count */
  double hold;        /* idle: seconds to hold the connections */
  double timeout;     /* hard bound on the whole run, seconds */
  double connect_timeout;
  double loss_timeout; /* udp: a datagram unanswered this long is lost */
  int size;
  int window;         /* connections launched but not yet answered */
  int retries;
  int request;        /* idle: do one verified round per connection */
  pid_t server_pid;
  int procs;          /* echo, accept, udp: processes sharing the load */
};

struct conn {
  int fd;
  uint8_t state;
  uint8_t retries;
  uint32_t sent;
  uint32_t got;
  uint32_t round;
  double since;       /* connect started, or when to retry */
};

struct stats {
  long ops;           /* measured requests or cycles */
  long errors;
  long mismatches;
  long served;        /* connections that did every round */
  long retried;
  long failed;        /* connections given up on */
  long ready;         /* idle and echo warm-up: connections answered */
  long launched;       /* connections (echo, idle) or slots (accept) started */
  long cycles;         /* accept: cycles started */
  long in_flight;     /* launched, not yet answered */
  long finished;      /* DONE + FAILED */
  long long bytes;    /* pump: octets the server took */
  long lost;          /* udp: datagrams unanswered after --loss-timeout */
  long stale;         /* udp: replies to datagrams already counted lost */
};

struct server_sample {
  double utime, stime;   /* seconds */
  long rss_kb;
  int ok;
};

static struct options opt;
static struct stats st;
static struct conn *conns;
static int epfd;
static struct sockaddr_in peer;
static double now;
static int measuring;   /* echo: after the warm-up barrier */
static double deadline; /* echo/accept with a duration: stop new requests */

/* --procs: a child's pipes to its parent (-1 in the parent), and what a
 * child sends back at the end of its measured part. */
static int ready_fd = -1, go_fd = -1, result_fd = -1;
struct child_result {
  struct stats st;
  double elapsed;
  int measured;
};

/* ---- time, descriptors, the server's /proc figures ---------------------- */

static double clock_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Raise RLIMIT_NOFILE to at least NEED; 0 or -1 with the reason printed. */
static int nofile_raise(rlim_t need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
  if (rl.rlim_cur >= need) return 0;
  struct rlimit want = rl;
  want.rlim_cur = need;
  if (want.rlim_max < need) want.rlim_max = need;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return 0;
  int e = errno;
  if (rl.rlim_max > rl.rlim_cur && rl.rlim_max != RLIM_INFINITY) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  fprintf(stderr,
          "loadgen: needs %lu descriptors but RLIMIT_NOFILE is %lu (hard %lu) "
          "and cannot be raised: %s; run as root or raise the hard limit "
          "(ulimit -Hn), or use fewer connections\n",
          (unsigned long)need, (unsigned long)rl.rlim_cur,
          (unsigned long)rl.rlim_max, strerror(e));
  return -1;
}

/* utime and stime of PID from /proc/PID/stat, RSS from /proc/PID/statm. */
static struct server_sample server_sample(pid_t pid) {
  struct server_sample s = {0, 0, 0, 0};
  char path[64], buf[1024];
  if (pid <= 0) return s;
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return s;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  /* The command name may hold spaces and parentheses: fields start after
   * the last ')'.  utime and stime are fields 14 and 15. */
  char *p = strrchr(buf, ')');
  unsigned long ut, stt;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                   &ut, &stt) != 2)
    return s;
  double tck = (double)sysconf(_SC_CLK_TCK);
  s.utime = ut / tck;
  s.stime = stt / tck;
  snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
  f = fopen(path, "r");
  long size, rss;
  if (f && fscanf(f, "%ld %ld", &size, &rss) == 2)
    s.rss_kb = rss * (sysconf(_SC_PAGESIZE) / 1024);
  if (f) fclose(f);
  s.ok = 1;
  return s;
}

/* ---- the request pattern ------------------------------------------------ */

/* Octet I of connection ID's request in round ROUND: the id and round come
 * first, so a reply crossed between connections or rounds is a mismatch. */
static inline uint8_t pattern_octet(uint32_t id, uint32_t round, int i) {
  if (i < 4) return (uint8_t)(id >> (8 * i));
  if (i < 8) return (uint8_t)(round >> (8 * (i - 4)));
  return (uint8_t)(id * 31u + round * 17u + (unsigned)i);
}

static void pattern_fill(uint8_t *buf, uint32_t id, uint32_t round, int from, int to) {
  for (int i = from; i < to; i++) buf[i - from] = pattern_octet(id, round, i);
}

/* ---- connections ------------------------------------------------------- */

static void conn_close(struct conn *c, int reset) {
  if (c->fd < 0) return;
  if (reset) {
    /* An abortive close: no TIME_WAIT left behind by the accept test. */
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  close(c->fd);
  c->fd = -1;
}

static void conn_finish(struct conn *c, enum conn_state state) {
  if (c->state == CONN_CONNECTING || c->state == CONN_BACKOFF ||
      ((c->state == CONN_SENDING || c->state == CONN_RECEIVING) && c->round == 0 &&
       opt.mode != MODE_ACCEPT))
    st.in_flight--;
  c->state = state;
  st.finished++;
  if (state == CONN_FAILED) st.failed++;
}

/* Give up on connection C: an error unless it is a mismatch, counted apart. */
static void conn_drop(struct conn *c, const char *what, int err, int mismatch) {
  if (st.errors + st.mismatches < 5)
    fprintf(stderr, "loadgen: connection %ld: %s%s%s\n", (long)(c - conns), what,
            err ? ": " : "", err ? strerror(err) : "");
  if (mismatch) st.mismatches++;
  else st.errors++;
  if (c->state == CONN_READY && st.ready > 0) st.ready--;
  conn_close(c, 0);
  conn_finish(c, CONN_FAILED);
}

static void conn_fail(struct conn *c, const char *what, int err) {
  conn_drop(c, what, err, 0);
}

/* Open a non-blocking socket and start connecting; registered once, edge
 * triggered, for both directions, so a round costs no epoll_ctl. */
static int conn_launch(struct conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct epoll_event ev = {EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.ptr = c}};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  c->fd = fd;
  c->sent = c->got = 0;
  c->since = now;
  c->state = CONN_CONNECTING;
  if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0 && errno != EINPROGRESS) {
    int e = errno;
    conn_close(c, 0);
    return -e;
  }
  return 0;
}

/* A connect refused or timed out is retried after a pause, a few times. */
static void conn_retry_or_fail(struct conn *c, int err) {
  conn_close(c, 0);
  if (c->retries < opt.retries) {
    c->retries++;
    st.retried++;
    c->state = CONN_BACKOFF;
    c->since = now + 0.05 * (1 << c->retries);
    return;
  }
  conn_fail(c, "connect", err);
}

static void conn_send(struct conn *c);

static void conn_start_round(struct conn *c) {
  c->sent = c->got = 0;
  c->state = CONN_SENDING;
  conn_send(c);
}

static void conn_send(struct conn *c) {
  static uint8_t buf[MAX_SIZE];
  pattern_fill(buf, (uint32_t)(c - conns), c->round, c->sent, opt.size);
  ssize_t n = send(c->fd, buf, opt.size - c->sent, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    conn_fail(c, "send", errno);
    return;
  }
  c->sent += n;
  if (c->sent == (uint32_t)opt.size) c->state = CONN_RECEIVING;
}

/* Idle and warm-up connections are counted ready; accept cycles close. */
static void round_done(struct conn *c);

/* Read what is there of the reply, checking each octet. */
static void conn_receive(struct conn *c) {
  static uint8_t buf[MAX_SIZE];
  for (;;) {
    ssize_t n = recv(c->fd, buf, opt.size - c->got, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      conn_fail(c, "receive", errno);
      return;
    }
    if (n == 0) {
      conn_fail(c, "end of file before the whole reply", 0);
      return;
    }
    for (ssize_t i = 0; i < n; i++)
      if (buf[i] != pattern_octet((uint32_t)(c - conns), c->round, c->got + i)) {
        conn_drop(c, "a reply octet differs from the request", 0, 1);
        return;
      }
    c->got += n;
    if (c->got == (uint32_t)opt.size) {
      round_done(c);
      return;
    }
  }
}

static void conn_connected(struct conn *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err == EINPROGRESS) return;
  if (err) {
    conn_retry_or_fail(c, err);
    return;
  }
  if (opt.mode == MODE_IDLE && !opt.request) {
    c->state = CONN_READY;
    st.in_flight--;
    st.ready++;
    return;
  }
  conn_start_round(c);
}

/* A held connection the server closed, reset or wrote to unasked. */
static void conn_unasked(struct conn *c) {
  uint8_t octet;
  ssize_t n = recv(c->fd, &octet, 1, MSG_PEEK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) conn_fail(c, "while idle", errno);
  else if (n == 0) conn_fail(c, "closed by the server while idle", 0);
  else conn_fail(c, "the server sent octets unasked", 0);
}

static void conn_event(struct conn *c, uint32_t events) {
  const uint32_t in = EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP;
  switch (c->state) {
  case CONN_CONNECTING:
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) conn_connected(c);
    break;
  case CONN_SENDING:
    /* Only after a partial send: once it is all out, read what the edge
     * may already have announced. */
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) conn_send(c);
    if (c->state == CONN_RECEIVING) conn_receive(c);
    break;
  case CONN_RECEIVING:
    if (events & in) conn_receive(c);
    break;
  case CONN_READY:
    if (events & in) conn_unasked(c);
    break;
  default:
    break;
  }
}

/* ---- the modes' round logic -------------------------------------------- */

static void accept_cycle_next(struct conn *c) {
  conn_close(c, 1);
  st.ops++;
  c->retries = 0;
  if (st.cycles < opt.count && (opt.duration <= 0 || now < deadline)) {
    st.cycles++;
    int r = conn_launch(c);
    if (r < 0) conn_fail(c, "socket or connect", -r);
    return;
  }
  c->state = CONN_DONE;
  st.finished++;
  st.served++;
}

static void round_done(struct conn *c) {
  if (opt.mode == MODE_ACCEPT) {
    accept_cycle_next(c);
    return;
  }
  if (c->round == 0 && !measuring) {
    c->state = CONN_READY;
    st.in_flight--;
    st.ready++;
    return;
  }
  st.ops++;
  if ((opt.duration > 0 && now >= deadline) ||
      (opt.duration <= 0 && (long)c->round >= opt.rounds)) {
    c->state = CONN_DONE;
    st.finished++;
    st.served++;
    return;
  }
  c->round++;
  conn_start_round(c);
}

/* Launch connections while fewer than the window are unanswered, and
 * relaunch those whose retry time has come. */
static void launch_more(void) {
  while (st.launched < opt.conns && st.in_flight < opt.window) {
    struct conn *c = &conns[st.launched++];
    st.in_flight++;
    st.cycles++;
    int r = conn_launch(c);
    if (r < 0) conn_fail(c, "socket or connect", -r);
  }
}

/* Every so often: connects that take too long, and retries due. */
static void check_connects(void) {
  static double last;
  if (now - last < 0.05) return;
  last = now;
  for (long i = 0; i < st.launched; i++) {
    struct conn *c = &conns[i];
    if (c->state == CONN_BACKOFF && now >= c->since) {
      int r = conn_launch(c);
      if (r < 0) conn_retry_or_fail(c, -r);
    } else if (c->state == CONN_CONNECTING && now - c->since > opt.connect_timeout) {
      conn_retry_or_fail(c, ETIMEDOUT);
    }
  }
}

/* One epoll_wait and its events; returns 0, or -1 on a fatal error. */
static int poll_once(int timeout_ms) {
  struct epoll_event evs[BATCH];
  int n = epoll_wait(epfd, evs, BATCH, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    perror("loadgen: epoll_wait");
    return -1;
  }
  now = clock_now();
  for (int i = 0; i < n; i++) conn_event(evs[i].data.ptr, evs[i].events);
  return 0;
}

static int all_answered(void) { return st.ready + st.failed >= opt.conns; }
static int all_finished(void) { return st.finished >= opt.conns; }

/* Run until DONE() holds or the hard deadline passes; 1 if it held. */
static int run_until(int (*done)(void), double hard) {
  while (!done()) {
    if (now >= hard || poll_once(50) < 0) return 0;
    launch_more();
    check_connects();
  }
  return 1;
}

/* Connections still running when the run is cut short are errors. */
static void abandon_unfinished(const char *why) {
  long n = 0;
  for (long i = 0; i < opt.conns; i++) {
    struct conn *c = &conns[i];
    if (c->state == CONN_DONE || c->state == CONN_FAILED) continue;
    if (c->state == CONN_READY && opt.mode == MODE_IDLE) continue;
    n++;
    conn_close(c, 0);
    c->state = CONN_FAILED;
    st.errors++;
    st.failed++;
  }
  if (n) fprintf(stderr, "loadgen: %ld connections unfinished: %s\n", n, why);
}

/* ---- output ------------------------------------------------------------ */

static const char *mode_name(enum mode m) {
  static const char *names[] = {"echo", "pingpong", "idle", "accept", "pump", "udp"};
  return names[m];
}

static void report(double elapsed, struct server_sample a, struct server_sample b,
                   struct server_sample rss0) {
  if (result_fd >= 0) {
    struct child_result r = {st, elapsed, measuring};
    if (write(result_fd, &r, sizeof r) != (ssize_t)sizeof r) perror("loadgen: result");
    return;
  }
  printf("mode=%s conns=%d size=%d ops=%ld errors=%ld mismatches=%ld served=%ld "
         "failed=%ld retried=%ld elapsed=%.3f ops_per_s=%.0f",
         mode_name(opt.mode), opt.conns, opt.size, st.ops, st.errors, st.mismatches,
         st.served, st.failed, st.retried, elapsed, elapsed > 0 ? st.ops / elapsed : 0.0);
  if (opt.mode == MODE_PINGPONG && st.ops > 0)
    printf(" us_per_roundtrip=%.2f", elapsed * 1e6 / st.ops);
  if (opt.mode == MODE_PUMP)
    printf(" bytes=%lld gb_per_s=%.3f", st.bytes, elapsed > 0 ? st.bytes / elapsed / 1e9 : 0.0);
  if (opt.mode == MODE_UDP) printf(" lost=%ld stale=%ld", st.lost, st.stale);
  if (opt.procs > 1) printf(" procs=%d", opt.procs);
  if (a.ok && b.ok) {
    double ut = b.utime - a.utime, stt = b.stime - a.stime;
    printf(" server_utime=%.2f server_stime=%.2f", ut, stt);
    if (st.ops > 0)
      printf(" user_us_per_op=%.3f sys_us_per_op=%.3f", ut * 1e6 / st.ops, stt * 1e6 / st.ops);
    if (opt.mode == MODE_PUMP && st.bytes > 0)
      printf(" server_cpu_s_per_gb=%.3f server_user_s_per_gb=%.3f", (ut + stt) * 1e9 / st.bytes,
             ut * 1e9 / st.bytes);
    if (opt.mode == MODE_IDLE) {
      printf(" rss_before_kb=%ld rss_held_kb=%ld rss_after_hold_kb=%ld", rss0.rss_kb,
             a.rss_kb, b.rss_kb);
      if (st.ready > 0)
        printf(" rss_per_conn_b=%.0f",
               (double)(b.rss_kb - rss0.rss_kb) * 1024.0 / (double)st.ready);
      printf(" cpu_hold_fraction=%.3f", elapsed > 0 ? ut / elapsed : 0.0);
    }
  }
  if (opt.mode == MODE_IDLE) printf(" held=%ld", st.ready);
  else if (opt.mode != MODE_ACCEPT && !measuring) printf(" answered=%ld", st.ready);
  printf("\n");
  fflush(stdout);
}

/* ---- the runs ---------------------------------------------------------- */

/* A child of --procs: say it is ready to measure, wait for the word. */
static void barrier(void) {
  if (ready_fd < 0) return;
  char b = 1;
  if (write(ready_fd, &b, 1) != 1 || read(go_fd, &b, 1) != 1) perror("loadgen: barrier");
  now = clock_now();
}

/* The start of the measured part: the --procs barrier, the server's
 * figures (returned), the clock (in *T0) and the deadline. */
static struct server_sample measure_begin(double *t0) {
  barrier();
  struct server_sample a = server_sample(opt.server_pid);
  *t0 = now = clock_now();
  deadline = *t0 + opt.duration;
  measuring = 1;
  return a;
}

/* The end of the measured part begun at T0 with the server's figures A:
 * the line. */
static void measure_end(double t0, struct server_sample a) {
  double t1 = clock_now();
  report(t1 - t0, a, server_sample(opt.server_pid), a);
}

static int run_echo(double hard) {
  /* Warm-up: every connection made and answered once, then a barrier, so
   * the measured part has all of them open at once. */
  int ok = run_until(all_answered, hard);
  if (!ok) {
    abandon_unfinished("timed out while connecting");
    barrier();
    report(0, (struct server_sample){0}, (struct server_sample){0}, (struct server_sample){0});
    return EXIT_ERRORS;
  }
  double t0;
  struct server_sample a = measure_begin(&t0);
  for (long i = 0; i < opt.conns; i++)
    if (conns[i].state == CONN_READY) {
      conns[i].round = 1;
      conn_start_round(&conns[i]);
    }
  if (!run_until(all_finished, hard)) abandon_unfinished("timed out");
  measure_end(t0, a);
  return 0;
}

static int run_idle(double hard, struct server_sample rss0) {
  int ok = run_until(all_answered, hard);
  if (!ok) abandon_unfinished("timed out while connecting");
  struct server_sample a = server_sample(opt.server_pid);
  double t0 = clock_now();
  now = t0;
  double until = t0 + opt.hold < hard ? t0 + opt.hold : hard;
  while (now < until && poll_once((int)((until - now) * 1000) + 1) == 0) {}
  double t1 = clock_now();
  struct server_sample b = server_sample(opt.server_pid);
  st.served = st.ready;
  report(t1 - t0, a, b, rss0);
  return 0;
}

static int run_accept(double hard) {
  double t0;
  struct server_sample a = measure_begin(&t0);
  /* Every slot takes part: the window is the concurrency here. */
  opt.window = opt.conns;
  if (!run_until(all_finished, hard)) abandon_unfinished("timed out");
  measure_end(t0, a);
  return 0;
}

/* Bound the blocking calls on FD by what is left until HARD. */
static void fd_bound(int fd, double hard) {
  double left = hard - clock_now();
  if (left < 0.01) left = 0.01;
  struct timeval tv = {(time_t)left, (suseconds_t)((left - (time_t)left) * 1e6)};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

/* The end of a pump: our side shut, wait until the server, having read all,
 * closes its own; 0, or -1 with the reason counted as an error. */
static int pump_wait_close(int fd) {
  uint8_t tmp[4096];
  shutdown(fd, SHUT_WR);
  for (;;) {
    ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n == 0) return 0;
    if (n < 0 && errno == EINTR) continue;
    st.errors++;
    fprintf(stderr, "loadgen: pump: %s\n",
            n > 0 ? "the server sent octets" : "the server did not close after the end");
    return -1;
  }
}

/* pump: one blocking connection streaming -s octet writes to a discarding
 * server for -d seconds (or -n writes); the run ends when the server has
 * read everything (it closes once it reads our end of file). */
static int run_pump(double hard) {
  uint8_t *buf = malloc(opt.size);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!buf || fd < 0) {
    perror("loadgen: pump");
    return EXIT_USAGE;
  }
  pattern_fill(buf, 0, 0, 0, opt.size);
  fd_bound(fd, hard);
  if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0) {
    st.errors++;
    fprintf(stderr, "loadgen: pump: connect: %s\n", strerror(errno));
    report(0, (struct server_sample){0}, (struct server_sample){0}, (struct server_sample){0});
    return EXIT_ERRORS;
  }
  double t0;
  struct server_sample a = measure_begin(&t0);
  long off = 0;
  while ((opt.duration > 0 ? now < deadline : st.ops < opt.count) && now < hard) {
    ssize_t n = send(fd, buf + off, opt.size - off, MSG_NOSIGNAL);
    now = clock_now();
    if (n < 0) {
      if (errno == EINTR) continue;
      st.errors++;
      fprintf(stderr, "loadgen: pump: send: %s\n", strerror(errno));
      break;
    }
    st.bytes += n;
    off += n;
    if (off == opt.size) {
      off = 0;
      st.ops++;
    }
  }
  if (!st.errors && pump_wait_close(fd) == 0) st.served = 1;
  measure_end(t0, a);
  close(fd);
  free(buf);
  return 0;
}

/* udp: W (-c) datagrams in flight on one connected socket, each echo
 * checked and answered by the next datagram of its slot; a datagram
 * unanswered after --loss-timeout is counted lost and its slot goes on. */
struct udp_slot {
  uint32_t round;
  int active;
  double sent_at;
};

static struct udp_slot *slots;
static long outstanding;
static int udp_fd;

static void udp_send(uint32_t id) {
  static uint8_t buf[MAX_SIZE];
  pattern_fill(buf, id, slots[id].round, 0, opt.size);
  slots[id].sent_at = now;
  if (send(udp_fd, buf, opt.size, 0) < 0 && errno != EAGAIN && errno != ENOBUFS) {
    if (st.errors++ < 5) fprintf(stderr, "loadgen: udp: send: %s\n", strerror(errno));
  }
}

/* The slot's datagram was answered or lost: send its next, or retire it. */
static void udp_next(uint32_t id) {
  slots[id].round++;
  if ((opt.duration > 0 && now >= deadline) ||
      (opt.duration <= 0 && (long)slots[id].round >= opt.rounds) || st.errors > 100) {
    slots[id].active = 0;
    outstanding--;
    return;
  }
  udp_send(id);
}

static void udp_receive(void) {
  static uint8_t buf[MAX_SIZE];
  for (;;) {
    ssize_t n = recv(udp_fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (st.errors++ < 5) fprintf(stderr, "loadgen: udp: receive: %s\n", strerror(errno));
      if (st.errors > 100) return;
      continue;
    }
    uint32_t id = 0, round = 0;
    for (int i = 0; i < 4 && i < n; i++) id |= (uint32_t)buf[i] << (8 * i);
    for (int i = 4; i < 8 && i < n; i++) round |= (uint32_t)buf[i] << (8 * (i - 4));
    if (n != opt.size || id >= (uint32_t)opt.conns) {
      st.mismatches++;
      continue;
    }
    if (!slots[id].active || round != slots[id].round) {
      st.stale++;
      continue;
    }
    int i = 8;
    while (i < n && buf[i] == pattern_octet(id, round, i)) i++;
    if (i < n) {
      st.mismatches++;
      continue;
    }
    st.ops++;
    udp_next(id);
  }
}

static void udp_check_losses(void) {
  static double last;
  if (now - last < 0.01) return;
  last = now;
  for (long i = 0; i < opt.conns; i++)
    if (slots[i].active && now - slots[i].sent_at > opt.loss_timeout) {
      st.lost++;
      udp_next((uint32_t)i);
    }
}

static int run_udp(double hard) {
  slots = calloc(opt.conns, sizeof *slots);
  udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!slots || udp_fd < 0 || connect(udp_fd, (struct sockaddr *)&peer, sizeof peer) < 0) {
    perror("loadgen: udp");
    return EXIT_USAGE;
  }
  double t0;
  struct server_sample a = measure_begin(&t0);
  for (long i = 0; i < opt.conns; i++) {
    slots[i].active = 1;
    udp_send((uint32_t)i);
  }
  outstanding = opt.conns;
  struct pollfd pfd = {udp_fd, POLLIN, 0};
  while (outstanding > 0 && now < hard) {
    poll(&pfd, 1, 10);
    now = clock_now();
    udp_receive();
    udp_check_losses();
  }
  if (st.ops == 0) st.errors++;
  if (outstanding > 0) {
    st.errors += outstanding;
    fprintf(stderr, "loadgen: udp: %ld datagrams in flight at the deadline\n", outstanding);
  } else if (!st.errors && !st.mismatches) {
    st.served = opt.conns;
  }
  measure_end(t0, a);
  close(udp_fd);
  return 0;
}

/* ---- options ------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
    "usage: loadgen MODE [options]   (MODE: echo pingpong idle accept pump udp)\n"
    "  -h HOST        server IPv4 address (127.0.0.1)\n"
    "  -p PORT        server port (required)\n"
    "  -c N           connections (echo 100, idle 1000); accept: concurrency (16);\n"
    "                 udp: datagrams in flight (16)\n"
    "  -r R           measured request/response rounds per connection (echo 10,\n"
    "                 pingpong and udp 10000), after one warm-up round (not udp)\n"
    "  -d SECONDS     run the measured part this long instead of -r/-n rounds\n"
    "  -n COUNT       accept: connect/request/close cycles (10000); pump: writes\n"
    "  -s SIZE        request size in octets (64); pump: write size (65536)\n"
    "  -w N           connections being made at once, unanswered (256)\n"
    "  -t SECONDS     hard bound on the whole run (60)\n"
    "  --hold SECONDS idle: how long to hold the connections (1)\n"
    "  --no-request   idle: only connect, send nothing\n"
    "  --server-pid PID  report the server's CPU time (and RSS for idle)\n"
    "  --retries N    connect retries after refusal or timeout (3)\n"
    "  --loss-timeout SECONDS  udp: a datagram unanswered this long is lost (0.2)\n"
    "  --procs N      echo, accept, udp: N processes share the connections (or\n"
    "                 cycles, or datagrams in flight); one line for them all\n"
    "Prints one line of key=value pairs.  Exit status: 0 all served and\n"
    "right, 1 errors, 2 usage, 77 not enough descriptors.\n");
  exit(EXIT_USAGE);
}

static void parse_mode(const char *s) {
  if (!strcmp(s, "echo")) opt.mode = MODE_ECHO;
  else if (!strcmp(s, "pingpong")) opt.mode = MODE_PINGPONG;
  else if (!strcmp(s, "idle")) opt.mode = MODE_IDLE;
  else if (!strcmp(s, "accept")) opt.mode = MODE_ACCEPT;
  else if (!strcmp(s, "pump")) opt.mode = MODE_PUMP;
  else if (!strcmp(s, "udp")) opt.mode = MODE_UDP;
  else usage();
}

static void defaults(int have_conns, int have_rounds, int have_size) {
  if (!have_conns)
    opt.conns = opt.mode == MODE_ECHO ? 100 : opt.mode == MODE_IDLE ? 1000
              : opt.mode == MODE_ACCEPT || opt.mode == MODE_UDP ? 16 : 1;
  if (opt.mode == MODE_PINGPONG || opt.mode == MODE_PUMP) opt.conns = 1;
  if (!have_size && opt.mode == MODE_PUMP) opt.size = 65536;
  if (!have_rounds)
    opt.rounds = opt.mode == MODE_PINGPONG || opt.mode == MODE_UDP ? 10000 : 10;
  if (opt.duration > 0) opt.rounds = 0x7fffffff;
  if (opt.mode == MODE_ACCEPT && opt.duration > 0 && opt.count == 10000)
    opt.count = 0x7fffffffL;
  if (opt.mode == MODE_ACCEPT && opt.count < opt.conns) opt.conns = (int)opt.count;
}

static void parse_args(int argc, char **argv) {
  static struct option longs[] = {
    {"hold", required_argument, 0, 'H'}, {"no-request", no_argument, 0, 'N'},
    {"server-pid", required_argument, 0, 'P'}, {"retries", required_argument, 0, 'R'},
    {"loss-timeout", required_argument, 0, 'L'}, {"procs", required_argument, 0, 'J'},
    {0, 0, 0, 0}};
  opt = (struct options){.host = "127.0.0.1", .count = 10000, .hold = 1, .timeout = 60,
                         .connect_timeout = 10, .loss_timeout = 0.2, .size = 64, .window = 256, .retries = 3,
                         .request = 1};
  if (argc < 2) usage();
  parse_mode(argv[1]);
  optind = 2;
  int have_conns = 0, have_rounds = 0, have_size = 0, ch;
  while ((ch = getopt_long(argc, argv, "h:p:c:r:d:n:s:w:t:", longs, 0)) != -1) {
    switch (ch) {
    case 'h': opt.host = optarg; break;
    case 'p': opt.port = atoi(optarg); break;
    case 'c': opt.conns = atoi(optarg); have_conns = 1; break;
    case 'r': opt.rounds = atol(optarg); have_rounds = 1; break;
    case 'd': opt.duration = atof(optarg); break;
    case 'n': opt.count = atol(optarg); break;
    case 's': opt.size = atoi(optarg); have_size = 1; break;
    case 'w': opt.window = atoi(optarg); break;
    case 't': opt.timeout = atof(optarg); break;
    case 'H': opt.hold = atof(optarg); break;
    case 'N': opt.request = 0; break;
    case 'P': opt.server_pid = atoi(optarg); break;
    case 'R': opt.retries = atoi(optarg); break;
    case 'L': opt.loss_timeout = atof(optarg); break;
    case 'J': opt.procs = atoi(optarg); break;
    default: usage();
    }
  }
  defaults(have_conns, have_rounds, have_size);
  int procs_ok = opt.procs <= 1 || (opt.procs <= MAX_PROCS && opt.procs <= opt.conns &&
                                    (opt.mode == MODE_ECHO || opt.mode == MODE_ACCEPT ||
                                     opt.mode == MODE_UDP));
  if (opt.port <= 0 || opt.port > 65535 || opt.conns < 1 || opt.rounds < 1 ||
      opt.size < 8 || opt.size > (opt.mode == MODE_PUMP ? MAX_PUMP_SIZE : MAX_SIZE) ||
      opt.window < 1 || opt.count < 1 || opt.retries < 0 || opt.retries > 8 ||
      opt.loss_timeout <= 0 || !procs_ok || optind != argc)
    usage();
  if (opt.procs < 1) opt.procs = 1;
}

/* This process's part of the run: its connections, its mode; the exit status. */
static int run_part(void) {
  conns = calloc(opt.conns, sizeof *conns);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (!conns || epfd < 0) {
    perror("loadgen: setup");
    return EXIT_USAGE;
  }
  for (long i = 0; i < opt.conns; i++) conns[i].fd = -1;
  struct server_sample rss0 = server_sample(opt.server_pid);
  now = clock_now();
  double hard = now + opt.timeout;
  int r;
  if (opt.mode == MODE_IDLE) r = run_idle(hard, rss0);
  else if (opt.mode == MODE_ACCEPT) r = run_accept(hard);
  else if (opt.mode == MODE_PUMP) r = run_pump(hard);
  else if (opt.mode == MODE_UDP) r = run_udp(hard);
  else r = run_echo(hard);
  for (long i = 0; i < opt.conns; i++) conn_close(&conns[i], 0);
  if (r) return r;
  return st.errors || st.mismatches || st.served < opt.conns ? EXIT_ERRORS : 0;
}

/* Read exactly N octets from FD before the monotonic time HARD; the count read. */
static size_t read_until(int fd, void *buf, size_t n, double hard) {
  size_t got = 0;
  while (got < n) {
    struct pollfd pfd = {fd, POLLIN, 0};
    double left = hard - clock_now();
    if (left <= 0 || poll(&pfd, 1, (int)(left * 1000) + 1) <= 0) break;
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r <= 0) break;
    got += r;
  }
  return got;
}

/* Share I of N of TOTAL, the remainder to the first ones. */
static long share(long total, int i, int n) { return total / n + (i < total % n); }

/* --procs N: N children each run their share; they meet at the start of the
 * measured part (the server's figures are taken around it here), send back
 * their counts, and this process prints the one line. */
static int run_procs(void) {
  int ready[2], go[2], res[2], n = opt.procs;
  pid_t kids[MAX_PROCS];
  if (pipe(ready) < 0 || pipe(go) < 0 || pipe(res) < 0) {
    perror("loadgen: pipe");
    return EXIT_USAGE;
  }
  struct options all = opt;
  for (int i = 0; i < n; i++) {
    kids[i] = fork();
    if (kids[i] < 0) {
      perror("loadgen: fork");
      return EXIT_USAGE;
    }
    if (kids[i] == 0) {
      close(ready[0]); close(go[1]); close(res[0]);
      ready_fd = ready[1]; go_fd = go[0]; result_fd = res[1];
      opt.server_pid = 0;
      opt.conns = (int)share(all.conns, i, n);
      if (opt.mode == MODE_ACCEPT) opt.count = share(all.count, i, n);
      _exit(run_part());
    }
  }
  close(ready[1]); close(go[0]); close(res[1]);
  double hard = clock_now() + opt.timeout + 5;
  char word[MAX_PROCS];
  memset(word, 1, sizeof word);
  size_t readied = read_until(ready[0], word, n, hard);
  struct server_sample a = server_sample(opt.server_pid);
  if (write(go[1], word, n) != n) perror("loadgen: go");
  struct child_result r;
  double elapsed = 0;
  int reported = 0;
  measuring = 1;
  while (reported < n && read_until(res[0], &r, sizeof r, hard) == sizeof r) {
    reported++;
    if (r.elapsed > elapsed) elapsed = r.elapsed;
    if (!r.measured) measuring = 0;
    st.ops += r.st.ops; st.errors += r.st.errors; st.mismatches += r.st.mismatches;
    st.served += r.st.served; st.failed += r.st.failed; st.retried += r.st.retried;
    st.ready += r.st.ready; st.bytes += r.st.bytes; st.lost += r.st.lost;
    st.stale += r.st.stale;
  }
  struct server_sample b = server_sample(opt.server_pid);
  if (readied < (size_t)n || reported < n) {
    fprintf(stderr, "loadgen: %d of %d processes did not report\n", n - reported, n);
    st.errors += n - reported;
    for (int i = 0; i < n; i++) kill(kids[i], SIGKILL);
  }
  int status, failed = 0;
  for (int i = 0; i < n; i++)
    if (waitpid(kids[i], &status, 0) < 0 || !WIFEXITED(status) ||
        (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != EXIT_ERRORS))
      failed = 1;
  report(elapsed, a, b, a);
  if (failed) return EXIT_USAGE;
  return st.errors || st.mismatches || st.served < all.conns ? EXIT_ERRORS : 0;
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  memset(&peer, 0, sizeof peer);
  peer.sin_family = AF_INET;
  peer.sin_port = htons(opt.port);
  if (inet_pton(AF_INET, opt.host, &peer.sin_addr) != 1) {
    fprintf(stderr, "loadgen: %s is not an IPv4 address\n", opt.host);
    return EXIT_USAGE;
  }
  if (nofile_raise((rlim_t)opt.conns + 32) < 0) return EXIT_NOFILE;
  if (opt.server_pid && !server_sample(opt.server_pid).ok) {
    fprintf(stderr, "loadgen: cannot read /proc/%d/stat\n", (int)opt.server_pid);
    return EXIT_USAGE;
  }
  return opt.procs > 1 ? run_procs() : run_part();
}
