package evaluate

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	htmltemplate "html/template"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/svgchart"
)

type splitView struct {
	Name string
	*SplitMetrics
}

type plotView struct {
	*Plot
	Rel     string // path relative to the report
	DataURL htmltemplate.URL
}

type historyView struct {
	Epochs               int
	BestEpoch            int
	BestVal              float64
	FinalTrain, FinalVal float64
}

type reportData struct {
	M           *Metrics
	Splits      []splitView
	Primary     string
	PrimaryM    *SplitMetrics
	Worst, Best []DeviceMetrics
	Plots       []plotView
	History     *historyView
	Compare     *Comparison
	Warnings    []string
	Importance  *Importance
	// Figures are the SVG figures in report order; figDir is the plots
	// directory relative to report.md (set by renderReports).
	Figures []*Figure
	figDir  string
}

// figureGroup is a run of figures shown alike: full width, or in a grid
// (the device trajectories).
type figureGroup struct {
	Grid    bool
	Figures []*Figure
}

func figureGroups(fs []*Figure) []figureGroup {
	var out []figureGroup
	for _, f := range fs {
		if n := len(out); n > 0 && out[n-1].Grid == f.Half {
			out[n-1].Figures = append(out[n-1].Figures, f)
			continue
		}
		out = append(out, figureGroup{Grid: f.Half, Figures: []*Figure{f}})
	}
	return out
}

// rawNote says why the raw-RUL table is not the model's error.
func rawNote(m *Metrics) string {
	if !m.HorizonHours.Valid() {
		return "The same predictions against the raw RUL where it is known (not censored); without a recorded horizon it equals the table above wherever the labels were not capped."
	}
	return fmt.Sprintf("The model is trained to predict the RUL capped at %s h, so far from failure it rightly says \"%s h or more\" while the raw RUL is larger: these numbers measure the cap, not the model, and are comparable neither with the capped metrics nor across horizons.",
		fmtNum(m.HorizonHours), fmtNum(m.HorizonHours))
}

// headIv is the interval the headline shows: the SummaryIntervalLevel one,
// else the widest level measured (nil without intervals).
func headIv(m *SplitMetrics) *IntervalMetrics {
	var out *IntervalMetrics
	for i := range m.Intervals {
		iv := &m.Intervals[i]
		if !iv.Coverage.Valid() {
			continue
		}
		if math.Abs(iv.Level-SummaryIntervalLevel) < 1e-9 {
			return iv
		}
		if out == nil || iv.Level > out.Level {
			out = iv
		}
	}
	return out
}

func summarizeHistory(h []model.Epoch) *historyView {
	if len(h) == 0 {
		return nil
	}
	v := &historyView{Epochs: len(h), BestVal: math.Inf(1), FinalTrain: h[len(h)-1].TrainLoss, FinalVal: h[len(h)-1].ValLoss}
	for _, e := range h {
		if e.ValLoss < v.BestVal {
			v.BestVal, v.BestEpoch = e.ValLoss, e.Epoch
		}
	}
	return v
}

// worstBestDevices returns up to k devices of split with the highest and the
// lowest RMSE.
func worstBestDevices(ds []DeviceMetrics, split string, k int) (worst, best []DeviceMetrics) {
	var in []DeviceMetrics
	for _, d := range ds {
		if d.Split == split && d.N > 0 {
			in = append(in, d)
		}
	}
	slices.SortStableFunc(in, func(a, b DeviceMetrics) int { return cmp.Compare(b.RMSE, a.RMSE) })
	worst = in[:min(k, len(in))]
	for i := len(in) - 1; i >= 0 && len(best) < k; i-- {
		best = append(best, in[i])
	}
	return worst, best
}

var funcs = map[string]any{
	"num": func(f Float) string { return fmtNum(f) },
	"f3": func(f Float) string {
		if !f.Valid() {
			return "—"
		}
		return fmt.Sprintf("%.3f", float64(f))
	},
	"pct": func(f Float) string {
		if !f.Valid() {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", 100*float64(f))
	},
	"g":     func(v float64) string { return fmt.Sprintf("%.4g", v) },
	"delta": fmtDelta,
	"classes": func(c *Classification) []classRow {
		return []classRow{{"critical", c.Critical}, {"warning", c.Warning}, {"normal", c.Normal}}
	},
	"confusion": func(c *Classification) []confRow {
		out := make([]confRow, 3)
		for i := range 3 {
			out[i] = confRow{Label: c.Labels[i], Cells: c.Confusion[i][:]}
		}
		return out
	},
	"model":     func(m *Metrics) string { return modelName(m) },
	"intervals": intervalRows,
	"headIv":    headIv,
	"rawNote":   rawNote,
	"g100":      func(v float64) string { return fmt.Sprintf("%g", 100*v) },
	"figureRel": func(d *reportData, f *Figure) string {
		return filepath.ToSlash(filepath.Join(d.figDir, f.ID+".svg"))
	},
	"bucketRows": bucketRows,
	"alertRows":  alertRows,
	"hours": func(f Float) string {
		if !f.Valid() {
			return "—"
		}
		return fmt.Sprintf("%.1f h", float64(f))
	},
}

// alertRow is one row of the reports' alert table.
type alertRow struct {
	Split string
	*AlertMetrics
}

// alertRows lists the splits' alert metrics for the reports (splits with
// lives only).
func alertRows(splits []splitView) []alertRow {
	var out []alertRow
	for _, s := range splits {
		if s.Alerts != nil && s.Alerts.Lives > 0 {
			out = append(out, alertRow{Split: s.Name, AlertMetrics: s.Alerts})
		}
	}
	return out
}

// bucketRow is one row of the reports' error-by-bucket table.
type bucketRow struct {
	Split, Title string
	BucketMetrics
}

// bucketRows flattens the splits' true-RUL buckets for the reports.
func bucketRows(splits []splitView) []bucketRow {
	var out []bucketRow
	for _, s := range splits {
		for _, b := range s.RULBuckets {
			out = append(out, bucketRow{Split: s.Name, Title: b.bucketTitle(), BucketMetrics: b})
		}
	}
	return out
}

// ivRow is one row of the reports' interval table: a level of a split, or
// one bucket of it (Bucket set).
type ivRow struct {
	Split, Bucket string
	Level         string
	N, Covered    int
	Coverage      Float
	Width         string
}

// intervalRows flattens the splits' interval coverage for the reports.
func intervalRows(splits []splitView) []ivRow {
	var out []ivRow
	for _, s := range splits {
		for _, iv := range s.Intervals {
			lv := fmt.Sprintf("%g %%", 100*iv.Level)
			out = append(out, ivRow{Split: s.Name, Level: lv, N: iv.N, Covered: iv.Covered, Coverage: iv.Coverage, Width: widthText(iv.MeanWidth)})
			for _, b := range iv.Buckets {
				out = append(out, ivRow{Split: s.Name, Bucket: bucketText(b), Level: lv, N: b.N, Covered: b.Covered, Coverage: b.Coverage, Width: widthText(b.MeanWidth)})
			}
		}
	}
	return out
}

type classRow struct {
	Name string
	ClassMetrics
}

type confRow struct {
	Label string
	Cells []int
}

var (
	mdTmpl   = template.Must(template.Must(template.Must(template.New("report.md").Funcs(funcs).Parse(mdTemplate)).Parse(mdSections)).Parse(importanceMD))
	htmlTmpl = htmltemplate.Must(htmltemplate.Must(htmltemplate.Must(htmltemplate.New("report.html").Funcs(funcs).Funcs(htmltemplate.FuncMap{
		"list": func(s ...string) []string { return s },
		"devices": func(d *reportData, which string) []DeviceMetrics {
			if which == "Worst" {
				return d.Worst
			}
			return d.Best
		},
		"figureGroups": figureGroups,
		// The chart rules are our own constant CSS.
		"chartCSS": func() htmltemplate.CSS { return htmltemplate.CSS(svgchart.CSS) },
	}).Parse(htmlTemplate)).Parse(htmlSections)).Parse(importanceHTML))
)

// renderReports renders report.md (plots linked relative to mdPath) and the
// self-contained report.html (plots inline).
func renderReports(d *reportData, mdPath, plotsDir string) (md, html []byte, err error) {
	if rel, rerr := filepath.Rel(filepath.Dir(mdPath), plotsDir); rerr == nil {
		d.figDir = rel
	} else {
		d.figDir = plotsDir
	}
	for i := range d.Plots {
		p := &d.Plots[i]
		rel, rerr := location.Rel(location.Dir(mdPath), location.Join(plotsDir, p.Name))
		if rerr != nil {
			rel = location.Join(plotsDir, p.Name)
		}
		p.Rel = filepath.ToSlash(rel)
		// A data: URL of our own PNG bytes (trusted content).
		p.DataURL = htmltemplate.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(p.PNG))
	}
	var mb, hb bytes.Buffer
	if err := mdTmpl.Execute(&mb, d); err != nil {
		return nil, nil, fmt.Errorf("render report.md: %w", err)
	}
	if err := htmlTmpl.Execute(&hb, d); err != nil {
		return nil, nil, fmt.Errorf("render report.html: %w", err)
	}
	return squeezeBlankLines(mb.Bytes()), hb.Bytes(), nil
}

// squeezeBlankLines collapses runs of blank lines left by the template.
func squeezeBlankLines(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	out := lines[:0]
	blank := false
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			if blank {
				continue
			}
			blank = true
		} else {
			blank = false
		}
		out = append(out, l)
	}
	return []byte(strings.Join(out, "\n"))
}
