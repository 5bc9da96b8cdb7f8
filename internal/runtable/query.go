package runtable

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/tracking"
)

// Operators of a filter, longest first (so "<=" is not read as "<").
var Operators = []string{"<=", ">=", "!=", "<", ">", "="}

// Filter is one COLUMN OP VALUE condition ("metric.test_rmse<12").
type Filter struct {
	Text   string
	Column Column
	Op     string
	Value  string
	num    float64
	isNum  bool
}

// ParseFilter parses "COLUMN OP VALUE" (OP one of < <= > >= = !=) against
// the runs. A number compares numerically with a numeric column (the
// duration column also takes a Go duration: "duration>1m30s"); anything
// else compares as text. Errors name the filter.
func ParseFilter(s string, recs []*tracking.Record) (Filter, error) {
	at, op := -1, ""
	for i := range len(s) {
		for _, o := range Operators {
			if strings.HasPrefix(s[i:], o) {
				at, op = i, o
				break
			}
		}
		if at >= 0 {
			break
		}
	}
	if at <= 0 {
		return Filter{}, fmt.Errorf("filter %q: want COLUMN OP VALUE, OP one of %s (e.g. 'metric.test_rmse<12')", s, strings.Join(Operators, " "))
	}
	name, val := strings.TrimSpace(s[:at]), strings.TrimSpace(s[at+len(op):])
	c, err := ParseColumn(name, recs)
	if err != nil {
		return Filter{}, fmt.Errorf("filter %q: %w", s, err)
	}
	f := Filter{Text: s, Column: c, Op: op, Value: val}
	if v, err := strconv.ParseFloat(val, 64); err == nil {
		f.num, f.isNum = v, true
	} else if c.Name == "duration" {
		d, derr := time.ParseDuration(val)
		if derr != nil {
			return Filter{}, fmt.Errorf("filter %q: duration %q is neither seconds nor a Go duration (90s, 1m30s)", s, val)
		}
		f.num, f.isNum = d.Seconds(), true
	}
	if c.Metric != "" && !f.isNum {
		return Filter{}, fmt.Errorf("filter %q: metric %s compares with a number, not %q", s, c.Metric, val)
	}
	return f, nil
}

// Match reports whether the run passes the filter. A run without the
// column's param or metric passes only a != filter.
func (f Filter) Match(r *tracking.Record, now time.Time) bool {
	v := f.Column.Get(r, now)
	if v.Missing {
		return f.Op == "!="
	}
	var c int
	if f.isNum && v.IsNum {
		if v.Num != v.Num { // NaN compares with nothing
			return f.Op == "!="
		}
		c = cmp.Compare(v.Num, f.num)
	} else {
		c = strings.Compare(v.Text, f.Value)
	}
	switch f.Op {
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "=":
		return c == 0
	}
	return c != 0
}

// SortKey is one key of a sort order: a column, descending when written
// with a leading "-".
type SortKey struct {
	Column Column
	Desc   bool
}

// ParseSort parses a comma-separated sort order ("-metric.test_rmse,started").
func ParseSort(s string, recs []*tracking.Record) ([]SortKey, error) {
	var out []SortKey
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		desc := strings.HasPrefix(part, "-")
		part = strings.TrimLeft(part, "+-")
		c, err := ParseColumn(part, recs)
		if err != nil {
			return nil, fmt.Errorf("sort: %w", err)
		}
		out = append(out, SortKey{Column: c, Desc: desc})
	}
	return out, nil
}

// Query selects and orders runs.
type Query struct {
	Filters []Filter
	Sort    []SortKey
}

// ParseQuery parses filters and a sort order (see ParseFilter, ParseSort).
func ParseQuery(filters []string, sort string, recs []*tracking.Record) (Query, error) {
	var q Query
	for _, s := range filters {
		f, err := ParseFilter(s, recs)
		if err != nil {
			return Query{}, err
		}
		q.Filters = append(q.Filters, f)
	}
	var err error
	q.Sort, err = ParseSort(sort, recs)
	return q, err
}

// Apply returns the runs that pass every filter, in the sort order (ties,
// and runs missing a sort value, keep their order; missing values sort last
// in either direction).
func (q Query) Apply(recs []*tracking.Record, now time.Time) []*tracking.Record {
	var out []*tracking.Record
	for _, r := range recs {
		ok := true
		for _, f := range q.Filters {
			if !f.Match(r, now) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b *tracking.Record) int {
		for _, k := range q.Sort {
			if c := compareValues(k.Column.Get(a, now), k.Column.Get(b, now), k.Desc); c != 0 {
				return c
			}
		}
		return 0
	})
	return out
}

func compareValues(a, b Value, desc bool) int {
	am, bm := a.Missing || (a.IsNum && a.Num != a.Num), b.Missing || (b.IsNum && b.Num != b.Num)
	switch {
	case am && bm:
		return 0
	case am:
		return 1
	case bm:
		return -1
	}
	var c int
	if a.IsNum && b.IsNum {
		c = cmp.Compare(a.Num, b.Num)
	} else {
		c = strings.Compare(a.Text, b.Text)
	}
	if desc {
		return -c
	}
	return c
}
