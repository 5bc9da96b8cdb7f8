package evaluate

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// Direction says which way a metric improves.
type Direction int

// Directions.
const (
	NoDirection Direction = iota // informational (counts, early rate)
	LowerBetter
	HigherBetter
	ZeroBetter // bias: closer to 0 is better
)

// compared lists the metrics a comparison shows, in order.
var compared = []struct {
	name string
	dir  Direction
	get  func(*SplitMetrics) Float
}{
	{"n", NoDirection, func(m *SplitMetrics) Float { return Float(m.N) }},
	{"mae", LowerBetter, func(m *SplitMetrics) Float { return m.MAE }},
	{"rmse", LowerBetter, func(m *SplitMetrics) Float { return m.RMSE }},
	{"r2", HigherBetter, func(m *SplitMetrics) Float { return m.R2 }},
	{"bias", ZeroBetter, func(m *SplitMetrics) Float { return m.Bias }},
	{"score", LowerBetter, func(m *SplitMetrics) Float { return m.Score }},
	{"score_mean", LowerBetter, func(m *SplitMetrics) Float { return m.ScoreMean }},
	{"early_rate", NoDirection, func(m *SplitMetrics) Float { return m.EarlyRate }},
	{"late_rate", LowerBetter, func(m *SplitMetrics) Float { return m.LateRate }},
	{"mae_raw", LowerBetter, func(m *SplitMetrics) Float { return m.MAERaw }},
	{"rmse_raw", LowerBetter, func(m *SplitMetrics) Float { return m.RMSERaw }},
	{"score_raw", LowerBetter, func(m *SplitMetrics) Float { return m.ScoreRaw }},
	{"critical_accuracy", HigherBetter, func(m *SplitMetrics) Float { return m.CriticalAccuracy }},
	{"accuracy", HigherBetter, func(m *SplitMetrics) Float { return classif(m, func(c *Classification) Float { return c.Accuracy }) }},
	{"macro_f1", HigherBetter, func(m *SplitMetrics) Float { return classif(m, func(c *Classification) Float { return c.MacroAvg.F1 }) }},
	{"alert_lead_time_median", NoDirection, func(m *SplitMetrics) Float { return alert(m, func(a *AlertMetrics) Float { return a.LeadTimeMedian }) }},
	{"never_alerted_share", LowerBetter, func(m *SplitMetrics) Float {
		return alert(m, func(a *AlertMetrics) Float { return a.NeverAlertedShare })
	}},
	{"false_alarms_per_device_day", LowerBetter, func(m *SplitMetrics) Float {
		return alert(m, func(a *AlertMetrics) Float { return a.FalseAlarmsPerDeviceDay })
	}},
	{"critical_recall", HigherBetter, func(m *SplitMetrics) Float {
		return classif(m, func(c *Classification) Float { return c.Critical.Recall })
	}},
}

func alert(m *SplitMetrics, f func(*AlertMetrics) Float) Float {
	if m.Alerts == nil {
		return NaN()
	}
	return f(m.Alerts)
}

func classif(m *SplitMetrics, f func(*Classification) Float) Float {
	if m.Classification == nil {
		return NaN()
	}
	return f(m.Classification)
}

// CompareRow is one metric of one split in both files.
type CompareRow struct {
	Split  string `json:"split"`
	Metric string `json:"metric"`
	This   Float  `json:"this"`
	Other  Float  `json:"other"`
	Delta  Float  `json:"delta"` // this − other
	// Better is "this", "other", "same", or "" when the metric has no
	// direction or a side is undefined.
	Better string `json:"better"`
}

// Comparison is the side-by-side diff of two metrics files.
type Comparison struct {
	This       string       `json:"this"`
	Other      string       `json:"other"`
	ThisModel  string       `json:"this_model"`
	OtherModel string       `json:"other_model"`
	Rows       []CompareRow `json:"rows"`
	// Wins counts the rows each side is better on.
	Wins  map[string]int `json:"wins"`
	Notes []string       `json:"notes,omitempty"`
}

func modelName(m *Metrics) string {
	if m.Model == nil {
		return "unknown model"
	}
	s := m.Model.ModelVersion
	if s == "" {
		s = m.Model.Path
	}
	if len(m.Model.SHA256) >= 12 {
		s += " (" + m.Model.SHA256[:12] + ")"
	}
	return s
}

// Compare diffs this against other, split by split (splits present in either).
func Compare(this, other *Metrics, thisPath, otherPath string) *Comparison {
	c := &Comparison{This: thisPath, Other: otherPath, ThisModel: modelName(this), OtherModel: modelName(other),
		Wins: map[string]int{"this": 0, "other": 0, "same": 0}}
	var splits []string
	for _, m := range []*Metrics{this, other} {
		for s := range m.Splits {
			if !slices.Contains(splits, s) {
				splits = append(splits, s)
			}
		}
	}
	slices.SortFunc(splits, splitOrder)
	for _, s := range splits {
		a, b := this.Splits[s], other.Splits[s]
		if a == nil || b == nil {
			c.Notes = append(c.Notes, fmt.Sprintf("split %s is only in %s", s, map[bool]string{true: thisPath, false: otherPath}[a != nil]))
		}
		if a != nil && b != nil && a.N != b.N {
			c.Notes = append(c.Notes, fmt.Sprintf("split %s has %d samples here and %d there: score is a sum, compare score_mean", s, a.N, b.N))
		}
		for _, m := range compared {
			x, y := NaN(), NaN()
			if a != nil {
				x = m.get(a)
			}
			if b != nil {
				y = m.get(b)
			}
			row := CompareRow{Split: s, Metric: m.name, This: x, Other: y, Delta: x - y, Better: better(m.dir, x, y)}
			if row.Better != "" {
				c.Wins[row.Better]++
			}
			c.Rows = append(c.Rows, row)
		}
		c.Rows = append(c.Rows, compareBuckets(s, a, b, c.Wins)...)
	}
	if this.Thresholds != other.Thresholds {
		c.Notes = append(c.Notes, fmt.Sprintf("thresholds differ (%g/%g h here, %g/%g h there): classification metrics are not comparable",
			this.Thresholds.Critical, this.Thresholds.Warning, other.Thresholds.Critical, other.Thresholds.Warning))
	}
	if this.Windows != nil && other.Windows != nil && this.Windows.SHA256 != "" && this.Windows.SHA256 != other.Windows.SHA256 {
		c.Notes = append(c.Notes, "the two were evaluated on different windows files (sha256 differs)")
	}
	return c
}

// bucketMetrics are the metrics a comparison shows per true-RUL bucket.
var bucketMetrics = []struct {
	name string
	dir  Direction
	get  func(BucketMetrics) Float
}{
	{"n", NoDirection, func(b BucketMetrics) Float { return Float(b.N) }},
	{"mae", LowerBetter, func(b BucketMetrics) Float { return b.MAE }},
	{"rmse", LowerBetter, func(b BucketMetrics) Float { return b.RMSE }},
	{"bias", ZeroBetter, func(b BucketMetrics) Float { return b.Bias }},
}

// compareBuckets returns the rows "rul<label> <metric>" of the true-RUL
// buckets of either side (a or b may be nil), matched by label, this side's
// order first. Wins are counted into wins.
func compareBuckets(split string, a, b *SplitMetrics, wins map[string]int) []CompareRow {
	var labels []string
	find := map[string][2]*BucketMetrics{}
	for side, m := range []*SplitMetrics{a, b} {
		if m == nil {
			continue
		}
		for i := range m.RULBuckets {
			bk := &m.RULBuckets[i]
			pair, ok := find[bk.Label]
			if !ok {
				labels = append(labels, bk.Label)
			}
			pair[side] = bk
			find[bk.Label] = pair
		}
	}
	var rows []CompareRow
	for _, l := range labels {
		pair := find[l]
		for _, m := range bucketMetrics {
			x, y := NaN(), NaN()
			if pair[0] != nil {
				x = m.get(*pair[0])
			}
			if pair[1] != nil {
				y = m.get(*pair[1])
			}
			row := CompareRow{Split: split, Metric: "rul" + l + " " + m.name, This: x, Other: y, Delta: x - y, Better: better(m.dir, x, y)}
			if row.Better != "" {
				wins[row.Better]++
			}
			rows = append(rows, row)
		}
	}
	return rows
}

func better(d Direction, x, y Float) string {
	if !x.Valid() || !y.Valid() || d == NoDirection {
		return ""
	}
	switch d {
	case LowerBetter:
	case HigherBetter:
		x, y = -x, -y
	case ZeroBetter:
		x, y = Float(math.Abs(float64(x))), Float(math.Abs(float64(y)))
	}
	switch {
	case x < y:
		return "this"
	case x > y:
		return "other"
	}
	return "same"
}

// WriteText prints the comparison as a table.
func (c *Comparison) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "this:  %s  [%s]\nother: %s  [%s]\n\n", c.This, c.ThisModel, c.Other, c.OtherModel)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "split\tmetric\tthis\tother\tdelta\tbetter\t")
	for _, r := range c.Rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Split, r.Metric, fmtNum(r.This), fmtNum(r.Other), fmtDelta(r.Delta), r.Better)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nbetter on %d metrics here, %d there, %d equal\n", c.Wins["this"], c.Wins["other"], c.Wins["same"])
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func fmtNum(f Float) string {
	if !f.Valid() {
		return "—"
	}
	v := float64(f)
	if (v == math.Trunc(v) || math.Abs(v) >= 1e4) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

func fmtDelta(f Float) string {
	if !f.Valid() {
		return "—"
	}
	if f == 0 {
		return "0"
	}
	return fmt.Sprintf("%+.4g", float64(f))
}
