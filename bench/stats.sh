# stats.sh -- the statistics of the bench tables, sourced by bench/compare.sh,
# bench/loop-echo.sh and bench/profile.sh (SERIES, a key's values).  A
# figure's median over the rounds, and a ratio to C as the median over the
# rounds of the two figures of the same round:
# the servers run alternately, so a round's two runs share the machine's
# state, and a drift across the run (a shared machine slowing down or
# speeding up) cancels in each round's ratio where it would not between
# two medians taken over different rounds.

# series KEY: KEY's value on each line of the standard input, in order, on
# one line; "-" for a line without it (a server that died).
series() {
  awk -v k="$1" '{ v = "-"
                   for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) v = substr($i, length(k) + 2)
                   printf "%s ", v }'
}

# median_of: the median of the numbers on the standard input, one a line
# ("-" skipped); "-" if there is none.
median_of() {
  grep -v '^-$' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# median_series SERIES: the median of a series.
median_series() {
  echo "$1" | tr ' ' '\n' | grep -v '^$' | median_of
}

# paired_ratio SERIES BASE: the median over the rounds of SERIES's figure
# over BASE's figure of the same round, to two decimals; "-" if no round
# has both.
paired_ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { n = split(a, x, " "); m = split(b, y, " ")
      for (i = 1; i <= n && i <= m; i++)
        if (x[i] != "-" && y[i] != "-" && y[i] + 0 != 0) print x[i] / y[i] }' |
    median_of | awk '{ if ($1 == "-") print "-"; else printf "%.2f\n", $1 }'
}

# ratio A B: A / B to two decimals; "-" if either is "-" or B is 0.  For
# figures quantized coarsely (user CPU in 10 ms ticks: a C round may hold
# two), the ratio of the medians, which pool the rounds, is the steadier.
ratio() {
  case "$1$2" in
    *-*) echo "-" ;;
    *) awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f\n", a / b }' ;;
  esac
}
