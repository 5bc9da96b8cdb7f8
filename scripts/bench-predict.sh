#!/bin/sh
# Time per batch (1 to 1024 windows, one thread; 256 on every core) of the native
# forward pass (nn.Predictor, the path `modax-ml predict` runs) next to ONNX
# Runtime (npm onnxruntime-node, one intra-op thread) on the exported model,
# for the design's architecture (LSTM 2×128, FC 64) on 14 features × 30 steps.
#
#   scripts/bench-predict.sh    # ROUNDS=3 turns of each engine, BENCHTIME=3s per Go case, ORT_SECONDS=3 per ORT case,
#                               # WINDOWS=20000 per split for the end-to-end `modax-ml predict` run
#
# Needs Go, node and tools/interop/node_modules (ONNXRUNTIME_NODE_INSTALL=skip npm ci there).
set -eu
cd "$(dirname "$0")/.."
BENCHTIME=${BENCHTIME:-3s}
ORT_SECONDS=${ORT_SECONDS:-3}
ROUNDS=${ROUNDS:-3}
BATCHES=1,4,16,64,256,1024
WINDOWS=${WINDOWS:-20000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

go run ./tools/benchmodel -o "$tmp" -windows "$WINDOWS"
go build -o "$tmp/modax-ml" ./cmd/modax-ml
go test -c -o "$tmp/infer.test" ./internal/infer
# Native and ONNX Runtime take turns, ROUNDS times, so that both see the same
# load on a shared machine; the table gives the median of the rounds.
: >"$tmp/go.txt"
: >"$tmp/ort.txt"
i=0
while [ "$i" -lt "$ROUNDS" ]; do
  i=$((i + 1))
  "$tmp/infer.test" -test.run '^$' -test.bench 'BenchmarkNative' -test.benchtime "$BENCHTIME" >>"$tmp/go.txt"
  node tools/interop/ort_run.js bench "$tmp/model.onnx" "$BATCHES" "$ORT_SECONDS" 30 >>"$tmp/ort.txt"
done

node - "$tmp/go.txt" "$tmp/ort.txt" <<'JS'
const fs = require('fs');
const runs = new Map(); // engine|threads|batch -> ms per batch, one per round
const add = (engine, threads, batch, ms) => {
  const k = `${engine}|${threads}|${batch}`;
  if (!runs.has(k)) runs.set(k, { engine, threads, batch, ms: [] });
  runs.get(k).ms.push(ms);
};
// BenchmarkNative/batch=256/workers=1-2   20   41441000 ns/op   41.20 median-ms/op   6177 windows/s ...
// Both engines report the median time of one call (a mean would also charge
// the calls that other jobs on the machine preempt).
for (const l of fs.readFileSync(process.argv[2], 'utf8').split('\n')) {
  const m = l.match(/^BenchmarkNative\/batch=(\d+)\/workers=(\d+)-\d+\s.*?\s([\d.]+) median-ms\/op/);
  if (m) add('native (nn.Predictor)', +m[2], +m[1], +m[3]);
}
// {"runtime":"onnxruntime-node 1.30.0","threads":1,"dims":[1,30,14],...,"median_ms":0.2,...}
for (const l of fs.readFileSync(process.argv[3], 'utf8').trim().split('\n')) {
  const r = JSON.parse(l);
  add(r.runtime, r.threads, r.dims[0], r.median_ms);
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); const n = s.length; return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const rows = [...runs.values()].map((r) => ({ ...r, med: median(r.ms) }));
console.log('engine'.padEnd(26), 'threads'.padStart(7), 'batch'.padStart(6), 'ms/batch'.padStart(10), 'windows/s'.padStart(10), ' rounds (ms)');
for (const r of rows) {
  console.log(r.engine.padEnd(26), String(r.threads).padStart(7), String(r.batch).padStart(6),
    r.med.toFixed(3).padStart(10), Math.round(r.batch / (r.med / 1000)).toString().padStart(10),
    ' ' + r.ms.map((v) => v.toFixed(3)).join(' '));
}
const one = (e, b) => rows.find((r) => r.engine.startsWith(e) && r.threads === 1 && r.batch === b);
for (const b of [1, 4, 16, 64, 256, 1024]) {
  const n = one('native', b), o = one('onnxruntime', b);
  if (!n || !o) continue;
  const per = n.ms.map((v, i) => v / o.ms[i]).filter((v) => Number.isFinite(v));
  console.log(`native / ONNX Runtime time, batch ${b}, one thread: ${(n.med / o.med).toFixed(2)}× (medians; per round ${per.map((v) => v.toFixed(2)).join(' ')})`);
}
JS

# End to end: read windows.parquet, predict every split (batch 256, all cores), write predictions.
start=$(date +%s.%N)
"$tmp/modax-ml" --quiet predict --model "$tmp/model.safetensors" --windows "$tmp/windows.parquet" -o "$tmp/p.parquet" --output json >"$tmp/predict.json"
end=$(date +%s.%N)
node -e '
const s = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const wall = process.argv[3] - process.argv[2];
console.log(`modax-ml predict: ${s.rows} windows, forward ${Math.round(s.windows_per_second)} windows/s, whole command ${wall.toFixed(2)} s (${Math.round(s.rows / wall)} windows/s with Parquet I/O)`);
' "$tmp/predict.json" "$start" "$end"
