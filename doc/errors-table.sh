#!/bin/sh
# errors-table.sh -- print the manual's table of error classes from
# src/c/net/errors.def (doc/errors-table.texi is its output; make check
# fails when the two differ).  Usage: errors-table.sh errors.def
set -eu
echo "@c Generated from src/c/net/errors.def by doc/errors-table.sh: do not edit."
echo "@multitable @columnfractions .27 .2 .25 .28"
echo "@headitem Class @tab Parent @tab C code @tab Meaning"
sed -n 's/^NET_ERRNO(\([A-Z0-9_]*\), *"\([^"]*\)", *"\([^"]*\)", *"\([^"]*\)").*/@item @code{\2} @tab @code{\3} @tab @code{\1} @tab \4/p
s/^NET_OWN(\([A-Z0-9_]*\), *\(-[0-9]*\), *"\([^"]*\)", *"\([^"]*\)", *"\([^"]*\)").*/@item @code{\3} @tab @code{\4} @tab @code{NET_\1 (\2)} @tab \5/p' "$1"
echo "@end multitable"
