#!/bin/sh
# The continuous-training loop on the synthetic fleet, end to end, against a
# PostgreSQL database (plain PostgreSQL or TimescaleDB), served the way
# production serves it: `score` predicts on live readings whose failures are
# not known yet, and `monitor` judges those predictions once the failures are.
#
#   MODAX_DB_DSN=postgres://user@host/db examples/continuous-training.sh [DIR]
#
#  1. 40 days of a fleet's history (readings and failures) go into the
#     database (collect + db load);
#  2. the production pipeline (collect from postgres) trains a model with a
#     calibrated 90 % interval and deploys it;
#  3. 14 new days arrive one at a time from a drifted fleet (the temperature
#     sensors were recalibrated, +15 °C, on day 40): each day the simulator's
#     readings of that day go into sensor_data, and at the end of the day
#     `score --to-db` records every device's RUL and interval in
#     rul_predictions — from the readings alone: no failure of the new days
#     is in the database yet (the maintenance log of each day is held back);
#  4. the held-back failures of the 14 days land in failure_events;
#  5. monitor, as of the end of those days, judges the predictions whose
#     outcome is now known (realized MAE, interval coverage), finds the drift,
#     retrains from the database and deploys the new model (--to-db: one row
#     in monitor_results; --out: the report in monitor.json).
#
# MODAX_ML selects the binary (default: modax-ml on PATH). A test runs this
# script on PostgreSQL and on TimescaleDB (TestContinuousTraining in
# examples/run_test.go).
set -eu
dir=${1:-ct-demo}
ml=${MODAX_ML:-modax-ml}
mkdir -p "$dir"
cd "$dir"
say() { printf '\n== %s\n' "$*" >&2; }

cat >ct.yaml <<'YAML'
collect: {source: postgres}
validate: {window: 24}
features: {window: 24, stride: 4}
train: {hidden_size: 64, num_layers: 2, fc_size: 32, dropout: 0.1, epochs: 20, batch_size: 64, lr: 0.003, patience: 5}
deploy: {max_mae: 15}
monitor: {lookback: 14d, min_outcomes: 20}
score: {source: postgres}
YAML
cat >drifted-fleet.yaml <<'YAML'
collect:
  synthetic:
    drift: {from: "2024-02-10T00:00:00Z", offset: {temperature_mean: 15}}
YAML
fleet="--source synthetic --devices 20 --interval 30m --seed 42"

say "1. 40 days of history into the database"
"$ml" db migrate
"$ml" collect $fleet --days 40 -o history/readings.parquet --failures-out history/failures.parquet
"$ml" db load --readings history/readings.parquet --failures history/failures.parquet

say "2. the production pipeline deploys a model"
"$ml" pipeline run --config ct.yaml

say "3. 14 new days, one at a time: readings in, every device scored, failures held back"
# The simulator runs up to the end of each day (it is the same fleet whatever
# --days: a longer run only appends), so the day's failures file holds what
# the maintenance log recorded that day and nothing of the future. It is
# held back: score sees readings only.
for d in 10 11 12 13 14 15 16 17 18 19 20 21 22 23; do
	day=2024-02-$d
	mkdir -p "live/$day"
	"$ml" --quiet collect --config drifted-fleet.yaml $fleet --days $((d - 10 + 41)) --from "$day" \
		-o "live/$day/readings.parquet" --failures-out "live/$day/failures.parquet" >"live/$day.log"
	"$ml" --quiet db load --readings "live/$day/readings.parquet" --failures '' >>"live/$day.log"
	"$ml" --quiet score --config ct.yaml --at "2024-02-$((d + 1))T00:00:00Z" --to-db >"live/$day/scores.txt"
	sed -n 1p "live/$day/scores.txt"
done
"$ml" score --config ct.yaml --at 2024-02-24T00:00:00Z --device dev-001,dev-002,dev-003

say "4. the maintenance log of those days lands"
for d in 10 11 12 13 14 15 16 17 18 19 20 21 22 23; do
	"$ml" --quiet db load --readings '' --failures "live/2024-02-$d/failures.parquet"
done

say "5. monitor as of the end of the new days: outcomes judged, drift found, retrain, deploy"
"$ml" monitor --config ct.yaml --at 2024-02-24T00:00:00Z --retrain --to-db --out monitor.json
"$ml" deploy list
