#!/bin/sh
# run-bench.sh -- run every bench/*.lsp against the build tree's net.fas.
# Called by make bench with srcdir, builddir and ECL in the environment.
set -u
srcdir=$(cd "${srcdir:-.}" && pwd)
builddir=$(cd "${builddir:-.}" && pwd)
ECL=${ECL:-ecl}
status=0
for f in "$srcdir"/bench/*.lsp; do
  echo "== $(basename "$f")"
  NET_FAS="$builddir/net.fas" "$ECL" --norc --load "$f" --eval '(ext:quit 0)' </dev/null \
    2>&1 | grep -v '^;;;' || status=1
done
exit $status
