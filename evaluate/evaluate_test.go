package evaluate

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	stdhtml "html"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

var t0 = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// fleet makes predictions for devices × windows per split with a known error
// pattern: device k's predictions are off by (k−2)·2 h plus noise.
func fleet(seed uint64, devices, windows int, splits ...string) []dataset.Prediction {
	rng := rand.New(rand.NewPCG(seed, 1))
	th := dataset.DefaultThresholds
	var ps []dataset.Prediction
	for _, s := range splits {
		for k := range devices {
			for w := range windows {
				raw := float64(windows-1-w) * 3 // hours to failure
				truth := math.Min(raw, 100)
				pred := math.Max(0, truth+float64(k-2)*2+rng.NormFloat64()*3)
				ps = append(ps, dataset.Prediction{Tenant: "acme", Device: fmt.Sprintf("%s-dev%02d", s, k), LifeID: 0,
					End: dataset.Micros(t0.Add(time.Duration(w) * 3 * time.Hour)), Split: s,
					RULTrue: truth, RULRaw: raw, RULPred: pred, HealthTrue: th.Classify(truth), HealthPred: th.Classify(pred), ModelVersion: "v-test"})
			}
		}
	}
	return ps
}

type fixture struct {
	dir, preds, model string
}

func writeFixture(t *testing.T, ps []dataset.Prediction, history []model.Epoch) fixture {
	t.Helper()
	dir := t.TempDir()
	f := fixture{dir: dir, preds: filepath.Join(dir, "predictions.parquet"), model: filepath.Join(dir, "model.safetensors")}
	p, err := model.NewParams(model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 3, Layers: 1, FC: 2})
	if err != nil {
		t.Fatal(err)
	}
	p.Init(1)
	ck := &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch, Features: []string{"a", "b"}, Window: 4,
		Scaler:  dataset.Scaler{Kind: "none", Features: []string{"a", "b"}, Offset: []float64{0, 0}, Scale: []float64{1, 1}},
		Horizon: 100, Thresholds: dataset.DefaultThresholds, ModelVersion: "v-test", History: history}}
	if err := model.Save(f.model, ck); err != nil {
		t.Fatal(err)
	}
	sha, err := dataset.FileSHA256(f.model)
	if err != nil {
		t.Fatal(err)
	}
	meta := dataset.Meta{}
	meta.MustSet(dataset.MetaThresholds, dataset.DefaultThresholds)
	meta.MustSet(dataset.MetaHorizon, 100.0)
	meta.MustSet(dataset.MetaModel, FileRef{Path: f.model, SHA256: sha, ModelVersion: "v-test"})
	meta.MustSet(dataset.MetaInputs, []dataset.Input{{Path: "windows.parquet", SHA256: "abc"}, {Path: f.model, SHA256: sha}})
	if err := dataset.WritePredictions(f.preds, ps, meta); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fixture) opts() Options {
	o := DefaultOptions()
	o.Predictions = f.preds
	o.Metrics = filepath.Join(f.dir, "metrics.json")
	o.Report = filepath.Join(f.dir, "report.md")
	o.HTML = filepath.Join(f.dir, "report.html")
	o.PlotsDir = filepath.Join(f.dir, "plots")
	return o
}

func testEnv() *runenv.Env {
	env := runenv.Test()
	env.Now = func() time.Time { return t0 }
	return env
}

func TestRun(t *testing.T) {
	ps := fleet(1, 5, 40, dataset.SplitTrain, dataset.SplitVal, dataset.SplitTest)
	history := []model.Epoch{{Epoch: 1, TrainLoss: 900, ValLoss: 1000}, {Epoch: 2, TrainLoss: 100, ValLoss: 150}, {Epoch: 3, TrainLoss: 5, ValLoss: 9}}
	f := writeFixture(t, ps, history)
	o := f.opts()
	o.Model = f.model
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) > 0 {
		t.Errorf("warnings: %v", res.Warnings)
	}

	// metrics.json: contract keys, per split, per device, null where undefined.
	b, err := os.ReadFile(o.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["schema"] != MetricsSchema || raw["created_at"] != "2024-03-01T00:00:00Z" {
		t.Errorf("schema/created_at: %v %v", raw["schema"], raw["created_at"])
	}
	sha, _ := dataset.FileSHA256(f.model)
	if m := raw["model"].(map[string]any); m["sha256"] != sha || m["model_version"] != "v-test" {
		t.Errorf("model = %v, want sha256 %s", m, sha)
	}
	if w := raw["windows"].(map[string]any); w["path"] != "windows.parquet" {
		t.Errorf("windows = %v", w)
	}
	splits := raw["splits"].(map[string]any)
	for _, s := range []string{"train", "val", "test"} {
		m, ok := splits[s].(map[string]any)
		if !ok {
			t.Fatalf("split %s missing", s)
		}
		for _, k := range []string{"n", "mae", "rmse", "score", "r2", "early_rate", "late_rate", "critical_accuracy", "mae_raw", "n_raw", "classification"} {
			if _, ok := m[k]; !ok {
				t.Errorf("splits.%s.%s missing", s, k)
			}
		}
		if m["n"].(float64) != 200 || m["n_raw"].(float64) != 200 {
			t.Errorf("splits.%s n = %v n_raw = %v, want 200", s, m["n"], m["n_raw"])
		}
	}
	// The file's numbers are the metrics of that split's rows.
	var test []float64
	var testP []float64
	for _, p := range ps {
		if p.Split == "test" {
			test = append(test, p.RULTrue)
			testP = append(testP, p.RULPred)
		}
	}
	want := Regress(test, testP)
	near(t, "test rmse", splits["test"].(map[string]any)["rmse"].(float64), want.RMSE)
	near(t, "test score", splits["test"].(map[string]any)["score"].(float64), want.Score)
	if n := len(raw["per_device"].([]any)); n != 15 {
		t.Errorf("per_device has %d rows, want 15", n)
	}
	// Worst device of the test split is dev00 or dev04 (bias ±4 h), best dev02.
	if _, best := worstBestDevices(res.Doc.PerDevice, "test", 1); best[0].Device != "test-dev02" {
		t.Errorf("best device = %s, want test-dev02", best[0].Device)
	}

	// Plots: all six, decodable, of the stated size.
	if len(res.Plots) != 6 {
		t.Errorf("plots = %v, want 6", res.Plots)
	}
	for _, p := range res.Plots {
		checkPNG(t, p)
	}

	// report.md links the plots; report.html embeds them and links nothing.
	md, _ := os.ReadFile(o.Report)
	for _, s := range []string{"| test | 200 | 5 |", "![Predicted vs true RUL](plots/fig-pred-vs-true.svg)", "### Health classes: test", "![Error distribution](plots/error_hist.png)",
		"| true \\ predicted | critical | warning | normal |", "early** = predicted < true", "## Training", "3 epochs"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	html, _ := os.ReadFile(o.HTML)
	// The PNGs the SVG figures do not replace (error histogram, error vs
	// true, confusion; training curves, as this history has no RMSE) are
	// inline under "More plots".
	if n := strings.Count(string(html), `src="data:image/png;base64,`); n != 4 {
		t.Errorf("report.html has %d inline PNGs, want 4", n)
	}
	if strings.Contains(string(html), `src="plots/`) || strings.Contains(string(html), "ZgotmplZ") {
		t.Error("report.html is not self-contained (or an URL was rejected by html/template)")
	}
	// The inline image decodes.
	i := strings.Index(string(html), "base64,") + len("base64,")
	j := strings.Index(string(html)[i:], `"`)
	// (html/template writes '+' as the entity &#43;, which browsers decode.)
	if _, err := png.Decode(base64Reader(stdhtml.UnescapeString(string(html)[i : i+j]))); err != nil {
		t.Errorf("inline PNG: %v", err)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 {
		t.Fatalf("%s is empty", path)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	w, h := PlotWidth, PlotHeight
	if filepath.Base(path) == "trajectories.png" {
		w, h = TrajWidth, TrajHeight
	}
	if got := img.Bounds().Size(); got != image.Pt(w, h) {
		t.Errorf("%s is %v, want %dx%d", path, got, w, h)
	}
	// Something was drawn: not all pixels share one colour.
	first := img.At(0, 0)
	drawn := false
	for y := 0; y < h && !drawn; y += 7 {
		for x := 0; x < w; x += 7 {
			if img.At(x, y) != first {
				drawn = true
				break
			}
		}
	}
	if !drawn {
		t.Errorf("%s is blank", path)
	}
}

func TestRunNaN(t *testing.T) {
	ps := fleet(2, 2, 5, dataset.SplitTest)
	ps[6].RULPred = math.NaN()
	f := writeFixture(t, ps, nil)
	_, err := Run(context.Background(), testEnv(), f.opts())
	if err == nil {
		t.Fatal("NaN prediction accepted")
	}
	var ne *NaNError
	if !errors.As(err, &ne) || ne.Row != 7 || ne.Device != "test-dev01" {
		t.Fatalf("error %v, want a NaNError for row 7 of test-dev01", err)
	}
	if !errors.Is(err, exitcode.ErrValidation) || !strings.Contains(err.Error(), "row 7") || !strings.Contains(err.Error(), "rul_pred is NaN") {
		t.Errorf("error = %v", err)
	}
	if _, err := os.Stat(f.opts().Metrics); !os.IsNotExist(err) {
		t.Error("metrics.json written despite the error")
	}
	ps[6].RULPred = math.Inf(1)
	f = writeFixture(t, ps, nil)
	if _, err := Run(context.Background(), testEnv(), f.opts()); err == nil || !strings.Contains(err.Error(), "+Inf") {
		t.Errorf("Inf prediction: %v", err)
	}
}

func TestRunModelMismatch(t *testing.T) {
	f := writeFixture(t, fleet(3, 2, 5, dataset.SplitTest), nil)
	other := writeFixture(t, fleet(3, 2, 5, dataset.SplitTest), []model.Epoch{{Epoch: 1, TrainLoss: 1, ValLoss: 2}})
	o := f.opts()
	o.Model = other.model // a different checkpoint (its history differs)
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "not by "+other.model) {
		t.Errorf("warnings = %v", res.Warnings)
	}
	// metrics.json names the model that made the predictions, and no
	// training curves of the other one are drawn.
	sha, _ := dataset.FileSHA256(f.model)
	if res.Doc.Model.SHA256 != sha || res.Doc.Model.Path != f.model {
		t.Errorf("model = %+v, want %s", res.Doc.Model, f.model)
	}
	for _, p := range res.Plots {
		if strings.HasSuffix(p, "training_curves.png") {
			t.Error("training curves of the wrong model drawn")
		}
	}
}

// TestRunLastWindowOnly: one prediction per device (the C-MAPSS protocol)
// still evaluates; the trajectory plot is left out, stale plots removed.
func TestRunLastWindowOnly(t *testing.T) {
	var ps []dataset.Prediction
	for _, p := range fleet(4, 6, 10, dataset.SplitTest) {
		if p.RULTrue == 0 {
			ps = append(ps, p)
		}
	}
	f := writeFixture(t, ps, nil)
	o := f.opts()
	if err := os.MkdirAll(o.PlotsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(o.PlotsDir, "trajectories.png")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plots) != 4 { // pred_vs_true, error_hist, error_vs_true, confusion
		t.Errorf("plots = %v", res.Plots)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("stale trajectories.png kept")
	}
	m := res.Splits["test"]
	if m.N != 6 || m.R2.Valid() { // the truth is constant (0) at the last window
		t.Errorf("n = %d, r2 = %v; want 6, null", m.N, m.R2)
	}
}

func TestCompare(t *testing.T) {
	a := writeFixture(t, fleet(5, 4, 20, dataset.SplitTest, dataset.SplitVal), nil)
	ra, err := Run(context.Background(), testEnv(), a.opts())
	if err != nil {
		t.Fatal(err)
	}
	// b: the same truths, predictions twice as far off.
	psb := fleet(5, 4, 20, dataset.SplitTest, dataset.SplitVal)
	for i := range psb {
		psb[i].RULPred = psb[i].RULTrue + 2*(psb[i].RULPred-psb[i].RULTrue)
	}
	b := writeFixture(t, psb, nil)
	ob := b.opts()
	ob.Compare = a.opts().Metrics
	rb, err := Run(context.Background(), testEnv(), ob)
	if err != nil {
		t.Fatal(err)
	}
	c := rb.Compare
	if c == nil {
		t.Fatal("no comparison")
	}
	get := func(split, metric string) CompareRow {
		for _, r := range c.Rows {
			if r.Split == split && r.Metric == metric {
				return r
			}
		}
		t.Fatalf("no row %s/%s", split, metric)
		return CompareRow{}
	}
	r := get("test", "rmse")
	near(t, "this rmse", float64(r.This), float64(rb.Splits["test"].RMSE))
	near(t, "other rmse", float64(r.Other), float64(ra.Splits["test"].RMSE))
	near(t, "delta", float64(r.Delta), float64(r.This-r.Other))
	if r.Better != "other" {
		t.Errorf("rmse better = %q, want other (b's errors are doubled)", r.Better)
	}
	if get("test", "n").Better != "" || get("val", "r2").Better != "other" {
		t.Error("direction of n or r2 wrong")
	}
	if c.Wins["other"] == 0 || c.Wins["this"] > c.Wins["other"] {
		t.Errorf("wins = %v", c.Wins)
	}
	var text bytes.Buffer
	if err := c.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"split", "rmse", "other", "better on"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}
	// The comparison is JSON-encodable (null for undefined).
	if _, err := json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	// --compare of a file that is not metrics.json.
	ob.Compare = b.preds
	if _, err := Run(context.Background(), testEnv(), ob); err == nil || !strings.Contains(err.Error(), "--compare") {
		t.Errorf("bad --compare file: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"tolerance", func(o *Options) { o.CriticalToleranceHours = 0 }, "--critical-tolerance"},
		{"thresholds", func(o *Options) { o.CriticalHours, o.WarningHours = 50, 10 }, "--critical-hours"},
		{"predictions", func(o *Options) { o.Predictions = "" }, "--predictions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.mod(&o)
			_, err := Run(context.Background(), testEnv(), o)
			if !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want usage error naming %s", err, tc.want)
			}
		})
	}
}

func TestThresholdOverride(t *testing.T) {
	f := writeFixture(t, fleet(6, 3, 30, dataset.SplitTest), nil)
	o := f.opts()
	o.CriticalHours, o.WarningHours = 20, 60
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Doc.Thresholds != (dataset.Thresholds{Critical: 20, Warning: 60}) {
		t.Errorf("thresholds = %+v", res.Doc.Thresholds)
	}
	// The file's health_true used 10/50: evaluate says it recomputed.
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "recomputed") {
		t.Errorf("warnings = %v", res.Warnings)
	}
	// critical = true RUL < 20: 7 windows per device (0, 3, …, 18 h).
	if n := res.Splits["test"].CriticalN; n != 21 {
		t.Errorf("critical n = %d, want 21", n)
	}
}

func base64Reader(s string) *bytes.Reader {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return bytes.NewReader(nil)
	}
	return bytes.NewReader(b)
}
