#!/bin/sh
# score end to end from a readings file, as cron runs it: wall time,
# devices/s, CPU time and peak RSS (/usr/bin/time -v) of
#   modax-ml score --readings readings.parquet --model model.safetensors
# for fleets of 10 000 and 40 000 devices (the design's LSTM 2×128, FC 64 on
# 5 sensors, window 50, 60 hourly readings per device; tools/benchmodel), so
# that the memory a fleet four times as large needs can be compared.
#
#   scripts/bench-score.sh      # DEVICES="10000 40000", ROUNDS=3 runs per fleet (medians), TAGS=openblas or empty
#
# Needs Go and GNU time (/usr/bin/time, Debian package time).
set -eu
cd "$(dirname "$0")/.."
DEVICES=${DEVICES:-"10000 40000"}
ROUNDS=${ROUNDS:-3}
TAGS=${TAGS-}
AT=2026-03-01T00:00:00Z
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x /usr/bin/time ] || { echo "bench-score: /usr/bin/time (GNU time) is missing: apt-get install time" >&2; exit 1; }

go build ${TAGS:+-tags "$TAGS"} -o "$tmp/modax-ml" ./cmd/modax-ml
printf '%-8s %-6s %9s %10s %9s %13s %12s\n' devices round wall_s devices/s cpu_s cpu_us/device peak_rss_MB
for n in $DEVICES; do
  go run ./tools/benchmodel -o "$tmp/$n" -features 5 -window 50 -devices "$n" -readings 60 -at "$AT"
  : >"$tmp/$n/rounds"
  i=0
  while [ "$i" -lt "$ROUNDS" ]; do
    i=$((i + 1))
    /usr/bin/time -v -o "$tmp/$n/time.txt" "$tmp/modax-ml" --quiet score --model "$tmp/$n/model.safetensors" \
      --readings "$tmp/$n/readings.parquet" --failures '' --at "$AT" --output json >"$tmp/$n/score.json"
    grep -q "\"devices\": $n," "$tmp/$n/score.json" || { echo "bench-score: score did not list $n devices" >&2; exit 1; }
    awk -v n="$n" -v i="$i" '
      /User time/ {u = $NF} /System time/ {s = $NF} /Maximum resident set size/ {rss = $NF}
      /Elapsed \(wall clock\)/ {k = split($NF, p, ":"); w = 0; for (j = 1; j <= k; j++) w = w * 60 + p[j]}
      END {printf "%-8s %-6s %9.2f %10.0f %9.2f %13.0f %12.1f\n", n, i, w, n / w, u + s, (u + s) * 1e6 / n, rss / 1024}' \
      "$tmp/$n/time.txt" | tee -a "$tmp/$n/rounds"
  done
  k=$(( (ROUNDS + 1) / 2 ))
  med() { awk -v c="$1" '{print $c}' "$tmp/$n/rounds" | sort -g | sed -n "${k}p"; }
  w=$(med 3) c=$(med 6) m=$(med 7)
  awk -v n="$n" -v w="$w" -v c="$c" -v m="$m" 'BEGIN {printf "%-8s %-6s %9.2f %10.0f %9s %13.0f %12.1f\n", n, "median", w, n / w, "", c, m}'
done
