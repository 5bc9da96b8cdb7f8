package runtable

import (
	"maps"
	"math"
	"slices"
	"time"

	"github.com/modax/modax-ml/internal/tracking"
)

// Comparison sets runs side by side: `runs compare` prints it and the ui's
// compare page renders it. Values are in the order of Runs; deltas are
// against the first run.
type Comparison struct {
	Runs []RunHead `json:"runs"`
	// Params lists every param of any run; Differs marks those whose value
	// is not the same in all runs (a missing param differs from a present one).
	Params []ParamRow `json:"params"`
	// Metrics lists every final metric of any run.
	Metrics []MetricRow `json:"metrics"`
}

// RunHead is a compared run.
type RunHead struct {
	RunID           string          `json:"run_id"`
	Name            string          `json:"name,omitempty"`
	Status          tracking.Status `json:"status"`
	StartTime       time.Time       `json:"start_time"`
	DurationSeconds float64         `json:"duration_s"`
	// Epochs is the number of training epochs logged; BestEpoch the one with
	// the lowest CurveMetric (0: no training curve).
	Epochs      int64  `json:"epochs"`
	BestEpoch   int64  `json:"best_epoch,omitempty"`
	CurveMetric string `json:"curve_metric,omitempty"`
	Dir         string `json:"dir"`
}

// ParamRow is one param across the runs (nil: the run has no such param).
type ParamRow struct {
	Key     string    `json:"key"`
	Values  []*string `json:"values"`
	Differs bool      `json:"differs"`
}

// MetricRow is one final metric across the runs (nil: the run has none);
// Deltas[i] is Values[i] − Values[0] (nil when either is missing, and for
// the first run).
type MetricRow struct {
	Key    string            `json:"key"`
	Values []*tracking.Float `json:"values"`
	Deltas []*tracking.Float `json:"deltas"`
}

// DifferingParams counts the params that differ.
func (c *Comparison) DifferingParams() int {
	n := 0
	for _, p := range c.Params {
		if p.Differs {
			n++
		}
	}
	return n
}

// Compare builds the comparison of the runs, in the order given.
func Compare(recs []*tracking.Record, now time.Time) *Comparison {
	c := &Comparison{}
	for _, r := range recs {
		h := RunHead{RunID: r.RunID, Name: r.Name, Status: r.Status, StartTime: r.StartTime, DurationSeconds: r.Duration(now).Seconds(), Dir: r.Dir}
		if name, best, n := BestEpoch(r); name != "" {
			h.CurveMetric, h.BestEpoch, h.Epochs = name, best, n
		}
		c.Runs = append(c.Runs, h)
	}
	for _, k := range paramKeys(recs) {
		row := ParamRow{Key: k}
		for i, r := range recs {
			var p *string
			if v, ok := r.Params[k]; ok {
				p = &v
			}
			row.Values = append(row.Values, p)
			if i > 0 && !sameString(p, row.Values[0]) {
				row.Differs = true
			}
		}
		c.Params = append(c.Params, row)
	}
	for _, k := range metricKeys(recs) {
		row := MetricRow{Key: k}
		for i, r := range recs {
			var p, d *tracking.Float
			if v, ok := r.FinalMetrics[k]; ok {
				p = &v
				if first := row.Values; i > 0 && first[0] != nil {
					dv := v - *first[0]
					d = &dv
				}
			}
			row.Values = append(row.Values, p)
			row.Deltas = append(row.Deltas, d)
		}
		c.Metrics = append(c.Metrics, row)
	}
	return c
}

func sameString(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// CurveMetrics are the validation series a best epoch is read from, in
// order of preference: errors in hours first, then the scaled loss.
var CurveMetrics = []string{"val_rmse", "val_mae", "val_loss"}

// BestEpoch finds the first of CurveMetrics the run logged and returns its
// name, the step of its lowest (non-NaN) value and the number of steps.
func BestEpoch(r *tracking.Record) (name string, best, steps int64) {
	for _, m := range CurveMetrics {
		pts := Curve(r, m)
		if len(pts) == 0 {
			continue
		}
		lo := math.Inf(1)
		for _, p := range pts {
			if p.Value < lo {
				lo, best = p.Value, p.Step
			}
		}
		return m, best, int64(len(pts))
	}
	return "", 0, 0
}

// Point is one step of a metric series.
type Point struct {
	Step  int64   `json:"step"`
	Value float64 `json:"value"`
}

// Curve returns the named metric series of the run in logging order.
func Curve(r *tracking.Record, name string) []Point {
	var out []Point
	for _, m := range r.Metrics {
		if m.Name == name {
			out = append(out, Point{Step: m.Step, Value: float64(m.Value)})
		}
	}
	return out
}

// SeriesNames lists the metric series the runs logged, sorted.
func SeriesNames(recs []*tracking.Record) []string {
	set := map[string]bool{}
	for _, r := range recs {
		for _, m := range r.Metrics {
			set[m.Name] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}
