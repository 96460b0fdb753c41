#!/bin/sh
# compare.sh -- every scenario of the benchmarks against every server: the
# net servers (one per path) and ECL's own sockets module beside the C
# references (libuv, and blocking threads), in the same run, alternately,
# several rounds; prints the medians, their ratios to C libuv's, and for
# the main figure the median over the rounds of each round's ratio too
# (bench/stats.sh says why).
# Called by make bench and make bench-quick with srcdir, builddir and ECL set.
# Environment: QUICK (1: the short version), ROUNDS (3; quick 1), DURATION
# (seconds a run, 3; quick 1), CONNS (echo connections, "100 1000 10000";
# quick "100 1000"), IDLE (connections held for the memory figure, 10000;
# quick 1000), SERVERS (which, all by default), MODES ("echo discard udp"),
# REPORT_ONLY (1: no runs, the tables again from the compare.raw kept).
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
. "$srcdir/bench/servers.sh"
. "$srcdir/bench/stats.sh"
if [ "${QUICK:-0}" = 1 ]; then
  ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-1} CONNS=${CONNS:-100 1000} IDLE=${IDLE:-1000}
else
  ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-3} CONNS=${CONNS:-100 1000 10000} IDLE=${IDLE:-10000}
fi
SERVERS=${SERVERS:-uv c-threads loop loop-server blocking threaded stream ecl-threads ecl-serve-event}
MODES=${MODES:-echo discard udp}
loadgen=$builddir/bench/loadgen
out=$builddir/bench/results
mkdir -p "$out"
raw=$out/compare.raw
[ "${REPORT_ONLY:-0}" = 1 ] || : >"$raw"
nofile=$((IDLE > 10000 ? IDLE + 256 : 10256))

# With two CPUs: every server on CPU 0, the load generator on CPU 1
# (unpinned, a round trip flips between ~11 and ~40 us from run to run).
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin="taskset -c 0"; client_pin="taskset -c 1"
else
  server_pin=""; client_pin=""
fi

running=
stop_all() {
  for p in $running; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in $running; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  running=
}
trap stop_all EXIT

# var NAME: NAME as a shell variable name.
var() { echo "$1" | tr - _; }

# launch NAME MODE: start server NAME serving MODE (echo, discard, udp);
# sets pid_NAME and port_NAME (empty when it did not start).
launch() {
  v=$(var "$1") log=$out/compare-$1-$2.out
  rm -f "$log"                  # else a port of an earlier run may be read
  server_exec "$1" "$2" prlimit --nofile="$nofile:$nofile" $server_pin >"$log" 2>&1 </dev/null &
  p=$!
  running="$running $p"
  eval "pid_$v=$p port_$v="
  if port=$(server_port "$log" "$p"); then
    eval "port_$v=$port"
  else
    echo "compare: the $1 server ($2) did not start:"; grep -v '^;;;' "$log" | tail -5
  fi
}

# serves NAME SCENARIO: whether server NAME takes part in SCENARIO.  The C
# thread per connection stops at 1,000 connections; ECL's threads at 100
# (with 1,000 threads ECL runs out of heap, or its collector stops every
# thread for so long that clients time out); the threaded helper's pool
# (200 threads) at 100; serve-event (select(2), FD_SETSIZE) at 100; only
# the event loops hold the idle connections.
serves() {
  case $2 in
    echo-*) n=${2#echo-}
      case $1 in
        uv|loop|loop-server) return 0 ;;
        c-threads) [ "$n" -le 1000 ] ;;
        *) [ "$n" -le 100 ] ;;
      esac ;;
    idle) case $1 in uv|loop|loop-server) return 0 ;; *) return 1 ;; esac ;;
    udp) case $1 in loop-server|threaded|stream) return 1 ;; *) return 0 ;; esac ;;
    *) return 0 ;;
  esac
}

# args SCENARIO: loadgen's arguments for it.
args() {
  case $1 in
    pingpong) echo "pingpong -d $DURATION -t 60" ;;
    echo-*) echo "echo -c ${1#echo-} -d $DURATION -t 120" ;;
    accept) echo "accept -c 16 -d $DURATION -t 60" ;;
    idle) echo "idle -c $IDLE --hold 1 -t 120" ;;
    pump-64k) echo "pump -s 65536 -d $DURATION -t 60" ;;
    pump-1m) echo "pump -s 1048576 -d $DURATION -t 60" ;;
    udp) echo "udp -c 32 -d $DURATION -t 60" ;;
  esac
}

# run NAME SCENARIO: one loadgen run against server NAME, its line kept.
run() {
  v=$(var "$1")
  eval "pid=\$pid_$v port=\$port_$v"
  if [ -z "$port" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "server=$1 scenario=$2 status=dead" | tee -a "$raw"
    return
  fi
  line=$($client_pin "$loadgen" $(args "$2") -p "$port" --server-pid "$pid" 2>>"$out/compare.err")
  echo "server=$1 scenario=$2 status=$? $line" | tee -a "$raw"
}

# scenarios MODE: what is measured on the servers of MODE, idle first (it
# wants fresh servers) and accept last.
scenarios() {
  case $1 in
    echo) echo "idle pingpong $(for c in $CONNS; do printf 'echo-%s ' "$c"; done)accept" ;;
    discard) echo "pump-64k pump-1m" ;;
    udp) echo "udp" ;;
  esac
}

for mode in $MODES; do
  [ "${REPORT_ONLY:-0}" = 1 ] && break
  for s in $SERVERS; do
    [ "$mode" = udp ] && ! serves "$s" udp && continue
    launch "$s" "$mode"
  done
  for sc in $(scenarios "$mode"); do
    rounds=$ROUNDS; [ "$sc" = idle ] && rounds=1
    echo "== compare: $sc, $rounds round(s), the servers alternately"
    for _ in $(seq 1 "$rounds"); do
      for s in $SERVERS; do
        serves "$s" "$sc" && run "$s" "$sc"
      done
    done
  done
  stop_all
done

# runs NAME SCENARIO KEY: KEY over NAME's runs of SCENARIO, round by round.
runs() {
  grep "^server=$1 scenario=$2 " "$raw" | series "$3"
}

# faults NAME SCENARIO: errors and mismatches over those runs, plus the
# runs that failed (a non-zero exit, or the server dead).
faults() {
  grep "^server=$1 scenario=$2 " "$raw" | tr ' ' '\n' |
    awk -F= '$1 == "errors" || $1 == "mismatches" { n += $2 } $1 == "status" && $2 != "0" { n++ }
             END { printf "%d", n }'
}

# The figure of each scenario and its second figure (CPU of the server).
figure() {
  case $1 in
    idle) echo "rss_per_conn_b" ;;
    pump-*) echo "gb_per_s" ;;
    *) echo "ops_per_s" ;;
  esac
}
cpu_figure() {
  case $1 in
    idle) echo "cpu_hold_fraction" ;;
    pump-*) echo "server_cpu_s_per_gb" ;;
    *) echo "user_us_per_op" ;;
  esac
}

{
  echo
  if [ "${REPORT_ONLY:-0}" = 1 ]; then
    echo "compare (the runs of bench/results/compare.raw again, $(uname -m), $(nproc) CPUs, medians of $ROUNDS run(s))"
  else
    echo "compare ($(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), medians of $ROUNDS run(s) of ${DURATION} s)"
  fi
  echo "ratio: of the medians, to C libuv's (uv); paired: the median over the rounds of each round's ratio to uv's;"
  echo "errors: errors + mismatches + failed runs, summed"
  for mode in $MODES; do
    for sc in $(scenarios "$mode"); do
      f=$(figure "$sc") c=$(cpu_figure "$sc")
      echo
      printf '%-16s %-16s %12s %7s %7s %20s %7s %7s\n' "$sc" server "$f" ratio paired "$c" ratio errors
      base=$(runs uv "$sc" "$f")
      mbase=$(median_series "$base") cbase=$(median_series "$(runs uv "$sc" "$c")")
      for s in $SERVERS; do
        serves "$s" "$sc" || continue
        r=$(runs "$s" "$sc" "$f")
        m=$(median_series "$r") cm=$(median_series "$(runs "$s" "$sc" "$c")")
        e=$(faults "$s" "$sc")
        printf '%-16s %-16s %12s %7s %7s %20s %7s %7s\n' "" "$s" "$m" "$(ratio "$m" "$mbase")" \
          "$(paired_ratio "$r" "$base")" "$cm" "$(ratio "$cm" "$cbase")" "$e"
      done
    done
  done
} | tee "$out/compare.txt"
