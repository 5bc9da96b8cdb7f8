#!/usr/bin/env bash
# bench-train.sh: the fused engine's training and inference throughput with
# each matrix-product backend, next to the PyTorch reference (Debian's
# python3-torch, tools/torchref/bench.py), in one run on this machine.
#
#   scripts/bench-train.sh            # BENCHTIME=3s COUNT=1 by default
#
# Shapes: hidden 128, 2 layers, fc 64, dropout 0.2; I=5 T=50 B=32 and
# I=14 T=30 B=256 (training), batch 256 and 1 (inference). Go benchmarks
# report samples/s or windows/s (wall clock), cpu-ms/op (all threads: the
# honest number on a shared machine) and GFLOP/s.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
benchtime=${BENCHTIME:-3s}
count=${COUNT:-1}
export OPENBLAS_NUM_THREADS=1

echo "== fused engine, pure-Go kernels ($(nproc) cores)"
go test -run '^$' -bench 'FusedStep/go|Predictor|Gemm/go' -benchtime "$benchtime" -count "$count" ./internal/nn/ | grep -E '^Benchmark'

if [ -e /usr/lib/x86_64-linux-gnu/libopenblas.so ] || [ -e /usr/lib/aarch64-linux-gnu/libopenblas.so ]; then
  echo "== fused engine, OpenBLAS (cgo, 1 thread per worker)"
  CGO_ENABLED=1 CGO_LDFLAGS=-lopenblas go test -tags openblas -run '^$' -bench 'FusedStep/openblas|Predictor|Gemm/openblas' \
    -benchtime "$benchtime" -count "$count" ./internal/nn/ | grep -E '^Benchmark'
else
  echo "== OpenBLAS: libopenblas-dev not installed, skipped"
fi

secs=${benchtime%s}
case "$secs" in ''|*[!0-9.]*) secs=3 ;; esac
echo "== PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (OPENBLAS_NUM_THREADS=1), $(nproc) threads"
/usr/bin/python3 tools/torchref/bench.py --threads "$(nproc)" --seconds "$secs"
echo "== PyTorch, 1 thread"
/usr/bin/python3 tools/torchref/bench.py --threads 1 --seconds "$secs"
