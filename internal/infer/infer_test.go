package infer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

var t0 = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

func testModel(t *testing.T, feats []string, window int, sc dataset.Scaler) *Model {
	t.Helper()
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: len(feats), Hidden: 5, Layers: 2, FC: 4})
	if err != nil {
		t.Fatal(err)
	}
	p.Init(7)
	// Output in hours: scale the head like a trainer folding y/horizon.
	for _, n := range []string{"fc2.weight", "fc2.bias"} {
		for i := range p.Get(n).Data {
			p.Get(n).Data[i] *= 100
		}
	}
	// Centre the outputs inside [0, horizon], where predict does not clip
	// them, so that comparisons of its outputs compare the model's.
	p.Get("fc2.bias").Data[0] += 80
	ck := &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch, Features: feats, Window: window, Scaler: sc,
		Horizon: 100, Thresholds: dataset.DefaultThresholds, ModelVersion: "m1"}}
	m, err := FromCheckpoint("model.safetensors", "sha-m1", ck, NewReference(p, window, 3))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func scaler(feats []string, off, scale float64) dataset.Scaler {
	s := dataset.Scaler{Kind: "zscore", Features: feats}
	for range feats {
		s.Offset = append(s.Offset, off)
		s.Scale = append(s.Scale, scale)
	}
	return s
}

// testWindows makes windows of devices × lives × n per life, splits by device.
func testWindows(feats []string, window int, sc dataset.Scaler, devices, lives, n int) *dataset.Windows {
	rng := rand.New(rand.NewPCG(3, 4))
	wm := dataset.WindowsMeta{Window: window, Stride: 1, Features: feats, Scaler: sc, Horizon: 100, Thresholds: dataset.DefaultThresholds}
	w := &dataset.Windows{Meta: wm, T: window, F: len(feats)}
	splits := []string{"train", "val", "test"}
	for d := range devices {
		for l := range lives {
			for k := range n {
				w.Tenant = append(w.Tenant, "t")
				w.Device = append(w.Device, fmt.Sprintf("d%d", d))
				w.LifeID = append(w.LifeID, int32(l))
				w.End = append(w.End, dataset.Micros(t0.Add(time.Duration(l*1000+k)*time.Hour)))
				rul := float64(n-1-k) * 4
				w.RUL = append(w.RUL, rul)
				w.RULRaw = append(w.RULRaw, rul)
				w.Health = append(w.Health, wm.Thresholds.Classify(rul))
				w.Split = append(w.Split, splits[d%3])
				for range window * len(feats) {
					w.X = append(w.X, float32(rng.NormFloat64()))
				}
			}
		}
	}
	return w
}

func TestCheck(t *testing.T) {
	feats := []string{"temp", "vib_x", "pressure"}
	m := testModel(t, feats, 6, scaler(feats, 0, 1))
	for _, tc := range []struct {
		name   string
		feats  []string
		window int
		want   string
	}{
		{"window", feats, 8, "windows have 8 time steps, the model was trained on windows of 6"},
		{"order", []string{"temp", "pressure", "vib_x"}, 6, `same features in a different order: position 2 is "pressure", the model expects "vib_x"`},
		{"missing", []string{"temp", "vib_x"}, 6, "it lacks pressure"},
		{"extra", []string{"temp", "vib_x", "pressure", "rpm"}, 6, "features the model does not know: rpm"},
		{"renamed", []string{"temp", "vib_x", "press"}, 6, "it lacks pressure; it has features the model does not know: press"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(m, dataset.WindowsMeta{Window: tc.window, Features: tc.feats}, "w.parquet")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, exitcode.ErrValidation) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := Check(m, dataset.WindowsMeta{Window: 6, Features: slices.Clone(feats)}, "w.parquet"); err != nil {
		t.Errorf("matching windows refused: %v", err)
	}
}

func TestSelectLastWindow(t *testing.T) {
	feats := []string{"a"}
	w := testWindows(feats, 2, scaler(feats, 0, 1), 3, 2, 5)
	// Shuffle the rows of device 0 so "last" must come from window_end, not row order.
	w.End[0], w.End[4] = w.End[4], w.End[0]
	rows := Select(w, true)
	if len(rows) != 6 { // 3 devices × 2 lives
		t.Fatalf("selected %d rows, want 6", len(rows))
	}
	if rows[0] != 0 {
		t.Errorf("device 0 life 0: selected row %d, want 0 (the latest window_end)", rows[0])
	}
	for _, i := range rows[1:] {
		if w.RUL[i] != 0 {
			t.Errorf("row %d has RUL %g: not the last window of its life", i, w.RUL[i])
		}
	}
	if n := len(Select(w, false)); n != w.Len() {
		t.Errorf("all: %d rows", n)
	}
}

func TestPredictBatchesAndScaling(t *testing.T) {
	feats := []string{"a", "b", "c"}
	msc := dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{1, -2, 0.5}, Scale: []float64{2, 0.5, 3}}
	m := testModel(t, feats, 4, msc)
	w := testWindows(feats, 4, msc, 4, 1, 7)
	env := runenv.Test()
	want := make([]float32, w.Len())
	if err := m.Forward.Predict(w.X, w.Len(), want); err != nil {
		t.Fatal(err)
	}
	for _, bs := range []int{1, 3, 256} {
		ps, err := Predict(context.Background(), env, m, w, "w", Options{BatchSize: bs})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != w.Len() {
			t.Fatalf("batch %d: %d predictions", bs, len(ps))
		}
		for i, p := range ps {
			if w := m.Clip(float64(want[i])); p.RULPred != w {
				t.Fatalf("batch %d row %d: %g, want %g (the model's %g clipped to [0, %g])", bs, i, p.RULPred, w, want[i], m.Horizon)
			}
			if p.HealthPred != dataset.DefaultThresholds.Classify(p.RULPred) || p.Device != w.Device[i] || p.RULTrue != w.RUL[i] || p.Split != w.Split[i] {
				t.Fatalf("row %d: %+v", i, p)
			}
		}
	}

	// The same raw data scaled with another scaler: predict re-scales it to
	// the model's, so the predictions agree (to float32 rounding).
	fsc := dataset.Scaler{Kind: "minmax", Features: feats, Offset: []float64{-5, 0, 3}, Scale: []float64{10, 4, 0.25}}
	w2 := testWindows(feats, 4, fsc, 4, 1, 7)
	for i, v := range w.X {
		j := i % 3
		raw := float64(v)*msc.Scale[j] + msc.Offset[j]
		w2.X[i] = float32((raw - fsc.Offset[j]) / fsc.Scale[j])
	}
	ps, err := Predict(context.Background(), env, m, w2, "w2", Options{BatchSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	inside := 0
	for i, p := range ps {
		w := m.Clip(float64(want[i]))
		if d := math.Abs(p.RULPred - w); d > 1e-3*math.Max(1, math.Abs(w)) {
			t.Fatalf("rescaled row %d: %g, want %g", i, p.RULPred, w)
		}
		if w > 0 && w < m.Horizon {
			inside++
		}
	}
	if inside < len(ps)/2 {
		t.Fatalf("only %d of %d outputs inside (0, %g): the test compares clipped constants", inside, len(ps), m.Horizon)
	}
}

type nanForward struct{ at int }

func (f nanForward) Predict(_ []float32, b int, out []float32) error {
	for i := range b {
		out[i] = float32(i)
	}
	if f.at < b {
		out[f.at] = float32(math.NaN())
	}
	return nil
}

func TestPredictNaN(t *testing.T) {
	feats := []string{"a"}
	m := testModel(t, feats, 2, scaler(feats, 0, 1))
	m.Forward = nanForward{at: 2}
	w := testWindows(feats, 2, scaler(feats, 0, 1), 2, 1, 4)
	_, err := Predict(context.Background(), runenv.Test(), m, w, "w.parquet", Options{BatchSize: 8})
	if err == nil || !strings.Contains(err.Error(), "output NaN for window 3 of w.parquet (device d0") {
		t.Errorf("error = %v", err)
	}
}

func writeWindows(t *testing.T, path string, w *dataset.Windows) {
	t.Helper()
	ww, err := dataset.CreateWindows(path, w.Meta, dataset.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range w.Len() {
		if err := ww.Append(&dataset.Window{Tenant: w.Tenant[i], Device: w.Device[i], LifeID: w.LifeID[i], End: w.End[i],
			RUL: w.RUL[i], RULRaw: w.RULRaw[i], Health: w.Health[i], Split: w.Split[i], X: w.XAt(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ww.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestPredictFile(t *testing.T) {
	feats := []string{"a", "b"}
	sc := scaler(feats, 0, 1)
	m := testModel(t, feats, 3, sc)
	w := testWindows(feats, 3, sc, 6, 2, 5)
	dir := t.TempDir()
	wp := filepath.Join(dir, "windows.parquet")
	writeWindows(t, wp, w)
	env := runenv.Test()
	for _, tc := range []struct {
		name   string
		splits []string
		last   bool
		rows   int
	}{
		{"all", nil, false, 60},
		{"test", []string{"test"}, false, 20},    // devices 2 and 5
		{"test last", []string{"test"}, true, 4}, // 2 devices × 2 lives
		{"all last", nil, true, 12},              // 6 devices × 2 lives
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".parquet")
			s, err := PredictFile(context.Background(), env, m, Spec{Windows: wp, Out: out, Splits: tc.splits, LastWindowOnly: tc.last, BatchSize: 7})
			if err != nil {
				t.Fatal(err)
			}
			if s.Rows != tc.rows {
				t.Errorf("rows = %d, want %d", s.Rows, tc.rows)
			}
			ps, meta, err := dataset.ReadPredictions(context.Background(), out)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tc.rows {
				t.Fatalf("file has %d rows", len(ps))
			}
			var ref ModelRef
			if ok, err := meta.Get(dataset.MetaModel, &ref); !ok || err != nil || ref.SHA256 != "sha-m1" || ref.ModelVersion != "m1" {
				t.Errorf("modax.model = %+v (%v)", ref, err)
			}
			var th dataset.Thresholds
			if ok, _ := meta.Get(dataset.MetaThresholds, &th); !ok || th != dataset.DefaultThresholds {
				t.Errorf("thresholds = %+v", th)
			}
			var in []dataset.Input
			if ok, _ := meta.Get(dataset.MetaInputs, &in); !ok || len(in) != 2 || in[0].Path != wp || in[1].SHA256 != "sha-m1" {
				t.Errorf("inputs = %+v", in)
			}
			for _, p := range ps {
				if tc.splits != nil && p.Split != "test" {
					t.Fatalf("split %s in a test-only file", p.Split)
				}
				if tc.last && p.RULTrue != 0 {
					t.Fatalf("last-window-only row with RUL %g", p.RULTrue)
				}
				if p.ModelVersion != "m1" {
					t.Fatalf("model_version %q", p.ModelVersion)
				}
			}
		})
	}
	_, err := PredictFile(context.Background(), env, m, Spec{Windows: wp, Out: filepath.Join(dir, "x.parquet"), Splits: []string{"holdout"}, BatchSize: 7})
	if !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), "no windows of split holdout") {
		t.Errorf("empty split: %v", err)
	}
}

func TestFromCheckpointRidge(t *testing.T) {
	p, err := model.NewParams(model.Arch{Type: model.TypeRidge, InputSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = FromCheckpoint("ridge.safetensors", "", &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch}}, nil)
	if !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "ridge") {
		t.Errorf("error = %v", err)
	}
}

// TestNativeMatchesReference: the product forward pass (nn.Predictor,
// float32) agrees with the reference (float64) on the design's architecture,
// for every batch size and worker count predict uses.
func TestNativeMatchesReference(t *testing.T) {
	const feats, window = 14, 30
	p, err := model.NewParams(model.DefaultArch(feats))
	if err != nil {
		t.Fatal(err)
	}
	p.Init(11)
	for _, n := range []string{"fc2.weight", "fc2.bias"} { // hours, as a trainer saves it
		for i := range p.Get(n).Data {
			p.Get(n).Data[i] *= 125
		}
	}
	rng := rand.New(rand.NewPCG(8, 9))
	x := make([]float32, 37*window*feats)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	want, err := p.Forward(x, 37, window)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 5} {
		fwd, closer := NewNative(p, workers)
		for _, b := range []int{1, 7, 37} {
			out := make([]float32, b)
			if err := fwd.Predict(x[:b*window*feats], b, out); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				if d := math.Abs(float64(out[i] - want[i])); d > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
					t.Fatalf("workers %d batch %d window %d: native %g, reference %g", workers, b, i, out[i], want[i])
				}
			}
		}
		if err := closer(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPerConditionScaler: windows scaled per operating condition (C-MAPSS
// FD002/FD004) are predicted when they were scaled exactly as the model's
// training windows, and refused otherwise (they cannot be re-scaled).
func TestPerConditionScaler(t *testing.T) {
	feats := []string{"a", "b"}
	pc := func(off float64) dataset.Scaler {
		return dataset.Scaler{Kind: "zscore", Features: feats, Conditions: &dataset.ConditionScaler{Columns: []string{"setting_1"},
			Centers: [][]float64{{0}, {10}}, Offset: [][]float64{{off, 0}, {1, 1}}, Scale: [][]float64{{1, 2}, {3, 4}}, FitRows: []int64{5, 5}}}
	}
	m := testModel(t, feats, 3, pc(0))
	env := runenv.Test()
	w := testWindows(feats, 3, pc(0), 2, 1, 4)
	if _, err := Predict(context.Background(), env, m, w, "same.parquet", Options{BatchSize: 4}); err != nil {
		t.Fatalf("same per-condition scaling refused: %v", err)
	}
	for name, sc := range map[string]dataset.Scaler{"other conditions": pc(5), "global": scaler(feats, 0, 1)} {
		w := testWindows(feats, 3, sc, 2, 1, 4)
		_, err := Predict(context.Background(), env, m, w, "other.parquet", Options{BatchSize: 4})
		if !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), "cannot be re-scaled") {
			t.Errorf("%s: error = %v", name, err)
		}
	}
	// A model taking raw values (ONNX with the scaler inside) cannot take
	// per-condition windows either.
	m.Scaler = nil
	if _, err := Predict(context.Background(), env, m, w, "pc.parquet", Options{BatchSize: 4}); !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), "raw sensor values") {
		t.Errorf("raw model: %v", err)
	}
}
