package dataset

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// SplitSummary describes the windows of one split: how many, of how many
// devices, and the time range of their last readings.
type SplitSummary struct {
	Windows int64     `json:"windows"`
	Devices int       `json:"devices"`
	First   time.Time `json:"first_window_end"`
	Last    time.Time `json:"last_window_end"`
}

// WindowsSummary is the data range of a windows file, per split.
type WindowsSummary struct {
	Splits map[string]SplitSummary `json:"splits"`
	First  time.Time               `json:"first_window_end"`
	Last   time.Time               `json:"last_window_end"`
}

// SummarizeWindows reads only the key columns of a windows file and returns
// its data range per split.
func SummarizeWindows(ctx context.Context, loc string) (*WindowsSummary, error) {
	r, err := Open(loc, KindWindows)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	type acc struct {
		n           int64
		devs        map[[2]string]bool
		first, last int64
	}
	per := map[string]*acc{}
	for rec, err := range r.Batches(ctx, ColTenant, ColDevice, ColWindowEnd, ColSplit) {
		if err != nil {
			return nil, err
		}
		rs := rec.Schema()
		col := func(name string) arrow.Array { return rec.Column(rs.FieldIndices(name)[0]) }
		tn := col(ColTenant).(*array.String)
		dv := col(ColDevice).(*array.String)
		we := col(ColWindowEnd).(*array.Timestamp)
		sp := col(ColSplit).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			a := per[sp.Value(i)]
			if a == nil {
				a = &acc{devs: map[[2]string]bool{}, first: math.MaxInt64, last: math.MinInt64}
				per[sp.Value(i)] = a
			}
			a.n++
			a.devs[[2]string{tn.Value(i), dv.Value(i)}] = true
			t := int64(we.Value(i))
			a.first, a.last = min(a.first, t), max(a.last, t)
		}
	}
	out := &WindowsSummary{Splits: map[string]SplitSummary{}}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for name, a := range per {
		out.Splits[name] = SplitSummary{Windows: a.n, Devices: len(a.devs), First: time.UnixMicro(a.first).UTC(), Last: time.UnixMicro(a.last).UTC()}
		first, last = min(first, a.first), max(last, a.last)
	}
	if len(per) > 0 {
		out.First, out.Last = time.UnixMicro(first).UTC(), time.UnixMicro(last).UTC()
	}
	return out, nil
}

// StatsRows are rows of a stats file restricted to some feature columns.
type StatsRows struct {
	Features []string
	X        []float64 // Len() × len(Features), row-major, raw values
	Device   []string
	End      []int64 // window_end, µs
	RUL      []float64
}

// Len returns the number of rows.
func (s *StatsRows) Len() int { return len(s.End) }

// ReadStatsRows reads the given feature columns (float64, in that order) of
// the first n rows of split (all rows when n ≤ 0, every split when split is
// empty) of a stats file. Rows with a null or non-finite feature are skipped:
// they are not model inputs.
func ReadStatsRows(ctx context.Context, loc, split string, features []string, n int) (*StatsRows, error) {
	r, err := Open(loc, KindStats)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	want := append([]Column{
		{ColDevice, arrow.BinaryTypes.String, false},
		{ColWindowEnd, Timestamp, false},
		{ColRUL, arrow.PrimitiveTypes.Float64, false},
		{ColSplit, arrow.BinaryTypes.String, false},
	}, sensorCols(features)...)
	if _, err := locateColumns(loc, r.Schema(), want); err != nil {
		return nil, err
	}
	cols := make([]string, len(want))
	for i, c := range want {
		cols[i] = c.Name
	}
	out := &StatsRows{Features: features}
	row := make([]float64, len(features))
	for rec, err := range r.Batches(ctx, cols...) {
		if err != nil {
			return nil, err
		}
		// Batches returns the columns in file order; find ours by name.
		rs := rec.Schema()
		col := func(name string) arrow.Array { return rec.Column(rs.FieldIndices(name)[0]) }
		dv := col(ColDevice).(*array.String)
		we := col(ColWindowEnd).(*array.Timestamp)
		rul := col(ColRUL).(*array.Float64)
		sp := col(ColSplit).(*array.String)
		fc := make([]*array.Float64, len(features))
		for j, f := range features {
			fc[j] = col(f).(*array.Float64)
		}
	rows:
		for i := 0; i < int(rec.NumRows()); i++ {
			if split != "" && sp.Value(i) != split {
				continue
			}
			for j, c := range fc {
				if c.IsNull(i) || math.IsNaN(c.Value(i)) || math.IsInf(c.Value(i), 0) {
					continue rows
				}
				row[j] = c.Value(i)
			}
			out.X = append(out.X, row...)
			out.Device = append(out.Device, dv.Value(i))
			out.End = append(out.End, int64(we.Value(i)))
			out.RUL = append(out.RUL, rul.Value(i))
			if n > 0 && out.Len() >= n {
				return out, nil
			}
		}
	}
	return out, nil
}

// SortedSplits returns the split names of s in a stable order (train, val,
// test, then the others alphabetically).
func (s *WindowsSummary) SortedSplits() []string {
	rank := map[string]int{SplitTrain: 0, SplitVal: 1, SplitTest: 2}
	names := make([]string, 0, len(s.Splits))
	for k := range s.Splits {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		ri, oki := rank[names[i]]
		rj, okj := rank[names[j]]
		switch {
		case oki && okj:
			return ri < rj
		case oki != okj:
			return oki
		}
		return names[i] < names[j]
	})
	return names
}
