#!/bin/sh
# check-asan.sh -- make check-asan: the C core and the glue built with
# AddressSanitizer and UndefinedBehaviorSanitizer (and the Lisp layer's
# generated C too) into $builddir/asan/, then the Check suites of the core
# and the glue, the fuzz corpora, and the Lisp suites, run by ECL's top
# level linked with the sanitizers (asan-ecl.c), which loads the
# instrumented net.fas.  Any report fails the run.  Called by make with srcdir, builddir, CC, ECL and the
# flags of configure in the environment.  Ends with one line
# "asan: N passed, N failed".
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
out=$builddir/asan
SAN="-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined"
# C that includes ECL's headers: ECL's tagged objects are misaligned
# pointers by design (ECL_CONS_CAR of a tagged cons) and ecl_make_fixnum
# shifts negative numbers left; those two checks would only report ECL's
# representation, so they are off there and on for the core.
SAN_ECL="$SAN -fno-sanitize=alignment,shift-base"
# ECL's own handlers stay: it uses SIGSEGV for its stack guards and the
# collector's signals; a collected heap is no leak.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:handle_segv=0:allow_user_segv_handler=1:handle_abort=0
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS UBSAN_OPTIONS
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
die() { echo "FAILED: $*"; echo "asan: $passed passed, $((failed + 1)) failed"; exit 1; }

core="address error handle interface io local loop message multicast options resolver socket time version wait"
glue="address embed error handle init interface io loop message sockaddr multicast options poll resolver socket wait"
core_cpp="-D_GNU_SOURCE -I$srcdir/src/c/net/core-only -I$srcdir/src/c/net"
glue_cpp="-D_GNU_SOURCE -I$srcdir/src/c/net -I$srcdir/src/c/net/ecl"

# build LIB CPPFLAGS DIR FILES: objects of DIR/F.c into $out/LIB.a, with $flags
build() {
  lib=$1 cpp=$2 dir=$3; shift 3
  mkdir -p "$out/$lib"
  for f in "$@"; do
    $CC $flags -Wall -Wextra -fPIC $cpp $LIBUV_CFLAGS $EXTRA_CFLAGS -c "$dir/$f.c" \
      -o "$out/$lib/$f.o" || return 1
  done
  rm -f "$out/$lib.a" && ar cr "$out/$lib.a" "$out/$lib"/*.o
}

rm -rf "$out" && mkdir -p "$out"
flags=$SAN EXTRA_CFLAGS= build libnet-core "$core_cpp" "$srcdir/src/c/net" $core || die "building the core"
flags=$SAN_ECL EXTRA_CFLAGS=$ECL_CFLAGS build libnet-glue "$glue_cpp" "$srcdir/src/c/net/ecl" $glue || die "building the glue"

t=$srcdir/contrib/net-tests/c
$CC $SAN -Wall -Wextra $core_cpp $CHECK_CFLAGS -o "$out/check_net" \
  $t/check_main.c $t/check_util.c $t/check_error.c $t/check_address.c $t/check_resolver.c \
  $t/check_socket.c $t/check_handle.c $t/check_io.c $t/check_local.c $t/check_loop.c \
  $t/check_message.c $t/check_options.c $t/check_multicast.c $t/check_interface.c \
  $t/check_wait.c "$out/libnet-core.a" $LIBUV_LIBS $CHECK_LIBS || die "building check_net"
$CC $SAN_ECL -Wall -Wextra $glue_cpp $ECL_CFLAGS $CHECK_CFLAGS -o "$out/check_glue" \
  $t/ecl/check_main.c $t/ecl/check_util.c $t/ecl/check_error.c $t/ecl/check_sockaddr.c \
  $t/ecl/check_address.c "$out/libnet-glue.a" "$out/libnet-core.a" $LIBUV_LIBS $ECL_LIBS \
  $CHECK_LIBS || die "building check_glue"
for target in address cmsg options; do
  $CC $SAN -Wall -Wextra $core_cpp -o "$out/${target}_replay" "$srcdir/fuzz/${target}_fuzz.c" \
    "$srcdir/fuzz/replay.c" "$out/libnet-core.a" || die "building ${target}_replay"
done

# run NAME COMMAND...: one test, passed when it exits 0 and no sanitizer spoke.
run() {
  name=$1; shift
  log=$out/$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-').log
  "$@" > "$log" 2>&1 </dev/null; status=$?
  tail -n 3 "$log"
  if [ $status -eq 0 ] && ! grep -qE 'ERROR: AddressSanitizer|runtime error:' "$log"; then
    ok "$name"
  else
    grep -E -A12 'ERROR: AddressSanitizer|runtime error:' "$log" | head -40
    bad "$name (exit $status, log $log)"
  fi
}

run "C suites of the core" "$out/check_net"
run "C suites of the glue" "$out/check_glue"
for target in address cmsg options; do
  run "fuzz corpus $target" "$out/${target}_replay" "$srcdir/fuzz/corpus/$target"
done

# The Lisp layer: net.fas from the instrumented libraries and generated C.
lisp_files=
for f in $NET_LISP_FILES; do lisp_files="$lisp_files \"$f\""; done
$ECL --norc --eval "(defparameter cl-user::*net-build* (list :srcdir \"$srcdir/\" :builddir \"$out/\" :files (quote ($lisp_files)) :c-libraries (quote (\"$out/libnet-glue.a\" \"$out/libnet-core.a\")) :ld-flags (quote (\"-fsanitize=address,undefined\" $(for l in $LIBUV_LIBS; do printf '"%s" ' "$l"; done))) :cc-flags \"$SAN_ECL\"))" \
  --load "$srcdir/src/lsp/build.lsp" > "$out/net-build.log" 2>&1 || die "building net.fas (see $out/net-build.log)"
$CC $SAN_ECL $ECL_CFLAGS -o "$out/ecl" "$srcdir/contrib/net-tests/asan-ecl.c" $ECL_LIBS \
  || die "building ECL's top level with the sanitizers"
run "Lisp suites (FiveAM), in ECL linked with the sanitizers" \
  env ECL="$out/ecl" NET_BUILDDIR="$out/" NET_TESTDIR="$srcdir/contrib/net-tests/lsp/" \
  "$out/ecl" --norc --load "$srcdir/contrib/net-tests/lsp/run.lsp"

echo "asan: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
