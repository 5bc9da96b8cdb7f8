package evaluate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

func writeModelAndWindows(t *testing.T, dir string, seed uint64) {
	t.Helper()
	feats := []string{"a", "b"}
	sc := dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{0, 0}, Scale: []float64{1, 1}}
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 4, Layers: 1, FC: 3})
	if err != nil {
		t.Fatal(err)
	}
	p.Init(1)
	if err := model.Save(filepath.Join(dir, "model.safetensors"), &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch,
		Features: feats, Window: 3, Scaler: sc, Horizon: 100, Thresholds: dataset.DefaultThresholds, ModelVersion: "v1",
		History: []model.Epoch{{Epoch: 1, TrainLoss: 2, ValLoss: 3}}}}); err != nil {
		t.Fatal(err)
	}
	wm := dataset.WindowsMeta{Window: 3, Stride: 1, Features: feats, Scaler: sc, Horizon: 100, Thresholds: dataset.DefaultThresholds}
	w, err := dataset.CreateWindows(filepath.Join(dir, "windows.parquet"), wm, dataset.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for d, split := range []string{"train", "val", "test"} {
		for i := range 10 {
			x := make([]float32, 6)
			for j := range x {
				x[j] = float32(rng.NormFloat64())
			}
			rul := float64(9-i) * 8
			if err := w.Append(&dataset.Window{Device: fmt.Sprint("d", d), End: dataset.Micros(t0.Add(time.Duration(i) * time.Hour)),
				RUL: rul, RULRaw: rul, Health: dataset.DefaultThresholds.Classify(rul), Split: split, X: x}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestRunPredicts: with --predict auto evaluate makes the predictions when
// they are missing or stale (the windows file changed), and reuses them
// otherwise.
func TestRunPredicts(t *testing.T) {
	dir := t.TempDir()
	writeModelAndWindows(t, dir, 1)
	o := DefaultOptions()
	o.Predictions, o.Model, o.Windows = filepath.Join(dir, "predictions.parquet"), filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "windows.parquet")
	o.Metrics, o.Report, o.HTML, o.NoPlots = filepath.Join(dir, "metrics.json"), "", "", true
	for i, tc := range []struct {
		change      func()
		lastOnly    bool
		wantPredict bool
		wantN       int
	}{
		{nil, false, true, 10},  // missing
		{nil, false, false, 10}, // fresh
		{func() { writeModelAndWindows(t, dir, 2) }, false, true, 10}, // windows rewritten with other data
		{nil, false, false, 10},
	} {
		if tc.change != nil {
			tc.change()
		}
		o.LastWindowOnly = tc.lastOnly
		res, err := Run(context.Background(), testEnv(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Predicted != tc.wantPredict || res.Splits["test"].N != tc.wantN {
			t.Errorf("step %d: predicted %v n %d, want %v %d", i, res.Predicted, res.Splits["test"].N, tc.wantPredict, tc.wantN)
		}
		if res.Doc.Model == nil || res.Doc.Model.ModelVersion != "v1" || res.Doc.Windows == nil || res.Doc.Windows.Path != o.Windows {
			t.Errorf("step %d: lineage model %+v windows %+v", i, res.Doc.Model, res.Doc.Windows)
		}
	}
	o.Predict, o.LastWindowOnly = "always", true
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Predicted || res.Splits["test"].N != 1 {
		t.Errorf("always + last window: predicted %v n %d", res.Predicted, res.Splits["test"].N)
	}
}
