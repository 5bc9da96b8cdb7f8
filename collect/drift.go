package collect

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
)

// SyntheticDrift changes the simulated fleet from a point in time on, the
// way production data drifts away from what a model was trained on: a
// sensor recalibrated or replaced, another operating profile. It is what
// `modax-ml monitor` must notice (see the README's continuous-training
// walk-through). From that time each sensor's value becomes
// value × Scale[sensor] + Offset[sensor] (missing values stay missing).
type SyntheticDrift struct {
	// From is the RFC 3339 time the drift starts at (empty: no drift).
	From string `yaml:"from"`
	// Offset and Scale per sensor (default 0 and 1).
	Offset map[string]float64 `yaml:"offset"`
	Scale  map[string]float64 `yaml:"scale"`
}

// active reports whether the drift changes anything.
func (d SyntheticDrift) active() bool { return d.From != "" && (len(d.Offset) > 0 || len(d.Scale) > 0) }

func (d SyntheticDrift) check() error {
	if d.From == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, d.From); err != nil {
		return fmt.Errorf("%w: collect.synthetic.drift.from %q: want an RFC 3339 time", exitcode.ErrUsage, d.From)
	}
	for _, m := range []map[string]float64{d.Offset, d.Scale} {
		for s, v := range m {
			if !slices.Contains(SyntheticSensors, s) {
				return fmt.Errorf("%w: collect.synthetic.drift: unknown sensor %q (the fleet has %v)", exitcode.ErrUsage, s, SyntheticSensors)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: collect.synthetic.drift: %s: %v is not a number", exitcode.ErrUsage, s, v)
			}
		}
	}
	return nil
}

// apply changes the frame's readings at or after From.
func (d SyntheticDrift) apply(f *dataset.Frame) {
	if !d.active() {
		return
	}
	from, _ := time.Parse(time.RFC3339Nano, d.From)
	start, _ := slices.BinarySearch(f.Time, dataset.Micros(from))
	for j, s := range SyntheticSensors {
		scale, ok := d.Scale[s]
		if !ok {
			scale = 1
		}
		off := d.Offset[s]
		if scale == 1 && off == 0 {
			continue
		}
		col := f.Sensors[j]
		for i := start; i < len(col); i++ {
			col[i] = col[i]*scale + off // NaN stays NaN
		}
	}
}
