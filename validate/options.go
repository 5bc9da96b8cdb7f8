package validate

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
	"github.com/modax/modax-ml/internal/rul"
)

// Options configure the validate stage (the `validate` config section).
type Options struct {
	// Readings is the readings file to check (a labeled file works too).
	Readings string `yaml:"readings" json:"readings"`
	// Failures is the failure-events file; empty skips the failure checks and
	// the class balance.
	Failures string `yaml:"failures" json:"failures"`
	// Out is the JSON report written.
	Out string `yaml:"out" json:"out"`
	// Reference is an earlier validation report to measure drift against
	// (empty: no drift check).
	Reference string `yaml:"reference" json:"reference"`
	// FailOn is the gate: "error" (default) fails on any error, "warning" on
	// any warning or error, "none" never.
	FailOn string `yaml:"fail_on" json:"fail_on"`
	// Window is the number of readings the features stage needs per window;
	// devices with fewer rows are reported. In a config it is features.window
	// (config.Resolve copies it).
	Window int `yaml:"window" json:"window"`
	// GapFactor: a sampling gap longer than GapFactor × the device's median
	// interval is reported.
	GapFactor float64 `yaml:"gap_factor" json:"gap_factor"`
	// OutlierZ: a value is an outlier (a spike) when it is above, or below,
	// both its neighbours by more than OutlierZ robust deviations of the
	// device's steps (1.4826 × the MAD of its first differences). Trends,
	// steps and smooth transitions — degradation, load changes — never are.
	OutlierZ float64 `yaml:"outlier_z" json:"outlier_z"`
	// MaxMissing: a sensor missing in more than this share of a device's rows
	// is a warning (any missing value is at least reported as info).
	MaxMissing float64 `yaml:"max_missing" json:"max_missing"`
	// NearConstant: a sensor whose most frequent value covers at least this
	// share of its values is near-constant.
	NearConstant float64 `yaml:"near_constant" json:"near_constant"`
	// MaxPSI and MaxKS: drift beyond either is a warning.
	MaxPSI float64 `yaml:"max_psi" json:"max_psi"`
	MaxKS  float64 `yaml:"max_ks" json:"max_ks"`
	// Bounds are physical ranges per sensor ("sensor=min:max", either side
	// may be empty); values outside are errors.
	Bounds Bounds `yaml:"bounds" json:"bounds"`
	// Horizon, Critical, Warning: the labelling rules the class balance is
	// computed with. In a config they are label's (config.Resolve copies
	// them).
	Horizon  float64 `yaml:"horizon" json:"horizon"`
	Critical float64 `yaml:"critical" json:"critical"`
	Warning  float64 `yaml:"warning" json:"warning"`
	// Examples is the number of examples kept per finding.
	Examples int `yaml:"examples" json:"examples"`
	// SampleSize bounds the values per sensor kept for quantiles and drift.
	SampleSize int `yaml:"sample_size" json:"sample_size"`
}

// DefaultOptions returns the defaults documented in the README.
func DefaultOptions() Options {
	r := rul.DefaultRules()
	return Options{
		Readings:     "readings.parquet",
		Failures:     "failures.parquet",
		Out:          "validation.json",
		FailOn:       "error",
		Window:       50,
		GapFactor:    5,
		OutlierZ:     6,
		MaxMissing:   0.05,
		NearConstant: 0.99,
		MaxPSI:       0.25,
		MaxKS:        0.1,
		Bounds:       Bounds{},
		Horizon:      r.Horizon,
		Critical:     r.Thresholds.Critical,
		Warning:      r.Thresholds.Warning,
		Examples:     5,
		SampleSize:   drift.DefaultSampleSize,
	}
}

// Rules returns the labelling rules of the class balance.
func (o Options) Rules() rul.Rules {
	return rul.Rules{Horizon: o.Horizon, Thresholds: dataset.Thresholds{Critical: o.Critical, Warning: o.Warning}}
}

func (o Options) check() error {
	switch o.FailOn {
	case "error", "warning", "none":
	default:
		return fmt.Errorf("fail_on %q: want error, warning or none", o.FailOn)
	}
	if o.Readings == "" || o.Out == "" {
		return fmt.Errorf("readings and out must be named")
	}
	if o.Window < 1 {
		return fmt.Errorf("window %d: want at least 1", o.Window)
	}
	if !(o.GapFactor > 1) {
		return fmt.Errorf("gap_factor %g: want more than 1", o.GapFactor)
	}
	if !(o.OutlierZ > 0) {
		return fmt.Errorf("outlier_z %g: want more than 0", o.OutlierZ)
	}
	if !(o.MaxMissing >= 0 && o.MaxMissing <= 1) {
		return fmt.Errorf("max_missing %g: want a share in [0, 1]", o.MaxMissing)
	}
	if !(o.NearConstant > 0 && o.NearConstant <= 1) {
		return fmt.Errorf("near_constant %g: want a share in (0, 1]", o.NearConstant)
	}
	if !(o.MaxPSI > 0) || !(o.MaxKS > 0) {
		return fmt.Errorf("max_psi %g, max_ks %g: want positive", o.MaxPSI, o.MaxKS)
	}
	if o.Examples < 0 {
		return fmt.Errorf("examples %d: want 0 or more", o.Examples)
	}
	seen := map[string]bool{}
	for _, b := range o.Bounds {
		if seen[b.Sensor] {
			return fmt.Errorf("bounds: sensor %q given twice", b.Sensor)
		}
		seen[b.Sensor] = true
	}
	return o.Rules().Validate()
}

// Bound is the physical range of a sensor. Its text form is
// "sensor=min:max"; an empty side is open ("temp=:150").
type Bound struct {
	Sensor   string
	Min, Max float64 // -Inf / +Inf when open
}

// ParseBound parses "sensor=min:max".
func ParseBound(s string) (Bound, error) {
	name, rng, ok := strings.Cut(strings.TrimSpace(s), "=")
	lo, hi, ok2 := strings.Cut(rng, ":")
	if !ok || !ok2 || name == "" {
		return Bound{}, fmt.Errorf("bound %q: want sensor=min:max (either side may be empty)", s)
	}
	b := Bound{Sensor: strings.TrimSpace(name), Min: math.Inf(-1), Max: math.Inf(1)}
	var err error
	if lo = strings.TrimSpace(lo); lo != "" {
		if b.Min, err = strconv.ParseFloat(lo, 64); err != nil || math.IsNaN(b.Min) {
			return Bound{}, fmt.Errorf("bound %q: min %q is not a number", s, lo)
		}
	}
	if hi = strings.TrimSpace(hi); hi != "" {
		if b.Max, err = strconv.ParseFloat(hi, 64); err != nil || math.IsNaN(b.Max) {
			return Bound{}, fmt.Errorf("bound %q: max %q is not a number", s, hi)
		}
	}
	if b.Min > b.Max {
		return Bound{}, fmt.Errorf("bound %q: min > max", s)
	}
	return b, nil
}

// String returns the text form.
func (b Bound) String() string {
	f := func(x float64) string {
		if math.IsInf(x, 0) {
			return ""
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return b.Sensor + "=" + f(b.Min) + ":" + f(b.Max)
}

// MarshalText implements encoding.TextMarshaler (YAML, JSON).
func (b Bound) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (YAML, JSON, flags, env).
func (b *Bound) UnmarshalText(text []byte) error {
	v, err := ParseBound(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Bounds is a list of bounds. Besides a YAML/JSON list it reads from one
// comma-separated string ("temp=-40:150,current=0:"), the form of an
// environment variable (MODAX_VALIDATE_BOUNDS).
type Bounds []Bound

// UnmarshalText implements encoding.TextUnmarshaler for the comma-separated form.
func (bs *Bounds) UnmarshalText(text []byte) error {
	out := Bounds{}
	for _, part := range strings.Split(string(text), ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		b, err := ParseBound(part)
		if err != nil {
			return err
		}
		out = append(out, b)
	}
	*bs = out
	return nil
}

// contains reports whether v is inside the bound.
func (b Bound) contains(v float64) bool { return v >= b.Min && v <= b.Max }
