/* loadgen.c -- an epoll load generator for the benchmarks and the C10K test: echo, pingpong, idle and accept modes, one key=value line per run. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Exit statuses: 0 every connection served with every reply right; 1 the run
 * finished with errors, mismatches or connections not served; 2 bad usage
 * or setup; 77 (the automake "skipped" status) not enough descriptors. */
#define EXIT_ERRORS 1
#define EXIT_USAGE 2
#define EXIT_NOFILE 77

#define MAX_SIZE 65536
#define BATCH 256

enum mode { MODE_ECHO, MODE_PINGPONG, MODE_IDLE, MODE_ACCEPT };

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
  int size;
  int window;         /* connections launched but not yet answered */
  int retries;
  int request;        /* idle: do one verified round per connection */
  pid_t server_pid;
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
  static const char *names[] = {"echo", "pingpong", "idle", "accept"};
  return names[m];
}

static void report(double elapsed, struct server_sample a, struct server_sample b,
                   struct server_sample rss0) {
  printf("mode=%s conns=%d size=%d ops=%ld errors=%ld mismatches=%ld served=%ld "
         "failed=%ld retried=%ld elapsed=%.3f ops_per_s=%.0f",
         mode_name(opt.mode), opt.conns, opt.size, st.ops, st.errors, st.mismatches,
         st.served, st.failed, st.retried, elapsed, elapsed > 0 ? st.ops / elapsed : 0.0);
  if (opt.mode == MODE_PINGPONG && st.ops > 0)
    printf(" us_per_roundtrip=%.2f", elapsed * 1e6 / st.ops);
  if (a.ok && b.ok) {
    double ut = b.utime - a.utime, stt = b.stime - a.stime;
    printf(" server_utime=%.2f server_stime=%.2f", ut, stt);
    if (st.ops > 0)
      printf(" user_us_per_op=%.3f sys_us_per_op=%.3f", ut * 1e6 / st.ops, stt * 1e6 / st.ops);
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

static int run_echo(double hard) {
  /* Warm-up: every connection made and answered once, then a barrier, so
   * the measured part has all of them open at once. */
  int ok = run_until(all_answered, hard);
  if (!ok) {
    abandon_unfinished("timed out while connecting");
    report(0, (struct server_sample){0}, (struct server_sample){0}, (struct server_sample){0});
    return EXIT_ERRORS;
  }
  struct server_sample a = server_sample(opt.server_pid);
  double t0 = clock_now();
  now = t0;
  measuring = 1;
  deadline = t0 + opt.duration;
  for (long i = 0; i < opt.conns; i++)
    if (conns[i].state == CONN_READY) {
      conns[i].round = 1;
      conn_start_round(&conns[i]);
    }
  if (!run_until(all_finished, hard)) abandon_unfinished("timed out");
  double t1 = clock_now();
  struct server_sample b = server_sample(opt.server_pid);
  report(t1 - t0, a, b, a);
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
  struct server_sample a = server_sample(opt.server_pid);
  double t0 = clock_now();
  now = t0;
  deadline = t0 + opt.duration;
  /* Every slot takes part: the window is the concurrency here. */
  opt.window = opt.conns;
  if (!run_until(all_finished, hard)) abandon_unfinished("timed out");
  double t1 = clock_now();
  struct server_sample b = server_sample(opt.server_pid);
  report(t1 - t0, a, b, a);
  return 0;
}

/* ---- options ------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
    "usage: loadgen MODE [options]   (MODE: echo pingpong idle accept)\n"
    "  -h HOST        server IPv4 address (127.0.0.1)\n"
    "  -p PORT        server port (required)\n"
    "  -c N           connections (echo 100, idle 1000); accept: concurrency (16)\n"
    "  -r R           measured request/response rounds per connection (echo 10,\n"
    "                 pingpong 10000), after one warm-up round\n"
    "  -d SECONDS     run the measured part this long instead of -r/-n rounds\n"
    "  -n COUNT       accept: connect/request/close cycles (10000)\n"
    "  -s SIZE        request size in octets (64)\n"
    "  -w N           connections being made at once, unanswered (256)\n"
    "  -t SECONDS     hard bound on the whole run (60)\n"
    "  --hold SECONDS idle: how long to hold the connections (1)\n"
    "  --no-request   idle: only connect, send nothing\n"
    "  --server-pid PID  report the server's CPU time (and RSS for idle)\n"
    "  --retries N    connect retries after refusal or timeout (3)\n"
    "Prints one line of key=value pairs.  Exit status: 0 all served and\n"
    "right, 1 errors, 2 usage, 77 not enough descriptors.\n");
  exit(EXIT_USAGE);
}

static void parse_mode(const char *s) {
  if (!strcmp(s, "echo")) opt.mode = MODE_ECHO;
  else if (!strcmp(s, "pingpong")) opt.mode = MODE_PINGPONG;
  else if (!strcmp(s, "idle")) opt.mode = MODE_IDLE;
  else if (!strcmp(s, "accept")) opt.mode = MODE_ACCEPT;
  else usage();
}

static void defaults(int have_conns, int have_rounds) {
  if (!have_conns)
    opt.conns = opt.mode == MODE_ECHO ? 100 : opt.mode == MODE_IDLE ? 1000
              : opt.mode == MODE_ACCEPT ? 16 : 1;
  if (opt.mode == MODE_PINGPONG) opt.conns = 1;
  if (!have_rounds) opt.rounds = opt.mode == MODE_PINGPONG ? 10000 : 10;
  if (opt.duration > 0) opt.rounds = 0x7fffffff;
  if (opt.mode == MODE_ACCEPT && opt.duration > 0 && opt.count == 10000)
    opt.count = 0x7fffffffL;
  if (opt.mode == MODE_ACCEPT && opt.count < opt.conns) opt.conns = (int)opt.count;
}

static void parse_args(int argc, char **argv) {
  static struct option longs[] = {
    {"hold", required_argument, 0, 'H'}, {"no-request", no_argument, 0, 'N'},
    {"server-pid", required_argument, 0, 'P'}, {"retries", required_argument, 0, 'R'},
    {0, 0, 0, 0}};
  opt = (struct options){.host = "127.0.0.1", .count = 10000, .hold = 1, .timeout = 60,
                         .connect_timeout = 10, .size = 64, .window = 256, .retries = 3,
                         .request = 1};
  if (argc < 2) usage();
  parse_mode(argv[1]);
  optind = 2;
  int have_conns = 0, have_rounds = 0, ch;
  while ((ch = getopt_long(argc, argv, "h:p:c:r:d:n:s:w:t:", longs, 0)) != -1) {
    switch (ch) {
    case 'h': opt.host = optarg; break;
    case 'p': opt.port = atoi(optarg); break;
    case 'c': opt.conns = atoi(optarg); have_conns = 1; break;
    case 'r': opt.rounds = atol(optarg); have_rounds = 1; break;
    case 'd': opt.duration = atof(optarg); break;
    case 'n': opt.count = atol(optarg); break;
    case 's': opt.size = atoi(optarg); break;
    case 'w': opt.window = atoi(optarg); break;
    case 't': opt.timeout = atof(optarg); break;
    case 'H': opt.hold = atof(optarg); break;
    case 'N': opt.request = 0; break;
    case 'P': opt.server_pid = atoi(optarg); break;
    case 'R': opt.retries = atoi(optarg); break;
    default: usage();
    }
  }
  defaults(have_conns, have_rounds);
  if (opt.port <= 0 || opt.port > 65535 || opt.conns < 1 || opt.rounds < 1 ||
      opt.size < 8 || opt.size > MAX_SIZE || opt.window < 1 || opt.count < 1 ||
      opt.retries < 0 || opt.retries > 8 || optind != argc)
    usage();
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
  else r = run_echo(hard);
  for (long i = 0; i < opt.conns; i++) conn_close(&conns[i], 0);
  if (r) return r;
  return st.errors || st.mismatches || st.served < opt.conns ? EXIT_ERRORS : 0;
}
