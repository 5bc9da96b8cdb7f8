package evaluate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/svgchart"
)

// Importance is the permutation importance of the model's input features
// (metrics.json's "feature_importance"): for each feature, the increase in
// RMSE (hours, capped truth) when that feature's values are permuted across
// the windows — every time step of a window takes the values of one other
// window, so the feature's own time structure stays and only its link to
// the RUL is broken. Features are ordered by mean increase, largest first.
type Importance struct {
	Split   string `json:"split"`
	Windows int    `json:"windows"` // windows scored (with a known true RUL)
	// WindowsAvailable is the number of windows of the split with a known
	// true RUL; Windows of them (evenly spread) were scored when it is larger.
	WindowsAvailable int                 `json:"windows_available"`
	LastWindowOnly   bool                `json:"last_window_only"`
	Repeats          int                 `json:"repeats"`
	Seed             int64               `json:"seed"`
	BaselineRMSE     Float               `json:"baseline_rmse"`
	Features         []FeatureImportance `json:"features"`
	Seconds          float64             `json:"seconds"`
}

// FeatureImportance is one feature's permutation importance.
type FeatureImportance struct {
	Feature string `json:"feature"`
	// Mean and Std (sample standard deviation; null for one repeat) of the
	// RMSE increase over the repeats, in hours; PerRepeat lists them.
	Mean      Float     `json:"rmse_increase_mean"`
	Std       Float     `json:"rmse_increase_std"`
	PerRepeat []float64 `json:"rmse_increase"`
}

// ImportanceSpec says what ComputeImportance scores.
type ImportanceSpec struct {
	Model, Windows string
	Split          string
	LastWindowOnly bool
	Repeats        int
	Seed           int64
	MaxWindows     int // 0: all
	BatchSize      int
	Workers        int
}

// errNoImportance marks a model that permutation importance cannot run
// (a ridge checkpoint): the caller warns and goes on.
var errNoImportance = errors.New("no permutation importance")

// ComputeImportance loads the model, reads the split's windows and measures
// the permutation importance of every input feature. Permutations come from
// a PCG seeded with (Seed, repeat·F + feature): the same for any batch size
// or worker count.
func ComputeImportance(ctx context.Context, env *runenv.Env, spec ImportanceSpec) (*Importance, error) {
	m, err := infer.Load(spec.Model, spec.Workers)
	if err != nil {
		if errors.Is(err, exitcode.ErrUsage) {
			return nil, fmt.Errorf("%w: %w", errNoImportance, err)
		}
		return nil, err
	}
	defer m.Close()
	w, err := dataset.ReadWindows(ctx, spec.Windows, spec.Split)
	if err != nil {
		return nil, err
	}
	var rows []int
	for _, i := range infer.Select(w, spec.LastWindowOnly) {
		if !math.IsNaN(w.RUL[i]) {
			rows = append(rows, i)
		}
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("%w: split %s of %s has %d windows with a known true RUL (2 or more needed)", errNoImportance, spec.Split, spec.Windows, len(rows))
	}
	imp := &Importance{Split: spec.Split, WindowsAvailable: len(rows), LastWindowOnly: spec.LastWindowOnly, Repeats: spec.Repeats, Seed: spec.Seed}
	if spec.MaxWindows > 0 && len(rows) > spec.MaxWindows {
		idx := subsample(len(rows), spec.MaxWindows)
		sub := make([]int, len(idx))
		for k, i := range idx {
			sub[k] = rows[i]
		}
		rows = sub
	}
	imp.Windows = len(rows)
	r, err := infer.NewRunner(m, w, spec.Windows, spec.BatchSize)
	if err != nil {
		return nil, err
	}
	truth := make([]float64, len(rows))
	for k, i := range rows {
		truth[k] = w.RUL[i]
	}
	pred := make([]float64, len(rows))
	bar := env.Progress("importance", "passes", int64(1+spec.Repeats*len(m.Features)))
	defer bar.Finish()
	if err := r.Run(ctx, rows, 0, nil, pred); err != nil {
		return nil, err
	}
	bar.Add(1)
	base := rmse(truth, pred)
	imp.BaselineRMSE = Float(base)
	perm := make([]int, len(rows))
	for f, name := range m.Features {
		fi := FeatureImportance{Feature: name, PerRepeat: make([]float64, spec.Repeats)}
		for rep := range spec.Repeats {
			rng := rand.New(rand.NewPCG(uint64(spec.Seed), uint64(rep*len(m.Features)+f)))
			for k := range perm {
				perm[k] = k
			}
			rng.Shuffle(len(perm), func(a, b int) { perm[a], perm[b] = perm[b], perm[a] })
			if err := r.Run(ctx, rows, f, perm, pred); err != nil {
				return nil, err
			}
			fi.PerRepeat[rep] = rmse(truth, pred) - base
			bar.Add(1)
		}
		mean, std := meanSampleStd(fi.PerRepeat)
		fi.Mean, fi.Std = Float(mean), Float(std)
		imp.Features = append(imp.Features, fi)
	}
	slices.SortStableFunc(imp.Features, func(a, b FeatureImportance) int { return cmp.Compare(b.Mean, a.Mean) })
	return imp, nil
}

func rmse(truth, pred []float64) float64 {
	var s float64
	for i := range truth {
		d := pred[i] - truth[i]
		s += d * d
	}
	return math.Sqrt(s / float64(len(truth)))
}

// meanSampleStd returns the mean and the sample standard deviation (n − 1;
// NaN for fewer than two values).
func meanSampleStd(v []float64) (mean, std float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, math.NaN()
	}
	for _, x := range v {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(v)-1))
}

// importance runs ComputeImportance for Run when it can: repeats > 0, the
// model that made the predictions and the windows file at hand. A model it
// cannot run (ridge) or a split without labelled windows is a warning; no
// model or windows file is only logged (nil: no importance).
func importance(ctx context.Context, env *runenv.Env, opts Options, meta dataset.Meta, split string, modelMade bool, warn func(string)) (*Importance, error) {
	if opts.ImportanceRepeats == 0 {
		return nil, nil
	}
	if !modelMade || opts.Windows == "" || !exists(opts.Windows) {
		env.Log.Info("evaluate: no permutation importance: it needs the model that made the predictions (--model) and the windows (--windows)",
			"model", opts.Model, "windows", opts.Windows)
		return nil, nil
	}
	last := opts.LastWindowOnly
	var pm infer.PredictMeta
	if ok, err := meta.Get(infer.MetaPredict, &pm); err == nil && ok {
		last = pm.LastWindowOnly // score the windows the predictions were made for
	}
	start := time.Now()
	imp, err := ComputeImportance(ctx, env, ImportanceSpec{Model: opts.Model, Windows: opts.Windows, Split: split, LastWindowOnly: last,
		Repeats: opts.ImportanceRepeats, Seed: opts.ImportanceSeed, MaxWindows: opts.ImportanceWindows, BatchSize: opts.BatchSize, Workers: opts.Workers})
	if errors.Is(err, errNoImportance) {
		warn(fmt.Sprintf("no permutation importance: %v", err))
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evaluate: permutation importance: %w", err)
	}
	imp.Seconds = time.Since(start).Seconds()
	env.Log.Info("evaluate: permutation importance", "split", split, "windows", imp.Windows, "repeats", imp.Repeats,
		"baseline_rmse", float64(imp.BaselineRMSE), "top", imp.Features[0].Feature, "seconds", imp.Seconds)
	return imp, nil
}

// importanceFigure is the id (and file name, .svg) of the permutation
// importance figure.
const importanceFigure = "fig-importance"

// figImportance draws the permutation importance as horizontal bars sorted
// by mean RMSE increase (largest on top; a bar at 0 for a zero or negative
// mean), each with its value ± one standard deviation over the repeats.
// nil for no importance.
func figImportance(imp *Importance) *Figure {
	if imp == nil || len(imp.Features) == 0 {
		return nil
	}
	return &Figure{ID: importanceFigure, Title: "Which sensors matter: permutation importance", SVG: ImportanceChart(importanceFigure, imp),
		Caption: "How much worse (RMSE, hours) the model gets when one input feature's values are shuffled across the windows, mean ± one standard deviation over the seeded repeats. A bar near 0 is a feature the model does not use; a negative value (no bar) means shuffling it helped: noise."}
}

// ImportanceChart is the permutation importance as an SVG bar chart (the
// report's figure; modax-ml ui's run page): one bar per feature in the
// order of imp.Features (largest mean first), its value ± one standard
// deviation. id is the svg element's id.
func ImportanceChart(id string, imp *Importance) template.HTML {
	var bars []svgchart.Bar
	for _, f := range imp.Features {
		note := ""
		if f.Std.Valid() {
			note = fmt.Sprintf("  ± %.2f", float64(f.Std))
		}
		bars = append(bars, svgchart.Bar{Label: f.Feature, Value: float64(f.Mean), Note: note})
	}
	title := fmt.Sprintf("Permutation importance: RMSE increase (%s, %d windows, %d repeats; baseline %.3g h)", imp.Split, imp.Windows, imp.Repeats, float64(imp.BaselineRMSE))
	return svgchart.BarChart(id, title, "h", bars, func(v float64) string {
		if !svgchart.Finite(v) {
			return "—"
		}
		return fmt.Sprintf("%+.2f", v)
	})
}

// The report sections of the permutation importance (templates "importance"
// in report.md and report.html).
const importanceMD = `{{define "importance"}}{{with .Importance}}
## Which sensors matter: permutation importance

Increase in RMSE (hours) when one input feature is permuted across the {{.Windows}} windows of the {{.Split}} split{{if lt .Windows .WindowsAvailable}} ({{.Windows}} of {{.WindowsAvailable}}, evenly spread){{end}}, {{.Repeats}} seeded repeats (seed {{.Seed}}); baseline RMSE {{f3 .BaselineRMSE}} h.

| feature | RMSE increase (h) | ± std | per repeat |
|---|--:|--:|---|
{{range .Features}}| {{.Feature}} | {{f3 .Mean}} | {{f3 .Std}} | {{.RepeatsText}} |
{{end}}{{end}}{{end}}`

const importanceHTML = `{{define "importance"}}{{with .Importance}}<h2 id="importance">Which sensors matter: permutation importance</h2>
<p>Increase in RMSE (hours) when one input feature is permuted across the {{.Windows}} windows of the {{.Split}} split{{if lt .Windows .WindowsAvailable}} ({{.Windows}} of {{.WindowsAvailable}}, evenly spread){{end}}, {{.Repeats}} seeded repeats (seed {{.Seed}}); baseline RMSE {{f3 .BaselineRMSE}} h. The bar chart is among the figures.</p>
<table id="importance-table"><tr><th>feature</th><th>RMSE increase (h)</th><th>± std</th><th>per repeat</th></tr>
{{range .Features}}<tr><td>{{.Feature}}</td><td class="n">{{f3 .Mean}}</td><td class="n">{{f3 .Std}}</td><td class="n">{{.RepeatsText}}</td></tr>
{{end}}</table>{{end}}{{end}}`

// RepeatsText is the per-repeat increases as text (the reports' tables).
func (f FeatureImportance) RepeatsText() string {
	parts := make([]string, len(f.PerRepeat))
	for i, x := range f.PerRepeat {
		parts[i] = fmt.Sprintf("%.3f", x)
	}
	return strings.Join(parts, ", ")
}
