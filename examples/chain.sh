#!/bin/sh
# The pipeline chained by hand: the stages one by one, as a CI job or a person
# would run them, with the config `modax-ml pipeline run` uses. With the same
# config and seed both produce the same files (readings, labels, windows,
# model weights, predictions, metrics): the test suite checks it
# (cmd/modax-ml/testdata/script/pipeline_chain.txtar).
#
#   examples/chain.sh [CONFIG] [DIR]     # default: examples/default.yaml, ./chain
#
# Every stage reads the default file names its predecessor wrote in DIR, so no
# path needs naming. MODAX_ML selects the binary (default: modax-ml on PATH).
set -eu

config=${1:-examples/default.yaml}
dir=${2:-chain}
ml=${MODAX_ML:-modax-ml}

mkdir -p "$dir"
run() {
	echo "+ modax-ml $*" >&2
	"$ml" --config "$config" --dir "$dir" "$@"
}

run collect
run validate
run label
run features
run train
run evaluate
run export
run deploy
