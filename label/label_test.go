package label

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/rul"
	"github.com/modax/modax-ml/internal/runenv"
)

const hour = rul.MicrosPerHour

// reading is one row of a test readings file.
type reading struct {
	tenant, device string
	hours          float64
	s1             float64
}

// writeReadings writes rows in the given order. sorted marks the file sorted
// (rows must then be in tenant, device, time order), as modax-ml's own
// writers do; unsorted files are what other tools produce.
func writeReadings(t *testing.T, loc string, rows []reading, sorted bool, extra dataset.Meta) {
	t.Helper()
	meta := dataset.Meta{dataset.MetaSource: "test"}
	for k, v := range extra {
		meta[k] = v
	}
	meta.MustSet(dataset.MetaSensors, []string{"s1"})
	if sorted {
		meta[dataset.MetaSortedBy] = dataset.SortedByDevice
	}
	sch := dataset.NewSchema(dataset.KindReadings, dataset.ReadingsColumns([]string{"s1"}), meta)
	w, err := dataset.Create(loc, sch)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.tenant)
		b.Field(1).(*array.StringBuilder).Append(r.device)
		b.Field(2).(*array.TimestampBuilder).Append(arrow.Timestamp(math.Round(r.hours * hour)))
		if math.IsNaN(r.s1) {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(r.s1)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

func writeFailures(t *testing.T, loc string, events ...dataset.Failure) {
	t.Helper()
	if err := dataset.WriteFailures(loc, events, dataset.Meta{}); err != nil {
		t.Fatal(err)
	}
}

func failure(tenant, device string, hours float64) dataset.Failure {
	return dataset.Failure{Tenant: tenant, Device: device, Time: int64(math.Round(hours * hour)), EventType: "failure", OpHours: math.NaN()}
}

// labeledRow is one row of the output, as read back.
type labeledRow struct {
	device   string
	hours    float64
	s1       float64
	rul, raw float64
	health   dataset.Health
	censored bool
	life     int32
}

func readLabeled(t *testing.T, loc string) ([]labeledRow, dataset.Meta) {
	t.Helper()
	r, err := dataset.Open(loc, dataset.KindLabeled)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []labeledRow
	for f, err := range r.DeviceFrames(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		for i := range f.Len() {
			out = append(out, labeledRow{f.Device, float64(f.Time[i]) / hour, f.Sensors[0][i], f.RUL[i], f.RULRaw[i], f.Health[i], f.Censored[i], f.LifeID[i]})
		}
	}
	return out, r.Meta()
}

func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

// TestRunFleet labels a small fleet whose answer is computed by hand: events
// in random order, several failures per device, simultaneous events, a
// failure before any reading, a device without failures, a failure of an
// unknown device, and rows given out of order in an unsorted file.
func TestRunFleet(t *testing.T) {
	for _, sorted := range []bool{true, false} {
		name := "sorted file"
		if !sorted {
			name = "unsorted file"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			rows := []reading{
				// a: failures at 100 and 200 (given 200 first), 200 twice.
				{"t1", "a", 0, 1}, {"t1", "a", 60, 2}, {"t1", "a", 95, 3}, {"t1", "a", 100, 4},
				{"t1", "a", 150, 5}, {"t1", "a", 200, 6}, {"t1", "a", 210, 7}, {"t1", "a", 330, math.NaN()},
				// b: no failures, 150 h observed.
				{"t1", "b", 0, 8}, {"t1", "b", 50, 9}, {"t1", "b", 120, 10}, {"t1", "b", 150, 11},
				// c (other tenant, same device name as a): failure before the first reading, then one at 30.
				{"t2", "a", 10, 12}, {"t2", "a", 20, 13},
			}
			if !sorted {
				rand.New(rand.NewPCG(3, 4)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
			}
			writeReadings(t, filepath.Join(dir, "readings.parquet"), rows, sorted, dataset.Meta{"modax.custom": "kept"})
			writeFailures(t, filepath.Join(dir, "failures.parquet"),
				failure("t1", "a", 200), failure("t2", "a", 30), failure("t1", "a", 100), failure("t1", "a", 200),
				failure("t2", "a", 5), failure("t1", "zz", 50))
			opts := DefaultOptions()
			opts.Readings = filepath.Join(dir, "readings.parquet")
			opts.Failures = filepath.Join(dir, "failures.parquet")
			opts.Out = filepath.Join(dir, "labeled.parquet")
			res, err := Run(context.Background(), runenv.Test(), opts)
			if err != nil {
				t.Fatal(err)
			}
			nan := math.NaN()
			C, W, N := dataset.Critical, dataset.Warning, dataset.Normal
			want := []labeledRow{
				{"a", 0, 1, 100, 100, N, false, 0},
				{"a", 60, 2, 40, 40, W, false, 0},
				{"a", 95, 3, 5, 5, C, false, 0},
				{"a", 100, 4, 0, 0, C, false, 0},
				{"a", 150, 5, 50, 50, N, false, 1},
				{"a", 200, 6, 0, 0, C, false, 1},
				{"a", 210, 7, 100, nan, N, false, 2}, // 120 h observed after: exact horizon
				{"a", 330, nan, 0, nan, C, true, 2},
				{"b", 0, 8, 100, nan, N, false, 0},
				{"b", 50, 9, 100, nan, N, false, 0},
				{"b", 120, 10, 30, nan, W, true, 0},
				{"b", 150, 11, 0, nan, C, true, 0},
				{"a", 10, 12, 20, 20, W, false, 0}, // tenant t2
				{"a", 20, 13, 10, 10, W, false, 0},
			}
			got, meta := readLabeled(t, opts.Out)
			if len(got) != len(want) {
				t.Fatalf("got %d rows, want %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.device != w.device || !same(g.hours, w.hours) || !same(g.s1, w.s1) || !same(g.rul, w.rul) || !same(g.raw, w.raw) ||
					g.health != w.health || g.censored != w.censored || g.life != w.life {
					t.Errorf("row %d: got %+v, want %+v", i, g, w)
				}
			}
			var horizon float64
			var th dataset.Thresholds
			if _, err := meta.Get(dataset.MetaHorizon, &horizon); err != nil || horizon != 100 {
				t.Errorf("horizon metadata %v (%v)", horizon, err)
			}
			if _, err := meta.Get(dataset.MetaThresholds, &th); err != nil || th != dataset.DefaultThresholds {
				t.Errorf("thresholds metadata %+v (%v)", th, err)
			}
			if meta[dataset.MetaSource] != "test" || meta["modax.custom"] != "kept" || meta[dataset.MetaStage] != "label" ||
				meta[dataset.MetaSortedBy] != dataset.SortedByDevice {
				t.Errorf("metadata not carried: %v", meta)
			}
			wantRes := Result{Out: opts.Out, Rows: 14, Devices: 3, Lives: 5, Failures: 4, FailuresWithoutReadings: 1,
				FailuresUnknownDevice: 1, FailuresSimultaneous: 1, CensoredRows: 3, ExactCappedRows: 3,
				HorizonHours: 100, Thresholds: dataset.DefaultThresholds,
				Health: map[string]int64{"critical": 5, "warning": 4, "normal": 5}}
			if !reflect.DeepEqual(*res, wantRes) {
				t.Errorf("result %+v\nwant %+v", *res, wantRes)
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	readings := filepath.Join(dir, "readings.parquet")
	writeReadings(t, readings, []reading{{"t", "d", 0, 1}, {"t", "d", 1, 2}}, true, nil)
	base := DefaultOptions()
	base.Readings, base.Failures, base.Out = readings, "", filepath.Join(dir, "labeled.parquet")

	bad := base
	bad.Critical, bad.Warning = 60, 50
	if _, err := Run(context.Background(), runenv.Test(), bad); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("thresholds out of order: err %v, want a usage error", err)
	}
	bad = base
	bad.Horizon = -1
	if _, err := Run(context.Background(), runenv.Test(), bad); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("negative horizon: err %v, want a usage error", err)
	}
	bad = base
	bad.Failures = filepath.Join(dir, "nope.parquet")
	if _, err := Run(context.Background(), runenv.Test(), bad); err == nil {
		t.Errorf("missing failures file accepted")
	}
	// A failures file given as readings is refused with the file named.
	writeFailures(t, filepath.Join(dir, "failures.parquet"), failure("t", "d", 1))
	bad = base
	bad.Readings = filepath.Join(dir, "failures.parquet")
	if _, err := Run(context.Background(), runenv.Test(), bad); err == nil {
		t.Errorf("failures file accepted as readings")
	}
	// Cancelled: no output file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, runenv.Test(), base); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: err %v", err)
	}
	if _, err := os.Stat(base.Out); !os.IsNotExist(err) {
		t.Errorf("cancelled run left %s (%v)", base.Out, err)
	}
	// No failure log: everything right-censored at the last reading.
	res, err := Run(context.Background(), runenv.Test(), base)
	if err != nil {
		t.Fatal(err)
	}
	if res.CensoredRows != 2 || res.Failures != 0 {
		t.Errorf("without failures: %+v", res)
	}
}
