package features

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
)

// Online builds a model's input from a device's most recent readings with
// the features stage's own rules — the same forward fill (fillForward), the
// same segmenting at sampling gaps and missing-value test (planner.prepare)
// and the same scaling (scaleRows) — so that a window `score` builds online
// is, value for value, the window `features` writes for the same readings.
// An Online is not safe for concurrent use (it owns scratch buffers); make
// one per goroutine.
type Online struct {
	features []string
	read     []string
	condIdx  []int
	window   int
	maxFill  int
	scaler   dataset.Scaler
	planner  planner
	cond     []float64
	life     []int32
	censored []bool
}

// OnlineSpec is a model's input contract as features applied it.
type OnlineSpec struct {
	// Features are the model's inputs in order; Window the readings per window.
	Features []string
	Window   int
	// Scaler is the model's scaling (nil: the model takes raw values).
	Scaler *dataset.Scaler
	// MaxFill and MaxGap are the features options the windows were built
	// with (MaxGap 0: 5 × the median sampling interval of the readings).
	MaxFill int
	MaxGap  time.Duration
}

// NewOnline checks spec and returns its window builder.
func NewOnline(spec OnlineSpec) (*Online, error) {
	nf := len(spec.Features)
	switch {
	case nf == 0:
		return nil, fmt.Errorf("features: model input has no features")
	case spec.Window < 1:
		return nil, fmt.Errorf("features: model window %d: want ≥ 1", spec.Window)
	case spec.MaxFill < 0:
		return nil, fmt.Errorf("features: max fill %d: want ≥ 0", spec.MaxFill)
	case spec.MaxGap < 0:
		return nil, fmt.Errorf("features: max gap %s: want ≥ 0", spec.MaxGap)
	}
	o := &Online{features: slices.Clone(spec.Features), window: spec.Window, maxFill: spec.MaxFill}
	if spec.Scaler != nil {
		o.scaler = *spec.Scaler
	} else {
		o.scaler = dataset.Scaler{Kind: ScalerNone, Features: o.features, Offset: make([]float64, nf), Scale: ones(nf)}
	}
	sc := &o.scaler
	if sc.PerCondition() {
		c := sc.Conditions
		if len(c.Centers) == 0 || len(c.Offset) != len(c.Centers) || len(c.Scale) != len(c.Centers) {
			return nil, fmt.Errorf("features: scaler has %d condition centers, %d offsets and %d scales", len(c.Centers), len(c.Offset), len(c.Scale))
		}
		for k := range c.Centers {
			if len(c.Centers[k]) != len(c.Columns) || len(c.Offset[k]) != nf || len(c.Scale[k]) != nf {
				return nil, fmt.Errorf("features: scaler condition %d has %d/%d/%d parameters for %d columns and %d features",
					k, len(c.Centers[k]), len(c.Offset[k]), len(c.Scale[k]), len(c.Columns), nf)
			}
		}
	} else if len(sc.Offset) != nf || len(sc.Scale) != nf {
		return nil, fmt.Errorf("features: scaler has %d/%d parameters for %d features", len(sc.Offset), len(sc.Scale), nf)
	}
	o.read = slices.Clone(o.features)
	if sc.PerCondition() {
		for _, c := range sc.Conditions.Columns {
			i := slices.Index(o.read, c)
			if i < 0 {
				i = len(o.read)
				o.read = append(o.read, c)
			}
			o.condIdx = append(o.condIdx, i)
		}
	}
	maxGap := int64(spec.MaxGap / time.Microsecond)
	if maxGap == 0 && spec.MaxGap > 0 {
		maxGap = 1
	}
	// One window per segment, the one ending at its last reading.
	o.planner = planner{window: spec.Window, stride: math.MaxInt32, maxGap: maxGap, maxFill: spec.MaxFill}
	return o, nil
}

// Columns are the sensor columns a frame must hold, in this order: the
// features, then the condition columns of a per-condition scaler.
func (o *Online) Columns() []string { return o.read }

// Readings is how many of a device's most recent readings Last needs to build
// the window exactly as features does: the window and the forward fill's reach
// before it.
func (o *Online) Readings() int { return o.window + o.maxFill }

// Window is the number of readings per window.
func (o *Online) Window() int { return o.window }

// Size is the number of float32 values of one window (window × features).
func (o *Online) Size() int { return o.window * len(o.features) }

// Unusable says why a device's last window cannot be built.
type Unusable struct {
	// Reason is one of the Reason* constants; Detail says it for people.
	Reason string
	Detail string
}

func (u *Unusable) Error() string { return u.Detail }

// Reasons a device's last window cannot be built.
const (
	ReasonTooFew  = "too_few_readings"
	ReasonGap     = "sampling_gap"
	ReasonMissing = "feature_missing"
)

// Last builds the window that ends at f's last reading into dst (Size()
// values, time-major, scaled as the model expects). f holds one life's most
// recent readings, oldest first, with Columns() as its sensors (changed in
// place by the forward fill); it needs no label columns. When the window
// cannot be built — fewer readings than the window, a sampling gap longer
// than max gap inside it, or a value still missing after the forward fill —
// Last returns an *Unusable saying why, and features would have made no
// window there either.
func (o *Online) Last(f *dataset.Frame, dst []float32) (*Unusable, error) {
	n := f.Len()
	if len(f.Sensors) != len(o.read) || len(dst) < o.Size() {
		return nil, fmt.Errorf("features: last window of %s: %d sensor columns and room for %d values, want %d columns (%s) and %d values",
			f.Device, len(f.Sensors), len(dst), len(o.read), strings.Join(o.read, ", "), o.Size())
	}
	if n < o.window {
		return &Unusable{Reason: ReasonTooFew, Detail: fmt.Sprintf("%d readings since the last repair, the window needs %d", n, o.window)}, nil
	}
	o.life = slices.Grow(o.life[:0], n)[:n]
	clear(o.life)
	o.censored = slices.Grow(o.censored[:0], n)[:n]
	clear(o.censored)
	g := *f
	g.LifeID, g.Censored = o.life, o.censored
	d := o.planner.prepare(0, &g)
	if len(d.ends) > 0 && int(d.ends[len(d.ends)-1]) == n-1 {
		x := dst[:o.Size()]
		o.cond = scaleRows(&o.scaler, f.Sensors, len(o.features), o.condIdx, o.cond, n-o.window, n, x)
		if j := dataset.FirstNonFinite(x); j >= 0 {
			// The forward fill turned every non-finite reading into a
			// missing one: this is a finite reading that overflows the
			// model's float32 input once scaled.
			nf := len(o.features)
			i := n - o.window + j/nf
			return nil, fmt.Errorf("%w: features: device %s: reading of %s at %s is %g, %v once scaled (the model's inputs are float32); readings must be finite after scaling",
				exitcode.ErrValidation, f.Device, o.features[j%nf], dataset.TimeOf(f.Time[i]).Format(time.RFC3339), f.Sensors[j%nf][i], x[j])
		}
		return nil, nil
	}
	// The last segment, as prepare split it.
	gap := o.planner.maxGap
	if gap == 0 {
		gap = o.planner.autoGap(f.Time)
	}
	lo := n - 1
	for lo > 0 && (gap <= 0 || f.Time[lo]-f.Time[lo-1] <= gap) {
		lo--
	}
	switch {
	case n-lo >= o.window:
		return o.missing(f), nil
	case lo > 0:
		return &Unusable{Reason: ReasonGap, Detail: fmt.Sprintf("only %d readings since a sampling gap of %s (longer than max gap %s), the window needs %d",
			n-lo, time.Duration(f.Time[lo]-f.Time[lo-1])*time.Microsecond, time.Duration(gap)*time.Microsecond, o.window)}, nil
	}
	return &Unusable{Reason: ReasonTooFew, Detail: fmt.Sprintf("%d readings since the last repair, the window needs %d", n, o.window)}, nil
}

// missing describes the values of the last window still missing after the
// forward fill.
func (o *Online) missing(f *dataset.Frame) *Unusable {
	n := f.Len()
	var whole, some []string
	for j, col := range f.Sensors {
		k := 0
		for _, v := range col[n-o.window:] {
			if math.IsNaN(v) {
				k++
			}
		}
		switch {
		case k == o.window:
			whole = append(whole, o.read[j])
		case k > 0:
			some = append(some, fmt.Sprintf("%s (%d of %d)", o.read[j], k, o.window))
		}
	}
	var parts []string
	if len(whole) > 0 {
		parts = append(parts, "missing for the whole window: "+strings.Join(whole, ", "))
	}
	if len(some) > 0 {
		parts = append(parts, fmt.Sprintf("missing beyond the forward fill (max fill %d): %s", o.maxFill, strings.Join(some, ", ")))
	}
	return &Unusable{Reason: ReasonMissing, Detail: strings.Join(parts, "; ")}
}
