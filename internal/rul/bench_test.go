package rul

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkLabel measures the label computation alone (no I/O) on a fleet of
// devices × rows readings, ten-minute sampling, three failures per device.
func BenchmarkLabel(b *testing.B) {
	for _, size := range []struct{ devices, rows int }{{100, 10_000}, {1000, 10_000}} {
		b.Run(fmt.Sprintf("devices=%d/rows=%d", size.devices, size.devices*size.rows), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(7, 7))
			const step = MicrosPerHour / 6
			times := make([]int64, size.rows)
			for i := range times {
				times[i] = int64(i) * step
			}
			failures := make([][]int64, size.devices)
			for d := range failures {
				for range 3 {
					failures[d] = append(failures[d], rng.Int64N(int64(size.rows)*step))
				}
				failures[d] = FailureTimes(failures[d])
			}
			out := Labels{}.Resize(size.rows)
			r := DefaultRules()
			b.ReportAllocs()
			for b.Loop() {
				for d := range failures {
					if _, err := Label(times, failures[d], r, out); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(size.devices*size.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
