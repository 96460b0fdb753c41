#!/bin/sh
# profile.sh -- where a server's instructions go, per operation, counted by
# callgrind: the figure behind a user-CPU ratio, split by who spends it
# (net's Lisp, its C glue and core, the server's own code, ECL's runtime,
# its collector, libuv, the C library), then the functions that spend most.
# Called by make bench-profile with srcdir, builddir and ECL set.
#
#   make bench-profile SCENARIO=echo-100 SERVERS="uv loop"
#
# SCENARIO: pingpong, echo-N (N connections), accept or udp (default
# pingpong).  SERVERS: the servers to profile, as compare.sh names them
# (default "uv loop").  TOP: how many functions to list (15).
#
# Each server runs under callgrind.  After a warm-up, callgrind dumps its
# counts (and zeroes them); the load generator makes a run of A
# operations, callgrind dumps again, a run of 3A follows and a third
# dump.  The figure is the difference of the last two dumps over the 2A
# operations between them, so that what every run costs once (its
# connections, the load generator's warm-up round) cancels out.
# Instruction counts do not vary with the machine's load; they are not
# time: after each system call both a C and a Lisp server run on cold
# caches (bench/RESULTS.md).
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
. "$srcdir/bench/servers.sh"
. "$srcdir/bench/stats.sh"
SCENARIO=${SCENARIO:-pingpong}
SERVERS=${SERVERS:-uv loop}
TOP=${TOP:-15}
loadgen=$builddir/bench/loadgen

for tool in valgrind callgrind_control; do
  command -v $tool >/dev/null || { echo "profile: $tool is needed (Debian: valgrind)"; exit 77; }
done

# The load generator's mode, arguments, warm-up and the two runs' sizes.
case $SCENARIO in
  pingpong) mode=echo gen="pingpong" warm="-r 500" a="-r 2000" b="-r 6000" ;;
  echo-*)
    n=${SCENARIO#echo-}
    case $n in ''|*[!0-9]*) echo "profile: echo-N, N a number of connections"; exit 2 ;; esac
    r=$((10000 / n)); [ "$r" -ge 2 ] || r=2
    mode=echo gen="echo -c $n" warm="-r 2" a="-r $r" b="-r $((3 * r))" ;;
  accept) mode=echo gen="accept" warm="-n 500" a="-n 2000" b="-n 6000" ;;
  udp) mode=udp gen="udp -c 16" warm="-r 200" a="-r 1000" b="-r 3000" ;;
  *) echo "profile: SCENARIO is pingpong, echo-N, accept or udp, not $SCENARIO"; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/net-profile.XXXXXX")
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  [ -n "${KEEP:-}" ] && echo "profile: kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# costs FILE: "COST<TAB>FILE:FUNCTION [OBJECT]" for each function of a
# callgrind dump, its self cost: the cost lines of its blocks, less those
# that follow a calls= line (what a call it made cost, its callee's).
# Names are compressed: "(id) name" the first time, "(id)" after.
costs() {
  awk '
    function nm(kind, s,   id) {
      s = substr(s, index(s, "=") + 1)
      if (s !~ /^\(/) return s
      id = substr(s, 2, index(s, ")") - 2)
      if (index(s, ") ")) names[kind, id] = substr(s, index(s, ") ") + 2)
      return names[kind, id]
    }
    /^(ob|cob)=/ { n = nm("ob", $0); if (/^ob/) ob = n; next }
    /^(fl|fi|fe|cfi|cfl)=/ { n = nm("fl", $0); if (/^fl/) fl = n; next }
    /^(fn|cfn)=/ { n = nm("fn", $0); if (/^fn/) cur = fl ":" n " [" ob "]"; next }
    /^calls=/ { skip = 1; next }
    /^[0-9+*-]/ { if (skip) skip = 0; else self[cur] += $2; next }
    END { for (f in self) if (self[f]) printf "%d\t%s\n", self[f], f }' "$1"
}

# group FUNCTION: who spends a function's instructions.
group() {
  case $1 in
    *pthread_getspecific*|*ecl_process_env*|*__tls_get_addr*) echo "ECL: thread lookup" ;;
    *libgc.so*) echo "ECL: collector" ;;
    *ecl_function_dispatch*|*_ecl_standard_dispatch*|*ecl_search_cache*|*cl_class_of*\
      |*cl_parse_key*|*cl_apply*|*APPLY*|*ecl_apply_from_stack_frame*|*ecl_stack_frame*)
      echo "ECL: calls and dispatch" ;;
    *libecl.so*|*/include/ecl/*) echo "ECL: other runtime" ;;
    *libuv.so*) echo "libuv" ;;
    *src/lsp/net/*) echo "net: Lisp" ;;
    *src/c/net/ecl/*) echo "net: C glue" ;;
    *src/c/net/*) echo "net: C core" ;;
    *bench/*|*examples/*) echo "server's own code" ;;
    *libc.so*|*ld-linux*) echo "C library" ;;
    *) echo "other" ;;
  esac
}

# profile NAME: one server's table.
profile() {
  name=$1 log=$work/$1.log out=$work/$1.cg
  server_exec "$name" "$mode" valgrind --tool=callgrind --trace-children=yes \
    --callgrind-out-file="$out.%p" >"$log" 2>&1 </dev/null &
  pid=$!
  if ! port=$(server_port "$log" "$pid"); then
    echo "profile: the $name server did not start:"; grep -v '^[;=]' "$log" | tail -5
    return 1
  fi
  "$loadgen" $gen $warm -p "$port" -t 300 >/dev/null
  callgrind_control -d "$pid" >/dev/null 2>&1
  # The load generator exits non-zero on any error or mismatch.
  la=$("$loadgen" $gen $a -p "$port" -t 300) ||
    { echo "profile: $name: the load generator failed: $la"; return 1; }
  callgrind_control -d "$pid" >/dev/null 2>&1
  lb=$("$loadgen" $gen $b -p "$port" -t 300) ||
    { echo "profile: $name: the load generator failed: $lb"; return 1; }
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=
  n=$(printf '%s\n%s\n' "$la" "$lb" | series ops | awk '{ print $2 - $1 }')
  d1=$(ls "$out".*.2 2>/dev/null | head -1) d2=$(ls "$out".*.3 2>/dev/null | head -1)
  [ -n "$d1" ] && [ -n "$d2" ] || { echo "profile: $name: no callgrind dump"; return 1; }
  costs "$d1" >"$work/a" && costs "$d2" >"$work/b"
  # The difference per operation, by function.
  awk -F '\t' -v n="$n" '
    function out(d, f) { if (d > 0.05 || d < -0.05) printf "%.1f\t%s\n", d, f }
    FNR == NR { a[$2] = $1; next }
    { out(($1 - a[$2]) / n, $2); seen[$2] = 1 }
    END { for (f in a) if (!(f in seen)) out(-a[f] / n, f) }
  ' "$work/a" "$work/b" | sort -t "$(printf '\t')" -k1,1 -g -r >"$work/$name.per-op"
  while IFS="$(printf '\t')" read -r c f; do
    printf '%s\t%s\n' "$c" "$(group "$f")"
  done <"$work/$name.per-op" | awk -F '\t' '{ g[$2] += $1; t += $1 }
    END { for (k in g) if (g[k] >= 0.5 || g[k] <= -0.5)
            printf "%f\t  %-24s %8.0f %5.1f%%\n", g[k], k, g[k], 100 * g[k] / t
          printf "total\t%.0f\n", t }' >"$work/$name.groups"
  total=$(sed -n 's/^total\t//p' "$work/$name.groups")
  echo "$name $total" >>"$work/totals"
  echo "== $name, $SCENARIO: instructions per operation ($n operations)"
  grep -v '^total' "$work/$name.groups" | sort -g -r | cut -f2-
  printf '  %-24s %8s\n' total "$total"
  echo "  the $TOP functions that spend most:"
  head -n "$TOP" "$work/$name.per-op" | awk -F '\t' '{
    f = $2; sub(/ \[.*\]$/, "", f); sub(/^.*\//, "", f); printf "  %8.1f  %s\n", $1, f }'
}

for s in $SERVERS; do
  profile "$s" || exit 1
done
if [ "$(wc -l <"$work/totals")" -gt 1 ]; then
  echo "== $SCENARIO: total instructions per operation, against $(head -n 1 "$work/totals" | cut -d' ' -f1)'s"
  awk 'NR == 1 { base = $2 } { printf "  %-12s %8.0f  %5.2fx\n", $1, $2, $2 / base }' "$work/totals"
fi
