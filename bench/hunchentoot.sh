#!/bin/sh
# hunchentoot.sh -- Hunchentoot over net against Hunchentoot over ECL's
# bundled sockets (usocket's own ECL backend), in the same run: requests per
# second for /hello (a handler's short text) and /static.bin (a 1 MiB file),
# measured by wrk over keep-alive connections, and /hello with a connection
# per request; the servers take turns.  All are examples/hunchentoot.lsp,
# its easy acceptor with a thread per connection ("net", "bundled": only
# HUNCHENTOOT_BACKEND differs) or, over net, with net's thread pool as its
# taskmaster ("pool").
# Called by make bench and make bench-hunchentoot with srcdir, builddir and
# ECL set.  Environment: ROUNDS (3), DURATION (seconds, 3), CONNS (4).
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
CONNS=${CONNS:-4}
out=$builddir/bench/results
mkdir -p "$out"
raw=$out/hunchentoot.raw
: >"$raw"
ASDF_OUTPUT_TRANSLATIONS=${ASDF_OUTPUT_TRANSLATIONS:-/:$builddir/asdf-cache/}
export ASDF_OUTPUT_TRANSLATIONS

command -v wrk >/dev/null || { echo "hunchentoot.sh: wrk is not installed (Debian wrk); not run"; exit 0; }

# With two CPUs: the server on CPU 0, wrk on CPU 1.
cpus=$(nproc)
if [ "$cpus" -ge 2 ] && command -v taskset >/dev/null; then
  server_pin="taskset -c 0"; client_pin="taskset -c 1"
else
  server_pin=""; client_pin=""
fi

net_pid=; bundled_pid=; pool_pid=

# start NAME: start the example as server NAME; sets NAME_pid, NAME_port.
start() {
  log=$out/hunchentoot-$1.out
  rm -f "$log"                  # else a port of an earlier run may be read
  backend=net; taskmaster=thread
  case $1 in bundled) backend=bundled ;; pool) taskmaster=pool ;; esac
  env NET_FAS="$builddir/net.fas" HUNCHENTOOT_PORT=0 HUNCHENTOOT_BACKEND="$backend" \
    HUNCHENTOOT_TASKMASTER="$taskmaster" \
    $server_pin "$ECL" --norc --load "$srcdir/examples/hunchentoot.lsp" >"$log" 2>&1 </dev/null &
  eval "${1}_pid=$!"
  for _ in $(seq 1 6000); do           # first use compiles the libraries: up to 10 minutes
    p=$(sed -n 's/^port=//p' "$log")
    if [ -n "$p" ]; then eval "${1}_port=$p"; return 0; fi
    kill -0 "$(eval echo \$${1}_pid)" 2>/dev/null || break
    sleep 0.1
  done
  echo "hunchentoot.sh: the $1 server did not start:"; cat "$log"; exit 1
}

stop() {
  for p in $net_pid $bundled_pid $pool_pid; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in $net_pid $bundled_pid $pool_pid; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
trap stop EXIT

# run NAME PATH [close]: one wrk run against server NAME, its requests per
# second kept; with "close", a connection per request.
run() {
  eval "port=\$${1}_port"
  if [ "${3:-}" = close ]; then header="Connection: close"; else header="X-Keep: alive"; fi
  rps=$($client_pin wrk -t 1 -c "$CONNS" -d "${DURATION}s" --timeout 10s -H "$header" \
          "http://127.0.0.1:$port$2" | sed -n 's/^Requests\/sec: *//p')
  echo "server=$1 path=$2${3:+-$3} rps=${rps:-0}" | tee -a "$raw"
}

median() {
  grep "^server=$1 path=$2 " "$raw" | sed -n 's/.* rps=//p' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk "BEGIN { if ($2 + 0 == 0) print \"nan\"; else printf \"%.2f\", $1 / $2 }"; }

start net
start bundled
start pool

for case in /hello /static.bin "/hello close"; do
  echo "== hunchentoot: $case, $CONNS connections, $ROUNDS rounds of $DURATION s, the servers in turn"
  for r in $(seq 1 "$ROUNDS"); do
    for server in net bundled pool; do run $server $case; done
  done
done

{
  echo
  echo "hunchentoot results ($(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $cpus CPUs, medians of $ROUNDS)"
  printf '%-20s %12s %14s %7s %16s %7s\n' path "net req/s" "bundled req/s" ratio "net+pool req/s" ratio
  for path in /hello /static.bin /hello-close; do
    n=$(median net "$path"); b=$(median bundled "$path"); p=$(median pool "$path")
    printf '%-20s %12s %14s %7s %16s %7s\n' "$path" "$n" "$b" "$(ratio "$n" "$b")" "$p" "$(ratio "$p" "$b")"
  done
  echo "ratios: over the bundled backend; /hello-close: a connection per request"
} | tee "$out/hunchentoot.txt"
