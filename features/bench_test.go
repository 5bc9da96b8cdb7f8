package features

import (
	"context"
	"fmt"
	"iter"
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
)

// benchFleet generates readings for the benchmarks: devices × rows readings
// of 5 sensors (3 vibration axes), one life each, a few missing values.
func benchFleet(devices, rows int) []*dataset.Frame {
	out := make([]*dataset.Frame, devices)
	for d := range devices {
		f := lifeFrame("t", fmt.Sprintf("dev-%05d", d), rows, 0, 100, 5, func(s, i int) float64 {
			return float64(s) + math.Sin(float64(i)*0.37+float64(d*s)) + 0.001*float64(i)
		})
		f.Sensors[0][rows/2] = math.NaN()
		out[d] = f
	}
	return out
}

var benchSensors = []string{"current", "vibration_x", "vibration_y", "vibration_z", "temperature"}

func benchRun(window, workers int) *run {
	o := DefaultOptions()
	o.Window = window
	s, err := o.check()
	if err != nil {
		panic(err)
	}
	r := &run{s: s, env: runenv.Test(), workers: workers, features: benchSensors, read: benchSensors, vib: benchSensors[1:4],
		scaler: dataset.Scaler{Kind: ScalerZScore, Features: benchSensors, Offset: []float64{0, 1, 2, 3, 4}, Scale: []float64{1, 2, 3, 4, 5}}}
	for range workers {
		r.planners = append(r.planners, &planner{window: window, stride: 1, maxFill: 5})
		r.scratch = append(r.scratch, &scratch{calc: newStatsCalc(r.features, r.vib, 10, 256)})
	}
	return r
}

func framesOf(fs []*dataset.Frame) iter.Seq2[*dataset.Frame, error] {
	return func(yield func(*dataset.Frame, error) bool) {
		for _, f := range fs {
			if !yield(f, nil) {
				return
			}
		}
	}
}

// BenchmarkWindowing measures the windowing itself on 10M readings (window
// 50, stride 1, 5 sensors): per device fill, segments, stride grid, scaling,
// then every window's x copied out as the writer does (Parquet excluded; see
// BenchmarkRun). Workers: GOMAXPROCS.
func BenchmarkWindowing(b *testing.B) {
	for _, size := range []struct{ devices, rows int }{{100, 10_000}, {1000, 10_000}} {
		b.Run(fmt.Sprintf("readings=%d", size.devices*size.rows), func(b *testing.B) {
			frames := benchFleet(size.devices, size.rows)
			workers := runtime.GOMAXPROCS(0)
			r := benchRun(50, workers)
			nf := len(r.features)
			buf := make([]float32, 64*1024)
			var windows int64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				windows = 0
				err := ordered(context.Background(), framesOf(frames), workers,
					func(_ context.Context, w, seq int, f *dataset.Frame, emit func(*device) error) error {
						d := r.planners[w].prepare(seq, f)
						r.assign(d, true)
						r.scale(d, r.scratch[w])
						return emit(d)
					},
					func(_ int, d *device) error {
						off := 0
						for _, e := range d.ends {
							x := d.x[(int(e)-49)*nf : (int(e)+1)*nf]
							if off+len(x) > len(buf) {
								off = 0
							}
							off += copy(buf[off:], x)
						}
						windows += int64(len(d.ends))
						return nil
					})
				if err != nil {
					b.Fatal(err)
				}
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(float64(windows)/sec, "windows/s")
			b.ReportMetric(float64(windows*50*int64(nf))/sec, "values/s")
			b.ReportMetric(float64(size.devices*size.rows)/sec, "readings/s")
		})
	}
}

// BenchmarkStats measures the per-window statistics and Welch features
// (window 50, 5 sensors of which 3 vibration axes), one goroutine.
func BenchmarkStats(b *testing.B) {
	frames := benchFleet(1, 100_050)
	r := benchRun(50, 1)
	calc := r.scratch[0].calc
	row := make([]float64, calc.width())
	cols := frames[0].Sensors
	cols[0][50_025] = 1
	const windows = 100_000
	b.ReportAllocs()
	for b.Loop() {
		for e := 49; e < windows+49; e++ {
			calc.row(row, cols, e-49, e+1)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(windows/sec, "rows/s")
	b.ReportMetric(windows*50*5/sec, "values/s")
}

// BenchmarkRun measures the whole stage, Parquet in and out (windows and
// stats files), window 50, 5 sensors, GOMAXPROCS workers.
func BenchmarkRun(b *testing.B) {
	for _, size := range []struct{ devices, rows int }{{20, 5000}, {100, 10_000}} {
		for _, stats := range []bool{false, true} {
			b.Run(fmt.Sprintf("readings=%d/stats=%v", size.devices*size.rows, stats), func(b *testing.B) {
				dir := b.TempDir()
				writeLabeled(b, filepath.Join(dir, "labeled.parquet"), benchSensors, 100, benchFleet(size.devices, size.rows)...)
				o := DefaultOptions()
				o.Labeled, o.Out = filepath.Join(dir, "labeled.parquet"), filepath.Join(dir, "windows.parquet")
				o.Stats = ""
				if stats {
					o.Stats = filepath.Join(dir, "stats.parquet")
				}
				var res *Result
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if res, err = Run(context.Background(), runenv.Test(), o); err != nil {
						b.Fatal(err)
					}
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				w := float64(res.Input.Windows)
				b.ReportMetric(w/sec, "windows/s")
				b.ReportMetric(w*50*5/sec, "values/s")
				b.ReportMetric(float64(res.Input.Rows)/sec, "readings/s")
			})
		}
	}
}
