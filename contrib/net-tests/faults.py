#!/usr/bin/env python3
"""faults.py -- faults provoked at the level of a whole program: the server
helpers when descriptors run out (EMFILE).

Each server kind of contrib/net-tests/soak/soak-server.lsp runs in a child
ECL whose descriptor limit is 64; 100 clients connect and stay.  The server
must not spin on its readable listener (CPU under a quarter of one core
while exhausted; a naive accept loop takes a whole core), must report
TOO-MANY-OPEN-FILES, must keep serving the connections it has, and must
serve new clients and give every descriptor back once the 100 leave.
Prints "faults: N passed, N failed".
"""
import os, socket, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak"))
import soak  # noqa: E402

passed = failed = 0


def check(ok, what):
    global passed, failed
    print("%s: %s" % ("ok" if ok else "FAILED", what))
    if ok:
        passed += 1
    else:
        failed += 1


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])          # utime + stime


def echo(port, line=b"hello\n"):
    with soak.connect(port, timeout=10) as s:
        s.sendall(line)
        return soak.recv_exactly(s, len(line)) == line


def emfile(mode, ecl, fas, here):
    soak.NOFILE = 64
    server = soak.Server(mode, ecl, fas, here)
    try:
        check(echo(server.tcp), "%s: serves before the attack" % mode)
        keeper = soak.connect(server.tcp)
        keeper.sendall(b"a\n")
        soak.recv_exactly(keeper, 2)
        fds0 = server.fds()
        held = []
        for _ in range(100):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", server.tcp))
            held.append(s)
        time.sleep(1)
        hz = os.sysconf("SC_CLK_TCK")
        t0, c0 = time.monotonic(), cpu_ticks(server.p.pid)
        time.sleep(2)
        cpu = (cpu_ticks(server.p.pid) - c0) / hz / (time.monotonic() - t0)
        check(cpu < 0.25, "%s: out of descriptors, the server uses %.0f%% of a core" % (mode, cpu * 100))
        keeper.sendall(b"still\n")
        keeper.settimeout(5)
        check(soak.recv_exactly(keeper, 6) == b"still\n", "%s: an open connection is served meanwhile" % mode)
        stats = server.ask("stats")
        check("TOO-MANY-OPEN-FILES" in stats, "%s: EMFILE reported: %s" % (mode, stats))
        for s in held:
            s.close()
        keeper.close()
        ok = False
        for _ in range(100):
            try:
                if echo(server.tcp):
                    ok = True
                    break
            except OSError:
                time.sleep(0.1)
        check(ok, "%s: serves new clients once descriptors are back" % mode)
        fds = server.settled_fds(fds0 - 1)
        check(fds <= fds0 - 1, "%s: descriptors back to %d (now %d)" % (mode, fds0 - 1, fds))
    finally:
        server.quit()


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "soak")
    builddir = os.environ.get("builddir", os.getcwd())
    ecl = os.environ.get("ECL", "ecl")
    fas = os.path.join(builddir, "net.fas")
    for mode in ("event-loop", "threaded"):
        try:
            emfile(mode, ecl, fas, here)
        except Exception as e:                      # a broken run is a failure
            check(False, "%s: %r" % (mode, e))
    print("faults: %d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
