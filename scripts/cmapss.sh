#!/bin/sh
# The C-MAPSS recipe: the standard protocol end to end on one subset, trained
# with SEEDS seeds; the last line printed is one JSON object
#   {"subset", "units", "rmse", "rmse_clipped", "score", "score_clipped", "seeds",
#    "rmse_per_seed", ..., "interval_level", "coverage", "interval_width", "coverage_per_seed", ...}
# with rmse and score against RUL_FD00x as NASA gives it (not clipped), rmse_clipped
# and score_clipped (PHM08, as FFVE scores) against the truth clipped at 125, means
# over the seeds (and *_std, their spread);
# coverage and interval_width (cycles) are those of the 90 % conformal interval
# (calibrated on the validation units by train, written by predict) on the test units'
# last windows, against the truth clipped at 125 (the model's target).
#
#   make cmapss CMAPSS_DIR=/data/cmapss SUBSET=FD001 SEEDS=5
#   CMAPSS_DIR=/data/cmapss SUBSET=FD004 SEEDS=3 scripts/cmapss.sh
#
# FD002 and FD004 mix six operating conditions: their sensors are normalised per
# condition (features --condition-columns setting_1,setting_2,setting_3), and their
# windows are shorter (20 and 15 cycles, as Li et al. 2018) because some test units
# have fewer than 30 cycles. WINDOW=n overrides; CONFIG, OUT and BIN name the config
# (examples/cmapss-fd001.yaml), the run folder (runs/cmapss-<subset>) and the binary,
# relative to the repository; SUMMARY the summary command (go run ./tools/cmapss-summary).
set -eu
: "${CMAPSS_DIR:?set CMAPSS_DIR to the folder holding train_FD00x.txt, test_FD00x.txt and RUL_FD00x.txt}"
SUBSET=${SUBSET:-FD001}
SEEDS=${SEEDS:-5}
BIN=${BIN:-bin/modax-ml}
SUMMARY=${SUMMARY:-go run ./tools/cmapss-summary}
CONFIG=${CONFIG:-examples/cmapss-fd001.yaml}
OUT=${OUT:-runs/cmapss-$SUBSET}
dir=$(cd "$CMAPSS_DIR" && pwd)
cd "$(dirname "$0")/.."
for f in "train_$SUBSET.txt" "test_$SUBSET.txt" "RUL_$SUBSET.txt"; do
	test -f "$dir/$f" || { echo "cmapss: $dir/$f not found" >&2; exit 2; }
done
cond=""
case $SUBSET in
FD002) WINDOW=${WINDOW:-20}; cond="--condition-columns setting_1,setting_2,setting_3" ;;
FD004) WINDOW=${WINDOW:-15}; cond="--condition-columns setting_1,setting_2,setting_3" ;;
*) WINDOW=${WINDOW:-30} ;;
esac

mkdir -p "$OUT"
m() { "$BIN" --config "$CONFIG" --quiet --log-format text -C "$OUT" "$@"; }
m collect --source "cmapss:$dir/train_$SUBSET.txt"
m collect --source "cmapss:$dir/test_$SUBSET.txt" --rul "$dir/RUL_$SUBSET.txt" -o test_readings.parquet --failures-out test_failures.parquet
m label
m label --readings test_readings.parquet --failures test_failures.parquet -o labeled_test.parquet
# shellcheck disable=SC2086 # $cond is empty or two words
m features --window "$WINDOW" $cond

metrics=""
seed=1
while [ "$seed" -le "$SEEDS" ]; do
	m train --seed "$seed" -o "model-s$seed.safetensors" --model-version "cmapss-$SUBSET-s$seed"
	m predict --model "model-s$seed.safetensors" -o "predictions-s$seed.parquet"
	m evaluate --predictions "predictions-s$seed.parquet" --model "model-s$seed.safetensors" \
		-o "metrics-s$seed.json" --report "report-s$seed.md" --html "report-s$seed.html" --plots-dir "plots-s$seed"
	metrics="$metrics $OUT/metrics-s$seed.json"
	seed=$((seed + 1))
done
# shellcheck disable=SC2086 # one argument per seed; SUMMARY may be several words
$SUMMARY -subset "$SUBSET" $metrics
