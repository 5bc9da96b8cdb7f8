package evaluate

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// TestFigTrajectoryLivesAndBand: a device with two lives draws two stretches
// of each line (a gap at the repair); without interval columns the band is
// the calibration's 90 % interval (bucket [0,20) radius 4: pred ± 4).
func TestFigTrajectoryLivesAndBand(t *testing.T) {
	var ps []dataset.Prediction
	ps = append(ps, life("d", 0, t0, []float64{15, 10, 5}, []float64{14, 11, 6})...)
	ps = append(ps, life("d", 1, t0.Add(5*time.Hour), []float64{12, 6, 1}, []float64{10, 7, 2})...)
	ss := deviceSeries(ps)
	f := figTrajectory(ss[0], "worst", 1, tinyCalibration(), 0.9)
	svg := string(f.SVG)
	if n := strings.Count(svg, "<title>true RUL</title></polyline>"); n != 2 {
		t.Errorf("true RUL drawn as %d lines, want 2 (one per life)", n)
	}
	if n := strings.Count(svg, "<title>predicted (band: interval)</title></polyline>"); n != 2 {
		t.Errorf("prediction drawn as %d lines, want 2", n)
	}
	if !strings.Contains(svg, `class="band"`) {
		t.Error("no band from the calibration")
	}
	// Without intervals and without a calibration: no band.
	if svg := string(figTrajectory(ss[0], "best", 1, nil, 0).SVG); strings.Contains(svg, `class="band"`) || !strings.Contains(svg, "<title>predicted</title>") {
		t.Error("a band without intervals")
	}
	if !f.Half || f.ID != "fig-traj-worst-1" {
		t.Errorf("figure %+v", f)
	}
}

// TestFigTrainingBestEpoch: RMSE in hours per epoch, the best epoch is the
// lowest validation loss (not the lowest validation RMSE); no RMSE at all:
// no figure; no validation: the train curve only, nothing marked.
func TestFigTrainingBestEpoch(t *testing.T) {
	h := []model.Epoch{
		{Epoch: 1, TrainRMSE: 30, ValRMSE: 20, ValLoss: 0.5},
		{Epoch: 2, TrainRMSE: 20, ValRMSE: 21, ValLoss: 0.3}, // Huber-like: loss and RMSE disagree
		{Epoch: 3, TrainRMSE: 15, ValRMSE: 22, ValLoss: 0.4},
	}
	svg := string(figTraining(h).SVG)
	if !strings.Contains(svg, "best epoch 2: 21 h") || strings.Count(svg, `class="mark"`) != 1 || !strings.Contains(svg, ">RMSE (h)<") {
		t.Errorf("training figure: %s", svg)
	}
	if f := figTraining([]model.Epoch{{Epoch: 1, TrainLoss: 0.3, ValLoss: 0.2}}); f != nil {
		t.Error("a training figure without RMSE")
	}
	f := figTraining([]model.Epoch{{Epoch: 1, TrainRMSE: 9}, {Epoch: 2, TrainRMSE: 7}})
	if f == nil || strings.Contains(string(f.SVG), `class="mark"`) || strings.Contains(string(f.SVG), "validation") {
		t.Errorf("train-only figure: %v", f)
	}
}

// TestFigCalibration: one point per level with its coverage, the bucket
// coverages as dots; nil without intervals.
func TestFigCalibration(t *testing.T) {
	ivs := []IntervalMetrics{
		{Level: 0.8, N: 5, Coverage: 0.6, Buckets: []BucketCoverage{{Coverage: 0.5}, {Coverage: Float(math.NaN())}}},
		{Level: 0.9, N: 5, Coverage: 1, Buckets: []BucketCoverage{{Coverage: 1}, {Coverage: 1}}},
	}
	svg := string(figCalibration(ivs, "test").SVG)
	if !strings.Contains(svg, ">60.0%<") || !strings.Contains(svg, ">100.0%<") || strings.Count(svg, `class="dot"`) != 3 {
		t.Errorf("calibration figure: %s", svg)
	}
	if figCalibration(nil, "test") != nil {
		t.Error("a calibration figure without intervals")
	}
}

// TestFigTrajectoryThinned: a long history is drawn with about
// maxTrajectoryPoints windows, each life's ends kept.
func TestFigTrajectoryThinned(t *testing.T) {
	n := 3 * maxTrajectoryPoints
	truth, pred := make([]float64, n), make([]float64, n)
	for i := range truth {
		truth[i] = float64(n - i)
		pred[i] = truth[i] + 1
	}
	ss := deviceSeries(life("d", 0, t0, truth, pred))
	svg := string(figTrajectory(ss[0], "worst", 1, nil, 0).SVG)
	i := strings.Index(svg, `<polyline points="`) + len(`<polyline points="`)
	pts := strings.Count(svg[i:i+strings.Index(svg[i:], `"`)], ",")
	if pts < maxTrajectoryPoints-1 || pts > maxTrajectoryPoints+2 {
		t.Errorf("%d points drawn of %d windows, want about %d", pts, n, maxTrajectoryPoints)
	}
}
