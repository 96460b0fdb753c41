#!/bin/sh
# loop-echo.sh -- the event loop's echo server (examples/c10k-echo.lsp,
# compiled) against the C libuv one (bench/uv-echo), driven alternately by
# bench/loadgen: memory per idle connection, echo at 100 and 10,000
# connections, then accept cycles, several rounds each; prints medians and
# ratios net/C.
# Called by make bench and make bench-loop with srcdir, builddir and ECL set.
# Environment: ROUNDS (3), CONNS ("100 10000"), DURATION (seconds, 3),
# IDLE (connections for the memory figure, 10000), ACCEPTS (accept cycles
# per round, 5000).
set -u
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100 10000}
DURATION=${DURATION:-3}
IDLE=${IDLE:-10000}
ACCEPTS=${ACCEPTS:-5000}
loadgen=$builddir/bench/loadgen
out=$builddir/bench/results
mkdir -p "$out"
raw=$out/loop-echo.raw
: >"$raw"
nofile=$((IDLE > 10000 ? IDLE + 256 : 10256))

# With two CPUs: the server on CPU 0, the load generator on CPU 1, so they
# do not take turns on one CPU (the figures would flip between runs).
cpus=$(nproc)
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin="taskset -c 0"; client_pin="taskset -c 1"
else
  server_pin=""; client_pin=""
fi

net_pid=; uv_pid=

# start NAME COMMAND...: start a server printing port=N; sets NAME_pid, NAME_port.
start() {
  name=$1; shift
  log=$out/loop-echo-$name.out
  # Removed first: the background redirection may truncate it only after
  # the loop below has read the last run's port.
  rm -f "$log"
  prlimit --nofile="$nofile:$nofile" $server_pin "$@" >"$log" 2>&1 </dev/null &
  eval "${name}_pid=$!"
  for _ in $(seq 1 300); do
    p=$(sed -n 's/^port=//p' "$log")
    if [ -n "$p" ]; then eval "${name}_port=$p"; return 0; fi
    sleep 0.1
  done
  echo "loop-echo: the $name server did not start:"; cat "$log"; exit 1
}

stop() {
  for p in $net_pid $uv_pid; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in $net_pid $uv_pid; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
trap stop EXIT

# run NAME ARGS...: one loadgen run against server NAME, its line kept.
run() {
  name=$1; shift
  eval "pid=\$${name}_pid port=\$${name}_port"
  line=$($client_pin "$loadgen" "$@" -p "$port" --server-pid "$pid")
  echo "server=$name $line" | tee -a "$raw"
}

# median NAME MODE CONNS KEY: the median of KEY over the matching lines.
median() {
  grep "^server=$1 mode=$2 conns=$3 " "$raw" | tr ' ' '\n' | sed -n "s/^$4=//p" |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk "BEGIN { if ($2 + 0 == 0) print \"nan\"; else printf \"%.2f\", $1 / $2 }"; }

start net env NET_FAS="$builddir/net.fas" C10K_ECHO_PORT=0 "$ECL" --norc \
  --load "$builddir/examples/c10k-echo.fas"
start uv "$builddir/bench/uv-echo" 0

echo "== loop-echo: memory per idle connection ($IDLE connections, fresh servers)"
run net idle -c "$IDLE" --hold 1 -t 60
run uv idle -c "$IDLE" --hold 1 -t 60

for c in $CONNS; do
  echo "== loop-echo: echo, $c connections, $ROUNDS rounds of $DURATION s, net and C alternately"
  for r in $(seq 1 "$ROUNDS"); do
    run net echo -c "$c" -d "$DURATION" -t 90
    run uv echo -c "$c" -d "$DURATION" -t 90
  done
done

echo "== loop-echo: accept (connect, one request, reset), $ACCEPTS cycles 16 at a time, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
  run net accept -c 16 -n "$ACCEPTS" -t 90
  run uv accept -c 16 -n "$ACCEPTS" -t 90
done

{
  echo
  echo "loop-echo results ($(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $cpus CPUs, medians of $ROUNDS)"
  printf '%-22s %12s %12s %7s %14s %14s %7s\n' scenario "net req/s" "C req/s" ratio \
    "net user us/req" "C user us/req" ratio
  for c in $CONNS; do
    nt=$(median net echo "$c" ops_per_s); ut=$(median uv echo "$c" ops_per_s)
    nc=$(median net echo "$c" user_us_per_op); uc=$(median uv echo "$c" user_us_per_op)
    printf '%-22s %12s %12s %7s %14s %14s %7s\n' "echo $c" "$nt" "$ut" "$(ratio "$nt" "$ut")" \
      "$nc" "$uc" "$(ratio "$nc" "$uc")"
  done
  nt=$(median net accept 16 ops_per_s); ut=$(median uv accept 16 ops_per_s)
  nc=$(median net accept 16 user_us_per_op); uc=$(median uv accept 16 user_us_per_op)
  printf '%-22s %12s %12s %7s %14s %14s %7s\n' "accept (conn/s)" "$nt" "$ut" "$(ratio "$nt" "$ut")" \
    "$nc" "$uc" "$(ratio "$nc" "$uc")"
  nm=$(median net idle "$IDLE" rss_per_conn_b); um=$(median uv idle "$IDLE" rss_per_conn_b)
  printf '%-22s %12s %12s %7s\n' "idle RSS B/conn" "$nm" "$um" "$(ratio "$nm" "$um")"
  echo "targets: throughput ratio >= 0.9, user CPU per request ratio <= 2, idle <= 1024 B/conn"
} | tee "$out/loop-echo.txt"
