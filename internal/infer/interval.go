package infer

import (
	"fmt"
	"math"

	"github.com/modax/modax-ml/internal/conformal"
)

// DefaultIntervalLevel is the coverage level predict and score give their
// intervals at when none is asked for (the level train calibrates by
// default).
const DefaultIntervalLevel = 0.9

// Interval is a model's prediction interval at one coverage level. OK is
// false when the model has no interval calibration, or none at Level; Note
// then says which, in words fit for a log line or a report.
type Interval struct {
	OK    bool
	Level float64
	Note  string
	c     *conformal.Calibration
}

// IntervalAt returns the model's interval at level.
func (m *Model) IntervalAt(level float64) Interval {
	c := m.Calibration
	switch {
	case c == nil:
		return Interval{Level: level, Note: "model has no interval calibration"}
	case c.LevelIndex(level) < 0:
		return Interval{Level: level, Note: fmt.Sprintf("model has no interval calibration at level %g (calibrated: %v)", level, c.Levels)}
	}
	return Interval{OK: true, Level: level, c: c}
}

// Of is the interval of a prediction (conformal.Interval: around the clipped
// prediction, clipped to [0, horizon]); (NaN, NaN) when the interval is not OK.
func (iv Interval) Of(pred float64) (lower, upper float64) {
	if !iv.OK {
		return math.NaN(), math.NaN()
	}
	lo, hi, _ := conformal.Interval(pred, iv.c, iv.Level) // OK: the level is calibrated, no error
	return lo, hi
}
