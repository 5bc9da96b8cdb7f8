// Package runtable turns run records (internal/tracking) into tables: named
// columns (the record's own fields, its params and its final metrics),
// filters and a sort order for `modax-ml runs list`, and the side-by-side
// comparison of `modax-ml runs compare` and the ui's compare page. The CLI
// and the ui call the same code, so they always agree.
package runtable

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/tracking"
)

// Column prefixes: param.KEY names a param (the flattened effective
// config), metric.NAME a final metric.
const (
	ParamPrefix  = "param."
	MetricPrefix = "metric."
)

// Builtins are the columns read from the run record itself.
var Builtins = []string{"run_id", "name", "status", "started", "duration", "stages", "deploy", "mlflow"}

// DefaultColumns are the columns of `runs list` after the run id.
var DefaultColumns = []string{"status", "started", "duration", "stages", "deploy", "mlflow"}

// Column is a parsed column name.
type Column struct {
	// Name is the column as written ("metric.test_rmse", "status").
	Name string
	// Param and Metric hold the key of a param or metric column.
	Param, Metric string
}

// Header is the column's heading in a text table.
func (c Column) Header() string {
	switch {
	case c.Param != "":
		return c.Param
	case c.Metric != "":
		return c.Metric
	case c.Name == "run_id":
		return "RUN ID"
	case c.Name == "mlflow":
		return "MLFLOW"
	}
	return strings.ToUpper(c.Name)
}

// Value is one cell: Text for people and, when the cell is a number, Num.
type Value struct {
	Text  string
	Num   float64
	IsNum bool
	// Missing: the run has no such param or metric.
	Missing bool
}

// ParseColumns parses a list of column names against the runs they will be
// read from: a param or metric column must exist in at least one of them
// (when there are runs at all). Errors name the column and suggest the
// closest one.
func ParseColumns(names []string, recs []*tracking.Record) ([]Column, error) {
	var out []Column
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		c, err := ParseColumn(n, recs)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// ParseColumn parses one column name; see ParseColumns.
func ParseColumn(name string, recs []*tracking.Record) (Column, error) {
	switch {
	case strings.HasPrefix(name, ParamPrefix):
		key := strings.TrimPrefix(name, ParamPrefix)
		if len(recs) > 0 && !slices.Contains(paramKeys(recs), key) {
			return Column{}, unknown(name, "no run has the param "+strconv.Quote(key), recs)
		}
		return Column{Name: name, Param: key}, nil
	case strings.HasPrefix(name, MetricPrefix):
		key := strings.TrimPrefix(name, MetricPrefix)
		if len(recs) > 0 && !slices.Contains(metricKeys(recs), key) {
			return Column{}, unknown(name, "no run has the final metric "+strconv.Quote(key), recs)
		}
		return Column{Name: name, Metric: key}, nil
	case slices.Contains(Builtins, name):
		return Column{Name: name}, nil
	}
	return Column{}, unknown(name, "unknown column (want one of "+strings.Join(Builtins, ", ")+", param.KEY or metric.NAME)", recs)
}

func unknown(name, why string, recs []*tracking.Record) error {
	msg := fmt.Sprintf("column %q: %s", name, why)
	if s := config.Closest(name, KnownColumns(recs)); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return errors.New(msg)
}

// KnownColumns lists every column the runs have: the builtins, then
// metric.* and param.* sorted.
func KnownColumns(recs []*tracking.Record) []string {
	out := slices.Clone(Builtins)
	for _, k := range metricKeys(recs) {
		out = append(out, MetricPrefix+k)
	}
	for _, k := range paramKeys(recs) {
		out = append(out, ParamPrefix+k)
	}
	return out
}

func paramKeys(recs []*tracking.Record) []string {
	set := map[string]bool{}
	for _, r := range recs {
		for k := range r.Params {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

func metricKeys(recs []*tracking.Record) []string {
	set := map[string]bool{}
	for _, r := range recs {
		for k := range r.FinalMetrics {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Get reads the column of one run; now dates a running run's duration.
func (c Column) Get(r *tracking.Record, now time.Time) Value {
	switch {
	case c.Param != "":
		v, ok := r.Params[c.Param]
		if !ok {
			return Value{Text: "-", Missing: true}
		}
		out := Value{Text: v}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			out.Num, out.IsNum = f, true
		}
		return out
	case c.Metric != "":
		v, ok := r.FinalMetrics[c.Metric]
		if !ok {
			return Value{Text: "-", Missing: true}
		}
		return Num(float64(v))
	}
	switch c.Name {
	case "run_id":
		return Value{Text: r.RunID}
	case "name":
		return Value{Text: r.Name}
	case "status":
		return Value{Text: string(r.Status)}
	case "started":
		return Value{Text: r.StartTime.UTC().Format(time.RFC3339)}
	case "duration":
		s := r.Duration(now).Seconds()
		return Value{Text: FormatDuration(s), Num: s, IsNum: true}
	case "stages":
		return Value{Text: FormatStages(r.StageCounts())}
	case "deploy":
		if r.Deploy == nil {
			return Value{Text: "-", Missing: true}
		}
		return Value{Text: r.Deploy.Decision}
	case "mlflow":
		return Value{Text: r.TrackingState()}
	}
	return Value{Text: "-", Missing: true}
}

// Num is a numeric cell, written with 6 significant digits.
func Num(v float64) Value {
	return Value{Text: FormatFloat(v), Num: v, IsNum: true}
}

// FormatFloat writes v with 6 significant digits (NaN and ±Inf as words).
func FormatFloat(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

// FormatDuration writes seconds as a Go duration rounded for people.
func FormatDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// FormatStages writes stage counts as "7 ran, 1 skipped".
func FormatStages(counts map[tracking.StageStatus]int) string {
	var parts []string
	for _, st := range []tracking.StageStatus{tracking.StageRan, tracking.StageSkipped, tracking.StageFailed, tracking.StageKilled, tracking.StageRunning} {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
