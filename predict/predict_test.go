package predict

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

func files(t *testing.T) (dir string, p *model.Params) {
	t.Helper()
	dir = t.TempDir()
	feats := []string{"a", "b", "c"}
	sc := dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{0, 0, 0}, Scale: []float64{1, 1, 1}}
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 6, Layers: 2, FC: 4})
	if err != nil {
		t.Fatal(err)
	}
	p.Init(3)
	w := p.Get("fc2.weight") // outputs spread around 50 h, inside [0, horizon]
	for i := range w.Data {
		w.Data[i] *= 40
	}
	p.Get("fc2.bias").Data[0] = 50
	if err := model.Save(filepath.Join(dir, "model.safetensors"), &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch,
		Features: feats, Window: 5, Scaler: sc, Horizon: 100, Thresholds: dataset.DefaultThresholds, ModelVersion: "v7"}}); err != nil {
		t.Fatal(err)
	}
	wm := dataset.WindowsMeta{Window: 5, Stride: 1, Features: feats, Scaler: sc, Horizon: 100, Thresholds: dataset.DefaultThresholds}
	ww, err := dataset.CreateWindows(filepath.Join(dir, "windows.parquet"), wm, dataset.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for d, split := range []string{"train", "val", "test", "test"} {
		for i := range 30 {
			x := make([]float32, 15)
			for j := range x {
				x[j] = float32(rng.NormFloat64())
			}
			rul := float64(29 - i)
			if err := ww.Append(&dataset.Window{Tenant: "t", Device: fmt.Sprint("d", d), End: dataset.Micros(t0.Add(time.Duration(i) * time.Hour)),
				RUL: rul, RULRaw: rul, Health: dataset.DefaultThresholds.Classify(rul), Split: split, X: x}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ww.Commit(); err != nil {
		t.Fatal(err)
	}
	return dir, p
}

// TestRun checks the predictions file against the reference forward pass
// (float64) run directly on the windows; the native pass is float32.
func TestRun(t *testing.T) {
	dir, p := files(t)
	o := DefaultOptions()
	o.Model, o.Windows, o.Out = filepath.Join(dir, "model.safetensors"), filepath.Join(dir, "windows.parquet"), filepath.Join(dir, "p.parquet")
	o.Split, o.BatchSize, o.Workers = "test", 7, 3
	res, err := Run(context.Background(), runenv.Test(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != 60 || res.Devices != 2 || res.Splits["test"] != 60 || res.Model.ModelVersion != "v7" {
		t.Errorf("result %+v", res.Summary)
	}
	w, err := dataset.ReadWindows(context.Background(), o.Windows, "test")
	if err != nil {
		t.Fatal(err)
	}
	want, err := p.Forward(w.X, w.Len(), w.T)
	if err != nil {
		t.Fatal(err)
	}
	ps, _, err := dataset.ReadPredictions(context.Background(), o.Out)
	if err != nil {
		t.Fatal(err)
	}
	for i, pr := range ps {
		if math.Abs(pr.RULPred-float64(want[i])) > 1e-5*math.Max(1, math.Abs(float64(want[i]))) || pr.Device != w.Device[i] || pr.End != w.End[i] {
			t.Fatalf("row %d: %+v, want prediction %g for %s", i, pr, want[i], w.Device[i])
		}
	}
}

func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		split string
		want  []string
	}{{"all", nil}, {"", nil}, {"test", []string{"test"}}, {"val, test", []string{"val", "test"}}} {
		got := Options{Split: tc.split}.Splits()
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Splits(%q) = %v, want %v", tc.split, got, tc.want)
		}
	}
	o := DefaultOptions()
	o.Workers = -1
	if _, err := Run(context.Background(), runenv.Test(), o); !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "--workers -1") {
		t.Errorf("error = %v", err)
	}
	o = DefaultOptions()
	o.Model = filepath.Join(t.TempDir(), "missing.safetensors")
	if _, err := Run(context.Background(), runenv.Test(), o); err == nil || !strings.Contains(err.Error(), "missing.safetensors") {
		t.Errorf("missing model: %v", err)
	}
}
