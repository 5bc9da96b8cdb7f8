package evaluate

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// Plot sizes in pixels (drawn at PlotDPI).
const (
	PlotDPI        = 100
	PlotWidth      = 800
	PlotHeight     = 600
	TrajWidth      = 1200 // trajectories: a grid of devices
	TrajHeight     = 800
	maxScatterDots = 5000 // scatter plots show an even subsample beyond this
)

// Plot is one rendered figure.
type Plot struct {
	Name    string // file name, e.g. "pred_vs_true.png"
	Title   string
	Caption string
	Width   int // pixels
	Height  int
	PNG     []byte
}

var (
	colTrue  = color.RGBA{R: 40, G: 40, B: 40, A: 255}
	colPred  = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	colWorst = color.RGBA{R: 214, G: 39, B: 40, A: 255}
	colDot   = color.NRGBA{R: 31, G: 119, B: 180, A: 110}
	colRef   = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

func render(p *plot.Plot, wpx, hpx int) ([]byte, error) {
	c := newCanvas(wpx, hpx)
	p.Draw(draw.New(c))
	return encodePNG(c)
}

func newCanvas(wpx, hpx int) *vgimg.Canvas {
	return vgimg.NewWith(
		vgimg.UseWH(vg.Length(wpx)/PlotDPI*vg.Inch, vg.Length(hpx)/PlotDPI*vg.Inch),
		vgimg.UseDPI(PlotDPI))
}

func encodePNG(c *vgimg.Canvas) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// subsample returns at most max indices spread evenly over [0, n).
func subsample(n, max int) []int {
	if n <= max {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, max)
	for i := range idx {
		idx[i] = int(int64(i) * int64(n) / int64(max))
	}
	return idx
}

func scatter(xs, ys []float64) (*plotter.Scatter, string, error) {
	idx := subsample(len(xs), maxScatterDots)
	pts := make(plotter.XYs, len(idx))
	for k, i := range idx {
		pts[k] = plotter.XY{X: xs[i], Y: ys[i]}
	}
	s, err := plotter.NewScatter(pts)
	if err != nil {
		return nil, "", err
	}
	s.Color = colDot
	s.Radius = vg.Points(2)
	s.Shape = draw.CircleGlyph{}
	note := fmt.Sprintf("n = %d", len(xs))
	if len(idx) < len(xs) {
		note = fmt.Sprintf("n = %d, %d shown", len(xs), len(idx))
	}
	return s, note, nil
}

func line(pts plotter.XYs, c color.Color, width vg.Length, dashed bool) (*plotter.Line, error) {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = width
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return l, nil
}

func minMax(vs ...[]float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		for _, x := range v {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	return lo, hi
}

// PlotPredVsTrue draws predicted against true RUL with the identity line.
func PlotPredVsTrue(truth, pred []float64, split string) (*Plot, error) {
	p := plot.New()
	s, note, err := scatter(truth, pred)
	if err != nil {
		return nil, err
	}
	p.Title.Text = fmt.Sprintf("Predicted vs true RUL (%s, %s)", split, note)
	p.X.Label.Text = "true RUL (h)"
	p.Y.Label.Text = "predicted RUL (h)"
	lo, hi := minMax(truth, pred)
	id, err := line(plotter.XYs{{X: lo, Y: lo}, {X: hi, Y: hi}}, colRef, vg.Points(1.5), true)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), s, id)
	p.Legend.Add("prediction", s)
	p.Legend.Add("perfect (pred = true)", id)
	p.Legend.Top, p.Legend.Left = true, true
	png, err := render(p, PlotWidth, PlotHeight)
	if err != nil {
		return nil, err
	}
	return &Plot{Name: "pred_vs_true.png", Title: "Predicted vs true RUL", Width: PlotWidth, Height: PlotHeight, PNG: png,
		Caption: "Each dot is one window; dots on the dashed line are exact. Dots below it are early predictions (pred < true), above it late ones."}, nil
}

func residuals(truth, pred []float64) []float64 {
	d := make([]float64, len(truth))
	for i := range truth {
		d[i] = pred[i] - truth[i]
	}
	return d
}

// PlotErrorHist draws the histogram of the errors pred − true.
func PlotErrorHist(truth, pred []float64, split string) (*Plot, error) {
	d := residuals(truth, pred)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Error distribution (%s, n = %d)", split, len(d))
	p.X.Label.Text = "error = predicted − true RUL (h)   (< 0 early, > 0 late)"
	p.Y.Label.Text = "windows"
	bins := int(math.Min(60, math.Max(5, math.Sqrt(float64(len(d))))))
	h, err := plotter.NewHist(plotter.Values(d), bins)
	if err != nil {
		return nil, err
	}
	h.FillColor = colPred
	h.Color = color.White
	lo, hi := minMax(d)
	zero, err := line(plotter.XYs{{X: 0, Y: 0}, {X: 0, Y: maxBin(h)}}, colRef, vg.Points(1.5), true)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), h, zero)
	p.X.Min, p.X.Max = math.Min(lo, 0), math.Max(hi, 0)
	png, err := render(p, PlotWidth, PlotHeight)
	if err != nil {
		return nil, err
	}
	return &Plot{Name: "error_hist.png", Title: "Error distribution", Width: PlotWidth, Height: PlotHeight, PNG: png,
		Caption: "Histogram of predicted − true RUL. Mass left of the dashed zero line is early (safe side), right of it late."}, nil
}

func maxBin(h *plotter.Histogram) float64 {
	m := 0.0
	for _, b := range h.Bins {
		m = math.Max(m, b.Weight)
	}
	return m
}

// PlotErrorVsTrue draws the error against the true RUL (the funnel: errors
// usually shrink as the failure approaches).
func PlotErrorVsTrue(truth, pred []float64, split string) (*Plot, error) {
	d := residuals(truth, pred)
	p := plot.New()
	s, note, err := scatter(truth, d)
	if err != nil {
		return nil, err
	}
	p.Title.Text = fmt.Sprintf("Error vs true RUL (%s, %s)", split, note)
	p.X.Label.Text = "true RUL (h)"
	p.Y.Label.Text = "predicted − true RUL (h)"
	lo, hi := minMax(truth)
	zero, err := line(plotter.XYs{{X: lo, Y: 0}, {X: hi, Y: 0}}, colRef, vg.Points(1.5), true)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), s, zero)
	png, err := render(p, PlotWidth, PlotHeight)
	if err != nil {
		return nil, err
	}
	return &Plot{Name: "error_vs_true.png", Title: "Error vs true RUL", Width: PlotWidth, Height: PlotHeight, PNG: png,
		Caption: "The funnel: how the error depends on how far the failure is. Near RUL 0 the errors matter most."}, nil
}

// worstBest picks up to k devices with the highest and k with the lowest RMSE
// among the series of one split that have at least two windows (disjoint).
func worstBest(ss []*series, k int) (worst, best []*series) {
	type scored struct {
		s    *series
		rmse float64
	}
	var cand []scored
	for _, s := range ss {
		if len(s.truth) >= 2 {
			cand = append(cand, scored{s, Regress(s.truth, s.pred).RMSE})
		}
	}
	slices.SortStableFunc(cand, func(a, b scored) int {
		switch {
		case a.rmse > b.rmse:
			return -1
		case a.rmse < b.rmse:
			return 1
		}
		return 0
	})
	k = min(k, (len(cand)+1)/2)
	for i := range k {
		worst = append(worst, cand[i].s)
	}
	for i := len(cand) - 1; i >= len(cand)-k && i >= k; i-- {
		best = append(best, cand[i].s)
	}
	return worst, best
}

// PlotTrajectories draws true and predicted RUL over time for the worst
// (top row) and best (bottom row) devices by RMSE. It returns nil when no
// device has two or more windows (e.g. last-window-only predictions).
func PlotTrajectories(ss []*series, split string) (*Plot, error) {
	worst, best := worstBest(ss, 3)
	if len(worst) == 0 {
		return nil, nil
	}
	rows := [][]*series{worst}
	if len(best) > 0 {
		rows = append(rows, best)
	}
	cols := len(worst)
	plots := make([][]*plot.Plot, len(rows))
	for r, row := range rows {
		plots[r] = make([]*plot.Plot, cols)
		for c := range cols {
			if c >= len(row) {
				continue
			}
			s := row[c]
			p, err := trajectory(s, r == 0)
			if err != nil {
				return nil, err
			}
			plots[r][c] = p
		}
	}
	canvas := newCanvas(TrajWidth, TrajHeight)
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(rows), Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 3, PadBottom: vg.Millimeter * 3, PadLeft: vg.Millimeter * 3, PadRight: vg.Millimeter * 3}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c, p := range plots[r] {
			if p != nil {
				p.Draw(canvases[r][c])
			}
		}
	}
	png, err := encodePNG(canvas)
	if err != nil {
		return nil, err
	}
	caption := fmt.Sprintf("True (solid) and predicted (dashed) RUL over time of the %d worst (top row, red) and %d best (bottom row, blue) devices of the %s split by RMSE.", len(worst), len(best), split)
	return &Plot{Name: "trajectories.png", Title: "RUL trajectories of the worst and best devices", Width: TrajWidth, Height: TrajHeight, PNG: png, Caption: caption}, nil
}

func trajectory(s *series, worst bool) (*plot.Plot, error) {
	p := plot.New()
	rm := Regress(s.truth, s.pred).RMSE
	kind := "best"
	pc := color.Color(colPred)
	if worst {
		kind, pc = "worst", colWorst
	}
	name := s.device
	if s.tenant != "" {
		name = s.tenant + "/" + s.device
	}
	p.Title.Text = fmt.Sprintf("%s: %s (RMSE %.3g h)", kind, name, rm)
	p.X.Label.Text = "hours since first window"
	p.Y.Label.Text = "RUL (h)"
	t0 := s.end[0]
	for _, e := range s.end {
		t0 = min(t0, e)
	}
	// One line per life: the truth jumps up after a repair.
	var legendT, legendP *plotter.Line
	for lo := 0; lo < len(s.end); {
		hi := lo + 1
		for hi < len(s.end) && s.life[hi] == s.life[lo] {
			hi++
		}
		tp := make(plotter.XYs, hi-lo)
		pp := make(plotter.XYs, hi-lo)
		for i := lo; i < hi; i++ {
			x := float64(s.end[i]-t0) / 3.6e9
			tp[i-lo] = plotter.XY{X: x, Y: s.truth[i]}
			pp[i-lo] = plotter.XY{X: x, Y: s.pred[i]}
		}
		lt, err := line(tp, colTrue, vg.Points(1.5), false)
		if err != nil {
			return nil, err
		}
		lp, err := line(pp, pc, vg.Points(1.5), true)
		if err != nil {
			return nil, err
		}
		p.Add(lt, lp)
		legendT, legendP = lt, lp
		lo = hi
	}
	p.Add(plotter.NewGrid())
	p.Legend.Add("true", legendT)
	p.Legend.Add("predicted", legendP)
	p.Legend.Top = true
	return p, nil
}

// confusionGrid is a confusion matrix as a heat-map grid: column c is the
// predicted class c, row r the true class 2−r (critical on top); values are
// row-normalised (the recall of each true class).
type confusionGrid struct{ frac [3][3]float64 }

func (g confusionGrid) Dims() (c, r int)   { return 3, 3 }
func (g confusionGrid) Z(c, r int) float64 { return g.frac[2-r][c] }
func (g confusionGrid) X(c int) float64    { return float64(c) }
func (g confusionGrid) Y(r int) float64    { return float64(r) }

// blues is a white-to-blue palette.
type blues int

func (n blues) Colors() []color.Color {
	out := make([]color.Color, n)
	for i := range out {
		t := float64(i) / float64(n-1)
		out[i] = color.RGBA{R: uint8(247 - t*(247-66)), G: uint8(251 - t*(251-146)), B: uint8(255 - t*(255-198)), A: 255}
	}
	return out
}

// PlotConfusion draws the confusion matrix as a heat map, rows the true
// class, columns the predicted class, each cell labelled with its count and
// its share of the row.
func PlotConfusion(c *Classification, split string) (*Plot, error) {
	var g confusionGrid
	var xys plotter.XYs
	var labels []string
	for i := range 3 {
		row := 0
		for j := range 3 {
			row += c.Confusion[i][j]
		}
		for j := range 3 {
			if row > 0 {
				g.frac[i][j] = float64(c.Confusion[i][j]) / float64(row)
			}
			xys = append(xys, plotter.XY{X: float64(j), Y: float64(2 - i)})
			labels = append(labels, fmt.Sprintf("%d\n(%.1f%%)", c.Confusion[i][j], 100*g.frac[i][j]))
		}
	}
	hm := plotter.NewHeatMap(g, blues(32))
	hm.Min, hm.Max = 0, 1
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign = draw.XCenter
		lb.TextStyle[i].YAlign = draw.YCenter
		lb.TextStyle[i].Font.Size = vg.Points(14)
		lb.TextStyle[i].Handler = plot.DefaultTextHandler
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Health classes: confusion matrix (%s, n = %d)", split, c.MacroAvg.Support)
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	p.Add(hm, lb)
	names := make([]string, 3)
	for i, h := range dataset.HealthClasses {
		names[i] = h.String()
	}
	p.NominalX(names...)
	p.NominalY(names[2], names[1], names[0])
	p.X.Min, p.X.Max = -0.5, 2.5
	p.Y.Min, p.Y.Max = -0.5, 2.5
	png, err := render(p, PlotWidth, PlotHeight)
	if err != nil {
		return nil, err
	}
	return &Plot{Name: "confusion.png", Title: "Confusion matrix", Width: PlotWidth, Height: PlotHeight, PNG: png,
		Caption: "Rows are the true class, columns the predicted class; each cell shows its count and its share of the row (the class's recall on the diagonal)."}, nil
}

// PlotTraining draws train and validation loss per epoch from a checkpoint's
// history (log scale when the losses span more than two decades). It returns
// nil for an empty history.
func PlotTraining(h []model.Epoch) (*Plot, error) {
	if len(h) == 0 {
		return nil, nil
	}
	var tr, va plotter.XYs
	var all []float64
	for _, e := range h {
		if finitePos(e.TrainLoss) {
			tr = append(tr, plotter.XY{X: float64(e.Epoch), Y: e.TrainLoss})
			all = append(all, e.TrainLoss)
		}
		if finitePos(e.ValLoss) {
			va = append(va, plotter.XY{X: float64(e.Epoch), Y: e.ValLoss})
			all = append(all, e.ValLoss)
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Training curves (%d epochs)", len(h))
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	if lo, hi := minMax(all); hi/lo > 100 {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text = "loss (log scale)"
	}
	p.Add(plotter.NewGrid())
	for _, s := range []struct {
		pts    plotter.XYs
		name   string
		c      color.Color
		dashed bool
	}{{tr, "train loss", colPred, false}, {va, "validation loss", colWorst, true}} {
		if len(s.pts) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.pts)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = s.c, vg.Points(1.5)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pts.Color = s.c
		pts.Radius = vg.Points(1.5)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.Legend.Top = true
	png, err := render(p, PlotWidth, PlotHeight)
	if err != nil {
		return nil, err
	}
	return &Plot{Name: "training_curves.png", Title: "Training curves", Width: PlotWidth, Height: PlotHeight, PNG: png,
		Caption: "Train and validation loss per epoch, from the checkpoint's training history."}, nil
}

func finitePos(v float64) bool { return v > 0 && !math.IsInf(v, 0) }

// errPoints are points with vertical error bars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// PlotCalibration draws the measured coverage of the prediction intervals
// against their nominal level (the calibration plot): overall with a 95 %
// binomial band, and per bucket of predicted RUL. It returns nil when there
// are no intervals.
func PlotCalibration(ivs []IntervalMetrics, split string) (*Plot, error) {
	var all, buckets plotter.XYs
	var errs plotter.YErrors
	lo := 0.5
	n := 0
	for _, iv := range ivs {
		if !iv.Coverage.Valid() {
			continue
		}
		c := float64(iv.Coverage)
		all = append(all, plotter.XY{X: iv.Level, Y: c})
		se := 1.96 * math.Sqrt(c*(1-c)/float64(iv.N))
		errs = append(errs, struct{ Low, High float64 }{Low: math.Min(se, c), High: math.Min(se, 1-c)})
		lo = math.Min(lo, math.Min(iv.Level, c-se))
		n = max(n, iv.N)
		for _, b := range iv.Buckets {
			if b.Coverage.Valid() {
				buckets = append(buckets, plotter.XY{X: iv.Level, Y: float64(b.Coverage)})
				lo = math.Min(lo, float64(b.Coverage))
			}
		}
	}
	if len(all) == 0 {
		return nil, nil
	}
	lo = math.Max(0, math.Floor(lo*20)/20) // a 0.05 grid below the lowest value
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Interval calibration (%s, n = %d)", split, n)
	p.X.Label.Text = "nominal coverage (interval level)"
	p.Y.Label.Text = "empirical coverage"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = lo, 1, lo, 1
	id, err := line(plotter.XYs{{X: lo, Y: lo}, {X: 1, Y: 1}}, colRef, vg.Points(1.5), true)
	if err != nil {
		return nil, err
	}
	p.Add(plotter.NewGrid(), id)
	p.Legend.Add("perfect (empirical = nominal)", id)
	if len(buckets) > 0 {
		bs, err := plotter.NewScatter(buckets)
		if err != nil {
			return nil, err
		}
		bs.Color, bs.Radius, bs.Shape = colDot, vg.Points(3), draw.TriangleGlyph{}
		p.Add(bs)
		p.Legend.Add("per bucket of predicted RUL", bs)
	}
	l, pts, err := plotter.NewLinePoints(all)
	if err != nil {
		return nil, err
	}
	l.Color, l.Width = colPred, vg.Points(1.5)
	pts.Color, pts.Radius, pts.Shape = colPred, vg.Points(4), draw.CircleGlyph{}
	eb, err := plotter.NewYErrorBars(errPoints{XYs: all, YErrors: errs})
	if err != nil {
		return nil, err
	}
	eb.Color = colPred
	p.Add(l, pts, eb)
	p.Legend.Add("all windows (95 % band)", l, pts)
	p.Legend.Top, p.Legend.Left = true, true
	png, err := render(p, PlotWidth, PlotHeight)
	if err != nil {
		return nil, err
	}
	return &Plot{Name: "calibration.png", Title: "Interval calibration", Width: PlotWidth, Height: PlotHeight, PNG: png,
		Caption: "Empirical coverage of the prediction intervals (share of windows whose true RUL lies in [rul_lower, rul_upper]) at each calibrated level. On the dashed line the intervals cover as promised; below it they are too narrow, above it too wide. Triangles are the Mondrian buckets of predicted RUL."}, nil
}
