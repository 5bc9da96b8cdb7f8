package collect

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

// fleetOptions returns a synthetic fleet of about rows readings (100 devices
// at 10-minute samples).
func fleetOptions(rows int) SyntheticOptions {
	o := DefaultSyntheticOptions()
	o.Devices = 100
	o.Days = float64(rows) / float64(o.Devices) / 144
	return o
}

// syntheticCollect is collect --source synthetic of a fleet of about rows
// readings into dir.
func syntheticCollect(dir string, rows int) Options {
	opts := DefaultOptions()
	opts.Synthetic = fleetOptions(rows)
	opts.Out, opts.FailuresOut = filepath.Join(dir, "r.parquet"), filepath.Join(dir, "f.parquet")
	return opts
}

// benchTable is a sensor table holding one synthetic fleet of a given size,
// shared by the benchmarks of one process.
type benchTable struct {
	cfg        pg.Config
	rows       int64
	loadRate   float64 // rows/s of db load
	loadedOnce sync.Once
	err        error
}

var (
	benchMu     sync.Mutex
	benchTables = map[int]*benchTable{}
	benchDSN    string
)

// benchFleet returns a database table (sensor_data_<rows>) holding a
// synthetic fleet of rows readings, generating and loading it on first use.
func benchFleet(b *testing.B, rows int) *benchTable {
	b.Helper()
	dsn := testutil.PostgresDSN(b)
	benchMu.Lock()
	if benchDSN == "" {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			benchMu.Unlock()
			b.Fatal(err)
		}
		buf := make([]byte, 4)
		_, _ = rand.Read(buf)
		name := "modax_bench_" + hex.EncodeToString(buf)
		_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
		conn.Close(ctx)
		if err != nil {
			benchMu.Unlock()
			b.Fatal(err)
		}
		benchDBs = append(benchDBs, name)
		cfg, _ := pgx.ParseConfig(dsn)
		benchDSN = strings.Replace(dsn, "/"+cfg.Database+"?", "/"+name+"?", 1)
	}
	bt := benchTables[rows]
	if bt == nil {
		bt = &benchTable{}
		benchTables[rows] = bt
	}
	benchMu.Unlock()
	bt.loadedOnce.Do(func() {
		ctx := context.Background()
		cfg := pg.DefaultConfig()
		cfg.DSN = benchDSN
		cfg.Tenant = "bench"
		cfg.SensorTable = fmt.Sprintf("sensor_data_%d", rows)
		cfg.FailureTable = fmt.Sprintf("failure_events_%d", rows)
		cfg.PredictionTable = fmt.Sprintf("rul_predictions_%d", rows)
		bt.cfg = cfg
		pool, err := pg.Connect(ctx, cfg)
		if err != nil {
			bt.err = err
			return
		}
		defer pool.Close()
		env := runenv.Test()
		if _, err := pg.Migrate(ctx, pool, cfg, pg.TimescaleAuto, env.Log); err != nil {
			bt.err = err
			return
		}
		dir, _ := os.MkdirTemp("", "modax-bench")
		defer os.RemoveAll(dir)
		opts := syntheticCollect(dir, rows)
		opts.DB = cfg
		res, err := Run(ctx, env, opts)
		if err != nil {
			bt.err = err
			return
		}
		start := time.Now()
		if _, err := pg.LoadReadings(ctx, pool, cfg, opts.Out, nil); err != nil {
			bt.err = err
			return
		}
		bt.loadRate = float64(res.Rows) / time.Since(start).Seconds()
		if _, err := pg.LoadFailures(ctx, pool, cfg, opts.FailuresOut); err != nil {
			bt.err = err
			return
		}
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+pgx.Identifier{cfg.SensorTable}.Sanitize()); err != nil {
			bt.err = err
			return
		}
		bt.rows = res.Rows
	})
	if bt.err != nil {
		b.Fatal(bt.err)
	}
	return bt
}

// psqlQuery is the collect query with the tenant as a literal, for psql.
func psqlQuery(cfg pg.Config) string {
	sql, _ := readingsQuery(cfg, false, false, false, true)
	return strings.Replace(sql, "$1", "'"+cfg.Tenant+"'", 1)
}

func psqlBin(b *testing.B) string {
	b.Helper()
	if bin := os.Getenv("MODAX_TEST_PG_BIN"); bin != "" {
		if _, err := os.Stat(filepath.Join(bin, "psql")); err == nil {
			return filepath.Join(bin, "psql")
		}
	}
	p, err := exec.LookPath("psql")
	testutil.Require(b, err == nil, "psql")
	return p
}

// peakHeap samples the live Go heap while it runs; stop returns the peak.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// BenchmarkPostgresCollect measures collect --source postgres (query and
// COPY methods, Parquet written) on 1M and 4M readings, next to psql's
// `\copy (SELECT ...) TO '/dev/null' (FORMAT binary)` on the same table.
// Metrics: rows/s, peak Go heap of the collect, and the max RSS of a collect
// run in a fresh process.
func BenchmarkPostgresCollect(b *testing.B) {
	for _, rows := range []int{1_000_000, 4_000_000} {
		name := fmt.Sprintf("rows=%dM", rows/1_000_000)
		b.Run(name+"/psql-copy-binary", func(b *testing.B) {
			bt := benchFleet(b, rows)
			psql := psqlBin(b)
			cmd := `\copy (` + psqlQuery(bt.cfg) + `) TO '/dev/null' (FORMAT binary)`
			for b.Loop() {
				out, err := exec.Command(psql, "-X", "-q", "-d", bt.cfg.DSN, "-c", cmd).CombinedOutput()
				if err != nil {
					b.Fatalf("psql: %v: %s", err, out)
				}
			}
			b.ReportMetric(float64(bt.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		for _, method := range []string{MethodQuery, MethodCopy} {
			b.Run(name+"/collect-"+method, func(b *testing.B) {
				bt := benchFleet(b, rows)
				opts := DefaultOptions()
				opts.Source = SourcePostgres
				opts.DB = bt.cfg
				opts.Postgres.Method = method
				dir := b.TempDir()
				opts.Out, opts.FailuresOut = filepath.Join(dir, "r.parquet"), filepath.Join(dir, "f.parquet")
				var peak uint64
				b.ReportAllocs()
				for b.Loop() {
					runtime.GC()
					stop := peakHeap()
					res, err := Run(context.Background(), runenv.Test(), opts)
					peak = max(peak, stop())
					if err != nil {
						b.Fatal(err)
					}
					if res.Rows != bt.rows {
						b.Fatalf("%d rows, want %d", res.Rows, bt.rows)
					}
				}
				b.ReportMetric(float64(bt.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
				b.ReportMetric(childRSS(b, opts), "peak-RSS-MB")
			})
		}
	}
}

// BenchmarkPostgresFetch measures the query and COPY methods alone: rows
// decoded into Arrow batches, no Parquet written.
func BenchmarkPostgresFetch(b *testing.B) {
	for _, rows := range []int{1_000_000} {
		for _, method := range []string{MethodQuery, MethodCopy} {
			b.Run(fmt.Sprintf("rows=%dM/%s", rows/1_000_000, method), func(b *testing.B) {
				bt := benchFleet(b, rows)
				ctx := context.Background()
				pool, err := pg.Connect(ctx, bt.cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer pool.Close()
				b.ReportAllocs()
				for b.Loop() {
					rb := &readingsBuilder{batch: dataset.DefaultBatchRows, tenant: bt.cfg.Tenant, sensors: bt.cfg.Sensors, bar: progress.None("", "", 0)}
					sch := dataset.NewSchema(dataset.KindReadings, dataset.ReadingsColumns(bt.cfg.Sensors), dataset.Meta{})
					rb.bld = array.NewRecordBuilder(memory.DefaultAllocator, sch)
					rb.tb, rb.db = rb.bld.Field(0).(*array.StringBuilder), rb.bld.Field(1).(*array.StringBuilder)
					rb.ts = rb.bld.Field(2).(*array.TimestampBuilder)
					for i := range bt.cfg.Sensors {
						rb.fb = append(rb.fb, rb.bld.Field(3+i).(*array.Float64Builder))
					}
					rb.reserve()
					if method == MethodCopy {
						err = copyReadings(ctx, pool, bt.cfg, bt.cfg.Tenant, filter{}, nil, rb)
					} else {
						err = queryReadings(ctx, pool, bt.cfg, bt.cfg.Tenant, filter{}, nil, rb)
					}
					if err == nil {
						err = rb.flush()
					}
					rb.bld.Release()
					if err != nil {
						b.Fatal(err)
					}
					if st := rb.stats(); st.rows != bt.rows {
						b.Fatalf("%d rows", st.rows)
					}
				}
				b.ReportMetric(float64(bt.rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// childRSS runs one collect in a fresh process and returns its max RSS in MB.
func childRSS(b *testing.B, opts Options) float64 {
	b.Helper()
	spec, _ := json.Marshal(opts)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("child collect: %v: %s", err, out)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// BenchmarkPostgresLoad measures db load (binary COPY FROM of a readings
// file) into an empty table.
func BenchmarkPostgresLoad(b *testing.B) {
	bt := benchFleet(b, 1_000_000)
	for b.Loop() {
		// The load is measured once, when the table is filled.
	}
	b.ReportMetric(bt.loadRate, "rows/s")
}

// BenchmarkSyntheticGenerate measures the simulator alone.
func BenchmarkSyntheticGenerate(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			so := fleetOptions(rows)
			var n int64
			b.ReportAllocs()
			for b.Loop() {
				n = 0
				err := SyntheticFleet(context.Background(), so, func(f *dataset.Frame, _ []dataset.Failure) error {
					n += int64(f.Len())
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkSyntheticCollect measures collect --source synthetic: generation
// plus the Parquet write (zstd).
func BenchmarkSyntheticCollect(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			opts := syntheticCollect(b.TempDir(), rows)
			var n int64
			b.ReportAllocs()
			for b.Loop() {
				res, err := Run(context.Background(), runenv.Test(), opts)
				if err != nil {
					b.Fatal(err)
				}
				n = res.Rows
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkParquetRead measures reading a readings file device by device
// (dataset.Reader.DeviceFrames), as the next stages do.
func BenchmarkParquetRead(b *testing.B) {
	for _, rows := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			opts := syntheticCollect(b.TempDir(), rows)
			res, err := Run(context.Background(), runenv.Test(), opts)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				r, err := dataset.Open(opts.Out, dataset.KindReadings)
				if err != nil {
					b.Fatal(err)
				}
				var n int64
				for f, err := range r.DeviceFrames(context.Background(), nil) {
					if err != nil {
						b.Fatal(err)
					}
					n += int64(f.Len())
				}
				r.Close()
				if n != res.Rows {
					b.Fatalf("%d rows, want %d", n, res.Rows)
				}
			}
			b.ReportMetric(float64(res.Rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
