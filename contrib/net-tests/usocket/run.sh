#!/bin/sh
# run.sh -- usocket over net: usocket's own test suite and net-usocket's
# tests, in a network and mount namespace of their own.
#
# Called by run-tests.sh with srcdir, builddir and ECL set.  usocket's suite
# resolves common-lisp.net and connects to it (ports 80 and 81) and to
# 1.2.3.4: here it runs in a new network namespace whose only interface is
# loopback, with an /etc/resolv.conf naming a dnsmasq of ours (common-lisp.net
# is 127.0.0.80, every other name but localhost does not exist), an HTTP
# server of ours on 127.0.0.80:80, and 1.2.3.4 an unreachable route.  Nothing
# can leave the machine: with a stand-in down, a lookup or a connection
# fails, and so does the test.  The suite runs over usocket's bundled ECL
# backend, then over net; every test passing over the first must pass over
# the second, and every test must pass over net.  The Lisp processes run
# without CAP_NET_BIND_SERVICE, as usocket's suite expects binding port 81 to
# be refused.  Prints one "usocket: N passed, N failed" line.
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
here=$srcdir/contrib/net-tests/usocket
work=$builddir/contrib/net-tests/usocket-run
passed=0
failed=0

pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }
skip() { echo "skipped: $*"; echo "usocket: 0 passed, 0 failed (skipped)"; exit 0; }
summary() { echo "usocket: $passed passed, $failed failed"; [ "$failed" -eq 0 ]; exit $?; }

if [ "${1:-}" != --inside ]; then
  [ "$(id -u)" -eq 0 ] || skip "needs root to make its network namespace (unshare --net --mount)"
  for p in unshare setpriv ip python3; do
    command -v $p >/dev/null 2>&1 || skip "program $p missing"
  done
  command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] \
    || skip "dnsmasq missing (Debian package dnsmasq-base)"
  for pkg in usocket:cl-usocket rt:cl-rt flexi-streams:cl-flexi-streams chunga:cl-chunga fiveam:cl-fiveam; do
    sys=${pkg%%:*}
    "$ECL" --norc --eval '(require :asdf)' \
      --eval "(ext:quit (if (asdf:find-system \"$sys\" nil) 0 1))" >/dev/null 2>&1 \
      || skip "ASDF system $sys missing (Debian package ${pkg#*:})"
  done
  rm -rf "$work"
  mkdir -p "$work/fasl" "$work/www"
  unshare --net --mount sh "$0" --inside
  exit $?
fi

# ---- Inside the namespace ---------------------------------------------------

PATH=$PATH:/usr/sbin:/sbin
cd "$work" || exit 1
pids=
trap 'for p in $pids; do kill $p 2>/dev/null; done' EXIT

mount --make-rprivate / 2>/dev/null
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' > hosts
printf 'hosts: files dns\n' > nsswitch
printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > resolv
mount --bind hosts /etc/hosts && mount --bind nsswitch /etc/nsswitch.conf \
  && mount --bind resolv /etc/resolv.conf || { fail "private resolver files"; summary; }
ip link set lo up && ip route add unreachable 1.2.3.4/32 \
  || { fail "loopback and the unreachable route"; summary; }

dnsmasq --no-daemon --port=53 --listen-address=127.0.0.1 --bind-interfaces \
  --no-resolv --no-hosts --conf-file=/dev/null --pid-file= \
  --address=/common-lisp.net/127.0.0.80 --address=/#/ >dnsmasq.log 2>&1 &
pids="$pids $!"
(cd www && exec python3 -m http.server 80 --bind 127.0.0.80) >http.log 2>&1 &
pids="$pids $!"

# The stand-ins answer before anything runs (at most 10 s), or all fails.
python3 - <<'EOF' > standins.log 2>&1
import socket, time
deadline = time.time() + 10
while True:
    try:
        assert [a[4][0] for a in socket.getaddrinfo("common-lisp.net", 80, 0, socket.SOCK_STREAM)] == ["127.0.0.80"]
        s = socket.create_connection(("127.0.0.80", 80), timeout=2)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert s.recv(4) == b"HTTP"
        s.close()
        break
    except Exception as e:
        if time.time() > deadline:
            raise
        time.sleep(0.1)
try:
    socket.getaddrinfo("xxx", 80)
    raise SystemExit("xxx resolved")
except socket.gaierror:
    pass
print("stand-ins up")
EOF
if grep -q "stand-ins up" standins.log; then
  pass "stand-ins: common-lisp.net is 127.0.0.80 (dnsmasq), HTTP answers there, xxx is not found"
else
  cat standins.log; fail "stand-ins did not come up"; summary
fi

ulimit -n 8192 2>/dev/null
# lisp NAME ARGS...: ECL without CAP_NET_BIND_SERVICE, at most 5 minutes.
lisp() {
  out=$1; shift
  env NET_FAS="$builddir/net.fas" NET_USOCKET_DIR="$srcdir/src/lsp/net-usocket/" \
    USOCKET_FASL_DIR="$work/fasl/" \
    timeout 300 setpriv --bounding-set -net_bind_service "$ECL" --norc "$@" \
    >"$out" 2>&1 </dev/null
}

# ---- usocket's suite over both backends ------------------------------------

USOCKET_BACKEND=bundled lisp bundled.out --load "$here/suite.lsp"
USOCKET_BACKEND=net lisp net.out --load "$here/suite.lsp"
grep -v '^;;;' net.out | grep -v '^\(PASS\|FAIL\) ' | tail -n 30

# The suite's tests, as its sources define them (less those under #+ignore).
expected=$(awk 'FNR > 1 && /^\(deftest / && prev !~ /^#\+ignore/ {n++} {prev = $0} END {print n + 0}' \
  /usr/share/common-lisp/source/usocket/test/*.lisp)
ran=$(grep -c '^\(PASS\|FAIL\) ' net.out)
if [ "$ran" -eq "$expected" ] && [ "$expected" -gt 0 ]; then
  pass "usocket's suite over net ran all its $expected tests"
else
  fail "usocket's suite over net ran $ran tests of $expected"
fi
for t in $(sed -n 's/^PASS //p' net.out); do pass "usocket's $t over net"; done
for t in $(sed -n 's/^FAIL //p' net.out); do fail "usocket's $t over net"; done

echo "over usocket's bundled backend (ECL's sb-bsd-sockets):" \
  "$(grep -c '^PASS ' bundled.out) passed, $(grep -c '^FAIL ' bundled.out) failed:" \
  $(sed -n 's/^FAIL //p' bundled.out)
lost=
for t in $(sed -n 's/^PASS //p' bundled.out); do
  grep -qx "PASS $t" net.out || lost="$lost $t"
done
if [ -z "$lost" ] && grep -q '^PASS ' bundled.out; then
  pass "every test passing over the bundled backend passes over net"
else
  fail "passing over the bundled backend, not over net:${lost:- (the bundled run gave no result)}"
  grep -v '^;;;' bundled.out | tail -n 20
fi

# ---- net-usocket's own tests ------------------------------------------------

lisp tests.out --load "$here/tests.lsp"
grep -v '^;;;' tests.out | tail -n 40
line=$(sed -n 's/^net-usocket tests: //p' tests.out | tail -n 1)
if [ -n "$line" ]; then
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1/')
  f=$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\2/')
  passed=$((passed + p)); failed=$((failed + f))
else
  fail "net-usocket's tests gave no result"
fi

summary
