package infer

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/model"
)

// BenchmarkNative measures the native forward pass on the design's
// architecture (LSTM 2×128, FC 64) with 14 features and windows of 30 steps
// (the C-MAPSS setup): batches of 1 to 1024 windows on one goroutine (next to
// ONNX Runtime's one thread in scripts/bench-predict.sh) and batch 256 on
// every core; windows/s is reported, and median-ms/op, the median time of
// one call (the statistic ONNX Runtime's side of the script reports: a
// mean also charges the calls that a busy machine preempts).
//
//	go test -run '^$' -bench Native -benchtime 3x ./internal/infer
func BenchmarkNative(b *testing.B) {
	const feats, window = 14, 30
	p, err := model.NewParams(model.DefaultArch(feats))
	if err != nil {
		b.Fatal(err)
	}
	p.Init(1)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		batch, workers int
	}{{1, 1}, {4, 1}, {16, 1}, {64, 1}, {256, 1}, {1024, 1}, {256, runtime.GOMAXPROCS(0)}} {
		b.Run(fmt.Sprintf("batch=%d/workers=%d", tc.batch, tc.workers), func(b *testing.B) {
			fwd, closer := NewNative(p, tc.workers)
			defer closer()
			x := make([]float32, tc.batch*window*feats)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			out := make([]float32, tc.batch)
			if err := fwd.Predict(x, tc.batch, out); err != nil { // warm up: buffers grow once
				b.Fatal(err)
			}
			calls := make([]time.Duration, 0, 1<<14)
			b.ReportAllocs()
			for b.Loop() {
				t0 := time.Now()
				if err := fwd.Predict(x, tc.batch, out); err != nil {
					b.Fatal(err)
				}
				calls = append(calls, time.Since(t0))
			}
			b.ReportMetric(float64(tc.batch)*float64(b.N)/b.Elapsed().Seconds(), "windows/s")
			slices.Sort(calls)
			b.ReportMetric(float64(calls[len(calls)/2])/1e6, "median-ms/op")
		})
	}
}
