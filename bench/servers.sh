# servers.sh -- how each benchmark server starts; sourced by bench/compare.sh
# and contrib/net-tests/bench-smoke.sh, with builddir and ECL set.

# server_exec NAME MODE [WRAPPER...]: become server NAME serving MODE (echo,
# discard or udp), its command run by the WRAPPER words (prlimit,
# taskset...) if any.  Call it in the background (&): it execs, so $! is
# the server's process id.  The server prints "port=N" once listening.
server_exec() {
  name=$1 mode=$2; shift 2
  flag=; [ "$mode" = echo ] || flag=--$mode
  case $name in
    uv) exec "$@" "$builddir/bench/uv-echo" $flag 0 ;;
    c-threads) exec "$@" "$builddir/bench/thread-echo" $flag 0 ;;
    ecl-*) exec "$@" env ECL_BENCH_SERVER="$name" NET_BENCH_MODE="$mode" \
             "$ECL" --norc --load "$builddir/bench/servers/ecl-servers.fas" ;;
    *) exec "$@" env NET_FAS="$builddir/net.fas" \
         NET_BENCH_C10K_ECHO="$builddir/examples/c10k-echo.fas" \
         NET_BENCH_SERVER="$name" NET_BENCH_MODE="$mode" \
         "$ECL" --norc --load "$builddir/bench/servers/net-servers.fas" ;;
  esac
}

# server_port LOG PID: wait (30 s at most) until server PID has printed
# "port=N" in LOG, and print N; return 1 if it died or did not.
server_port() {
  for _ in $(seq 1 300); do
    p=$(sed -n 's/^port=//p' "$1")
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
