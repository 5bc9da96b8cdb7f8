package features

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
)

// frameIndex finds frames and rows by (device, time).
type frameIndex map[string]*dataset.Frame

func index(frames []*dataset.Frame) frameIndex {
	m := frameIndex{}
	for _, f := range frames {
		m[f.Device] = f
	}
	return m
}

func (m frameIndex) row(t *testing.T, device string, end int64) (*dataset.Frame, int) {
	t.Helper()
	f := m[device]
	i, ok := slices.BinarySearch(f.Time, end)
	if !ok {
		t.Fatalf("window end %d of %s is not a reading", end, device)
	}
	return f, i
}

// TestRunWindowsAndStats checks every value of the windows and stats files
// against the input: labels from the window's last reading, x = scaled raw
// values in feature order, stats of the raw values.
func TestRunWindowsAndStats(t *testing.T) {
	dir := t.TempDir()
	sensors := []string{"temp", "vibration_x", "current"}
	frames := fleet(12, 3)
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensors, 100, frames...)
	res := runIn(t, dir, func(o *Options) { o.Features = []string{"vibration_x", "temp"} })
	want := 0
	for _, f := range frames {
		want += f.Len() - 10 + 1
	}
	if res.Input.Windows != int64(want) {
		t.Fatalf("windows = %d, want %d (len − window + 1 per device)", res.Input.Windows, want)
	}
	if !slices.Equal(res.Vibration, []string{"vibration_x"}) {
		t.Fatalf("vibration axes %v, want [vibration_x]", res.Vibration)
	}
	ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
	if ws.Len() != want || !slices.Equal(ws.Meta.Features, []string{"vibration_x", "temp"}) || ws.Meta.Window != 10 {
		t.Fatalf("windows file: %d rows, features %v, window %d", ws.Len(), ws.Meta.Features, ws.Meta.Window)
	}
	st, err := dataset.ReadStats(context.Background(), filepath.Join(dir, "stats.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	wantCols := []string{
		"vibration_x__mean", "vibration_x__std", "vibration_x__min", "vibration_x__max", "vibration_x__range",
		"vibration_x__skew", "vibration_x__kurtosis", "vibration_x__roc", "vibration_x__psd_peak_hz", "vibration_x__psd_energy",
		"temp__mean", "temp__std", "temp__min", "temp__max", "temp__range", "temp__skew", "temp__kurtosis", "temp__roc",
	}
	if !slices.Equal(st.Features, wantCols) || st.Len() != want {
		t.Fatalf("stats: %d rows, columns %v", st.Len(), st.Features)
	}
	idx := index(frames)
	col := map[string]int{"temp": 0, "vibration_x": 1}
	sc := ws.Meta.Scaler
	calc := newStatsCalc([]string{"vibration_x", "temp"}, []string{"vibration_x"}, 10, 256)
	stats := make([]float64, calc.width())
	for k := range ws.Len() {
		f, e := idx.row(t, ws.Device[k], ws.End[k])
		if ws.RUL[k] != f.RUL[e] || ws.RULRaw[k] != f.RULRaw[e] || ws.Health[k] != f.Health[e] || ws.LifeID[k] != f.LifeID[e] {
			t.Fatalf("window %d: label (%g, %g, %s) is not the last reading's", k, ws.RUL[k], ws.RULRaw[k], ws.Health[k])
		}
		x := ws.XAt(k)
		for ti := range 10 {
			for j, name := range ws.Meta.Features {
				raw := f.Sensors[col[name]][e-9+ti]
				if wantX := float32((raw - sc.Offset[j]) / sc.Scale[j]); x[ti*2+j] != wantX {
					t.Fatalf("window %d x[%d][%s] = %g, want %g", k, ti, name, x[ti*2+j], wantX)
				}
			}
		}
		if st.Device[k] != ws.Device[k] || st.End[k] != ws.End[k] || st.Split[k] != ws.Split[k] || st.RUL[k] != ws.RUL[k] {
			t.Fatalf("stats row %d does not describe window %d", k, k)
		}
		calc.row(stats, [][]float64{f.Sensors[1], f.Sensors[0]}, e-9, e+1)
		if !slices.Equal(st.Row(k), stats) {
			t.Fatalf("stats row %d = %v, want %v", k, st.Row(k), stats)
		}
	}
	// Per window, not one number for the whole table (the design's bug).
	peaks := map[float64]bool{}
	for k := range st.Len() {
		peaks[st.Row(k)[9]] = true
	}
	if len(peaks) < 10 {
		t.Fatalf("psd_energy takes %d distinct values over %d windows", len(peaks), st.Len())
	}
}

// TestScalerFitOnTrainOnly fails if rows of val or test windows influence the
// scaler: the val/test devices' values are changed wildly and the scaler and
// the train windows must stay bit-identical.
func TestScalerFitOnTrainOnly(t *testing.T) {
	for _, kind := range []string{ScalerZScore, ScalerMinMax} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			sensors := sensorNames(2)
			frames := fleet(20, 2)
			writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensors, 100, frames...)
			mod := func(o *Options) { o.Scaler = kind; o.Stats = "" }
			res := runIn(t, dir, mod)
			ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
			split := map[string]string{}
			for k := range ws.Len() {
				split[ws.Device[k]] = ws.Split[k]
			}
			// Expected parameters from the train devices' rows alone.
			for j := range 2 {
				var vals []float64
				for _, f := range frames {
					if split[f.Device] == dataset.SplitTrain {
						vals = append(vals, f.Sensors[j]...)
					}
				}
				off, scale := stat2(kind, vals)
				if math.Abs(res.Scaler.Offset[j]-off) > 1e-12*math.Abs(off)+1e-12 || math.Abs(res.Scaler.Scale[j]-scale) > 1e-12*scale {
					t.Fatalf("feature %d: scaler (%g, %g), train rows give (%g, %g)", j, res.Scaler.Offset[j], res.Scaler.Scale[j], off, scale)
				}
			}
			if res.Scaler.FitRows == 0 || res.Scaler.FitSplit != dataset.SplitTrain {
				t.Fatalf("fit rows %d split %q", res.Scaler.FitRows, res.Scaler.FitSplit)
			}
			// Now make val and test rows huge: nothing of train may change.
			for _, f := range frames {
				if split[f.Device] != dataset.SplitTrain {
					for j := range f.Sensors {
						for i := range f.Sensors[j] {
							f.Sensors[j][i] = f.Sensors[j][i]*1000 + 12345
						}
					}
				}
			}
			dir2 := t.TempDir()
			writeLabeled(t, filepath.Join(dir2, "labeled.parquet"), sensors, 100, frames...)
			res2 := runIn(t, dir2, mod)
			if !slices.Equal(res.Scaler.Offset, res2.Scaler.Offset) || !slices.Equal(res.Scaler.Scale, res2.Scaler.Scale) {
				t.Fatalf("val/test rows changed the scaler: %v/%v → %v/%v", res.Scaler.Offset, res.Scaler.Scale, res2.Scaler.Offset, res2.Scaler.Scale)
			}
			a := readWindows(t, filepath.Join(dir, "windows.parquet"), dataset.SplitTrain)
			b := readWindows(t, filepath.Join(dir2, "windows.parquet"), dataset.SplitTrain)
			if !slices.Equal(a.X, b.X) || a.Len() == 0 {
				t.Fatal("train windows changed when only val/test rows changed")
			}
		})
	}
}

func stat2(kind string, v []float64) (offset, scale float64) {
	var m moments
	for _, x := range v {
		m.add(x)
	}
	return m.params(kind)
}

func TestConstantFeatureScaleOne(t *testing.T) {
	dir := t.TempDir()
	frames := fleet(6, 2)
	for _, f := range frames {
		for i := range f.Sensors[1] {
			f.Sensors[1][i] = 518.67 // C-MAPSS s_1
		}
	}
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(2), 100, frames...)
	for _, kind := range []string{ScalerZScore, ScalerMinMax} {
		res := runIn(t, dir, func(o *Options) { o.Scaler = kind })
		if res.Scaler.Scale[1] != 1 || res.Scaler.Offset[1] != 518.67 {
			t.Fatalf("%s: constant feature scaled by (%g, %g), want (518.67, 1)", kind, res.Scaler.Offset[1], res.Scaler.Scale[1])
		}
		for _, v := range readWindows(t, filepath.Join(dir, "windows.parquet")).X {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: non-finite value in x", kind)
			}
		}
	}
}

// TestDeviceSplit: whole devices, 64/16/20, seeded and reproducible.
func TestDeviceSplit(t *testing.T) {
	dir := t.TempDir()
	frames := fleet(100, 1)
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(1), 100, frames...)
	assignment := func(seed int64) map[string]string {
		res := runIn(t, dir, func(o *Options) { o.Seed = seed; o.Stats = "" })
		if d := res.Split.Devices; d["train"] != 64 || d["val"] != 16 || d["test"] != 20 {
			t.Fatalf("devices per split %v, want 64/16/20", d)
		}
		ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
		m := map[string]string{}
		for k := range ws.Len() {
			if s, ok := m[ws.Device[k]]; ok && s != ws.Split[k] {
				t.Fatalf("device %s has windows in %s and %s", ws.Device[k], s, ws.Split[k])
			}
			m[ws.Device[k]] = ws.Split[k]
		}
		if len(m) != 100 {
			t.Fatalf("%d devices have windows, want 100", len(m))
		}
		return m
	}
	a, b, c := assignment(42), assignment(42), assignment(7)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different split")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("seeds 42 and 7 give the same split")
	}
	// The device split is scikit-learn's split of the sorted device list.
	codes, _ := assignSplits(100, 0.2, 0.2, 42)
	for i, f := range frames {
		if a[f.Device] != splitNames[codes[i]] {
			t.Fatalf("device %s in %s, want %s", f.Device, a[f.Device], splitNames[codes[i]])
		}
	}
}

// TestRandomSplit: the design's leaky split of windows, marked as such.
func TestRandomSplit(t *testing.T) {
	dir := t.TempDir()
	frames := fleet(5, 1)
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(1), 100, frames...)
	res := runIn(t, dir, func(o *Options) { o.Split = SplitRandom })
	n := int(res.Input.Windows)
	codes, _ := assignSplits(n, 0.2, 0.2, 42)
	ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
	for k := range ws.Len() {
		if ws.Split[k] != splitNames[codes[k]] {
			t.Fatalf("window %d in %s, train_test_split puts it in %s", k, ws.Split[k], splitNames[codes[k]])
		}
	}
	nTest := int(math.Ceil(0.2 * float64(n)))
	if got := res.Split.Windows["test"]; got != int64(nTest) {
		t.Fatalf("test windows %d, want ceil(0.2·%d) = %d", got, n, nTest)
	}
	if !res.Split.Leaky || res.Split.Devices["test"] < 2 || res.Split.Devices["train"] < 2 {
		t.Fatalf("random split should be marked leaky and mix devices: %+v", res.Split)
	}
	var spec SplitSpec
	if _, err := ws.FileMeta.Get(dataset.MetaSplit, &spec); err != nil || !spec.Leaky || spec.Windows["test"] != int64(nTest) {
		t.Fatalf("modax.split metadata %+v (%v)", spec, err)
	}
}

// TestTimeSplit: past for training, future for testing, and no train label
// that a retrain at the cutoff could not have known.
func TestTimeSplit(t *testing.T) {
	dir := t.TempDir()
	// Two lives per device, failures at hours 59 and 159 (+offset).
	var frames []*dataset.Frame
	for d := range 4 {
		f := lifeFrame("t", fmt.Sprintf("dev-%d", d), 60, int64(d), 20, 1, func(_, i int) float64 { return float64(i) })
		frames = append(frames, concat(f, lifeFrame("t", "x", 100, 60+int64(d), 20, 1, func(_, i int) float64 { return float64(-i) })))
	}
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(1), 20, frames...)
	cutoff := time.Unix(0, 0).UTC().Add(100 * time.Hour)
	res := runIn(t, dir, func(o *Options) {
		o.Split = SplitTime
		o.Cutoff = cutoff.Format(time.RFC3339)
		o.ValCutoff = cutoff.Add(-40 * time.Hour).Format(time.RFC3339)
	})
	ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
	c := cutoff.UnixMicro()
	vc := c - 40*hour
	for k := range ws.Len() {
		end := ws.End[k]
		switch ws.Split[k] {
		case "test":
			if end < c {
				t.Fatalf("test window ends before the cutoff")
			}
		case "val", "train":
			if end >= c || (ws.Split[k] == "val") != (end >= vc) {
				t.Fatalf("%s window ends at %d (val cutoff %d, cutoff %d)", ws.Split[k], end, vc, c)
			}
			// Known at the cutoff: failure observed, or horizon (20 h) clear.
			if !(float64(end)+ws.RULRaw[k]*3.6e9 <= float64(c) || c-end >= 20*hour) {
				t.Fatalf("%s window at %d has a label from after the cutoff", ws.Split[k], end)
			}
		}
	}
	// Second-life windows ending in (cutoff−20h, cutoff) are dropped: 20 per device minus
	// the ones before the window fits.
	if res.Input.DroppedFuture == 0 || res.Split.Windows["test"] == 0 || res.Split.Windows["val"] == 0 {
		t.Fatalf("time split: %+v, dropped future %d", res.Split.Windows, res.Input.DroppedFuture)
	}
	if res.Input.Windows+res.Input.DroppedFuture != int64(4*((60-9)+(100-9))) {
		t.Fatalf("kept %d + dropped %d ≠ all windows %d", res.Input.Windows, res.Input.DroppedFuture, 4*(51+91))
	}
}

// TestTestSource: a second file is the test split; the scaler ignores it.
func TestTestSource(t *testing.T) {
	dir := t.TempDir()
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(2), 100, fleet(10, 2)...)
	test := fleet(4, 2)
	for _, f := range test {
		f.Device = "test-" + f.Device
		for j := range f.Sensors {
			for i := range f.Sensors[j] {
				f.Sensors[j][i] += 1000
			}
		}
	}
	testPath := writeLabeled(t, filepath.Join(dir, "test.parquet"), sensorNames(2), 100, test...)
	base := runIn(t, dir, func(o *Options) { o.TestSize = 0 })
	res := runIn(t, dir, func(o *Options) { o.TestSource = testPath })
	if !slices.Equal(base.Scaler.Offset, res.Scaler.Offset) || !slices.Equal(base.Scaler.Scale, res.Scaler.Scale) {
		t.Fatal("the test source changed the scaler")
	}
	if res.TestInput == nil || res.Split.Windows["test"] != res.TestInput.Windows || res.Split.Devices["test"] != 4 {
		t.Fatalf("test split %v devices %v, test input %+v", res.Split.Windows, res.Split.Devices, res.TestInput)
	}
	ws := readWindows(t, filepath.Join(dir, "windows.parquet"), "test")
	for k := range ws.Len() {
		if ws.Device[k][:5] != "test-" {
			t.Fatalf("test window of %s", ws.Device[k])
		}
	}
	// Labels defined differently are refused.
	other := writeLabeled(t, filepath.Join(dir, "test125.parquet"), sensorNames(2), 125, test...)
	o := DefaultOptions()
	o.Labeled, o.Out, o.Stats, o.TestSource = filepath.Join(dir, "labeled.parquet"), filepath.Join(dir, "w.parquet"), "", other
	if _, err := Run(context.Background(), runenv.Test(), o); !errors.Is(err, exitcode.ErrUsage) {
		t.Fatalf("horizon mismatch: err = %v, want a usage error", err)
	}
}

// TestWorkersDeterministic: the files do not depend on the worker count.
func TestWorkersDeterministic(t *testing.T) {
	dir := t.TempDir()
	frames := fleet(30, 3)
	frames[3].Sensors[1][5] = math.NaN()
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), []string{"a", "vibration_y", "c"}, 100, frames...)
	var prev *dataset.Windows
	var prevStats *dataset.Stats
	for _, w := range []int{1, 2, 5} {
		res := runIn(t, dir, func(o *Options) { o.Workers = w; o.Stride = 2 })
		ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
		st, err := dataset.ReadStats(context.Background(), filepath.Join(dir, "stats.parquet"))
		if err != nil {
			t.Fatal(err)
		}
		if int64(ws.Len()) != res.Input.Windows {
			t.Fatalf("workers %d: %d windows in the file, result says %d", w, ws.Len(), res.Input.Windows)
		}
		if prev != nil {
			if !slices.Equal(prev.X, ws.X) || !slices.Equal(prev.End, ws.End) || !slices.Equal(prev.Device, ws.Device) || !slices.Equal(prev.Split, ws.Split) {
				t.Fatalf("workers %d: windows differ from workers 1", w)
			}
			if !slices.Equal(prevStats.Values, st.Values) {
				t.Fatalf("workers %d: stats differ", w)
			}
		}
		prev, prevStats = ws, st
	}
}

// TestPerConditionScaler: conditions found on train, one scaler each,
// recorded in metadata so that a reader can apply it to raw values.
func TestPerConditionScaler(t *testing.T) {
	dir := t.TempDir()
	settings := [][2]float64{{0, 100}, {20.0, 60}, {42, 100}}
	level := []float64{500, 520, 560}
	var frames []*dataset.Frame
	for d := range 12 {
		f := lifeFrame("t", fmt.Sprintf("u%02d", d), 80, 0, 125, 3, func(s, i int) float64 { return 0 })
		for i := range f.Len() {
			k := (i*7 + d) % 3
			f.Sensors[0][i] = settings[k][0] + 0.001*math.Sin(float64(i))
			f.Sensors[1][i] = settings[k][1]
			f.Sensors[2][i] = level[k] + float64(k+1)*math.Sin(float64(i*d)) + 0.01*float64(i)
		}
		frames = append(frames, f)
	}
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), []string{"setting_1", "setting_2", "s_2"}, 125, frames...)
	res := runIn(t, dir, func(o *Options) { o.ConditionColumns = []string{"setting_1", "setting_2"} })
	if !slices.Equal(res.Features, []string{"s_2"}) {
		t.Fatalf("features %v: condition columns should not be default features", res.Features)
	}
	c := res.Scaler.Conditions
	if c == nil || len(c.Centers) != 3 || !res.Scaler.PerCondition() {
		t.Fatalf("conditions: %+v", c)
	}
	ws := readWindows(t, filepath.Join(dir, "windows.parquet"))
	if !ws.Meta.Scaler.PerCondition() || len(ws.Meta.Scaler.Conditions.Offset) != 3 {
		t.Fatalf("per-condition scaler not in the metadata: %+v", ws.Meta.Scaler)
	}
	// Each condition's train rows are standardised separately.
	idx := index(frames)
	sum := make([]float64, 3)
	sq := make([]float64, 3)
	n := make([]float64, 3)
	for k := range ws.Len() {
		f, e := idx.row(t, ws.Device[k], ws.End[k])
		for ti, v := range ws.XAt(k) {
			i := e - 9 + ti
			cond := []float64{f.Sensors[0][i], f.Sensors[1][i]}
			off, scale := ws.Meta.Scaler.Params(cond)
			if want := float32((f.Sensors[2][i] - off[0]) / scale[0]); v != want {
				t.Fatalf("x = %g, want %g", v, want)
			}
			if ws.Split[k] == "train" && ti == 9 {
				cond := c.Condition(cond)
				sum[cond] += float64(v)
				sq[cond] += float64(v) * float64(v)
				n[cond]++
			}
		}
	}
	for k := range 3 {
		mean := sum[k] / n[k]
		if math.Abs(mean) > 0.3 || math.Abs(sq[k]/n[k]-mean*mean-1) > 0.3 {
			t.Fatalf("condition %d: train mean %g variance %g, want ≈ 0 and 1", k, mean, sq[k]/n[k]-mean*mean)
		}
	}
}

// TestBucketStats: per device and hour-aligned bucket, over present values.
func TestBucketStats(t *testing.T) {
	dir := t.TempDir()
	frames := fleet(3, 2)
	frames[0].Sensors[0][4] = math.NaN()
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(2), 100, frames...)
	res := runIn(t, dir, func(o *Options) { o.StatsBucket = duration.Duration(4 * time.Hour) })
	var want int64
	for _, f := range frames {
		seen := map[int64]bool{}
		for _, ts := range f.Time {
			seen[floorDiv(ts, 4*hour)] = true
		}
		want += int64(len(seen))
	}
	if res.BucketRows != want {
		t.Fatalf("bucket rows %d, want %d", res.BucketRows, want)
	}
	calc := newStatsCalc(sensorNames(2), nil, 10, 256)
	got := make([]float64, calc.width())
	calc.rowSkipNaN(got, [][]float64{{1, 2, math.NaN(), 4}, {math.NaN(), math.NaN()}}, 0, 2, nil)
	if got[0] != 1.5 || !math.IsNaN(got[8]) {
		t.Fatalf("bucket stats skip missing values: %v", got)
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(2), 100, fleet(3, 2)...)
	for _, tc := range []struct {
		name string
		mod  func(*Options)
	}{
		{"window 0", func(o *Options) { o.Window = 0 }},
		{"unknown split", func(o *Options) { o.Split = "devices" }},
		{"time without cutoff", func(o *Options) { o.Split = SplitTime }},
		{"cutoff with device split", func(o *Options) { o.Cutoff = "2024-01-01" }},
		{"bad cutoff", func(o *Options) { o.Split, o.Cutoff = SplitTime, "yesterday" }},
		{"unknown feature", func(o *Options) { o.Features = []string{"s9"} }},
		{"duplicate feature", func(o *Options) { o.Features = []string{"s0", "s0"} }},
		{"unknown scaler", func(o *Options) { o.Scaler = "robust" }},
		{"condition without scaler", func(o *Options) { o.Scaler, o.ConditionColumns = ScalerNone, []string{"s1"} }},
		{"vibration not a feature", func(o *Options) { o.Vibration = []string{"s7"} }},
		{"test size 1", func(o *Options) { o.TestSize = 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Labeled, o.Out = filepath.Join(dir, "labeled.parquet"), filepath.Join(dir, "w.parquet")
			tc.mod(&o)
			_, err := Run(context.Background(), runenv.Test(), o)
			if !errors.Is(err, exitcode.ErrUsage) {
				t.Fatalf("err = %v, want a usage error", err)
			}
		})
	}
	// Lives shorter than the window: a data error (exit 3), no file.
	o := DefaultOptions()
	o.Labeled, o.Out, o.Window = filepath.Join(dir, "labeled.parquet"), filepath.Join(dir, "w.parquet"), 500
	if _, err := Run(context.Background(), runenv.Test(), o); !errors.Is(err, exitcode.ErrValidation) {
		t.Fatalf("window longer than every life: err = %v, want a validation error", err)
	}
	if _, err := dataset.Open(o.Out, ""); err == nil {
		t.Fatal("a windows file was left behind")
	}
}

func TestCancel(t *testing.T) {
	dir := t.TempDir()
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), sensorNames(2), 100, fleet(20, 2)...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o := DefaultOptions()
	o.Labeled, o.Out = filepath.Join(dir, "labeled.parquet"), filepath.Join(dir, "w.parquet")
	if _, err := Run(ctx, runenv.Test(), o); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestSixCMAPSSConditions: the six FD002/FD004 operating conditions (altitude
// in kft, Mach, throttle resolver angle), with the small noise of the real
// files, are found as six conditions by rounding to 0 decimals, and every row
// goes to the condition it was drawn from.
func TestSixCMAPSSConditions(t *testing.T) {
	conds := [][3]float64{{42, 0.84, 100}, {35, 0.84, 100}, {25, 0.62, 60}, {20, 0.70, 100}, {10, 0.25, 100}, {0, 0, 100}}
	dir := t.TempDir()
	var frames []*dataset.Frame
	drawn := map[string][]int{}
	for d := range 20 {
		f := lifeFrame("t", fmt.Sprintf("unit-%02d", d), 120, 0, 125, 4, func(int, int) float64 { return 0 })
		for i := range f.Len() {
			k := (i*5 + d*3 + i/7) % 6
			drawn[f.Device] = append(drawn[f.Device], k)
			noise := math.Sin(float64(i*31 + d)) // in [-1, 1]
			f.Sensors[0][i] = conds[k][0] + 0.005*noise
			f.Sensors[1][i] = conds[k][1] + 0.0005*noise
			f.Sensors[2][i] = conds[k][2]
			f.Sensors[3][i] = 500 + 10*float64(k) + noise
		}
		frames = append(frames, f)
	}
	writeLabeled(t, filepath.Join(dir, "labeled.parquet"), []string{"setting_1", "setting_2", "setting_3", "s_2"}, 125, frames...)
	res := runIn(t, dir, func(o *Options) {
		o.ConditionColumns = []string{"setting_1", "setting_2", "setting_3"}
		o.Stats = ""
	})
	c := res.Scaler.Conditions
	if c == nil || len(c.Centers) != 6 {
		t.Fatalf("found %v conditions, want the 6 of C-MAPSS", c)
	}
	for _, f := range frames {
		for i := range f.Len() {
			got := c.Centers[c.Condition([]float64{f.Sensors[0][i], f.Sensors[1][i], f.Sensors[2][i]})]
			want := conds[drawn[f.Device][i]]
			if math.Abs(got[0]-want[0]) > 0.01 || math.Abs(got[1]-want[1]) > 0.001 || got[2] != want[2] {
				t.Fatalf("%s row %d: condition center %v, drawn from %v", f.Device, i, got, want)
			}
		}
	}
}
