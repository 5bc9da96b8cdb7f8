// Package conformal holds the prediction intervals of modax-ml: split-conformal
// calibration of a trained RUL model on held-out (validation) windows, and the
// interval it gives a new prediction. Train calibrates, the checkpoint, the
// ONNX metadata_props and model_metadata.json carry the Calibration, and
// predict, score, evaluate and monitor all call Interval, so an interval is
// computed in exactly one place.
//
// The method, for calibration predictions p_i with true RUL y_i (i = 1…n):
//
//   - The nonconformity score is the absolute residual r_i = |y_i − p_i|.
//   - Mondrian (stratified) by predicted RUL: the calibration windows are split
//     into buckets of predicted RUL with about equal counts (at most
//     MaxBuckets, at least MinPerBucket windows each), and each bucket has its
//     own quantile, so an interval is narrow near failure and wide at the cap
//     when the residuals are. A new prediction uses the bucket its predicted
//     RUL falls in; bucket edges are midpoints between neighbouring
//     calibration predictions.
//   - For coverage level 1−α, a bucket of n scores has the finite-sample
//     conformal radius q = r_(k), the k-th smallest score, k = ⌈(n+1)(1−α)⌉.
//     When k > n the radius is unbounded (the interval is [0, horizon]).
//   - The interval is [p − q, p + q] clipped to [0, horizon].
//
// A prediction p is the model's output clipped to [0, horizon] (Clip): the
// point modax-ml reports, calibrates on and centres the interval on, so that
// 0 ≤ lower ≤ p ≤ upper ≤ horizon always holds.
//
// With exchangeable calibration and test windows this covers the truth with
// probability at least 1−α within each bucket (Vovk et al., Mondrian
// conformal prediction). Windows of one device are not exchangeable with
// each other in time, so coverage is measured, not assumed (evaluate,
// monitor).
package conformal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Method names the calibration method in the stored calibration.
const Method = "split-conformal, absolute residual, Mondrian by predicted RUL"

// DefaultLevels are the coverage levels calibrated when none are given.
var DefaultLevels = []float64{0.9}

// Defaults of Options.
const (
	DefaultMaxBuckets   = 4
	DefaultMinPerBucket = 100
)

// Radius is a bucket's conformal radius in hours; +Inf (stored as JSON null)
// when the bucket has too few scores for the level.
type Radius float64

// MarshalJSON writes +Inf as null.
func (r Radius) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(r), 1) {
		return []byte("null"), nil
	}
	return json.Marshal(float64(r))
}

// UnmarshalJSON reads null as +Inf.
func (r *Radius) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*r = Radius(math.Inf(1))
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*r = Radius(f)
	return nil
}

// Bucket is one stratum of predicted RUL: predictions in [Lo, Hi) (the first
// bucket takes everything below Hi, the last everything from Lo on).
type Bucket struct {
	Lo float64 `json:"lo_hours"`
	Hi float64 `json:"hi_hours"`
	N  int     `json:"n"` // calibration windows in the bucket
	// Radius has one entry per level of the Calibration, in its order.
	Radius []Radius `json:"radius_hours"`
}

// Calibration is a model's stored interval calibration.
type Calibration struct {
	Method  string    `json:"method"`
	Horizon float64   `json:"horizon_hours"`
	Levels  []float64 `json:"levels"` // coverage levels 1−α, ascending
	N       int       `json:"n"`      // calibration windows in all
	// Source says what was calibrated on (split, weights).
	Source  string   `json:"source,omitempty"`
	Buckets []Bucket `json:"buckets"`
}

// Options tune the stratification.
type Options struct {
	MaxBuckets   int // default DefaultMaxBuckets
	MinPerBucket int // default DefaultMinPerBucket
}

// Calibrate computes the calibration from predictions and true RUL of the
// calibration windows; the predictions are clipped (Clip) first, as every
// reported prediction is. Levels must be in (0, 1); horizon > 0. NaN
// predictions or truths are an error (bad data, not a programming error).
func Calibrate(pred, truth []float64, levels []float64, horizon float64, o Options) (*Calibration, error) {
	if len(pred) != len(truth) {
		return nil, fmt.Errorf("conformal: %d predictions but %d truths", len(pred), len(truth))
	}
	if len(pred) == 0 {
		return nil, errors.New("conformal: no calibration windows")
	}
	if !(horizon > 0) || math.IsInf(horizon, 0) {
		return nil, fmt.Errorf("conformal: horizon %g, want a finite value > 0", horizon)
	}
	lv, err := checkLevels(levels)
	if err != nil {
		return nil, err
	}
	if o.MaxBuckets <= 0 {
		o.MaxBuckets = DefaultMaxBuckets
	}
	if o.MinPerBucket <= 0 {
		o.MinPerBucket = DefaultMinPerBucket
	}
	type pt struct{ p, r float64 }
	pts := make([]pt, len(pred))
	for i := range pred {
		if math.IsNaN(pred[i]) || math.IsInf(pred[i], 0) || math.IsNaN(truth[i]) || math.IsInf(truth[i], 0) {
			return nil, fmt.Errorf("conformal: calibration window %d has prediction %g, truth %g (want finite numbers)", i, pred[i], truth[i])
		}
		p := Clip(pred[i], horizon)
		pts[i] = pt{p, math.Abs(truth[i] - p)}
	}
	slices.SortFunc(pts, func(a, b pt) int {
		if a.p < b.p {
			return -1
		}
		if a.p > b.p {
			return 1
		}
		return 0
	})
	n := len(pts)
	nb := min(o.MaxBuckets, max(1, n/o.MinPerBucket))
	// Cut points: indices where a bucket starts, never between equal
	// predictions (a prediction must belong to one bucket only).
	starts := []int{0}
	for b := 1; b < nb; b++ {
		i := b * n / nb
		for i < n && i > 0 && pts[i].p == pts[i-1].p {
			i++
		}
		if i >= n || i-starts[len(starts)-1] < o.MinPerBucket || n-i < o.MinPerBucket {
			continue
		}
		starts = append(starts, i)
	}
	c := &Calibration{Method: Method, Horizon: horizon, Levels: lv, N: n}
	for b, s := range starts {
		e := n
		if b+1 < len(starts) {
			e = starts[b+1]
		}
		bk := Bucket{Lo: 0, Hi: horizon, N: e - s}
		if b > 0 {
			bk.Lo = (pts[s-1].p + pts[s].p) / 2
		}
		if e < n {
			bk.Hi = (pts[e-1].p + pts[e].p) / 2
		}
		scores := make([]float64, 0, e-s)
		for _, q := range pts[s:e] {
			scores = append(scores, q.r)
		}
		slices.Sort(scores)
		for _, l := range lv {
			bk.Radius = append(bk.Radius, Radius(Quantile(scores, l)))
		}
		c.Buckets = append(c.Buckets, bk)
	}
	return c, nil
}

// Quantile is the finite-sample conformal quantile of sorted (ascending)
// scores at coverage level: the k-th smallest, k = ⌈(n+1)·level⌉, or +Inf
// when k > n (too few scores for the level).
func Quantile(sorted []float64, level float64) float64 {
	n := len(sorted)
	// The 1e-9 keeps float rounding from adding one: (9+1)·0.9 is 9.000000000000002.
	k := int(math.Ceil(float64(n+1)*level - 1e-9))
	if k > n {
		return math.Inf(1)
	}
	if k < 1 {
		k = 1
	}
	return sorted[k-1]
}

func checkLevels(levels []float64) ([]float64, error) {
	if len(levels) == 0 {
		return nil, errors.New("conformal: no interval levels")
	}
	lv := slices.Clone(levels)
	slices.Sort(lv)
	for i, l := range lv {
		if !(l > 0 && l < 1) {
			return nil, fmt.Errorf("conformal: interval level %g, want a coverage in (0, 1), e.g. 0.9", l)
		}
		if i > 0 && lv[i-1] == l {
			return nil, fmt.Errorf("conformal: interval level %g given twice", l)
		}
	}
	return lv, nil
}

// ParseLevels parses a comma-separated list of coverage levels ("0.8,0.9").
func ParseLevels(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("interval level %q is not a number (want e.g. 0.8,0.9)", f)
		}
		out = append(out, v)
	}
	lv, err := checkLevels(out)
	if err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "conformal: "))
	}
	return lv, nil
}

// Validate checks a calibration read from a file.
func (c *Calibration) Validate() error {
	if c == nil {
		return nil
	}
	if _, err := checkLevels(c.Levels); err != nil {
		return err
	}
	if !(c.Horizon > 0) || len(c.Buckets) == 0 {
		return fmt.Errorf("conformal: calibration has horizon %g and %d buckets (want > 0 and ≥ 1)", c.Horizon, len(c.Buckets))
	}
	for i, b := range c.Buckets {
		if len(b.Radius) != len(c.Levels) {
			return fmt.Errorf("conformal: bucket %d has %d radii for %d levels", i, len(b.Radius), len(c.Levels))
		}
		for _, r := range b.Radius {
			if math.IsNaN(float64(r)) || r < 0 {
				return fmt.Errorf("conformal: bucket %d has radius %g (want ≥ 0)", i, float64(r))
			}
		}
		if i > 0 && !(b.Lo >= c.Buckets[i-1].Lo) {
			return fmt.Errorf("conformal: bucket %d starts at %g, before bucket %d", i, b.Lo, i-1)
		}
	}
	return nil
}

// LevelIndex returns the index of level in c.Levels, or -1.
func (c *Calibration) LevelIndex(level float64) int {
	for i, l := range c.Levels {
		if math.Abs(l-level) < 1e-9 {
			return i
		}
	}
	return -1
}

// BucketOf returns the index of the bucket a prediction falls in.
func (c *Calibration) BucketOf(pred float64) int {
	for i := len(c.Buckets) - 1; i > 0; i-- {
		if pred >= c.Buckets[i].Lo {
			return i
		}
	}
	return 0
}

// Clip is a predicted RUL as modax-ml reports it: the model's output clipped
// to [0, horizon] (no RUL is negative, and the labels are capped at the
// horizon); horizon ≤ 0 (unknown) clips at 0 only.
func Clip(pred, horizon float64) float64 {
	pred = max(pred, 0)
	if horizon > 0 {
		pred = min(pred, horizon)
	}
	return pred
}

// ErrLevel is returned by Interval for a level the model was not calibrated at.
var ErrLevel = errors.New("level not calibrated")

// Interval maps a prediction to its interval at a calibrated level: the
// clipped prediction (Clip) ± the radius of its bucket, clipped to
// [0, horizon], so lower ≤ Clip(pred) ≤ upper. A nil calibration, or a level it lacks, is an error
// wrapping ErrLevel that names the calibrated levels.
func Interval(pred float64, c *Calibration, level float64) (lower, upper float64, err error) {
	if c == nil {
		return 0, 0, fmt.Errorf("conformal: model has no interval calibration: %w", ErrLevel)
	}
	li := c.LevelIndex(level)
	if li < 0 {
		return 0, 0, fmt.Errorf("conformal: interval level %g not calibrated (model has %v): %w", level, c.Levels, ErrLevel)
	}
	pred = Clip(pred, c.Horizon)
	q := float64(c.Buckets[c.BucketOf(pred)].Radius[li])
	return Clip(pred-q, c.Horizon), Clip(pred+q, c.Horizon), nil
}

// Interval is the package function Interval as a method.
func (c *Calibration) Interval(pred, level float64) (lower, upper float64, err error) {
	return Interval(pred, c, level)
}

// Coverage is the empirical coverage of intervals over windows with known
// truth (callers that write JSON carry it in their own NaN-aware types).
type Coverage struct {
	Level     float64
	N         int
	Covered   int
	Coverage  float64 // Covered / N; NaN when N = 0
	MeanWidth float64 // hours; NaN when N = 0
}

// Tally accumulates intervals against their truth: one place for how a
// coverage and a mean width are counted, whether the intervals come from a
// calibration (Measure) or were stored with the predictions.
type Tally struct {
	n, covered int
	width      float64
}

// Add counts one interval [lo, hi] and its truth.
func (t *Tally) Add(truth, lo, hi float64) {
	t.n++
	t.width += hi - lo
	if truth >= lo && truth <= hi {
		t.covered++
	}
}

// At is the tally as the Coverage at level.
func (t Tally) At(level float64) Coverage {
	out := Coverage{Level: level, N: t.n, Covered: t.covered, Coverage: math.NaN(), MeanWidth: math.NaN()}
	if t.n > 0 {
		out.Coverage = float64(t.covered) / float64(t.n)
		out.MeanWidth = t.width / float64(t.n)
	}
	return out
}

// Measure computes the coverage and mean width at level over pred/truth;
// the optional keep selects windows (nil: all).
func Measure(c *Calibration, level float64, pred, truth []float64, keep func(i int) bool) (Coverage, error) {
	var t Tally
	for i := range pred {
		if keep != nil && !keep(i) {
			continue
		}
		lo, hi, err := Interval(pred[i], c, level)
		if err != nil {
			return Coverage{Level: level}, err
		}
		t.Add(truth[i], lo, hi)
	}
	return t.At(level), nil
}
