package evaluate

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/train"
)

// signalNoiseWindows writes a windows file of two features: "signal" rises
// as the RUL falls (1 − RUL/horizon plus a little noise, at every step of
// the window), "noise" is N(0, 1), independent of everything.
func signalNoiseWindows(t *testing.T, path string) {
	t.Helper()
	feats := []string{"noise", "signal"}
	const window, horizon = 8, 100.0
	wm := dataset.WindowsMeta{Window: window, Stride: 1, Features: feats, Horizon: horizon, Thresholds: dataset.DefaultThresholds,
		Scaler: dataset.Scaler{Kind: "zscore", Features: feats, Offset: []float64{0, 0}, Scale: []float64{1, 1}, FitSplit: dataset.SplitTrain}}
	w, err := dataset.CreateWindows(path, wm, dataset.Meta{dataset.MetaStage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	i := 0
	for _, sp := range []struct {
		split string
		n     int
	}{{dataset.SplitTrain, 400}, {dataset.SplitVal, 100}, {dataset.SplitTest, 200}} {
		for k := range sp.n {
			rul := horizon * rng.Float64()
			x := make([]float32, window*2)
			for s := range window {
				x[2*s] = float32(rng.NormFloat64())
				x[2*s+1] = float32(2*(1-rul/horizon) - 1 + 0.05*rng.NormFloat64())
			}
			if err := w.Append(&dataset.Window{Tenant: "t", Device: sp.split + "-" + string(rune('a'+k%5)), LifeID: 1, End: t0 + int64(i)*3600e6,
				RUL: rul, RULRaw: math.NaN(), Health: dataset.DefaultThresholds.Classify(rul), Split: sp.split, X: x}); err != nil {
				w.Abort()
				t.Fatal(err)
			}
			i++
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestPermutationImportance trains a real LSTM on a signal and a noise
// feature and evaluates it: permuting the signal costs many hours of RMSE,
// permuting the noise about nothing; the numbers are in metrics.json, the
// text of the reports and the importance plot, and they repeat exactly.
func TestPermutationImportance(t *testing.T) {
	dir := t.TempDir()
	win := filepath.Join(dir, "windows.parquet")
	signalNoiseWindows(t, win)
	env := runenv.Test()
	env.Workers = 2
	to := train.DefaultOptions()
	to.Windows, to.Out = win, filepath.Join(dir, "model.safetensors")
	to.Hidden, to.Layers, to.FC, to.Dropout = 16, 1, 8, 0
	to.Epochs, to.BatchSize, to.LR, to.Workers = 15, 16, 1e-2, 2
	if _, err := train.Run(context.Background(), env, to); err != nil {
		t.Fatal(err)
	}

	o := DefaultOptions()
	o.Model, o.Windows = to.Out, win
	o.Predictions = filepath.Join(dir, "predictions.parquet")
	o.Metrics, o.Report, o.HTML, o.PlotsDir = filepath.Join(dir, "metrics.json"), filepath.Join(dir, "report.md"), filepath.Join(dir, "report.html"), filepath.Join(dir, "plots")
	o.ImportanceRepeats, o.ImportanceWindows = 4, 150
	res, err := Run(context.Background(), env, o)
	if err != nil {
		t.Fatal(err)
	}
	imp := res.FeatureImportance
	if imp == nil {
		t.Fatalf("no importance; warnings %v", res.Warnings)
	}
	if imp.Split != "test" || imp.Windows != 150 || imp.WindowsAvailable != 200 || imp.Repeats != 4 || len(imp.Features) != 2 {
		t.Fatalf("importance %+v", imp)
	}
	sig, noise := imp.Features[0], imp.Features[1]
	t.Logf("baseline RMSE %.2f h; signal %+.2f ± %.2f h, noise %+.3f ± %.3f h (%.2f s)", float64(imp.BaselineRMSE),
		float64(sig.Mean), float64(sig.Std), float64(noise.Mean), float64(noise.Std), imp.Seconds)
	if sig.Feature != "signal" || noise.Feature != "noise" {
		t.Fatalf("order %s, %s: want signal first", sig.Feature, noise.Feature)
	}
	if float64(imp.BaselineRMSE) > 10 {
		t.Fatalf("the model did not learn the signal: baseline RMSE %.2f h", float64(imp.BaselineRMSE))
	}
	if float64(sig.Mean) < 20 || math.Abs(float64(noise.Mean)) > 1 || float64(sig.Mean) < 20*math.Abs(float64(noise.Mean)) {
		t.Fatalf("signal %.3f h, noise %.3f h: want signal ≫ noise ≈ 0", float64(sig.Mean), float64(noise.Mean))
	}
	if len(sig.PerRepeat) != 4 || !sig.Std.Valid() || float64(sig.Std) <= 0 {
		t.Fatalf("per repeat %v, std %v", sig.PerRepeat, sig.Std)
	}

	doc, err := ReadMetrics(o.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	if doc.FeatureImportance == nil || doc.FeatureImportance.Features[0].Feature != "signal" || doc.FeatureImportance.Features[0].Mean != sig.Mean {
		t.Fatalf("metrics.json feature_importance %+v", doc.FeatureImportance)
	}
	md, _ := os.ReadFile(o.Report)
	html, _ := os.ReadFile(o.HTML)
	for name, b := range map[string][]byte{"report.md": md, "report.html": html} {
		if !bytes.Contains(b, []byte("Which sensors matter: permutation importance")) || !bytes.Contains(b, []byte("signal")) {
			t.Errorf("%s has no importance section", name)
		}
	}
	if !strings.Contains(string(md), "(plots/fig-importance.svg)") {
		t.Error("report.md does not show the importance figure")
	}
	if !bytes.Contains(html, []byte(`<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="fig-importance"`)) {
		t.Error("report.html does not inline the importance figure")
	}
	svg, err := os.ReadFile(filepath.Join(o.PlotsDir, importanceFigure+".svg"))
	if err != nil {
		t.Fatal(err)
	}
	// Sorted: signal's bar comes first.
	if i, j := bytes.Index(svg, []byte(">signal<")), bytes.Index(svg, []byte(">noise<")); i < 0 || j < 0 || i > j {
		t.Errorf("figure order: signal at %d, noise at %d", i, j)
	}

	// Deterministic: same seed, other batch size, same numbers; another
	// seed, other permutations.
	spec := ImportanceSpec{Model: o.Model, Windows: win, Split: "test", Repeats: 4, Seed: 1, MaxWindows: 150, BatchSize: 7, Workers: 1}
	again, err := ComputeImportance(context.Background(), env, spec)
	if err != nil {
		t.Fatal(err)
	}
	for k := range again.Features {
		for r, v := range again.Features[k].PerRepeat {
			if d := math.Abs(v - imp.Features[k].PerRepeat[r]); d > 1e-4 {
				t.Fatalf("feature %s repeat %d: %v then %v", again.Features[k].Feature, r, imp.Features[k].PerRepeat[r], v)
			}
		}
	}
	spec.Seed = 2
	other, err := ComputeImportance(context.Background(), env, spec)
	if err != nil {
		t.Fatal(err)
	}
	if other.Features[0].PerRepeat[0] == imp.Features[0].PerRepeat[0] {
		t.Fatal("seed 2 permuted as seed 1 did")
	}
}

// TestImportanceOff: --importance-repeats 0 computes none, and evaluate
// without the windows file skips it without a warning.
func TestImportanceOff(t *testing.T) {
	f := writeFixture(t, fleet(1, 3, 10, "test"), nil)
	for _, tc := range []struct {
		repeats int
		windows string
	}{{0, ""}, {3, filepath.Join(t.TempDir(), "missing.parquet")}} {
		o := DefaultOptions()
		o.Predictions, o.Model, o.Windows = f.preds, f.model, tc.windows
		o.Metrics, o.Report, o.HTML, o.NoPlots = filepath.Join(f.dir, "m.json"), "", "", true
		o.ImportanceRepeats = tc.repeats
		o.Predict = "never"
		res, err := Run(context.Background(), runenv.Test(), o)
		if err != nil {
			t.Fatal(err)
		}
		if res.FeatureImportance != nil || len(res.Warnings) != 0 {
			t.Fatalf("repeats %d: importance %+v, warnings %v", tc.repeats, res.FeatureImportance, res.Warnings)
		}
		b, _ := os.ReadFile(o.Metrics)
		if !bytes.Contains(b, []byte(`"feature_importance": null`)) {
			t.Fatal("metrics.json lacks feature_importance: null")
		}
	}
	o := DefaultOptions()
	o.ImportanceRepeats = -1
	if _, err := Run(context.Background(), runenv.Test(), o); err == nil || !strings.Contains(err.Error(), "--importance-repeats -1") {
		t.Fatalf("err %v", err)
	}
}
