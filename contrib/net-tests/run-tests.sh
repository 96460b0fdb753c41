#!/bin/sh
# run-tests.sh -- run every suite of net against the build tree and print
# one summary line, "N passed, N failed".  Called by make check with
# srcdir, builddir and ECL in the environment.
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
passed=0
failed=0
log=$builddir/test-suite.log
# Libraries that ASDF compiles for the tests and examples (usocket, cl+ssl,
# Drakma, Hunchentoot...) go to the build tree, not to the user's cache,
# which another ECL compiling the same library at the same time could leave
# inconsistent.
ASDF_OUTPUT_TRANSLATIONS=${ASDF_OUTPUT_TRANSLATIONS:-/:$builddir/asdf-cache/}
export ASDF_OUTPUT_TRANSLATIONS
: > "$log"

# count PASSED FAILED: add to the totals.
count() { passed=$((passed + $1)); failed=$((failed + $2)); }

# suite NAME COMMAND...: run it, show its output, and if it printed no
# count line of its own, count it as one test by its exit status.
suite() {
  name=$1; shift
  echo "== $name"
  out=$("$@" 2>&1 </dev/null); status=$?
  printf '%s\n' "$out" | tee -a "$log" | grep -v '^;;;' | tail -n 40
  line=$(printf '%s\n' "$out" | grep -E '^((C|lisp) suites|C10K|usocket|bench programs|faults|TLS|HTTP): [0-9]+ ' | tail -n 1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^[^:]*: ([0-9]+) .*/\1/')
    f=$(echo "$line" | sed -E 's/^[^:]*: [0-9]+ [a-z]+, ([0-9]+) .*/\1/')
    # "N run" counts failing tests too; "N checks" counts passed ones only.
    case $line in *" run, "*) p=$((p - f)) ;; esac
    [ "$status" -ne 0 ] && [ "$f" -eq 0 ] && f=1
    count "$p" "$f"
  elif [ "$status" -eq 0 ]; then
    count 1 0
  else
    echo "FAILED: $name (exit $status)"
    count 0 1
  fi
}

suite "C suites of the core (Check)" "$builddir/contrib/net-tests/c/check_net"

suite "C suites of the glue (Check, booting ECL)" "$builddir/contrib/net-tests/c/check_glue"

for target in address cmsg options; do
  suite "fuzz target $target over its corpus (fuzz/corpus/$target)" \
    "$builddir/fuzz/${target}_replay" "$srcdir/fuzz/corpus/$target"
done

suite "Lisp suites (FiveAM)" env NET_BUILDDIR="$builddir/" \
  NET_TESTDIR="$srcdir/contrib/net-tests/lsp/" \
  "$ECL" --norc --load "$srcdir/contrib/net-tests/lsp/run.lsp"

suite "example: embed (C program embedding ECL with libnet.a)" \
  "$builddir/examples/embed/embed"

for example in echo tour http dns-client threaded-echo evented-echo http-client http-server unix-echo proxy multicast-chat c10k-echo usocket-echo tls drakma hunchentoot; do
  suite "example: $example.lsp" env NET_FAS="$builddir/net.fas" \
    "$ECL" --norc --load "$srcdir/examples/$example.lsp" --eval '(ext:quit 0)'
done

suite "C10K: examples/c10k-echo.lsp with 10,000 connections from bench/loadgen; EMFILE" \
  env builddir="$builddir" ECL="$ECL" sh "$srcdir/contrib/net-tests/c10k.sh"

suite "usocket over net: usocket's own suite (over net and over its bundled backend) and net-usocket's tests, in a network namespace" \
  env srcdir="$srcdir" builddir="$builddir" ECL="$ECL" sh "$srcdir/contrib/net-tests/usocket/run.sh"

suite "bench programs: loadgen's modes against the C reference servers and bench/servers/, briefly" \
  env srcdir="$srcdir" builddir="$builddir" ECL="$ECL" sh "$srcdir/contrib/net-tests/bench-smoke.sh"

suite "faults: the server helpers out of descriptors (EMFILE), in a child with a low limit" \
  env builddir="$builddir" ECL="$ECL" python3 "$srcdir/contrib/net-tests/faults.py"

# cl+ssl, Drakma and Hunchentoot over net, with real peers (openssl,
# curl, python3); each prints "NAME: N passed, N failed".
# A crash sends ECL to its toplevel, which then quits with status 0 at the
# end of its input: a run without its summary line fails.
web() {
  out=$("$@" 2>&1); status=$?
  printf '%s\n' "$out"
  printf '%s\n' "$out" | grep -qE '^(TLS|HTTP): [0-9]+ passed' ||
    { echo "no summary line: the program stopped early"; return 1; }
  return $status
}
for t in tls http; do
  suite "with other libraries: contrib/net-tests/web/$t-tests.lsp" web env NET_BUILDDIR="$builddir/" \
    NET_SRCDIR="$srcdir/" "$ECL" --norc --load "$srcdir/contrib/net-tests/web/$t-tests.lsp"
done

# The manual's table of error classes is generated from errors.def: it must
# not drift from it.
suite "manual: doc/errors-table.texi matches src/c/net/errors.def" \
  sh -c "sh '$srcdir/doc/errors-table.sh' '$srcdir/src/c/net/errors.def' | cmp - '$srcdir/doc/errors-table.texi'"

# Every exported symbol of NET has exactly one entry in the manual.
suite "manual: one entry per exported symbol of NET" env NET_FAS="$builddir/net.fas" \
  NET_SRCDIR="$srcdir/" "$ECL" --norc --load "$srcdir/contrib/net-tests/checks/manual-entries.lsp"

# Every function, macro, generic function and primitive is defined once.
suite "sources: each function of NET and NET-SYS defined once" env NET_FAS="$builddir/net.fas" \
  NET_SRCDIR="$srcdir/" "$ECL" --norc --load "$srcdir/contrib/net-tests/checks/single-definitions.lsp"

# A special variable used outside its defining file is special there when
# that file compiles (ECL's DEFVAR is special at compile time in its own
# file only: a LET elsewhere would bind it lexically).
suite "sources: each special variable is special where it is used" env NET_FAS="$builddir/net.fas" \
  NET_SRCDIR="$srcdir/" "$ECL" --norc --load "$srcdir/contrib/net-tests/checks/special-variables.lsp"

# A function declaimed inline is inlined where it is called (ECL's DECLAIM
# INLINE holds in its own file only: elsewhere the call goes through the
# symbol).
suite "sources: each inline function is inlined where it is called" env NET_FAS="$builddir/net.fas" \
  NET_SRCDIR="$srcdir/" "$ECL" --norc --load "$srcdir/contrib/net-tests/checks/inline-functions.lsp"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
