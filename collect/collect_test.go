package collect

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
)

// readFrames reads a readings file back, checking for leaks.
func readFrames(t *testing.T, loc string) ([]*dataset.Frame, []string) {
	t.Helper()
	alloc := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer alloc.AssertSize(t, 0)
	r, err := dataset.Open(loc, dataset.KindReadings, dataset.WithReadAllocator(alloc))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Meta()[dataset.MetaSortedBy] != dataset.SortedByDevice || r.Meta()[dataset.MetaStage] != Stage {
		t.Fatalf("%s metadata %v", loc, r.Meta())
	}
	sensors, err := r.Sensors()
	if err != nil {
		t.Fatal(err)
	}
	var out []*dataset.Frame
	for f, err := range r.DeviceFrames(context.Background(), nil) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out, sensors
}

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

// compareFrames checks every value of got against want.
func compareFrames(t *testing.T, got, want []*dataset.Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d devices, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Tenant != w.Tenant || g.Device != w.Device {
			t.Fatalf("device %d is %s/%s, want %s/%s", i, g.Tenant, g.Device, w.Tenant, w.Device)
		}
		if !slices.Equal(g.Time, w.Time) {
			t.Fatalf("%s: %d times differ from the %d expected", w.Device, g.Len(), w.Len())
		}
		if len(g.Sensors) != len(w.Sensors) {
			t.Fatalf("%s: %d sensors, want %d", w.Device, len(g.Sensors), len(w.Sensors))
		}
		for s := range w.Sensors {
			for j := range w.Sensors[s] {
				if !sameFloat(g.Sensors[s][j], w.Sensors[s][j]) {
					t.Fatalf("%s sensor %d row %d = %v, want %v", w.Device, s, j, g.Sensors[s][j], w.Sensors[s][j])
				}
			}
		}
	}
}

func compareFailures(t *testing.T, got, want []dataset.Failure) {
	t.Helper()
	if !equalFailures(got, want) {
		t.Fatalf("failures differ:\n got %d %v\nwant %d %v", len(got), head(got), len(want), head(want))
	}
}

func head[T any](s []T) []T { return s[:min(len(s), 3)] }

func testOptions(dir string) Options {
	o := DefaultOptions()
	o.Out = filepath.Join(dir, "readings.parquet")
	o.FailuresOut = filepath.Join(dir, "failures.parquet")
	o.Synthetic.Devices, o.Synthetic.Days = 4, 30
	return o
}

func TestRunSynthetic(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.DB.Tenant = "acme"
	res, err := Run(context.Background(), runenv.Test(), opts)
	if err != nil {
		t.Fatal(err)
	}
	so := opts.Synthetic
	so.Tenant = "acme"
	frames, failures, err := Synthetic(context.Background(), so)
	if err != nil {
		t.Fatal(err)
	}
	got, sensors := readFrames(t, opts.Out)
	if !slices.Equal(sensors, SyntheticSensors) {
		t.Fatalf("sensors %v", sensors)
	}
	compareFrames(t, got, frames)
	gf, _, err := dataset.ReadFailures(context.Background(), opts.FailuresOut)
	if err != nil {
		t.Fatal(err)
	}
	compareFailures(t, gf, failures)
	rows := 0
	for _, f := range frames {
		rows += f.Len()
	}
	if res.Rows != int64(rows) || res.Devices != 4 || res.Failures != len(failures) || !slices.Equal(res.Tenants, []string{"acme"}) {
		t.Fatalf("result %+v", res)
	}
	if !res.TimeRange.From.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || len(res.Files) != 2 || len(res.Files[0].SHA256) != 64 {
		t.Fatalf("result %+v", res)
	}
	sum, _ := dataset.FileSHA256(opts.Out)
	if res.Files[0].SHA256 != sum || res.Files[0].Rows != int64(rows) {
		t.Fatalf("file %+v, sha256 %s", res.Files[0], sum)
	}
}

func TestRunFilter(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	frames, failures, err := Synthetic(context.Background(), opts.Synthetic)
	if err != nil {
		t.Fatal(err)
	}
	// Bounds exactly on reading times: both are included.
	f1 := frames[1]
	from, to := f1.Time[100], f1.Time[2000]
	opts.Devices = []string{f1.Device, "no-such-device"}
	opts.From = dataset.TimeOf(from).Format(time.RFC3339Nano)
	opts.To = dataset.TimeOf(to).Format(time.RFC3339Nano)
	res, err := Run(context.Background(), runenv.Test(), opts)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readFrames(t, opts.Out)
	if len(got) != 1 || got[0].Device != f1.Device || got[0].Time[0] != from || got[0].Time[got[0].Len()-1] != to || got[0].Len() != 1901 {
		t.Fatalf("filtered frame %s with %d rows from %v", got[0].Device, got[0].Len(), got[0].Time[0])
	}
	var want []dataset.Failure
	for _, f := range failures {
		if f.Device == f1.Device && f.Time >= from {
			want = append(want, f) // failures after --to are kept
		}
	}
	gf, _, _ := dataset.ReadFailures(context.Background(), opts.FailuresOut)
	compareFailures(t, gf, want)
	if res.Rows != 1901 || res.Devices != 1 {
		t.Fatalf("result %+v", res)
	}
}

func TestRunErrorsLeaveNoFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		code int
		want string
	}{
		{"bad source", func(o *Options) { o.Source = "mysql" }, 2, "want synthetic, postgres"},
		{"csv without path", func(o *Options) { o.Source = "csv" }, 2, "want csv:PATH"},
		{"bad from", func(o *Options) { o.From = "last tuesday" }, 2, "collect.from"},
		{"to before from", func(o *Options) { o.From, o.To = "2024-02-01", "2024-01-01" }, 2, "before"},
		{"failures with synthetic", func(o *Options) { o.Failures = "csv:x.csv" }, 2, "--failures is for"},
		{"bad synthetic", func(o *Options) { o.Synthetic.Devices = 0 }, 2, "--devices"},
		{"empty range", func(o *Options) { o.From = "2030-01-01" }, 3, "no readings"},
		{"unknown device", func(o *Options) { o.Devices = []string{"x'; DROP TABLE sensor_data; --"} }, 3, "no readings"},
		{"missing csv", func(o *Options) { o.Source = "csv:/nonexistent/x.csv" }, 1, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions(dir)
			tc.mod(&opts)
			_, err := Run(context.Background(), runenv.Test(), opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if c := exitcode.Code(err); c != tc.code {
				t.Fatalf("exit code %d, want %d (%v)", c, tc.code, err)
			}
			assertEmptyDir(t, dir)
		})
	}
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left %s behind", e.Name())
	}
}

// cancelAfter is a progress factory whose bars cancel ctx once n units are done.
func cancelAfter(cancel context.CancelFunc, n int64) progress.Factory {
	return func(string, string, int64) progress.Bar { return &cancelBar{cancel: cancel, after: n} }
}

type cancelBar struct {
	cancel context.CancelFunc
	after  int64
	done   int64
}

func (b *cancelBar) Add(n int64) {
	if b.done += n; b.done >= b.after {
		b.cancel()
	}
}
func (b *cancelBar) SetTotal(int64)  {}
func (b *cancelBar) Describe(string) {}
func (b *cancelBar) Finish()         {}

func TestRunCancelled(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := runenv.Test()
	env.Progress = cancelAfter(cancel, 1)
	_, err := Run(ctx, env, opts)
	if !errors.Is(err, context.Canceled) || exitcode.Code(err) != exitcode.Interrupted {
		t.Fatalf("err = %v, want cancelled", err)
	}
	assertEmptyDir(t, dir)
}

func TestRunCMAPSS(t *testing.T) {
	src := testutil.CMAPSSDir(t)
	dir := t.TempDir()
	opts := testOptions(dir)
	opts.Source = "cmapss:" + filepath.Join(src, "test_FD001.txt")
	opts.RUL = filepath.Join(src, "RUL_FD001.txt")
	opts.DB.Tenant = "nasa"
	res, err := Run(context.Background(), runenv.Test(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 13096 || res.Devices != 100 || res.Failures != 100 || len(res.Sensors) != 24 {
		t.Fatalf("result %+v", res)
	}
	frames, failures, _, err := ReadCMAPSS(filepath.Join(src, "test_FD001.txt"), opts.RUL, "nasa")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := readFrames(t, opts.Out)
	compareFrames(t, got, frames)
	gf, meta, _ := dataset.ReadFailures(context.Background(), opts.FailuresOut)
	compareFailures(t, gf, failures)
	var in []dataset.Input
	if _, err := meta.Get(dataset.MetaInputs, &in); err != nil || len(in) != 2 || len(in[0].SHA256) != 64 {
		t.Fatalf("inputs metadata %v (%v)", in, err)
	}
}
