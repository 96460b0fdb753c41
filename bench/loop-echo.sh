#!/bin/sh
# loop-echo.sh -- the event loop's echo server (examples/c10k-echo.lsp,
# compiled) against the C libuv one (bench/uv-echo), driven alternately by
# bench/loadgen: memory per idle connection, echo at 100 and 10,000
# connections, then accept cycles, several rounds each; prints medians and
# ratios net/C (of the medians, and for throughput paired: bench/stats.sh).
# Called by make bench and make bench-loop with srcdir, builddir and ECL set.
# Environment: ROUNDS (3), CONNS ("100 10000"), DURATION (seconds, 3),
# IDLE (connections for the memory figure, 10000), ACCEPTS (accept cycles
# per round, 5000), REPORT_ONLY (1: no runs, the table again from the
# loop-echo.raw kept).
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
. "$srcdir/bench/stats.sh"
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
[ "${REPORT_ONLY:-0}" = 1 ] || : >"$raw"
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

# runs NAME MODE CONNS KEY: KEY over the matching lines, round by round.
runs() {
  grep "^server=$1 mode=$2 conns=$3 " "$raw" | series "$4"
}

# row LABEL MODE CONNS FIGURE [CPU-FIGURE]: a line of the table.
row() {
  n=$(runs net "$2" "$3" "$4") u=$(runs uv "$2" "$3" "$4")
  nt=$(median_series "$n") ut=$(median_series "$u")
  if [ $# -ge 5 ]; then
    nc=$(median_series "$(runs net "$2" "$3" "$5")") uc=$(median_series "$(runs uv "$2" "$3" "$5")")
    printf '%-22s %12s %12s %7s %7s %14s %14s %7s\n' "$1" "$nt" "$ut" "$(ratio "$nt" "$ut")" \
      "$(paired_ratio "$n" "$u")" "$nc" "$uc" "$(ratio "$nc" "$uc")"
  else
    printf '%-22s %12s %12s %7s\n' "$1" "$nt" "$ut" "$(ratio "$nt" "$ut")"
  fi
}

if [ "${REPORT_ONLY:-0}" != 1 ]; then
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
fi

{
  echo
  if [ "${REPORT_ONLY:-0}" = 1 ]; then
    echo "loop-echo results (the runs of bench/results/loop-echo.raw again, $(uname -m), $cpus CPUs, medians of $ROUNDS)"
  else
    echo "loop-echo results ($(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $cpus CPUs, medians of $ROUNDS)"
  fi
  printf '%-22s %12s %12s %7s %7s %14s %14s %7s\n' scenario "net req/s" "C req/s" ratio paired \
    "net user us/req" "C user us/req" ratio
  for c in $CONNS; do
    row "echo $c" echo "$c" ops_per_s user_us_per_op
  done
  row "accept (conn/s)" accept 16 ops_per_s user_us_per_op
  row "idle RSS B/conn" idle "$IDLE" rss_per_conn_b
  echo "ratio: of the medians; paired: the median over the rounds of each round's ratio"
  echo "targets: echo >= 0.95, accept >= 0.9, user CPU per request ratio <= 2, idle <= 1024 B/conn"
} | tee "$out/loop-echo.txt"
