package score

import (
	"context"
	"math"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

// BenchmarkScoreFile scores 10 000 devices with window 50 (the design's
// LSTM, hidden 128, 2 layers, 5 sensors, 60 hourly readings each) from a
// readings file, end to end as `score --readings` runs it: the file read
// device by device, windows, batched forward passes, sorting. It reports
// devices/s (wall clock: on a shared machine it says as much about the load
// as about score) and the process's CPU time per device (user + system, all
// goroutines), the figure that does not depend on the load.
//
//	go test -tags openblas -run '^$' -bench BenchmarkScoreFile -count 5 ./score
func BenchmarkScoreFile(b *testing.B) {
	const devices, readings, window = 10000, 60, 50
	dir := b.TempDir()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ck := fixture.Checkpoint(model.DefaultArch(5), window, 1)
	path := filepath.Join(dir, "model.safetensors")
	if err := model.Save(path, ck); err != nil {
		b.Fatal(err)
	}
	o := DefaultOptions()
	o.Model, o.Readings, o.Failures, o.At = path, filepath.Join(dir, "readings.parquet"), "", at.Format(time.RFC3339)
	if err := fixture.WriteReadings(o.Readings, ck, o.DB.Tenant, devices, readings, at.Add(-time.Hour), 1); err != nil {
		b.Fatal(err)
	}
	benchRun(b, o, devices, "cpu-µs/device")
}

// benchRun times Run(o) over b.Loop, checks that every one of devices was
// scored, and reports devices/s and this process's CPU per device (as cpuUnit).
func benchRun(b *testing.B, o Options, devices int, cpuUnit string) {
	b.Helper()
	ctx := context.Background()
	cpu0 := cpuSeconds()
	var scored int
	for b.Loop() {
		res, err := Run(ctx, runenv.Test(), o)
		if err != nil {
			b.Fatal(err)
		}
		scored = len(res.Scored)
	}
	if scored != devices {
		b.Fatalf("scored %d devices, want %d", scored, devices)
	}
	b.ReportMetric(float64(devices*b.N)/b.Elapsed().Seconds(), "devices/s")
	b.ReportMetric((cpuSeconds()-cpu0)*1e6/float64(devices*b.N), cpuUnit)
}

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkScoreDB scores 10 000 devices with window 50 (the design's LSTM,
// 5 sensors, 60 hourly readings each) from PostgreSQL and from TimescaleDB,
// end to end: device list, batched reads, windows, forward passes, sorting.
// It reports devices/s, the client's CPU time per device (this process; the
// database server's CPU is not in it) and the process's peak RSS.
//
//	make bench BENCH=BenchmarkScoreDB COUNT=1
func BenchmarkScoreDB(b *testing.B) {
	for _, v := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"postgres", testutil.NewDatabase}, {"timescaledb", testutil.NewTimescaleDatabase}} {
		b.Run(v.name, func(b *testing.B) {
			const devices, readings, window = 10000, 60, 50
			ctx := context.Background()
			c := pg.DefaultConfig()
			c.DSN, c.Tenant = v.dsn(b), "bench"
			pool, err := pg.Connect(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			defer pool.Close()
			if _, err := pg.Migrate(ctx, pool, c, pg.TimescaleAuto, runenv.Test().Log); err != nil {
				b.Fatal(err)
			}
			at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			if _, err := pool.Exec(ctx, `INSERT INTO sensor_data (tenant_id, device_id, "timestamp", current_mean, vibration_x_mean, vibration_y_mean, vibration_z_mean, temperature_mean)
SELECT 'bench', 'dev-' || lpad(d::text, 5, '0'), $1::timestamptz - make_interval(hours => i), 10 + sin(i + d), 0.5 + 0.01 * i, 0.4, 0.3 + cos(d), 60 + 0.1 * i
FROM generate_series(1, $2::int) d, generate_series(0, $3::int - 1) i`, at, devices, readings); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
				b.Fatal(err)
			}
			ck := fixture.Checkpoint(model.DefaultArch(5), window, 1)
			ck.Info.Features = append([]string(nil), pg.DefaultSensors...)
			ck.Info.Scaler.Features = ck.Info.Features
			path := filepath.Join(b.TempDir(), "model.safetensors")
			if err := model.Save(path, ck); err != nil {
				b.Fatal(err)
			}
			o := DefaultOptions()
			o.Source, o.Model, o.At, o.DB = SourcePostgres, path, at.Format(time.RFC3339), c
			benchRun(b, o, devices, "client-cpu-µs/device")
			var ru syscall.Rusage
			if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
				b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
			}
		})
	}
}
