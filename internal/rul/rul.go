// Package rul holds the Remaining-Useful-Life labelling rules of modax-ml. The
// label stage writes these labels; the validate stage predicts their class
// balance before anything is labelled. Both call Label, so the two can never
// disagree (stages do not import each other).
//
// The rules, for one device with readings at times t (ascending) and failure
// events at times F (any order):
//
//   - The raw RUL of a reading is the time in hours from the reading to the
//     next failure of its device: the smallest f in F with f >= t. A reading at
//     exactly a failure's time has RUL 0 and belongs to the life ending there.
//     Event order does not matter: F is sorted here.
//   - Several failures at the same time are one failure: one life ends.
//   - rul_hours = min(raw, horizon), the piecewise-linear target.
//   - Readings after the last failure (and every reading of a device with no
//     failure) are right-censored: their RUL is only known to be at least the
//     time to the device's last reading (the end of observation). When that
//     lower bound is >= horizon the capped label is exact (horizon) and the row
//     is not censored; otherwise the row is censored, rul_hours holds the lower
//     bound and health_status the class of that bound (both lower bounds, not
//     labels). rul_hours_raw is NaN (null) for every row after the last
//     failure, censored or not: the true time to failure is unknown there.
//   - life_id numbers the lives (run-to-failure segments) of a device that have
//     readings, 0, 1, … in time order; the readings after the last failure form
//     the last life. A failure with no readings since the previous failure (or
//     before the device's first reading) ends an empty life: it changes no
//     label and takes no life_id.
//   - health_status is critical when rul_hours < critical, warning when
//     < warning, else normal.
package rul

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
)

// MicrosPerHour converts the microsecond timestamps of modax files to hours.
const MicrosPerHour = 3_600_000_000

// Rules are the parameters of the labelling.
type Rules struct {
	// Horizon caps the RUL in hours (the design's prediction_horizon_hours).
	Horizon float64
	// Thresholds are the health-class boundaries in hours.
	Thresholds dataset.Thresholds
}

// DefaultRules are the design's: horizon 100 h, critical < 10 h, warning < 50 h.
func DefaultRules() Rules {
	return Rules{Horizon: 100, Thresholds: dataset.DefaultThresholds}
}

// MaxHorizon bounds the horizon in hours (about 114 years): far above any
// asset's life, and it keeps RUL/horizon targets well inside float32.
const MaxHorizon = 1e6

// Validate checks 0 < horizon ≤ MaxHorizon and 0 < critical < warning.
func (r Rules) Validate() error {
	if !(r.Horizon > 0) || math.IsInf(r.Horizon, 0) {
		return fmt.Errorf("horizon %g: want a positive number of hours", r.Horizon)
	}
	if r.Horizon > MaxHorizon {
		return fmt.Errorf("horizon %g: want at most %g hours", r.Horizon, float64(MaxHorizon))
	}
	return r.Thresholds.Validate()
}

// FailureTimes returns the distinct failure times of ts in ascending order.
// ts is not modified. This is the only ordering the labelling needs: the
// events may arrive in any order.
func FailureTimes(ts []int64) []int64 {
	out := slices.Clone(ts)
	slices.Sort(out)
	return slices.Compact(out)
}

// Labels are the output columns of Label, each as long as the readings.
type Labels struct {
	RUL      []float64
	Raw      []float64 // NaN where the time to failure is unknown
	Health   []dataset.Health
	Censored []bool
	Life     []int32
}

// Resize returns l with every column of length n, reusing its storage.
func (l Labels) Resize(n int) Labels {
	return Labels{
		RUL:      resize(l.RUL, n),
		Raw:      resize(l.Raw, n),
		Health:   resize(l.Health, n),
		Censored: resize(l.Censored, n),
		Life:     resize(l.Life, n),
	}
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// Stats counts what Label produced for one device.
type Stats struct {
	Rows int64
	// Lives is the number of lives with readings (the largest life_id + 1).
	Lives int64
	// Failures is the number of distinct failure times given.
	Failures int64
	// FailuresWithoutReadings counts failures with no reading since the
	// previous failure (or before the first reading): they end no observed life.
	FailuresWithoutReadings int64
	// Censored counts censored rows; ExactCapped counts rows after the last
	// failure whose capped label is exact (lower bound >= horizon).
	Censored    int64
	ExactCapped int64
	// Health counts rows per class (indexed by dataset.Health), censored rows
	// included.
	Health [3]int64
}

// Add accumulates o into s.
func (s *Stats) Add(o Stats) {
	s.Rows += o.Rows
	s.Lives += o.Lives
	s.Failures += o.Failures
	s.FailuresWithoutReadings += o.FailuresWithoutReadings
	s.Censored += o.Censored
	s.ExactCapped += o.ExactCapped
	for i := range s.Health {
		s.Health[i] += o.Health[i]
	}
}

// ErrUnsorted is returned by Label when the reading times are not ascending.
var ErrUnsorted = errors.New("reading times are not in ascending order")

// Label computes the labels of one device's readings at times (ascending,
// microseconds) given its failure times as returned by FailureTimes (ascending,
// distinct), writing them into out, whose columns must be at least as long as
// times. It is one pass over the readings with a pointer into the failures.
// The rules are in the package documentation; r must be valid (Rules.Validate).
func Label(times, failures []int64, r Rules, out Labels) (Stats, error) {
	n := len(times)
	st := Stats{Rows: int64(n), Failures: int64(len(failures))}
	if n == 0 {
		st.FailuresWithoutReadings = st.Failures
		return st, nil
	}
	rul, raw, health, cens, life := out.RUL[:n], out.Raw[:n], out.Health[:n], out.Censored[:n], out.Life[:n]
	h, thr := r.Horizon, r.Thresholds
	const perHour = 1.0 / MicrosPerHour

	// Readings up to the last failure: exact labels.
	i, j, k := 0, 0, len(failures)
	id, prevJ := int32(-1), -1
	prevT := times[0]
	endedLives := int64(0)
	for ; i < n; i++ {
		t := times[i]
		if t < prevT {
			return st, fmt.Errorf("row %d: %w", i, ErrUnsorted)
		}
		prevT = t
		for j < k && failures[j] < t {
			j++
		}
		if j == k {
			break
		}
		if j != prevJ {
			id++
			prevJ = j
			endedLives++
		}
		x := float64(failures[j]-t) * perHour
		raw[i] = x
		c := min(x, h)
		rul[i] = c
		cls := thr.Classify(c)
		health[i] = cls
		st.Health[cls]++
		cens[i] = false
		life[i] = id
	}
	st.FailuresWithoutReadings = st.Failures - endedLives

	// Readings after the last failure: right-censored at the last reading.
	if i < n {
		id++
		end := times[n-1]
		for ; i < n; i++ {
			t := times[i]
			if t < prevT {
				return st, fmt.Errorf("row %d: %w", i, ErrUnsorted)
			}
			prevT = t
			lb := float64(end-t) * perHour
			raw[i] = math.NaN()
			life[i] = id
			c := h
			if lb < h {
				c = lb
				cens[i] = true
				st.Censored++
			} else {
				cens[i] = false
				st.ExactCapped++
			}
			rul[i] = c
			cls := thr.Classify(c)
			health[i] = cls
			st.Health[cls]++
		}
	}
	st.Lives = int64(id) + 1
	return st, nil
}
