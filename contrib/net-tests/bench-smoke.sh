#!/bin/sh
# bench-smoke.sh -- the benchmark programs work: every loadgen mode against
# the C reference servers (bench/uv-echo, bench/thread-echo) and every
# server of bench/servers/, briefly, on loopback; exit statuses and the
# figures checked, and loadgen seen to fail against a wrong server.  No
# timings are judged here (bench/compare.sh measures).
# Called by run-tests.sh with srcdir, builddir and ECL set; BENCH_SMOKE_SERVERS
# names the Lisp servers to try (all by default).  Prints one
# "bench programs: N passed, N failed" line.
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
. "$srcdir/bench/servers.sh"
loadgen=$builddir/bench/loadgen
out=$builddir/bench-smoke.out
passed=0
failed=0
pid=

pass() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }

# key NAME LINE: the value of NAME=... in loadgen's output LINE.
key() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# start NAME MODE: start server NAME for MODE; sets pid and port, or
# returns 1.
start() {
  # Emptied here: the background redirection may truncate it only after
  # server_port has read the last server's port.
  : >"$out"
  (server_exec "$1" "$2") >"$out" 2>&1 </dev/null &
  pid=$!
  port=$(server_port "$out" "$pid") && return 0
  echo "the server did not start:"; grep -v '^;;;' "$out" | tail -5
  return 1
}

stop() {
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}
trap stop EXIT

# expect WHAT STATUS KEY=VALUE... -- LOADGEN-ARGS: run loadgen against the
# server; pass if it exits with STATUS and its line holds each KEY=VALUE
# (VALUE "+": a positive number; "?": any).
expect() {
  what=$1 want=$2; shift 2
  checks=
  while [ "$1" != -- ]; do checks="$checks $1"; shift; done
  shift
  line=$("$loadgen" "$@" -p "$port" --server-pid "$pid" -t 20 2>/dev/null)
  status=$?
  ok=1
  [ "$status" -eq "$want" ] || ok=0
  for c in $checks; do
    k=${c%%=*} v=${c#*=} got=$(key "$k" "$line")
    if [ "$v" = + ]; then
      awk "BEGIN { exit !(\"$got\" + 0 > 0) }" || ok=0
    elif [ "$v" = "?" ]; then
      [ -n "$got" ] || ok=0
    else
      [ "$got" = "$v" ] || ok=0
    fi
  done
  if [ "$ok" = 1 ]; then pass "$what"; else fail "$what (status $status): $line"; fi
}

for f in "$loadgen" "$builddir/bench/uv-echo" "$builddir/bench/thread-echo" \
         "$builddir/bench/servers/net-servers.fas" "$builddir/bench/servers/ecl-servers.fas"; do
  [ -e "$f" ] || { echo "missing $f"; echo "bench programs: 0 passed, 1 failed"; exit 1; }
done

# The C references: every mode of loadgen, --procs, and the failures it
# must report.
for s in uv c-threads; do
  if start "$s" echo; then
    expect "$s: echo, 20 connections x 5 checked rounds" 0 ops=100 errors=0 mismatches=0 served=20 \
      -- echo -c 20 -r 5
    expect "$s: pingpong, 50 round trips" 0 ops=50 us_per_roundtrip=+ -- pingpong -r 50
    expect "$s: accept, 50 cycles" 0 ops=50 served=4 -- accept -c 4 -n 50
    expect "$s: idle, 50 connections held" 0 held=50 rss_per_conn_b=+ -- idle -c 50 --hold 0.2
    expect "$s: echo from 2 processes" 0 ops=100 procs=2 served=20 -- echo -c 20 -r 5 --procs 2
    expect "$s: accept from 2 processes" 0 ops=40 procs=2 -- accept -c 4 -n 40 --procs 2
    expect "$s: pump to an echo server fails (octets come back)" 1 errors=1 -- pump -n 4
    stop
  else fail "$s echo server did not start"; fi
  if start "$s" discard; then
    expect "$s: pump, 20 writes of 64 KiB" 0 ops=20 bytes=1310720 served=1 server_cpu_s_per_gb=? \
      -- pump -n 20
    expect "$s: pump, 3 writes of 1 MiB" 0 ops=3 bytes=3145728 -- pump -n 3 -s 1048576
    expect "$s: echo to a discarding server fails" 1 served=0 -- echo -c 2 -r 1 -t 3
    stop
  else fail "$s discard server did not start"; fi
  if start "$s" udp; then
    expect "$s: udp, 8 in flight x 50 checked rounds" 0 ops=400 served=8 mismatches=0 \
      -- udp -c 8 -r 50
    expect "$s: udp from 2 processes" 0 ops=400 procs=2 -- udp -c 8 -r 50 --procs 2
    udp_port=$port
    stop
    port=$udp_port pid=$$
    expect "$s: udp with nobody listening fails" 1 ops=0 -- udp -c 2 -r 5 -t 3
    pid=
  else fail "$s udp server did not start"; fi
done

# The Lisp servers: each path, each mode it serves.
for s in ${BENCH_SMOKE_SERVERS:-loop loop-server blocking threaded stream ecl-threads ecl-serve-event}; do
  if start "$s" echo; then
    expect "$s: echo, 20 connections x 5 checked rounds" 0 ops=100 errors=0 served=20 \
      -- echo -c 20 -r 5
    expect "$s: accept, 20 cycles" 0 ops=20 -- accept -c 4 -n 20
    case $s in loop|loop-server)
      # Thousands of connections read after their reset: the server lives.
      expect "$s: accept, 3000 cycles closed with a reset" 0 ops=3000 errors=0 \
        -- accept -c 16 -n 3000 -t 30
      expect "$s: still echoing after them" 0 ops=20 errors=0 -- echo -c 4 -r 5 ;;
    esac
    stop
  else fail "$s echo server did not start"; fi
  if start "$s" discard; then
    expect "$s: pump, 20 writes of 64 KiB" 0 bytes=1310720 served=1 -- pump -n 20
    stop
  else fail "$s discard server did not start"; fi
  case $s in loop-server|threaded|stream) continue ;; esac
  if start "$s" udp; then
    expect "$s: udp, 8 in flight x 20 checked rounds" 0 ops=160 served=8 -- udp -c 8 -r 20
    stop
  else fail "$s udp server did not start"; fi
done

# bench/profile.sh: C libuv's and the loop's ping-pong under callgrind.
# Each table must give a positive total, split as its server spends it
# (the loop's: net's Lisp, glue and core, and libuv), and the summary the
# loop's total against C libuv's.
if command -v valgrind >/dev/null; then
  prof=$(env srcdir="$srcdir" builddir="$builddir" ECL="$ECL" SCENARIO=pingpong \
           SERVERS="uv loop" TOP=3 sh "$srcdir/bench/profile.sh" 2>&1)
  status=$?
  # group SERVER NAME: the instructions NAME spends in SERVER's table.
  group() {
    printf '%s\n' "$prof" | awk -v s="== $1," -v g="$2" '
      index($0, s) == 1 { on = 1; next } /^==/ { on = 0 }
      on && index($0, "  " g " ") == 1 {
        n = split($0, f, " ")
        for (i = 1; i <= n; i++) if (f[i] ~ /^-?[0-9]+$/) { print f[i]; exit } }'
  }
  ok=1
  [ "$status" -eq 0 ] || ok=0
  for g in "libuv" "total"; do
    awk "BEGIN { exit !(\"$(group uv "$g")\" + 0 > 100) }" || ok=0
  done
  for g in "net: Lisp" "net: C glue" "net: C core" "libuv" "ECL: thread lookup"; do
    awk "BEGIN { exit !(\"$(group loop "$g")\" + 0 > 10) }" || ok=0
  done
  printf '%s\n' "$prof" | grep -Eq '^  loop +[0-9]+ +[0-9.]+x$' || ok=0
  if [ "$ok" = 1 ]; then
    pass "profile.sh: uv's and the loop's ping-pong, split by who spends"
  else
    fail "profile.sh (status $status): $prof"
  fi
else
  echo "skipped: profile.sh: valgrind is not installed"
fi

echo "bench programs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
