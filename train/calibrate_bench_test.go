package train

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// BenchmarkCalibrate is the calibration train adds after the last epoch on
// the C-MAPSS FD001 recipe's shape: 3 459 val windows of 30 steps × 14
// features, the default LSTM (128 × 2, fc 64), 2 workers — the val forward
// pass through the native predictor and the Mondrian quantiles at 0.8 and
// 0.9.
func BenchmarkCalibrate(b *testing.B) {
	const n, steps, feats = 3459, 30, 14
	p, err := model.NewParams(model.DefaultArch(feats))
	if err != nil {
		b.Fatal(err)
	}
	p.Init(1)
	rng := rand.New(rand.NewPCG(1, 2))
	d := &data{t: steps, f: feats, meta: dataset.WindowsMeta{Horizon: 125}}
	d.val = split{n: n, x: make([]float32, n*steps*feats), rul: make([]float32, n)}
	for i := range d.val.x {
		d.val.x[i] = float32(rng.NormFloat64())
	}
	for i := range d.val.rul {
		d.val.rul[i] = float32(rng.Float64() * 125)
	}
	o := DefaultOptions()
	o.Workers, o.IntervalLevels = 2, "0.8,0.9"
	env := runenv.Test()
	b.ReportAllocs()
	var secs float64
	for b.Loop() {
		start := time.Now()
		c, _, err := calibrateLSTM(env, &o, d, p, "bench")
		if err != nil || c == nil {
			b.Fatal(err)
		}
		secs += time.Since(start).Seconds()
	}
	b.ReportMetric(float64(n)*float64(b.N)/secs, "windows/s")
}
