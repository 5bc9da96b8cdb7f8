package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
)

var (
	t0      = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	hour    = int64(time.Hour / time.Microsecond)
	now     = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	sensors = []string{"temp", "vib", "pressure"}
)

// row is one reading of the test fleet; a NaN value with null set is a null.
type row struct {
	tenant, device string
	ts             int64
	nullTS         bool
	vals           []float64
	null           []bool
}

// fleet is a small clean fleet: 4 devices, 120 hourly readings each, every
// device failing at its last reading. Mutations plant one defect each.
type fleet struct {
	rows   []row
	events []dataset.Failure
	sorted bool // mark the file sorted (rows must then be in order)
	noMeta bool // leave modax.sensors out
	schema *arrow.Schema
}

func cleanFleet() *fleet {
	rng := rand.New(rand.NewPCG(11, 12))
	f := &fleet{sorted: true}
	for d := range 4 {
		dev := fmt.Sprintf("dev-%d", d)
		for i := range 120 {
			wear := float64(i) / 120
			f.rows = append(f.rows, row{
				tenant: "acme", device: dev, ts: t0 + int64(d)*7*hour + int64(i)*hour,
				vals: []float64{
					math.Round((60+2*wear+rng.NormFloat64())*100) / 100,
					math.Round((0.5+0.2*wear+0.05*rng.NormFloat64())*1000) / 1000,
					math.Round((101.3+0.5*rng.NormFloat64())*100) / 100,
				},
				null: make([]bool, 3),
			})
		}
		f.events = append(f.events, event("acme", dev, t0+int64(d)*7*hour+119*hour))
	}
	return f
}

func event(tenant, dev string, ts int64) dataset.Failure {
	return dataset.Failure{Tenant: tenant, Device: dev, Time: ts, EventType: "failure", OpHours: math.NaN()}
}

func (f *fleet) deviceRows(dev string) []int {
	var out []int
	for i, r := range f.rows {
		if r.device == dev {
			out = append(out, i)
		}
	}
	return out
}

// write writes readings.parquet and failures.parquet into dir.
func (f *fleet) write(t *testing.T, dir string) (readings, failures string) {
	t.Helper()
	readings, failures = filepath.Join(dir, "readings.parquet"), filepath.Join(dir, "failures.parquet")
	meta := dataset.Meta{}
	if !f.noMeta {
		meta.MustSet(dataset.MetaSensors, sensors)
	}
	if f.sorted {
		meta[dataset.MetaSortedBy] = dataset.SortedByDevice
	}
	sch := f.schema
	if sch == nil {
		sch = dataset.NewSchema(dataset.KindReadings, dataset.ReadingsColumns(sensors), meta)
	}
	w, err := dataset.Create(readings, sch)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer b.Release()
	for _, r := range f.rows {
		b.Field(0).(*array.StringBuilder).Append(r.tenant)
		b.Field(1).(*array.StringBuilder).Append(r.device)
		switch tb := b.Field(2).(type) {
		case *array.TimestampBuilder:
			if r.nullTS {
				tb.AppendNull()
			} else {
				tb.Append(arrow.Timestamp(r.ts))
			}
		case *array.Int64Builder:
			tb.Append(r.ts)
		}
		for s := range sensors {
			if s+3 >= len(sch.Fields()) {
				break
			}
			if r.null[s] {
				b.Field(3 + s).AppendNull()
			} else {
				b.Field(3 + s).(*array.Float64Builder).Append(r.vals[s])
			}
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
	if err := dataset.WriteFailures(failures, f.events, dataset.Meta{}); err != nil {
		t.Fatal(err)
	}
	return readings, failures
}

func testEnv() *runenv.Env {
	env := runenv.Test()
	env.Now = func() time.Time { return now }
	env.ToolVersion = "test"
	return env
}

func run(t *testing.T, f *fleet, mod func(*Options)) (*Report, error) {
	t.Helper()
	dir := t.TempDir()
	readings, failures := f.write(t, dir)
	opts := DefaultOptions()
	opts.Readings, opts.Failures, opts.Out = readings, failures, filepath.Join(dir, "validation.json")
	opts.FailOn = "none"
	if mod != nil {
		mod(&opts)
	}
	return Run(context.Background(), testEnv(), opts)
}

// findingKeys lists check/severity/sensor of each finding, sorted.
func findingKeys(r *Report) []string {
	out := []string{}
	for _, f := range r.Findings {
		k := f.Check + "/" + string(f.Severity)
		if f.Sensor != "" {
			k += "/" + f.Sensor
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestCleanFleetHasNoFindings(t *testing.T) {
	rep, err := run(t, cleanFleet(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("clean fleet: findings %v", findingKeys(rep))
	}
	if rep.Status != OK || rep.Failed || rep.Dataset.Rows != 480 || rep.Dataset.Devices != 4 || rep.Dataset.Events != 4 {
		t.Fatalf("report: %+v", rep)
	}
	cb := rep.ClassBalance
	// Per device: RUL 119..0 h; critical 0..9 (10 rows), warning 10..49 (40), normal 70.
	if cb == nil || cb.DevicesWithFailures != 4 || cb.Lives != 4 || cb.Critical != 40 || cb.Warning != 160 || cb.Normal != 280 || cb.Censored != 0 {
		t.Fatalf("class balance %+v", cb)
	}
	for _, c := range rep.Checks {
		want := OK
		if c.ID == CheckDrift || c.ID == CheckOutOfRange {
			want = Skipped
		}
		if c.Status != want {
			t.Errorf("check %s: %s (%s), want %s", c.ID, c.Status, c.Reason, want)
		}
	}
	if len(rep.Checks) != len(checkInfo) {
		t.Errorf("%d checks listed, want %d", len(rep.Checks), len(checkInfo))
	}
}

// TestPlantedDefects plants one defect at a time into the clean fleet and
// checks that exactly that defect is reported.
func TestPlantedDefects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		plant func(f *fleet)
		opts  func(o *Options)
		want  []string
		count int64 // of the first finding
	}{
		{name: "a few missing values", want: []string{"missing_values/info/temp"}, count: 3, plant: func(f *fleet) {
			for _, i := range f.deviceRows("dev-1")[10:13] {
				f.rows[i].null[0] = true
			}
		}},
		{name: "many missing values on one device", want: []string{"missing_values/warning/vib"}, count: 12, plant: func(f *fleet) {
			for _, i := range f.deviceRows("dev-2")[20:32] {
				f.rows[i].null[1] = true
			}
		}},
		{name: "NaN stored", want: []string{"nan_values/warning/vib"}, count: 1, plant: func(f *fleet) {
			f.rows[f.deviceRows("dev-0")[5]].vals[1] = math.NaN()
		}},
		{name: "Inf stored", want: []string{"inf_values/error/pressure"}, count: 2, plant: func(f *fleet) {
			f.rows[f.deviceRows("dev-3")[5]].vals[2] = math.Inf(1)
			f.rows[f.deviceRows("dev-3")[6]].vals[2] = math.Inf(-1)
		}},
		{name: "constant sensor", want: []string{"constant_sensor/warning/pressure"}, count: 480, plant: func(f *fleet) {
			for i := range f.rows {
				f.rows[i].vals[2] = 14.62
			}
		}},
		{name: "near-constant sensor", want: []string{"near_constant_sensor/info/pressure"}, count: 477, plant: func(f *fleet) {
			for i := range f.rows {
				f.rows[i].vals[2] = 21.61
			}
			for _, i := range []int{3, 200, 401} {
				f.rows[i].vals[2] = 21.60
			}
		}},
		{name: "out of physical bounds", want: []string{"out_of_range/error/temp"}, count: 1,
			opts: func(o *Options) {
				o.Bounds = Bounds{{Sensor: "temp", Min: -40, Max: 150}, {Sensor: "vib", Min: 0, Max: math.Inf(1)}}
			},
			plant: func(f *fleet) {
				f.rows[f.deviceRows("dev-2")[50]].vals[0] = 400
			}},
		{name: "robust outlier", want: []string{"outliers/warning/temp"}, count: 1, plant: func(f *fleet) {
			f.rows[f.deviceRows("dev-2")[50]].vals[0] = 90
		}},
		{name: "duplicate rows", want: []string{"duplicates/warning"}, count: 1, plant: func(f *fleet) {
			i := f.deviceRows("dev-1")[40]
			f.rows = slices.Insert(f.rows, i+1, f.rows[i])
		}},
		{name: "unsorted rows in an unmarked file", want: []string{"unsorted/warning"}, count: 1, plant: func(f *fleet) {
			f.sorted = false
			i := f.deviceRows("dev-1")[40]
			f.rows[i], f.rows[i+1] = f.rows[i+1], f.rows[i]
		}},
		{name: "unsorted rows in a file marked sorted", want: []string{"unsorted/error"}, count: 1, plant: func(f *fleet) {
			i := f.deviceRows("dev-1")[40]
			f.rows[i], f.rows[i+1] = f.rows[i+1], f.rows[i]
		}},
		{name: "devices interleaved in a file marked sorted", want: []string{"unsorted/error"}, count: 2, plant: func(f *fleet) {
			// dev-1's last row moves after dev-2's first: dev-2 and dev-1 each come back.
			i := f.deviceRows("dev-1")[119]
			r := f.rows[i]
			f.rows = slices.Delete(f.rows, i, i+1)
			f.rows = slices.Insert(f.rows, f.deviceRows("dev-2")[0]+1, r)
		}},
		{name: "sampling gap", want: []string{"sampling_gaps/warning"}, count: 1, plant: func(f *fleet) {
			idx := f.deviceRows("dev-3")
			f.rows = slices.Delete(f.rows, idx[30], idx[40])
		}},
		{name: "device shorter than the window", want: []string{"short_devices/warning"}, count: 1, plant: func(f *fleet) {
			rows := f.deviceRows("dev-3")
			for _, i := range rows[:20] {
				r := f.rows[i]
				r.device, r.vals = "dev-4", slices.Clone(r.vals)
				f.rows = append(f.rows, r)
			}
			f.events = append(f.events, event("acme", "dev-4", f.rows[rows[19]].ts))
		}},
		{name: "failure of an unknown device", want: []string{"failure_unknown_device/warning"}, count: 1, plant: func(f *fleet) {
			f.events = append(f.events, event("acme", "ghost", t0))
		}},
		{name: "failure before the first reading", want: []string{"failure_outside_range/warning"}, count: 1, plant: func(f *fleet) {
			f.events = append(f.events, event("acme", "dev-0", t0-3*hour))
		}},
		{name: "failure long after the last reading", want: []string{"failure_outside_range/warning"}, count: 1, plant: func(f *fleet) {
			f.events[1].Time += 30 * hour
		}},
		{name: "duplicated failure", want: []string{"failure_duplicate/warning"}, count: 1, plant: func(f *fleet) {
			f.events = append(f.events, f.events[2])
		}},
		{name: "failure in the future", want: []string{"failure_in_future/error"}, count: 1, plant: func(f *fleet) {
			f.events = append(f.events, event("acme", "dev-2", now.Add(24*time.Hour).UnixMicro()))
		}},
		{name: "no failures at all", want: []string{"class_balance/error"}, count: 0, plant: func(f *fleet) {
			f.events = []dataset.Failure{}
		}},
		{name: "no critical rows", want: []string{"class_balance/warning"}, count: 0, plant: func(f *fleet) {
			for i := range f.events {
				f.events[i].Time += 4 * hour // still within 5 median intervals of the last reading
			}
		}, opts: func(o *Options) { o.Critical = 3.5 }},
		{name: "null key", want: []string{"null_keys/error"}, count: 1, plant: func(f *fleet) {
			// modax files declare keys non-nullable; other tools' files may not.
			cols := dataset.ReadingsColumns(sensors)
			cols[2].Nullable = true
			meta := dataset.Meta{dataset.MetaSortedBy: dataset.SortedByDevice}
			f.schema = dataset.NewSchema(dataset.KindReadings, cols, meta)
			f.rows[f.deviceRows("dev-2")[7]].nullTS = true
		}},
		{name: "sensor named in metadata missing", want: []string{"schema/error"}, count: 1, plant: func(f *fleet) {
			meta := dataset.Meta{}
			meta.MustSet(dataset.MetaSensors, sensors)
			f.schema = dataset.NewSchema(dataset.KindReadings, dataset.ReadingsColumns(sensors[:2]), meta)
		}},
		{name: "timestamp of the wrong type", want: []string{"schema/error"}, count: 1, plant: func(f *fleet) {
			cols := dataset.ReadingsColumns(sensors)
			cols[2].Type = arrow.PrimitiveTypes.Int64
			f.schema = dataset.NewSchema(dataset.KindReadings, cols, dataset.Meta{})
		}},
		{name: "empty file", want: []string{"empty/error"}, count: 0, plant: func(f *fleet) {
			f.rows = nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := cleanFleet()
			tc.plant(f)
			rep, err := run(t, f, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := findingKeys(rep); !slices.Equal(got, tc.want) {
				for _, f := range rep.Findings {
					t.Logf("%s %s %s: %s %v", f.Severity, f.Check, f.Sensor, f.Message, f.Examples)
				}
				t.Fatalf("findings %v, want %v", got, tc.want)
			}
			if f := rep.Findings[0]; f.Count != tc.count {
				t.Errorf("count %d, want %d (%s)", f.Count, tc.count, f.Message)
			}
			if f := rep.Findings[0]; tc.count > 0 && f.Check != CheckSchema && f.Check != CheckConstant && f.Check != CheckNearConstant {
				if len(f.Examples) == 0 {
					t.Errorf("no examples: %+v", f)
				}
			}
			wantStatus := map[Severity]Severity{Error: Error, Warning: Warning, Info: OK}[rep.Findings[0].Severity]
			if rep.Status != wantStatus {
				t.Errorf("status %s, want %s", rep.Status, wantStatus)
			}
		})
	}
}

func TestExamplesPointAtTheDefect(t *testing.T) {
	f := cleanFleet()
	i := f.deviceRows("dev-2")[50]
	f.rows[i].vals[0] = 90
	rep, err := run(t, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	ex := rep.Findings[0].Examples
	if len(ex) != 1 || ex[0].Device != "dev-2" || ex[0].Tenant != "acme" || ex[0].Timestamp != formatTime(f.rows[i].ts) ||
		ex[0].Value == nil || *ex[0].Value != 90 {
		t.Fatalf("examples %+v", ex)
	}
	// Examples are the smallest (device, time) ones and capped.
	f = cleanFleet()
	for _, i := range f.deviceRows("dev-3")[60:80] {
		f.rows[i].null[0] = true
	}
	for _, i := range f.deviceRows("dev-1")[90:92] {
		f.rows[i].null[0] = true
	}
	rep, err = run(t, f, func(o *Options) { o.Examples = 3 })
	if err != nil {
		t.Fatal(err)
	}
	ex = rep.Findings[0].Examples
	if q := rep.Sensors["temp"]; q.Missing != 22 || q.DevicesWithMissing != 2 || math.Abs(q.MaxDeviceMissingRatio-20.0/120) > 1e-12 {
		t.Fatalf("sensor quality %+v", q)
	}
	if len(ex) != 3 || ex[0].Device != "dev-1" || ex[1].Device != "dev-1" || ex[2].Device != "dev-3" ||
		ex[2].Timestamp != formatTime(f.rows[f.deviceRows("dev-3")[60]].ts) || rep.Findings[0].Devices != 1 {
		t.Fatalf("examples %+v (devices %d)", ex, rep.Findings[0].Devices)
	}
}

func TestDriftAgainstReference(t *testing.T) {
	dir := t.TempDir()
	readings, failures := cleanFleet().write(t, dir)
	opts := DefaultOptions()
	opts.Readings, opts.Failures, opts.Out = readings, failures, filepath.Join(dir, "ref.json")
	if _, err := Run(context.Background(), testEnv(), opts); err != nil {
		t.Fatal(err)
	}
	ref, err := drift.ReadReference(opts.Out)
	if err != nil || len(ref.Sensors) != 3 || ref.Sensors["temp"].Count != 480 {
		t.Fatalf("reference %+v %v", ref, err)
	}

	// The same data against itself: no drift.
	rep, err := run(t, cleanFleet(), func(o *Options) { o.Reference = opts.Out })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || rep.Drift == nil || len(rep.Drift.Sensors) != 3 {
		t.Fatalf("self drift: %v %+v", findingKeys(rep), rep.Drift)
	}
	for s, d := range rep.Drift.Sensors {
		if d.PSI > 1e-9 || d.KS > 0.011 {
			t.Errorf("self drift of %s: %+v", s, d)
		}
	}
	// Temperature up by 2 K (two standard deviations): drift on temp only.
	f := cleanFleet()
	for i := range f.rows {
		f.rows[i].vals[0] += 2
	}
	rep, err = run(t, f, func(o *Options) { o.Reference = opts.Out })
	if err != nil {
		t.Fatal(err)
	}
	if got := findingKeys(rep); !slices.Equal(got, []string{"drift/warning/temp"}) {
		t.Fatalf("drift findings %v", got)
	}
	if d := rep.Drift.Sensors["temp"]; d.PSI < 1 || d.KS < 0.5 || d.Status != Warning {
		t.Fatalf("temp drift %+v", d)
	}
}

func TestGateAndDeterminism(t *testing.T) {
	f := cleanFleet()
	for i := range f.rows {
		f.rows[i].vals[2] = 14.62 // a warning
	}
	dir := t.TempDir()
	readings, failures := f.write(t, dir)
	opts := DefaultOptions()
	opts.Readings, opts.Failures, opts.Out = readings, failures, filepath.Join(dir, "a.json")
	rep, err := Run(context.Background(), testEnv(), opts)
	if err != nil || rep.Failed || rep.Status != Warning {
		t.Fatalf("fail_on error with a warning: err %v failed %v status %s", err, rep.Failed, rep.Status)
	}
	opts.FailOn, opts.Out = "warning", filepath.Join(dir, "b.json")
	rep, err = Run(context.Background(), testEnv(), opts)
	if !errors.Is(err, exitcode.ErrValidation) || rep == nil || !rep.Failed {
		t.Fatalf("fail_on warning: err %v", err)
	}
	if exitcode.Code(err) != 3 {
		t.Fatalf("exit code %d, want 3", exitcode.Code(err))
	}
	// The report was written even though the gate failed, and the same input
	// gives the same bytes.
	a, _ := os.ReadFile(filepath.Join(dir, "a.json"))
	b, err := os.ReadFile(filepath.Join(dir, "b.json"))
	if err != nil {
		t.Fatal(err)
	}
	a = bytes.ReplaceAll(a, []byte(`"fail_on": "error"`), []byte(`"fail_on": "warning"`))
	a = bytes.Replace(a, []byte(`"failed": false`), []byte(`"failed": true`), 1)
	a = bytes.Replace(a, []byte("a.json"), []byte("b.json"), 1)
	if !bytes.Equal(a, b) {
		t.Fatalf("reports differ:\n%s\n---\n%s", a, b)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc["schema"] != ReportSchema {
		t.Fatalf("report JSON: %v %v", err, doc["schema"])
	}
	var buf strings.Builder
	if err := rep.WriteSummary(&buf, "b.json"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"480 rows, 4 devices, 3 sensors", "WARNING  constant_sensor", "class balance", "status: WARNING (0 errors, 1 warnings, 0 infos, fails --fail-on warning)"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for _, mod := range []func(o *Options){
		func(o *Options) { o.FailOn = "sometimes" },
		func(o *Options) { o.Window = 0 },
		func(o *Options) { o.GapFactor = 1 },
		func(o *Options) { o.Critical, o.Warning = 50, 10 },
		func(o *Options) { o.Bounds = Bounds{{Sensor: "nope", Min: 0, Max: 1}} },
		func(o *Options) { o.Bounds = Bounds{{Sensor: "temp", Max: 1}, {Sensor: "temp", Max: 2}} },
	} {
		_, err := run(t, cleanFleet(), mod)
		if !errors.Is(err, exitcode.ErrUsage) {
			t.Errorf("err %v, want a usage error", err)
		}
	}
}

func TestParseBound(t *testing.T) {
	for _, tc := range []struct {
		in       string
		min, max float64
		bad      bool
	}{
		{in: "temp=-40:150", min: -40, max: 150},
		{in: "temp=:150", min: math.Inf(-1), max: 150},
		{in: "s_2=1e-3:", min: 1e-3, max: math.Inf(1)},
		{in: "temp", bad: true},
		{in: "temp=5", bad: true},
		{in: "temp=5:1", bad: true},
		{in: "=1:2", bad: true},
		{in: "temp=a:2", bad: true},
	} {
		b, err := ParseBound(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && (b.Min != tc.min || b.Max != tc.max)) {
			t.Errorf("%q: %+v %v", tc.in, b, err)
		}
		if !tc.bad {
			again, err := ParseBound(b.String())
			if err != nil || again != b {
				t.Errorf("%q: round trip %q -> %+v %v", tc.in, b.String(), again, err)
			}
		}
	}
}

func TestBoundsText(t *testing.T) {
	var bs Bounds
	if err := bs.UnmarshalText([]byte("temp=-40:150, current=0:,")); err != nil {
		t.Fatal(err)
	}
	if len(bs) != 2 || bs[0].Sensor != "temp" || bs[1].Min != 0 || !math.IsInf(bs[1].Max, 1) {
		t.Fatalf("bounds %+v", bs)
	}
	if err := bs.UnmarshalText([]byte("temp=1:0")); err == nil {
		t.Fatal("min > max accepted")
	}
	b, err := json.Marshal(Bounds{{Sensor: "a", Min: -1, Max: math.Inf(1)}})
	if err != nil || string(b) != `["a=-1:"]` {
		t.Fatalf("json %s %v", b, err)
	}
}
