#!/bin/sh
# c10k.sh -- the C10K test: examples/c10k-echo.lsp holding 10,000 connections
# driven by bench/loadgen from another process, its memory per idle
# connection, and its behaviour when descriptors run out (EMFILE).
# Called by run-tests.sh with srcdir, builddir and ECL set.  Prints one
# "C10K: N passed, N failed" line; skips, saying why, when the descriptor
# limit cannot be raised.
set -u
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
loadgen=$builddir/bench/loadgen
fas=$builddir/examples/c10k-echo.fas
conns=${C10K_CONNECTIONS:-10000}
limit=$((conns + 256))
passed=0
failed=0
pid=

pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }
skip() { echo "skipped: $*"; echo "C10K: 0 passed, 0 failed (skipped)"; exit 0; }

# key NAME LINE: the value of NAME=... in loadgen's output LINE.
key() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# start_server NOFILE [VAR=VALUE...]: start the echo server with that
# descriptor limit (prlimit sets it, then runs ECL in the same process) and
# those environment variables; sets pid and port.
start_server() {
  out=$builddir/c10k-server.out
  nofile=$1
  shift
  # Emptied here, not by the redirection below: that one runs in the
  # background child, and the loop could read the last server's port.
  : >"$out"
  prlimit --nofile="$nofile:$nofile" env NET_FAS="$builddir/net.fas" C10K_ECHO_PORT=0 "$@" \
    "$ECL" --norc --load "$fas" >"$out" 2>&1 </dev/null &
  pid=$!
  port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/^port=//p' "$out")
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not start:"; cat "$out"
  return 1
}

# stop_server: SIGTERM, then SIGKILL if it has not gone within 5 seconds.
stop_server() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}
trap stop_server EXIT

[ -x "$loadgen" ] || { echo "missing $loadgen"; exit 1; }
[ -f "$fas" ] || { echo "missing $fas"; exit 1; }
command -v prlimit >/dev/null || skip "prlimit (util-linux) is not installed"
prlimit --nofile="$limit:$limit" true 2>/dev/null ||
  skip "cannot raise RLIMIT_NOFILE to $limit for the server (hard limit $(ulimit -Hn); needs root or CAP_SYS_RESOURCE)"

# 1. Memory per idle connection, then 10,000 connections echoing at once.
if start_server "$limit"; then
  line=$("$loadgen" idle -p "$port" -c "$conns" --hold 1 -t 40 --server-pid "$pid")
  status=$?
  echo "idle: $line"
  [ "$status" -eq 77 ] && skip "loadgen cannot get $conns descriptors"
  if [ "$status" -eq 0 ] && [ "$(key held "$line")" = "$conns" ]; then
    pass "$conns idle connections held, each answered once"
    echo "resident memory per idle connection: $(key rss_per_conn_b "$line") octets"
  else
    fail "$conns idle connections (status $status)"
  fi
  # Started at once, while the server is still closing the idle
  # connections: accepts reuse descriptor numbers being let go.
  line=$("$loadgen" echo -p "$port" -c "$conns" -r 5 -t 50 --server-pid "$pid")
  status=$?
  echo "echo: $line"
  if [ "$status" -eq 0 ] && [ "$(key errors "$line")" = 0 ] &&
     [ "$(key mismatches "$line")" = 0 ] && [ "$(key served "$line")" = "$conns" ]; then
    pass "$conns concurrent connections x 6 rounds, every reply checked"
  else
    fail "$conns concurrent connections echoing (status $status)"
  fi
  kill -0 "$pid" 2>/dev/null && pass "server alive after the C10K run" ||
    fail "server died during the C10K run"
  # A watched connection's socket must never be collected while open.
  if grep -q "became garbage while open" "$out"; then
    fail "$(grep -c "became garbage while open" "$out") open connections were collected by the GC"
  else
    pass "no open connection collected by the GC"
  fi
  [ "$failed" -eq 0 ] || { echo "the server's output:"; tail -n 20 "$out"; }
  stop_server
else
  fail "the server did not start"
fi

# 2. The same server serving every connection through its stream: an idle
# stream holds no buffer (two 32 KiB buffers each would be 640 MiB).
stream_bound=${C10K_STREAM_BOUND:-2048}
if start_server "$limit" C10K_ECHO_STREAM=1; then
  line=$("$loadgen" idle -p "$port" -c "$conns" --hold 1 -t 40 --server-pid "$pid")
  status=$?
  echo "stream idle: $line"
  per=$(key rss_per_conn_b "$line")
  if [ "$status" -eq 0 ] && [ "$(key held "$line")" = "$conns" ]; then
    pass "$conns idle stream connections held, each answered once through its stream"
  else
    fail "$conns idle stream connections (status $status)"
  fi
  if [ -n "$per" ] && [ "$per" -lt "$stream_bound" ]; then
    pass "resident memory per idle stream connection $per octets, under $stream_bound"
  else
    fail "resident memory per idle stream connection '$per' octets, not under $stream_bound"
  fi
  stop_server
else
  fail "the stream server did not start"
fi

# 3. Out of descriptors: 200 clients against a server allowed 64.
if start_server 64; then
  line=$("$loadgen" idle -p "$port" -c 200 --no-request --hold 3 -t 20 --server-pid "$pid")
  echo "emfile idle: $line"
  frac=$(key cpu_hold_fraction "$line")
  if kill -0 "$pid" 2>/dev/null; then
    pass "server alive with 200 clients and 64 descriptors"
  else
    fail "server died out of descriptors"
  fi
  # Not spinning: user CPU under half the wall time while clients wait.
  if [ -n "$frac" ] && awk "BEGIN { exit !($frac < 0.5) }"; then
    pass "server not spinning out of descriptors (user CPU $frac of wall time)"
  else
    fail "server spinning out of descriptors (user CPU fraction '$frac')"
  fi
  line=$("$loadgen" echo -p "$port" -c 20 -r 3 -t 20)
  status=$?
  echo "emfile after: $line"
  [ "$status" -eq 0 ] && pass "new clients served once descriptors are free" ||
    fail "new clients not served after descriptors were freed (status $status)"
  stop_server
else
  fail "the server did not start with 64 descriptors"
fi

echo "C10K: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
