package features

import (
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
)

// Counts are what the stage saw and dropped in one input file.
type Counts struct {
	Devices int   `json:"devices"`
	Lives   int64 `json:"lives"`
	Rows    int64 `json:"rows"`
	// Segments are the stretches of a life without a sampling gap longer
	// than --max-gap; GapSplits the gaps that split a life.
	Segments  int64 `json:"segments"`
	GapSplits int64 `json:"gap_splits"`
	// ShortSegments have fewer labelable readings than the window: no window.
	ShortSegments int64 `json:"short_segments"`
	// CensoredRows are never a window's label.
	CensoredRows int64 `json:"censored_rows"`
	// FilledValues were forward filled; MissingValues are still missing
	// after the fill (their windows are dropped).
	FilledValues  int64 `json:"filled_values"`
	MissingValues int64 `json:"missing_values"`
	// Windows kept, and windows of the stride grid that were dropped: with a
	// missing value, labelled by a censored row, or (split time) labelled
	// with a RUL a retrain at the cutoff could not have known.
	Windows         int64 `json:"windows"`
	DroppedMissing  int64 `json:"windows_dropped_missing"`
	DroppedCensored int64 `json:"windows_dropped_censored"`
	DroppedFuture   int64 `json:"windows_dropped_future_label"`
}

func (c *Counts) add(o *Counts) {
	c.Devices += o.Devices
	c.Lives += o.Lives
	c.Rows += o.Rows
	c.Segments += o.Segments
	c.GapSplits += o.GapSplits
	c.ShortSegments += o.ShortSegments
	c.CensoredRows += o.CensoredRows
	c.FilledValues += o.FilledValues
	c.MissingValues += o.MissingValues
	c.Windows += o.Windows
	c.DroppedMissing += o.DroppedMissing
	c.DroppedCensored += o.DroppedCensored
	c.DroppedFuture += o.DroppedFuture
}

// device is one device's rows prepared for windowing. A worker builds it; the
// writer reads it; nothing changes it after the worker is done.
type device struct {
	seq  int
	f    *dataset.Frame
	cols [][]float64 // columns read, features first; forward filled
	ends []int32     // rows at which kept windows end, ascending
	code []uint8     // split code per kept window
	x    []float32   // scaled features, row-major [row][feature] (write pass)
	c    Counts
}

// planner turns frames into windows. One planner per worker: it owns
// scratch buffers reused across devices.
type planner struct {
	window, stride int
	maxGap         int64 // µs; 0: automatic
	maxFill        int
	bad            []int32 // prefix count of rows with a missing value
	diffs          []int64
}

// prepare fills missing values, splits lives into segments and lists the
// rows at which windows end (the stride grid anchored at each segment's last
// labelable reading), dropping windows with a missing value or a censored
// label. cols are the frame's sensor columns (changed in place).
func (p *planner) prepare(seq int, f *dataset.Frame) *device {
	n := f.Len()
	d := &device{seq: seq, f: f, cols: f.Sensors}
	d.c.Devices = 1
	d.c.Rows = int64(n)
	if n == 0 {
		return d
	}
	gap := p.maxGap
	if gap == 0 {
		gap = p.autoGap(f.Time)
	}
	if cap(p.bad) < n+1 {
		p.bad = make([]int32, n+1)
	}
	bad := p.bad[:n+1]
	for i := range f.Censored {
		if f.Censored[i] {
			d.c.CensoredRows++
		}
	}
	// Segments: a new one starts at a new life or after a gap.
	d.c.Lives = 1
	lo := 0
	for i := 1; i <= n; i++ {
		if i < n {
			newLife := f.LifeID[i] != f.LifeID[i-1]
			isGap := gap > 0 && f.Time[i]-f.Time[i-1] > gap
			if !newLife && !isGap {
				continue
			}
			if newLife {
				d.c.Lives++
			} else {
				d.c.GapSplits++
			}
		}
		d.c.Segments++
		for _, col := range d.cols {
			filled, missing := fillForward(col[lo:i], p.maxFill)
			d.c.FilledValues += filled
			d.c.MissingValues += missing
		}
		lo = i
	}
	// bad[i+1] - bad[j] counts rows in [j, i] with a missing value.
	bad[0] = 0
	for i := range n {
		b := int32(0)
		for _, col := range d.cols {
			if math.IsNaN(col[i]) {
				b = 1
				break
			}
		}
		bad[i+1] = bad[i] + b
	}
	// Windows per segment.
	w := p.window
	lo = 0
	for i := 1; i <= n; i++ {
		if i < n && f.LifeID[i] == f.LifeID[i-1] && (gap <= 0 || f.Time[i]-f.Time[i-1] <= gap) {
			continue
		}
		seg := [2]int{lo, i}
		lo = i
		last := seg[1] - 1
		for last >= seg[0] && f.Censored[last] {
			if last-seg[0]+1 >= w {
				d.c.DroppedCensored++ // a window could have ended here
			}
			last--
		}
		if last-seg[0]+1 < w {
			d.c.ShortSegments++
			continue
		}
		first := last - ((last-(seg[0]+w-1))/p.stride)*p.stride
		for e := first; e <= last; e += p.stride {
			switch {
			case f.Censored[e]:
				d.c.DroppedCensored++
			case bad[e+1]-bad[e+1-w] > 0:
				d.c.DroppedMissing++
			default:
				d.ends = append(d.ends, int32(e))
			}
		}
	}
	d.code = make([]uint8, len(d.ends))
	return d
}

// fillForward replaces non-finite values by NaN and forward fills runs of at
// most maxFill missing values from the last present value. It returns how
// many values it filled and how many are still missing.
func fillForward(col []float64, maxFill int) (filled, missing int64) {
	last, lastAt := math.NaN(), -1
	for i, v := range col {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			last, lastAt = v, i
			continue
		}
		if lastAt >= 0 && i-lastAt <= maxFill {
			col[i] = last
			filled++
			continue
		}
		col[i] = math.NaN()
		missing++
	}
	return filled, missing
}

// autoGap returns defaultGapFactor × the median positive interval between
// readings, or 0 (no gap splitting) when there is none.
func (p *planner) autoGap(ts []int64) int64 {
	p.diffs = p.diffs[:0]
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; d > 0 {
			p.diffs = append(p.diffs, d)
		}
	}
	if len(p.diffs) == 0 {
		return 0
	}
	slices.Sort(p.diffs)
	return defaultGapFactor * p.diffs[len(p.diffs)/2]
}

// keep drops the windows whose split code is codeNone.
func (d *device) keep() {
	k := 0
	for i, c := range d.code {
		if c != codeNone {
			d.ends[k], d.code[k] = d.ends[i], c
			k++
		}
	}
	d.ends, d.code = d.ends[:k], d.code[:k]
	d.c.Windows = int64(k)
}

// cover sets covered[i] for the rows in at least one window of the given
// split and reports whether there is any. diff and covered are scratch of
// at least Len()+1 and Len() elements.
func (d *device) cover(code uint8, window int, diff []int32, covered []bool) bool {
	n := d.f.Len()
	diff = diff[:n+1]
	clear(diff)
	found := false
	for i, e := range d.ends {
		if d.code[i] == code {
			diff[int(e)-window+1]++
			diff[e+1]--
			found = true
		}
	}
	run := int32(0)
	for i := range n {
		run += diff[i]
		covered[i] = run > 0
	}
	return found
}
