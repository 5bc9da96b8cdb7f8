package evaluate

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// tinyCalibration: two buckets of predicted RUL, [0, 20) and [20, 100), at
// 80 % and 90 %; the upper bucket's 90 % radius is unbounded.
func tinyCalibration() *conformal.Calibration {
	return &conformal.Calibration{Method: conformal.Method, Horizon: 100, Levels: []float64{0.8, 0.9}, N: 40, Buckets: []conformal.Bucket{
		{Lo: 0, Hi: 20, N: 20, Radius: []conformal.Radius{2, 4}},
		{Lo: 20, Hi: 100, N: 20, Radius: []conformal.Radius{5, conformal.Radius(math.Inf(1))}},
	}}
}

// tinyPredictions are the hand-worked windows of TestComputeIntervals.
func tinyPredictions() []dataset.Prediction {
	mk := func(pred, truth float64) dataset.Prediction {
		return dataset.Prediction{Tenant: "t", Device: "d", Split: dataset.SplitTest, RULPred: pred, RULTrue: truth, RULRaw: truth, ModelVersion: "v"}
	}
	return []dataset.Prediction{
		mk(10, 12),         // bucket 0: 80 % [8, 12] covers (on the edge), 90 % [6, 14]
		mk(10, 13),         // bucket 0: 80 % [8, 12] misses, 90 % [6, 14] covers
		mk(1, 0),           // bucket 0: 80 % [0, 3] (clipped at 0), 90 % [0, 5]
		mk(50, 56),         // bucket 1: 80 % [45, 55] misses, 90 % [0, 100]
		mk(98, 99),         // bucket 1: 80 % [93, 100] (clipped at the horizon), 90 % [0, 100]
		mk(30, math.NaN()), // no truth: not counted
	}
}

func TestComputeIntervals(t *testing.T) {
	got, err := ComputeIntervals(tinyPredictions(), tinyCalibration())
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		n, covered int
		coverage   float64
		width      float64
	}
	check := func(name string, n, covered int, coverage, width Float, w want) {
		t.Helper()
		if n != w.n || covered != w.covered || math.Abs(float64(coverage)-w.coverage) > 1e-12 || math.Abs(float64(width)-w.width) > 1e-12 {
			t.Errorf("%s: n %d covered %d coverage %v width %v, want %+v", name, n, covered, coverage, width, w)
		}
	}
	if len(got) != 2 || got[0].Level != 0.8 || got[1].Level != 0.9 || len(got[0].Buckets) != 2 || len(got[1].Buckets) != 2 {
		t.Fatalf("intervals %+v", got)
	}
	// 80 %: covered windows 1, 3, 5; widths 4, 4, 3, 10, 7.
	check("80 %", got[0].N, got[0].Covered, got[0].Coverage, got[0].MeanWidth, want{5, 3, 0.6, 28.0 / 5})
	check("80 % bucket 0", got[0].Buckets[0].N, got[0].Buckets[0].Covered, got[0].Buckets[0].Coverage, got[0].Buckets[0].MeanWidth, want{3, 2, 2.0 / 3, 11.0 / 3})
	check("80 % bucket 1", got[0].Buckets[1].N, got[0].Buckets[1].Covered, got[0].Buckets[1].Coverage, got[0].Buckets[1].MeanWidth, want{2, 1, 0.5, 8.5})
	// 90 %: all covered; widths 8, 8, 5, 100, 100.
	check("90 %", got[1].N, got[1].Covered, got[1].Coverage, got[1].MeanWidth, want{5, 5, 1, 221.0 / 5})
	check("90 % bucket 0", got[1].Buckets[0].N, got[1].Buckets[0].Covered, got[1].Buckets[0].Coverage, got[1].Buckets[0].MeanWidth, want{3, 3, 1, 7})
	check("90 % bucket 1", got[1].Buckets[1].N, got[1].Buckets[1].Covered, got[1].Buckets[1].Coverage, got[1].Buckets[1].MeanWidth, want{2, 2, 1, 100})
	if b := got[1].Buckets[1]; b.Lo != 20 || b.Hi != 100 {
		t.Errorf("bucket 1 edges [%g, %g), want [20, 100)", b.Lo, b.Hi)
	}

	// Without a calibration: the predictions' own columns, per level.
	ps := tinyPredictions()[:4]
	ps[0].Lower, ps[0].Upper, ps[0].Level = 0, 10, 0.9 // truth 12: misses
	ps[1].Lower, ps[1].Upper, ps[1].Level = 3, 13, 0.9 // truth 13: covers (edge)
	ps[2].Lower, ps[2].Upper, ps[2].Level = 0, 2, 0.9  // truth 0: covers
	ps[3].Lower, ps[3].Upper, ps[3].Level = math.NaN(), math.NaN(), math.NaN()
	got, err = ComputeIntervals(ps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Level != 0.9 || len(got[0].Buckets) != 0 {
		t.Fatalf("stored intervals %+v", got)
	}
	check("stored 90 %", got[0].N, got[0].Covered, got[0].Coverage, got[0].MeanWidth, want{3, 2, 2.0 / 3, 22.0 / 3})
	if got, _ := ComputeIntervals(tinyPredictions(), nil); len(got) != 0 {
		t.Errorf("no intervals: %+v", got)
	}
}

// TestRunIntervals: evaluate reads the calibration the predictions file
// records and reports the coverage in metrics.json, the reports and the
// calibration plot; a file without intervals reports none.
func TestRunIntervals(t *testing.T) {
	f := writeFixture(t, tinyPredictions(), nil)
	// Record the calibration as predict does.
	ps, meta, err := dataset.ReadPredictions(context.Background(), f.preds)
	if err != nil {
		t.Fatal(err)
	}
	meta.MustSet(model.MetaCalibration, tinyCalibration())
	if err := dataset.WritePredictions(f.preds, ps, meta); err != nil {
		t.Fatal(err)
	}
	o := f.opts()
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	iv := res.Splits["test"].Intervals
	if len(iv) != 2 || iv[0].Covered != 3 || iv[1].Covered != 5 {
		t.Fatalf("intervals %+v", iv)
	}
	b, err := os.ReadFile(o.Metrics)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Calibration *conformal.Calibration `json:"interval_calibration"`
		Splits      map[string]struct {
			Intervals []struct {
				Level     float64  `json:"level"`
				Coverage  *float64 `json:"coverage"`
				MeanWidth *float64 `json:"mean_width"`
				Buckets   []struct {
					Lo       float64  `json:"lo_hours"`
					Coverage *float64 `json:"coverage"`
				} `json:"buckets"`
			} `json:"intervals"`
		} `json:"splits"`
		Definitions map[string]string `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	ti := doc.Splits["test"].Intervals
	if doc.Calibration == nil || len(doc.Calibration.Buckets) != 2 || len(ti) != 2 || *ti[0].Coverage != 0.6 || *ti[1].MeanWidth != 44.2 ||
		len(ti[0].Buckets) != 2 || ti[0].Buckets[1].Lo != 20 || *ti[0].Buckets[1].Coverage != 0.5 || doc.Definitions["intervals"] == "" {
		t.Errorf("metrics.json intervals: %s", b)
	}
	var cal string
	for _, p := range res.Plots {
		if filepath.Base(p) == "calibration.png" {
			cal = p
		}
	}
	if cal == "" {
		t.Fatalf("no calibration plot in %v", res.Plots)
	}
	checkPNG(t, cal)
	md, _ := os.ReadFile(o.Report)
	for _, s := range []string{"## Prediction intervals", "| test | 80 % | all | 5 | 3 | 60.0% | 5.6 h |",
		"| test | 80 % | [20, 100) h | 2 | 1 | 50.0% | 8.5 h |", "![Interval calibration](plots/fig-calibration.svg)"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("report.md lacks %q:\n%s", s, md)
		}
	}
	html, _ := os.ReadFile(o.HTML)
	if !strings.Contains(string(html), `<h3 id="intervals">Prediction intervals</h3>`) || !strings.Contains(string(html), `<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="fig-calibration"`) {
		t.Error("report.html lacks the interval table or the calibration figure")
	}

	// The same predictions without a calibration (a file older than the
	// intervals): no intervals, no calibration plot (a stale one is removed).
	meta = meta.Clone()
	delete(meta, model.MetaCalibration)
	if err := dataset.WritePredictions(f.preds, ps, meta); err != nil {
		t.Fatal(err)
	}
	if res, err = Run(context.Background(), testEnv(), o); err != nil {
		t.Fatal(err)
	}
	if iv := res.Splits["test"].Intervals; iv == nil || len(iv) != 0 || res.Doc.Calibration != nil {
		t.Errorf("intervals without calibration: %+v", iv)
	}
	if _, err := os.Stat(cal); !os.IsNotExist(err) {
		t.Errorf("stale calibration plot: %v", err)
	}
	md, _ = os.ReadFile(o.Report)
	if strings.Contains(string(md), "Prediction intervals") {
		t.Error("report.md has an interval section without intervals")
	}
}

// TestRunIntervalsFromCheckpoint: predictions that do not record the
// calibration (made before predict did) use the checkpoint's that made them.
func TestRunIntervalsFromCheckpoint(t *testing.T) {
	f := writeFixture(t, tinyPredictions(), nil)
	ck, err := model.Load(f.model)
	if err != nil {
		t.Fatal(err)
	}
	ck.Info.Calibration = tinyCalibration()
	if err := model.Save(f.model, ck); err != nil {
		t.Fatal(err)
	}
	ps, meta, err := dataset.ReadPredictions(context.Background(), f.preds)
	if err != nil {
		t.Fatal(err)
	}
	sha, err := dataset.FileSHA256(f.model)
	if err != nil {
		t.Fatal(err)
	}
	meta.MustSet(dataset.MetaModel, FileRef{Path: f.model, SHA256: sha, ModelVersion: "v-test"})
	meta.MustSet(dataset.MetaInputs, []dataset.Input{{Path: "windows.parquet", SHA256: "abc"}, {Path: f.model, SHA256: sha}})
	if err := dataset.WritePredictions(f.preds, ps, meta); err != nil {
		t.Fatal(err)
	}
	o := f.opts()
	o.Model, o.NoPlots = f.model, true
	res, err := Run(context.Background(), testEnv(), o)
	if err != nil {
		t.Fatal(err)
	}
	if iv := res.Splits["test"].Intervals; len(iv) != 2 || iv[0].Covered != 3 || res.Doc.Calibration == nil {
		t.Errorf("intervals %+v", iv)
	}
}
