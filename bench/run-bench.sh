#!/bin/sh
# run-bench.sh -- compile and run every bench/*.lsp against the build tree's
# net.fas.  Called by make bench with srcdir, builddir and ECL set.
set -eu
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=${builddir:-$(pwd)}
ECL=${ECL:-ecl}
out="$builddir/bench/results"
mkdir -p "$out"
for f in "$srcdir"/bench/*.lsp; do
  name=$(basename "$f" .lsp)
  echo "== bench: $name"
  "$ECL" --norc \
    --eval "(load \"$builddir/net.fas\")" \
    --eval '(require :cmp)' \
    --eval "(setf c::*user-cc-flags* \"-I$srcdir/src/c/net -I$srcdir/src/c/net/ecl -include netsys.h\")" \
    --eval "(let ((fas (compile-file \"$f\" :output-file \"$out/$name.fas\" :verbose nil :print nil))) (unless fas (ext:quit 1)) (load fas))" \
    --eval '(ext:quit 0)' </dev/null 2>&1 | grep -v '^;;;' | tee "$out/$name.txt"
done
