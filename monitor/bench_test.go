package monitor

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkResolveScore finds the outcomes of n predictions (100 devices,
// each with a failure every ~300 h) and scores them.
func BenchmarkResolveScore(b *testing.B) {
	now := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			fails := map[string][]time.Time{}
			preds := make([]prediction, n)
			for d := range 100 {
				dev := fmt.Sprintf("dev-%03d", d)
				for h := 24 * 90; h > 0; h -= 250 + rng.IntN(100) {
					fails[dev] = append(fails[dev], now.Add(-time.Duration(h)*time.Hour))
				}
			}
			for i := range preds {
				preds[i] = prediction{device: fmt.Sprintf("dev-%03d", i%100), at: now.Add(-time.Duration(rng.IntN(24*90*60)) * time.Minute), rul: 100 * rng.Float64()}
			}
			testMAE := 5.0
			b.ReportAllocs()
			for b.Loop() {
				out, _ := resolve(preds, fails, 100, now)
				_ = score(out, &testMAE)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "predictions/s")
		})
	}
}
