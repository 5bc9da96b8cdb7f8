package evaluate

import (
	"fmt"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
)

// IntervalMetrics is the measured coverage of the prediction intervals of
// one level in one split: of the N windows with a known (capped) true RUL,
// Covered had it inside [rul_lower, rul_upper].
type IntervalMetrics struct {
	Level     float64 `json:"level"`
	N         int     `json:"n"`
	Covered   int     `json:"covered"`
	Coverage  Float   `json:"coverage"`   // covered / n; null when n = 0
	MeanWidth Float   `json:"mean_width"` // mean of rul_upper − rul_lower, hours
	// Buckets is the same per Mondrian bucket of predicted RUL, the
	// calibration's buckets in their order (empty when the intervals were
	// measured from the predictions file's columns, without a calibration).
	Buckets []BucketCoverage `json:"buckets"`
}

// BucketCoverage is the coverage of the windows whose predicted RUL falls in
// one calibration bucket [lo_hours, hi_hours).
type BucketCoverage struct {
	Lo        float64 `json:"lo_hours"`
	Hi        float64 `json:"hi_hours"`
	N         int     `json:"n"`
	Covered   int     `json:"covered"`
	Coverage  Float   `json:"coverage"`
	MeanWidth Float   `json:"mean_width"`
}

// ComputeIntervals measures the interval coverage of one split's
// predictions. With a calibration the intervals are the calibration's at
// each of its levels (conformal.Interval, as predict computes them), overall
// and per bucket; without one they are the predictions' own rul_lower /
// rul_upper, per level found. Only windows with a known true RUL count. The
// result is empty when there are no intervals.
func ComputeIntervals(ps []dataset.Prediction, c *conformal.Calibration) ([]IntervalMetrics, error) {
	var pred, truth []float64
	for i := range ps {
		if ps[i].HasTruth() {
			pred = append(pred, ps[i].RULPred)
			truth = append(truth, ps[i].RULTrue)
		}
	}
	out := []IntervalMetrics{}
	if c == nil {
		return storedIntervals(ps), nil
	}
	for _, level := range c.Levels {
		all, err := conformal.Measure(c, level, pred, truth, nil)
		if err != nil {
			return nil, err
		}
		im := IntervalMetrics{Level: level, N: all.N, Covered: all.Covered, Coverage: Float(all.Coverage), MeanWidth: Float(all.MeanWidth),
			Buckets: []BucketCoverage{}}
		for b, bk := range c.Buckets {
			m, err := conformal.Measure(c, level, pred, truth, func(i int) bool { return c.BucketOf(pred[i]) == b })
			if err != nil {
				return nil, err
			}
			im.Buckets = append(im.Buckets, BucketCoverage{Lo: bk.Lo, Hi: bk.Hi, N: m.N, Covered: m.Covered,
				Coverage: Float(m.Coverage), MeanWidth: Float(m.MeanWidth)})
		}
		out = append(out, im)
	}
	return out, nil
}

// storedIntervals measures the predictions' own interval columns, per level.
func storedIntervals(ps []dataset.Prediction) []IntervalMetrics {
	byLevel := map[float64]*conformal.Tally{}
	for i := range ps {
		p := &ps[i]
		if !p.HasTruth() || !p.HasInterval() {
			continue
		}
		t := byLevel[p.Level]
		if t == nil {
			t = &conformal.Tally{}
			byLevel[p.Level] = t
		}
		t.Add(p.RULTrue, p.Lower, p.Upper)
	}
	out := []IntervalMetrics{}
	for l, t := range byLevel {
		c := t.At(l)
		out = append(out, IntervalMetrics{Level: l, N: c.N, Covered: c.Covered, Coverage: Float(c.Coverage), MeanWidth: Float(c.MeanWidth),
			Buckets: []BucketCoverage{}})
	}
	slices.SortFunc(out, func(a, b IntervalMetrics) int { return cmpFloat(a.Level, b.Level) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// predictionsCalibration is the interval calibration the predictions file
// records (predict writes the model's), or nil.
func predictionsCalibration(meta dataset.Meta, loc string) (*conformal.Calibration, error) {
	var c *conformal.Calibration
	ok, err := meta.Get(model.MetaCalibration, &c)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %s: %w", loc, err)
	}
	if !ok || c == nil {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("evaluate: %s: metadata %s: %w", loc, model.MetaCalibration, err)
	}
	return c, nil
}

// widthText formats a mean width in hours for the reports.
func widthText(f Float) string {
	if !f.Valid() {
		return "—"
	}
	return fmt.Sprintf("%.1f h", float64(f))
}

// bucketText names a bucket of predicted RUL, "[lo, hi) h".
func bucketText(b BucketCoverage) string {
	hi := fmt.Sprintf("%.4g", b.Hi)
	if math.IsInf(b.Hi, 1) {
		hi = "∞"
	}
	return fmt.Sprintf("[%.4g, %s) h", b.Lo, hi)
}
