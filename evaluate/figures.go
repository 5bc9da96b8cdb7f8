package evaluate

import (
	"fmt"
	"html/template"
	"math"
	"strings"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/svgchart"
)

// The report's figures are SVG charts drawn on the server with
// internal/svgchart (the ui's charts): report.html inlines them, report.md
// links their files (plots/<id>.svg).

// Figure is one SVG chart of the reports.
type Figure struct {
	ID      string // element id in report.html and file name (ID.svg)
	Title   string
	Caption string
	SVG     template.HTML
	// Half puts the figure in a two-column grid (the device trajectories).
	Half bool
}

// File returns the figure as a standalone SVG file (the chart CSS inside).
func (f *Figure) File() []byte {
	s := string(f.SVG)
	i := strings.Index(s, ">")
	if i < 0 {
		return []byte(s)
	}
	return []byte(s[:i+1] + "<style>" + svgchart.CSS + "</style>" + s[i+1:])
}

// replacedByFigure reports whether the PNG plot name is drawn as one of the
// figures (and so left out of the reports' "More plots").
func replacedByFigure(name string, figs []*Figure) bool {
	want := map[string]string{"pred_vs_true.png": "fig-pred-vs-true", "trajectories.png": "fig-traj-worst-1",
		"calibration.png": "fig-calibration", "training_curves.png": "fig-training"}[name]
	for _, f := range figs {
		if want != "" && f.ID == want {
			return true
		}
	}
	return false
}

// maxTrajectoryPoints caps the windows drawn per device trajectory.
const maxTrajectoryPoints = 1500

// maxFigureDots caps the dots of the predicted-vs-true scatter (an even
// subsample beyond it keeps the inline SVG small).
const maxFigureDots = 2000

// figureNames are the file names of every figure evaluate may write (stale
// ones are removed).
var figureNames = []string{"fig-pred-vs-true.svg", "fig-rul-buckets.svg", "fig-traj-worst-1.svg", "fig-traj-worst-2.svg", "fig-traj-worst-3.svg",
	"fig-traj-best-1.svg", "fig-traj-best-2.svg", "fig-traj-best-3.svg", "fig-calibration.svg", "fig-training.svg"}

// makeFigures draws the report's figures for split, in report order:
// predicted vs true, error by true-RUL bucket, RUL over life of the worst
// and best devices (with the interval band where the predictions have
// one), interval calibration (with intervals) and training curves (with a
// history). Figures without data are left out.
func makeFigures(ps []dataset.Prediction, split string, m *SplitMetrics, history []model.Epoch, cal *conformal.Calibration) []*Figure {
	var in []dataset.Prediction
	for i := range ps {
		if ps[i].Split == split && ps[i].HasTruth() {
			in = append(in, ps[i])
		}
	}
	var out []*Figure
	if len(in) > 0 {
		truth, pred := labelled(in)
		out = append(out, figPredVsTrue(truth, pred, split))
		if len(m.RULBuckets) > 0 {
			out = append(out, figBuckets(m.RULBuckets, split))
		}
		out = append(out, figTrajectories(deviceSeries(in), cal)...)
		if f := figCalibration(m.Intervals, split); f != nil {
			out = append(out, f)
		}
	}
	if f := figTraining(history); f != nil {
		out = append(out, f)
	}
	return out
}

func figPredVsTrue(truth, pred []float64, split string) *Figure {
	idx := subsample(len(truth), maxFigureDots)
	dots := svgchart.Series{Name: "window", Points: true}
	for _, i := range idx {
		dots.X, dots.Y = append(dots.X, truth[i]), append(dots.Y, pred[i])
	}
	lo, hi := minMax(truth, pred)
	id := svgchart.Series{Name: "perfect (pred = true)", X: []float64{lo, hi}, Y: []float64{lo, hi}, Dashed: true, Color: 1}
	note := fmt.Sprintf("n = %d", len(truth))
	if len(idx) < len(truth) {
		note = fmt.Sprintf("n = %d, %d shown", len(truth), len(idx))
	}
	c := svgchart.LineChart{ID: "fig-pred-vs-true", Title: fmt.Sprintf("Predicted vs true RUL (%s, %s)", split, note),
		XLabel: "true RUL (h)", YLabel: "predicted RUL (h)", YZero: true, Series: []svgchart.Series{dots, id}}
	return &Figure{ID: c.ID, Title: "Predicted vs true RUL", SVG: c.SVG(),
		Caption: "Each dot is one window; dots on the dashed line are exact, below it early (pred < true), above it late."}
}

func figBuckets(bs []BucketMetrics, split string) *Figure {
	var bars []svgchart.Bar
	for _, b := range bs {
		bars = append(bars, svgchart.Bar{Label: "true RUL " + b.Label, Value: float64(b.MAE), Color: map[bool]int{true: 1, false: 0}[b.AtCap],
			Note: fmt.Sprintf("  RMSE %s, bias %s, n %d", fmtNum(b.RMSE), fmtDelta(b.Bias), b.N)})
	}
	svg := svgchart.BarChart("fig-rul-buckets", fmt.Sprintf("MAE by true-RUL bucket (%s)", split), "h", bars, func(v float64) string {
		if !svgchart.Finite(v) {
			return "—"
		}
		return fmt.Sprintf("%.2f", v)
	})
	return &Figure{ID: "fig-rul-buckets", Title: "Error by true-RUL bucket", SVG: svg,
		Caption: "MAE of the windows whose true RUL lies in each bucket, with RMSE, bias (mean predicted − true) and count. The headline MAE averages over these; the =cap bucket is where the model only has to say \"far from failure\"."}
}

// figTrajectories draws true and predicted RUL over time of the three worst
// and three best devices by RMSE (devices with two or more windows), the
// prediction interval as a band: the predictions file's, else the
// calibration's at its SummaryIntervalLevel (or first) level.
func figTrajectories(ss []*series, cal *conformal.Calibration) []*Figure {
	worst, best := worstBest(ss, 3)
	level := 0.0
	if cal != nil && len(cal.Levels) > 0 {
		level = cal.Levels[0]
		if cal.LevelIndex(SummaryIntervalLevel) >= 0 {
			level = SummaryIntervalLevel
		}
	}
	var out []*Figure
	for _, g := range []struct {
		kind string
		ss   []*series
	}{{"worst", worst}, {"best", best}} {
		for k, s := range g.ss {
			out = append(out, figTrajectory(s, g.kind, k+1, cal, level))
		}
	}
	return out
}

func figTrajectory(s *series, kind string, k int, cal *conformal.Calibration, level float64) *Figure {
	name := s.device
	if s.tenant != "" {
		name = s.tenant + "/" + s.device
	}
	t0 := s.end[0]
	for _, e := range s.end {
		t0 = min(t0, e)
	}
	truth := svgchart.Series{Name: "true RUL", Gaps: true, Color: 6}
	pred := svgchart.Series{Name: "predicted", Gaps: true, Dashed: true, Color: map[string]int{"worst": 1, "best": 0}[kind]}
	band := false
	// A long history is thinned to about maxTrajectoryPoints windows
	// (evenly, keeping each life's first and last window).
	step := (len(s.end) + maxTrajectoryPoints - 1) / maxTrajectoryPoints
	for i := range s.end {
		edge := i == 0 || i == len(s.end)-1 || s.life[i] != s.life[i-1] || s.life[i] != s.life[i+1]
		if step > 1 && !edge && i%step != 0 {
			continue
		}
		if i > 0 && s.life[i] != s.life[i-1] {
			// A new life: the truth jumps up after a repair; break the lines.
			nan := math.NaN()
			x := float64(s.end[i]-t0) / 3.6e9
			truth.X, truth.Y = append(truth.X, x), append(truth.Y, nan)
			pred.X, pred.Y = append(pred.X, x), append(pred.Y, nan)
			pred.Lo, pred.Hi = append(pred.Lo, nan), append(pred.Hi, nan)
		}
		x := float64(s.end[i]-t0) / 3.6e9
		truth.X, truth.Y = append(truth.X, x), append(truth.Y, s.truth[i])
		pred.X, pred.Y = append(pred.X, x), append(pred.Y, s.pred[i])
		lo, hi := s.lo[i], s.hi[i]
		if math.IsNaN(lo) && cal != nil && level > 0 {
			if l, h, err := cal.Interval(s.pred[i], level); err == nil {
				lo, hi = l, h
			}
		}
		band = band || !math.IsNaN(lo)
		pred.Lo, pred.Hi = append(pred.Lo, lo), append(pred.Hi, hi)
	}
	if !band {
		pred.Lo, pred.Hi = nil, nil
	} else {
		pred.Name = "predicted (band: interval)"
	}
	id := fmt.Sprintf("fig-traj-%s-%d", kind, k)
	c := svgchart.LineChart{ID: id, Title: fmt.Sprintf("%s %d: %s (RMSE %.3g h)", kind, k, name, Regress(s.truth, s.pred).RMSE),
		XLabel: "hours since the first window", YLabel: "RUL (h)", YZero: true, Series: []svgchart.Series{truth, pred}}
	return &Figure{ID: id, Title: fmt.Sprintf("RUL over life: %s %d", kind, k), SVG: c.SVG(), Half: true,
		Caption: fmt.Sprintf("True (solid) and predicted (dashed) RUL of %s, one of the %s devices by RMSE; a gap is a repair (a new life).", name, kind)}
}

// figCalibration draws the empirical against the nominal coverage of the
// intervals, overall and per bucket of predicted RUL (nil without
// intervals).
func figCalibration(ivs []IntervalMetrics, split string) *Figure {
	all := svgchart.Series{Name: "all windows", Color: 0}
	buckets := svgchart.Series{Name: "per bucket of predicted RUL", Points: true, Color: 2}
	lo, n := 1.0, 0
	for _, iv := range ivs {
		if !iv.Coverage.Valid() {
			continue
		}
		all.X, all.Y = append(all.X, iv.Level), append(all.Y, float64(iv.Coverage))
		all.Marks = append(all.Marks, svgchart.Mark{Index: len(all.X) - 1, Label: fmt.Sprintf("%.1f%%", 100*float64(iv.Coverage))})
		lo, n = math.Min(lo, math.Min(iv.Level, float64(iv.Coverage))), max(n, iv.N)
		for _, b := range iv.Buckets {
			if b.Coverage.Valid() {
				buckets.X, buckets.Y = append(buckets.X, iv.Level), append(buckets.Y, float64(b.Coverage))
				lo = math.Min(lo, float64(b.Coverage))
			}
		}
	}
	if len(all.X) == 0 {
		return nil
	}
	lo = math.Max(0, math.Floor(lo*20)/20)
	id := svgchart.Series{Name: "perfect (empirical = nominal)", X: []float64{lo, 1}, Y: []float64{lo, 1}, Dashed: true, Color: 1}
	series := []svgchart.Series{id, all}
	if len(buckets.X) > 0 {
		series = append(series, buckets)
	}
	c := svgchart.LineChart{ID: "fig-calibration", Title: fmt.Sprintf("Interval calibration (%s, n = %d)", split, n),
		XLabel: "nominal coverage (interval level)", YLabel: "empirical coverage", Series: series}
	return &Figure{ID: c.ID, Title: "Interval calibration", SVG: c.SVG(),
		Caption: "Empirical coverage (share of windows whose true RUL lies in the interval) at each calibrated level. On the dashed line the intervals cover as promised; below it they are too narrow, above it too wide."}
}

// figTraining draws the training curves in hours: the RMSE of the train and
// validation windows per epoch (the checkpoint's history), the best epoch
// (lowest validation loss, early stopping's choice) marked. Epochs without
// an RMSE (a train loss other than MSE has none) are left out; nil when no
// epoch has one.
func figTraining(h []model.Epoch) *Figure {
	tr := svgchart.Series{Name: "train RMSE (h)", Dashed: true, Color: 0}
	va := svgchart.Series{Name: "validation RMSE (h)", Color: 1}
	best, bestLoss := -1, math.Inf(1)
	for _, e := range h {
		if finitePos(e.TrainRMSE) {
			tr.X, tr.Y = append(tr.X, float64(e.Epoch)), append(tr.Y, e.TrainRMSE)
		}
		if finitePos(e.ValRMSE) {
			va.X, va.Y = append(va.X, float64(e.Epoch)), append(va.Y, e.ValRMSE)
			if e.ValLoss < bestLoss {
				best, bestLoss = len(va.X)-1, e.ValLoss
			}
		}
	}
	if len(tr.X) == 0 && len(va.X) == 0 {
		return nil
	}
	caption := "RMSE in hours of the training and validation windows after each epoch, from the checkpoint's training history."
	if best >= 0 {
		va.Marks = []svgchart.Mark{{Index: best, Label: fmt.Sprintf("best epoch %.0f: %.3g h", va.X[best], va.Y[best])}}
		caption += " The marked epoch has the lowest validation loss: its weights are the model's (early stopping)."
	}
	var series []svgchart.Series
	for _, s := range []svgchart.Series{tr, va} {
		if len(s.X) > 0 {
			series = append(series, s)
		}
	}
	c := svgchart.LineChart{ID: "fig-training", Title: fmt.Sprintf("Training curves (%d epochs)", len(h)), XLabel: "epoch", YLabel: "RMSE (h)",
		XInt: true, YZero: true, Series: series}
	return &Figure{ID: c.ID, Title: "Training curves", SVG: c.SVG(), Caption: caption}
}
