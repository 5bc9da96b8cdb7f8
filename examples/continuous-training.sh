#!/bin/sh
# The continuous-training loop on the synthetic fleet, end to end, against a
# PostgreSQL database (plain PostgreSQL or TimescaleDB):
#
#   MODAX_DB_DSN=postgres://user@host/db examples/continuous-training.sh [DIR]
#
#  1. 40 days of a fleet's history go into the database (collect + db load);
#  2. the production pipeline (collect from postgres) trains and deploys a model;
#  3. 14 new days arrive from a drifted fleet: the temperature sensors were
#     recalibrated (+15 °C) on day 40;
#  4. the serving side records the deployed model's predictions on them in
#     rul_predictions (predict --to-db);
#  5. monitor, as of the end of those days, finds the drift and the worse
#     predictions, retrains in-process, and the new model is deployed.
#
# MODAX_ML selects the binary (default: modax-ml on PATH). A test runs this
# script (cmd/modax-ml/testdata/script/pipeline_monitor.txtar).
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

say "3. 14 new days from a drifted fleet"
"$ml" collect --config drifted-fleet.yaml $fleet --days 54 --from 2024-02-10 -o fresh/readings.parquet --failures-out fresh/failures.parquet
"$ml" db load --readings fresh/readings.parquet --failures fresh/failures.parquet

say "4. the deployed model's predictions on them, recorded in rul_predictions"
"$ml" label --readings fresh/readings.parquet --failures fresh/failures.parquet -o fresh/labeled.parquet
"$ml" features --labeled fresh/labeled.parquet -o fresh/windows.parquet --stats '' --window 24 --stride 4
"$ml" predict --model models/current/model.safetensors --windows fresh/windows.parquet -o fresh/predictions.parquet --to-db

say "5. monitor as of the end of the new days: drift found, retrain, deploy"
"$ml" monitor --config ct.yaml --at 2024-02-24T00:00:00Z --retrain
"$ml" deploy list
