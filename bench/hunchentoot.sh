#!/bin/sh
# hunchentoot.sh -- Hunchentoot over net against Hunchentoot over ECL's
# bundled sockets (usocket's own ECL backend), in the same run: requests per
# second for /hello (a handler's short text) and /static.bin (a 1 MiB file),
# measured by wrk over keep-alive connections, the two servers taking turns.
# Both are examples/hunchentoot.lsp, its easy acceptor (a thread per
# connection); only HUNCHENTOOT_BACKEND differs.
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

net_pid=; bundled_pid=

# start NAME: start the example with backend NAME; sets NAME_pid, NAME_port.
start() {
  log=$out/hunchentoot-$1.out
  env NET_FAS="$builddir/net.fas" HUNCHENTOOT_PORT=0 HUNCHENTOOT_BACKEND="$1" \
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
  for p in $net_pid $bundled_pid; do kill -TERM "$p" 2>/dev/null; done
  sleep 0.5
  for p in $net_pid $bundled_pid; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
trap stop EXIT

# run NAME PATH: one wrk run against server NAME, its requests per second kept.
run() {
  eval "port=\$${1}_port"
  rps=$($client_pin wrk -t 1 -c "$CONNS" -d "${DURATION}s" --timeout 10s "http://127.0.0.1:$port$2" |
          sed -n 's/^Requests\/sec: *//p')
  echo "server=$1 path=$2 rps=${rps:-0}" | tee -a "$raw"
}

median() {
  grep "^server=$1 path=$2 " "$raw" | sed -n 's/.* rps=//p' |
    sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk "BEGIN { if ($2 + 0 == 0) print \"nan\"; else printf \"%.2f\", $1 / $2 }"; }

start net
start bundled

for path in /hello /static.bin; do
  echo "== hunchentoot: $path, $CONNS connections, $ROUNDS rounds of $DURATION s, net and bundled alternately"
  for r in $(seq 1 "$ROUNDS"); do
    run net "$path"
    run bundled "$path"
  done
done

{
  echo
  echo "hunchentoot results ($(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $cpus CPUs, medians of $ROUNDS)"
  printf '%-16s %14s %16s %7s\n' path "net req/s" "bundled req/s" ratio
  for path in /hello /static.bin; do
    n=$(median net "$path"); b=$(median bundled "$path")
    printf '%-16s %14s %16s %7s\n' "$path" "$n" "$b" "$(ratio "$n" "$b")"
  done
} | tee "$out/hunchentoot.txt"
