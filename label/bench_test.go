package label

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
)

// writeFleet writes a readings file of devices × rows readings (ten-minute
// sampling, nSensors random sensors) and a failures file with three failures
// per device at random times.
func writeFleet(tb testing.TB, dir string, devices, rows, nSensors int) (readings, failures string) {
	tb.Helper()
	readings, failures = filepath.Join(dir, "readings.parquet"), filepath.Join(dir, "failures.parquet")
	sensors := make([]string, nSensors)
	for i := range sensors {
		sensors[i] = fmt.Sprintf("s%d", i+1)
	}
	w, err := dataset.CreateFrames(readings, sensors, false, dataset.Meta{})
	if err != nil {
		tb.Fatal(err)
	}
	defer w.Abort()
	rng := rand.New(rand.NewPCG(1, 2))
	const step = hour / 6
	var events []dataset.Failure
	f := dataset.NewFrame("bench", "", nSensors, false)
	f.Time = make([]int64, rows)
	for s := range f.Sensors {
		f.Sensors[s] = make([]float64, rows)
	}
	for d := range devices {
		f.Device = fmt.Sprintf("dev-%05d", d)
		for i := range rows {
			f.Time[i] = int64(i) * step
			for s := range f.Sensors {
				f.Sensors[s][i] = rng.NormFloat64()
			}
		}
		if err := w.Append(f); err != nil {
			tb.Fatal(err)
		}
		for range 3 {
			events = append(events, dataset.Failure{Tenant: "bench", Device: f.Device, Time: rng.Int64N(int64(rows) * step),
				EventType: "failure", OpHours: math.NaN()})
		}
	}
	if err := w.Commit(); err != nil {
		tb.Fatal(err)
	}
	if err := dataset.WriteFailures(failures, events, dataset.Meta{}); err != nil {
		tb.Fatal(err)
	}
	return readings, failures
}

// peakHeap runs fn while sampling the live heap (the heap marked live by the
// last GC, /gc/heap/live:bytes) every millisecond and returns the largest
// value seen. The process's heap may reach about twice that before a GC
// (GOGC=100); the live heap is what grows when a program holds on to data.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	fn()
	close(stop)
	wg.Wait()
	return peak.Load()
}

// BenchmarkRun is label end to end, Parquet to Parquet, with 5 sensors and
// 10k readings per device: rows/s and the peak live heap, which must not grow
// with the number of devices (streaming one device at a time). The label
// computation alone is internal/rul's BenchmarkLabel.
func BenchmarkRun(b *testing.B) {
	for _, devices := range benchDevices {
		const rows = 10_000
		b.Run(fmt.Sprintf("devices=%d/rows=%d", devices, devices*rows), func(b *testing.B) {
			dir := b.TempDir()
			readings, failures := writeFleet(b, dir, devices, rows, 5)
			opts := DefaultOptions()
			opts.Readings, opts.Failures, opts.Out = readings, failures, filepath.Join(dir, "labeled.parquet")
			var peak uint64
			b.ReportAllocs()
			for b.Loop() {
				p := peakHeap(func() {
					if _, err := Run(context.Background(), runenv.Test(), opts); err != nil {
						b.Fatal(err)
					}
				})
				peak = max(peak, p)
			}
			b.ReportMetric(float64(devices*rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// TestMemoryBoundedByDevice labels a fleet and one ten times larger (more
// devices of the same length): the peak live heap must not grow with the
// other devices' rows.
func TestMemoryBoundedByDevice(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2.2M rows")
	}
	peak := func(devices int) uint64 {
		dir := t.TempDir()
		readings, failures := writeFleet(t, dir, devices, 10_000, 2)
		opts := DefaultOptions()
		opts.Readings, opts.Failures, opts.Out = readings, failures, filepath.Join(dir, "labeled.parquet")
		return peakHeap(func() {
			if _, err := Run(context.Background(), runenv.Test(), opts); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The live heap is known only at a GC. A run with few GCs (the small
	// fleet) is sampled at few moments and reads below its true peak, so
	// collect often here: the reading then follows the real peak whatever
	// the run's length. (Not in BenchmarkRun, whose rows/s it would slow.)
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	small, large := peak(20), peak(200)
	t.Logf("peak live heap: %.1f MB for 200k rows, %.1f MB for 2M rows", float64(small)/(1<<20), float64(large)/(1<<20))
	// The reading jumps between two levels ~15 MB apart from run to run
	// (when the writer's and reader's buffers happen to be live at one GC),
	// whatever the fleet size; keeping the other devices' rows would add
	// ≥ 60 MB (2M rows × time, sensors, labels) on top of that.
	if float64(large) > 1.5*float64(small)+16<<20 {
		t.Fatalf("peak heap grew from %d to %d bytes with ten times the devices", small, large)
	}
}

// benchDevices are the fleet sizes of BenchmarkRun (10k readings each).
var benchDevices = []int{100, 1000}

func init() {
	if v := os.Getenv("MODAX_BENCH_DEVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err == nil {
			benchDevices = []int{n}
		}
	}
}
