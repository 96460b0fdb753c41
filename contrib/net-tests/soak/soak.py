#!/usr/bin/env python3
"""soak.py -- a bounded soak of net's event-loop and threaded servers.

For each server kind, soak-server.lsp runs in a child ECL with a low
descriptor limit while this driver, in threads, runs a mixed load against
it for SOAK_SECONDS (default 40) twice:

  echo      well-behaved clients, one connection each, random payloads of
            1..65536 octets, every echo checked byte for byte (SHA-256);
            a round trip slower than a second is a stall
  slow      slow readers, one connection each: 2 MiB echoes, each read
            back 64 KiB every 20 ms
  reset     clients that send 512 KiB and reset (SO_LINGER 0) mid-write
  churn     connect/close cycles, half of them with a short echo
  burst     once per round, more connections at once than the server has
            descriptors, held a second, then closed
  udp       a datagram flood at the server's UDP socket

It reports requests served, errors by kind, the server's descriptors and
resident memory before and after, and fails on any lost or corrupted
byte, any descriptor leaked, resident memory still growing in the second
round, or a stall of a well-behaved client.
"""
import hashlib, os, random, resource, socket, struct, subprocess, sys, threading, time

SECONDS = float(os.environ.get("SOAK_SECONDS", "40"))
NOFILE = 512
BURST = 700
ECHO_CLIENTS, SLOW_CLIENTS, RESETTERS, CHURNERS, FLOODERS = 16, 4, 4, 4, 2
STALL = 1.0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.errors = {}
        self.failures = []
        self.max_latency = 0.0

    def count(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def error(self, who, exc):
        with self.lock:
            key = "%s: %s" % (who, type(exc).__name__)
            self.errors[key] = self.errors.get(key, 0) + 1

    def fail(self, message):
        with self.lock:
            self.failures.append(message)

    def latency(self, seconds):
        with self.lock:
            self.max_latency = max(self.max_latency, seconds)


def recv_exactly(sock, n):
    chunks, got = [], 0
    while got < n:
        c = sock.recv(min(65536, n - got))
        if not c:
            raise EOFError("end of file after %d of %d octets" % (got, n))
        chunks.append(c)
        got += len(c)
    return b"".join(chunks)


def connect(port, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def echo_client(port, stats, stop, rng):
    try:
        s = connect(port)
    except OSError as e:
        stats.fail("echo client could not connect: %r" % e)
        return
    with s:
        while not stop.is_set():
            size = rng.randint(1, 65536)
            data = os.urandom(size)
            t0 = time.monotonic()
            try:
                s.sendall(data)
                back = recv_exactly(s, size)
            except (OSError, EOFError) as e:
                stats.fail("echo client lost its connection: %r" % e)
                return
            dt = time.monotonic() - t0
            stats.latency(dt)
            if hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
                stats.fail("echo of %d octets corrupted" % size)
                return
            if dt > STALL:
                stats.fail("a well-behaved client waited %.2f s for its echo" % dt)
            stats.count("echo round trips")
            stats.count("echo octets", size)


def slow_reader(port, stats, stop, rng):
    """One connection for the round, made before the burst: 2 MiB echoes
    read back slowly, one after the other."""
    try:
        s = connect(port, timeout=30)
    except OSError as e:
        stats.fail("slow reader could not connect: %r" % e)
        return
    with s:
        while not stop.is_set():
            data = os.urandom(2 * 1024 * 1024)
            writer = threading.Thread(target=lambda: s.sendall(data), daemon=True)
            writer.start()
            h, got = hashlib.sha256(), 0
            try:
                while got < len(data):
                    c = s.recv(65536)
                    if not c:
                        raise EOFError("end of file after %d octets" % got)
                    h.update(c)
                    got += len(c)
                    time.sleep(0.02)
            except (OSError, EOFError) as e:
                stats.fail("slow reader lost its echo after %d octets: %r" % (got, e))
                return
            writer.join(10)
            if h.digest() != hashlib.sha256(data).digest():
                stats.fail("slow reader's 2 MiB corrupted")
                return
            stats.count("slow 2 MiB echoes")


def resetter(port, stats, stop, rng):
    data = os.urandom(512 * 1024)
    while not stop.is_set():
        try:
            s = connect(port)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.settimeout(0.2)
            try:
                s.sendall(data[: rng.randint(1, len(data))])
            except socket.timeout:
                pass
            s.close()
            stats.count("resets mid-write")
        except OSError as e:
            stats.error("reset", e)
        time.sleep(0.02)


def churner(port, stats, stop, rng):
    while not stop.is_set():
        try:
            with connect(port, timeout=5) as s:
                if rng.random() < 0.5:
                    s.sendall(b"ping\n")
                    if recv_exactly(s, 5) != b"ping\n":
                        stats.fail("churn echo corrupted")
            stats.count("connect/close cycles")
        except (OSError, EOFError) as e:
            stats.error("churn", e)
        time.sleep(0.005)


def flooder(port, stats, stop, rng):
    payload = os.urandom(512)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        sent = 0
        while not stop.is_set() and sent < 5_000_000:
            for _ in range(100):
                try:
                    u.sendto(payload, ("127.0.0.1", port))
                    sent += 1
                except OSError as e:
                    stats.error("udp", e)
            time.sleep(0.002)
        stats.count("datagrams sent", sent)


def burst(port, stats):
    """More connections at once than the server has descriptors."""
    held = []
    for _ in range(BURST):
        s = socket.socket()
        s.setblocking(False)
        if s.connect_ex(("127.0.0.1", port)) not in (0, 115):   # EINPROGRESS
            stats.error("burst", OSError("connect"))
        held.append(s)
    stats.count("burst connections", len(held))
    time.sleep(1.0)
    for s in held:
        s.close()


class Server:
    def __init__(self, mode, ecl, fas, here):
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        env = dict(os.environ, NET_FAS=fas, SOAK_MODE=mode)
        self.p = subprocess.Popen([ecl, "--norc", "--load", os.path.join(here, "soak-server.lsp")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                  preexec_fn=limit, text=True)
        line = []
        for _ in range(100):            # ECL's own ";;; Loading" lines first
            line = self.p.stdout.readline().split()
            if not line or line[0] == "ports":
                break
        if not line or line[0] != "ports":
            raise RuntimeError("the soak server did not start: %r" % line)
        self.tcp, self.udp = int(line[1]), int(line[2])

    def ask(self, command):
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        for _ in range(100):
            line = self.p.stdout.readline()
            if not line or not line.startswith(";"):
                return line.strip()
        return ""

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.p.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.p.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    def settled_fds(self, baseline, seconds=15):
        """The descriptor count once it is back to BASELINE, or the last seen."""
        end = time.monotonic() + seconds
        n = self.fds()
        while n > baseline and time.monotonic() < end:
            self.ask("gc")
            time.sleep(0.5)
            n = self.fds()
        return n

    def quit(self):
        try:
            self.ask("quit")
            self.p.wait(20)
        except Exception:
            self.p.kill()
            self.p.wait()


def run_round(server, stats):
    stop = threading.Event()
    rng = random.Random()
    kinds = ([(echo_client, server.tcp)] * ECHO_CLIENTS + [(slow_reader, server.tcp)] * SLOW_CLIENTS
             + [(resetter, server.tcp)] * RESETTERS + [(churner, server.tcp)] * CHURNERS
             + [(flooder, server.udp)] * FLOODERS)
    threads = [threading.Thread(target=f, args=(port, stats, stop, random.Random(rng.random())),
                                daemon=True) for f, port in kinds]
    for t in threads:
        t.start()
    time.sleep(SECONDS / 2)
    burst(server.tcp, stats)
    time.sleep(SECONDS / 2)
    stop.set()
    for t in threads:
        t.join(60)
        if t.is_alive():
            stats.fail("a client thread did not finish within 60 s")


def soak(mode, ecl, fas, here):
    print("== soak of the %s server: %d s twice, descriptor limit %d" % (mode, SECONDS, NOFILE))
    server = Server(mode, ecl, fas, here)
    stats = Stats()
    try:
        # Warm up: one echo, then the baseline.
        with connect(server.tcp) as s:
            s.sendall(b"warm\n")
            if recv_exactly(s, 5) != b"warm\n":
                stats.fail("warm-up echo corrupted")
        time.sleep(0.5)
        server.ask("gc")
        fds0, rss0 = server.settled_fds(10**6, 0), server.rss_kib()
        rss = []
        for r in (1, 2):
            run_round(server, stats)
            fds = server.settled_fds(fds0)
            server.ask("gc")
            rss.append(server.rss_kib())
            print("round %d: descriptors %d -> %d, resident memory %d KiB -> %d KiB"
                  % (r, fds0, fds, rss0, rss[-1]))
            if fds > fds0:
                stats.fail("round %d leaked %d descriptors" % (r, fds - fds0))
        # The first round grows the heap to its working size; the second
        # must not grow it further (a leak grows every round).
        growth = rss[1] - rss[0]
        if growth > max(16 * 1024, rss[0] // 8):
            stats.fail("resident memory grew by %d KiB in the second round" % growth)
        reply = server.ask("stats")
        print("server: %s" % reply[len("stats "):])
    finally:
        server.quit()
    for k in sorted(stats.counts):
        print("  %-24s %d" % (k, stats.counts[k]))
    print("  errors by kind (client side): %s" % (stats.errors or "none"))
    print("  slowest echo round trip: %.3f s" % stats.max_latency)
    if stats.counts.get("echo round trips", 0) == 0:
        stats.fail("no echo was served")
    for f in stats.failures[:20]:
        print("FAILED: %s" % f)
    return not stats.failures


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    builddir = os.environ.get("builddir", os.getcwd())
    ecl = os.environ.get("ECL", "ecl")
    fas = os.path.join(builddir, "net.fas")
    modes = sys.argv[1:] or ["event-loop", "threaded"]
    ok = all([soak(m, ecl, fas, here) for m in modes])
    print("soak: %s" % ("passed" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
