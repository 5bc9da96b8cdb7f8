package monitor

import (
	"math"
	"sort"
	"time"

	"github.com/modax/modax-ml/internal/conformal"
)

// prediction is one row of rul_predictions: the RUL predicted for a device
// at a time.
type prediction struct {
	device string
	at     time.Time
	rul    float64
	// lower, upper and level are the interval (nil: none was predicted).
	lower, upper, level *float64
}

// outcome is a prediction whose true RUL is known.
type outcome struct {
	pred, truth float64
	// lower, upper and level are the prediction's interval (nil: none).
	lower, upper, level *float64
}

// resolve finds the true RUL of each prediction, capped at the horizon as
// the model was trained: the time to the device's next failure at or after
// the prediction, when there was one; the horizon when the horizon has passed
// without a failure (the machine lived at least that long). Other
// predictions are pending. fails holds each device's failure times, sorted.
func resolve(preds []prediction, fails map[string][]time.Time, horizon float64, now time.Time) (out []outcome, pending int) {
	for _, p := range preds {
		fs := fails[p.device]
		i := sort.Search(len(fs), func(i int) bool { return !fs[i].Before(p.at) })
		switch {
		case i < len(fs):
			out = append(out, outcome{pred: p.rul, truth: math.Min(fs[i].Sub(p.at).Hours(), horizon), lower: p.lower, upper: p.upper, level: p.level})
		case now.Sub(p.at).Hours() >= horizon:
			out = append(out, outcome{pred: p.rul, truth: horizon, lower: p.lower, upper: p.upper, level: p.level})
		default:
			pending++
		}
	}
	return out, pending
}

// score computes the realized performance; testMAE (may be nil) gives the
// degradation ratio.
func score(os []outcome, testMAE *float64) Performance {
	p := Performance{N: len(os)}
	if len(os) == 0 {
		return p
	}
	var abs, sq, sc float64
	var late, early int
	for _, o := range os {
		d := o.pred - o.truth
		abs += math.Abs(d)
		sq += d * d
		sc += phm08(d)
		switch {
		case d > 0:
			late++
		case d < 0:
			early++
		}
	}
	n := float64(len(os))
	p.MAE, p.RMSE, p.Score, p.ScoreMean = ptr(abs/n), ptr(math.Sqrt(sq/n)), ptr(sc), ptr(sc/n)
	p.LateRate, p.EarlyRate = ptr(float64(late)/n), ptr(float64(early)/n)
	if testMAE != nil && *testMAE > 0 {
		p.Degradation = ptr(*p.MAE / *testMAE)
	}
	return p
}

// phm08 is one term of the PHM08 (NASA) score of the error d = predicted −
// true: exp(−d/13) − 1 when early (d < 0), exp(d/10) − 1 when late.
func phm08(d float64) float64 {
	if d < 0 {
		return math.Exp(-d/13) - 1
	}
	return math.Exp(d/10) - 1
}

// coverage measures, per interval level, how often the realized RUL fell in
// the predicted interval [lower, upper] and the interval's mean width, over
// the outcomes that had one. Levels are ascending.
func coverage(os []outcome) []IntervalCoverage {
	by := map[float64]*conformal.Tally{}
	for _, o := range os {
		if o.lower == nil || o.upper == nil || o.level == nil {
			continue
		}
		t := by[*o.level]
		if t == nil {
			t = &conformal.Tally{}
			by[*o.level] = t
		}
		t.Add(o.truth, *o.lower, *o.upper)
	}
	out := make([]IntervalCoverage, 0, len(by))
	for lv, t := range by {
		c := t.At(lv)
		out = append(out, IntervalCoverage{Level: lv, N: c.N, Coverage: c.Coverage, MeanWidth: c.MeanWidth})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Level < out[j].Level })
	return out
}
