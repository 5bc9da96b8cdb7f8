// Package features turns a labeled file into the inputs of the models:
// leakage-free sliding windows (windows.parquet, the LSTM's input, scaled with
// a scaler fitted on the train split only), per-window statistical and
// spectral features (stats.parquet, for tabular models and for people) and an
// optional time-bucketed variant of those statistics.
//
// Devices are streamed one at a time from the labeled file and processed in
// parallel (Options.Workers); outputs are written in file order, so the result
// does not depend on the number of workers. Memory is bounded by a few
// devices' rows plus one output batch per worker, not by the fleet.
package features

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
)

// Scaler kinds.
const (
	ScalerZScore = "zscore"
	ScalerMinMax = "minmax"
	ScalerNone   = "none"
)

// Default file names (DESIGN.md §3).
const (
	DefaultLabeled    = "labeled.parquet"
	DefaultOut        = "windows.parquet"
	DefaultStats      = "stats.parquet"
	DefaultBucketOut  = "stats_buckets.parquet"
	defaultGapFactor  = 5
	defaultPSDSegment = 256 // scipy.signal.welch's default nperseg
)

// Options configure the features stage; it is the `features` section of the
// configuration.
type Options struct {
	// Labeled is the input (modax.labeled/v1).
	Labeled string `yaml:"labeled"`
	// TestSource is an optional second labeled file whose windows form the
	// test split (e.g. C-MAPSS test_FD001 + RUL_FD001, labeled); the input
	// then only provides train and val.
	TestSource string `yaml:"test_source"`
	// Out is the windows file.
	Out string `yaml:"out"`
	// Stats is the per-window statistics file ("" writes none).
	Stats string `yaml:"stats"`
	// StatsBucket enables the time-bucketed statistics (per device and
	// bucket of this length, e.g. 1h), written to BucketOut; 0 disables them.
	StatsBucket duration.Duration `yaml:"stats_bucket"`
	BucketOut   string            `yaml:"bucket_out"`

	// Features selects and orders the sensor columns (default: every sensor
	// of the input except the condition columns). The order is the model's
	// input order.
	Features []string `yaml:"features"`
	// Window is the number of readings per window; Stride the step between
	// window ends.
	Window int `yaml:"window"`
	Stride int `yaml:"stride"`
	// MaxGap splits a life where consecutive readings are further apart; 0
	// means 5 × the device's median sampling interval.
	MaxGap duration.Duration `yaml:"max_gap"`
	// MaxFill is how many consecutive missing values of a sensor are forward
	// filled (within a segment); windows still holding a missing value are
	// dropped.
	MaxFill int `yaml:"max_fill"`

	// Split is device (whole devices), random (the design's leaky split of
	// windows) or time (Cutoff).
	Split    string  `yaml:"split"`
	TestSize float64 `yaml:"test_size"`
	// ValSize is the fraction of what remains after the test split (the
	// design's second train_test_split): 0.2 of 80% = 16%.
	ValSize float64 `yaml:"val_size"`
	Seed    int64   `yaml:"seed"`
	// Cutoff (split time): windows ending at or after it are the test split.
	// ValCutoff (optional, before Cutoff): windows ending in [ValCutoff,
	// Cutoff) are the val split.
	Cutoff    string `yaml:"cutoff"`
	ValCutoff string `yaml:"val_cutoff"`

	// Scaler is zscore, minmax or none, fitted on the train split only.
	Scaler string `yaml:"scaler"`
	// ConditionColumns enables per-operating-condition normalisation (C-MAPSS
	// FD002/FD004: setting_1, setting_2, setting_3): conditions are found on
	// the train split by rounding these columns to ConditionDecimals
	// decimals, and each condition gets its own scaler.
	ConditionColumns  []string `yaml:"condition_columns"`
	ConditionDecimals int      `yaml:"condition_decimals"`

	// Fs is the sampling frequency in Hz for Welch's PSD (the design's 10).
	Fs float64 `yaml:"fs"`
	// Vibration names the sensors that get Welch PSD features (default: the
	// features whose name contains "vibration"; "none" for no sensor).
	Vibration []string `yaml:"vibration"`
	// PSDSegment is Welch's nperseg (scipy's default 256; shorter windows use
	// their length, as scipy does).
	PSDSegment int `yaml:"psd_nperseg"`

	// Workers bounds the devices processed at once (0: GOMAXPROCS).
	Workers int `yaml:"workers"`
}

// DefaultOptions returns the defaults: window 50, stride 1, device split
// 64/16/20 with seed 42, z-score, fs 10 Hz.
func DefaultOptions() Options {
	return Options{
		Labeled:    DefaultLabeled,
		Out:        DefaultOut,
		Stats:      DefaultStats,
		BucketOut:  DefaultBucketOut,
		Window:     50,
		Stride:     1,
		MaxFill:    5,
		Split:      SplitDevice,
		TestSize:   0.2,
		ValSize:    0.2,
		Seed:       42,
		Scaler:     ScalerZScore,
		Fs:         10,
		PSDSegment: defaultPSDSegment,
	}
}

// settings are Options checked and resolved.
type settings struct {
	Options
	cutoff, valCutoff int64 // µs; valid for split time
	maxGap            int64 // µs; 0: auto
}

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: features: %s", exitcode.ErrUsage, fmt.Sprintf(format, args...))
}

// check validates the options that do not depend on the input.
func (o Options) check() (settings, error) {
	s := settings{Options: o}
	switch {
	case o.Labeled == "":
		return s, usage("--labeled is empty")
	case o.Out == "":
		return s, usage("--out is empty")
	case o.Window < 1 || o.Window > dataset.MaxWindow:
		return s, usage("--window %d (config features.window): want 1 to %d time steps", o.Window, dataset.MaxWindow)
	case o.Stride < 1:
		return s, usage("--stride %d: want ≥ 1", o.Stride)
	case o.MaxFill < 0:
		return s, usage("--max-fill %d: want ≥ 0", o.MaxFill)
	case o.MaxGap < 0:
		return s, usage("--max-gap %s: want ≥ 0 (0: automatic)", o.MaxGap)
	case o.StatsBucket < 0:
		return s, usage("--stats-bucket %s: want ≥ 0", o.StatsBucket)
	case o.StatsBucket > 0 && o.BucketOut == "":
		return s, usage("--stats-bucket needs --bucket-out")
	case !(o.Fs > 0) || math.IsInf(o.Fs, 0):
		return s, usage("--fs %g: want a positive frequency in Hz", o.Fs)
	case o.PSDSegment < 1:
		return s, usage("--psd-nperseg %d: want ≥ 1", o.PSDSegment)
	case o.Workers < 0 || o.Workers > runenv.MaxWorkers:
		return s, usage("--workers %d (config features.workers): want 0 (GOMAXPROCS) to %d", o.Workers, runenv.MaxWorkers)
	}
	s.maxGap = int64(o.MaxGap.D() / time.Microsecond)
	if s.maxGap == 0 && o.MaxGap > 0 {
		s.maxGap = 1
	}
	switch o.Scaler {
	case ScalerZScore, ScalerMinMax:
	case ScalerNone:
		if len(o.ConditionColumns) > 0 {
			return s, usage("--condition-columns needs a scaler (zscore or minmax), not none")
		}
	default:
		return s, usage("--scaler %q: want zscore, minmax or none", o.Scaler)
	}
	if dup := firstDup(o.Features); dup != "" {
		return s, usage("--features names %q twice", dup)
	}
	if dup := firstDup(o.ConditionColumns); dup != "" {
		return s, usage("--condition-columns names %q twice", dup)
	}
	for _, sz := range []struct {
		name string
		v    float64
	}{{"--test-size", o.TestSize}, {"--val-size", o.ValSize}} {
		if !(sz.v >= 0 && sz.v < 1) {
			return s, usage("%s %g: want a fraction in [0, 1)", sz.name, sz.v)
		}
	}
	if _, err := numpySeed(o.Seed); err != nil {
		return s, usage("--seed: %v", err)
	}
	switch o.Split {
	case SplitDevice, SplitRandom:
		if o.Cutoff != "" || o.ValCutoff != "" {
			return s, usage("--cutoff and --val-cutoff belong to --split time, not %s", o.Split)
		}
	case SplitTime:
		if o.TestSource != "" {
			return s, usage("--test-source with --split time: the test split would come from both the cutoff and the other file; choose one")
		}
		if o.Cutoff == "" {
			return s, usage("--split time needs --cutoff")
		}
		t, err := parseTime(o.Cutoff)
		if err != nil {
			return s, usage("--cutoff: %v", err)
		}
		s.cutoff = t.UnixMicro()
		s.valCutoff = s.cutoff
		if o.ValCutoff != "" {
			v, err := parseTime(o.ValCutoff)
			if err != nil {
				return s, usage("--val-cutoff: %v", err)
			}
			if !v.Before(t) {
				return s, usage("--val-cutoff %s is not before --cutoff %s", o.ValCutoff, o.Cutoff)
			}
			s.valCutoff = v.UnixMicro()
		}
	default:
		return s, usage("--split %q: want device, random or time", o.Split)
	}
	return s, nil
}

func firstDup(names []string) string {
	for i, n := range names {
		if slices.Contains(names[:i], n) {
			return n
		}
	}
	return ""
}

// resolveFeatures picks the model features, the columns to read and the
// vibration axes from the input's sensors.
func (s *settings) resolveFeatures(sensors []string) (features, read, vib []string, err error) {
	has := func(n string) bool { return slices.Contains(sensors, n) }
	for _, c := range s.ConditionColumns {
		if !has(c) {
			return nil, nil, nil, usage("--condition-columns: %q is not a sensor of %s (sensors: %s)", c, s.Labeled, strings.Join(sensors, ", "))
		}
	}
	features = s.Features
	if len(features) == 0 {
		for _, n := range sensors {
			if !slices.Contains(s.ConditionColumns, n) {
				features = append(features, n)
			}
		}
	}
	for _, f := range features {
		if !has(f) {
			return nil, nil, nil, usage("--features: %q is not a sensor of %s (sensors: %s)", f, s.Labeled, strings.Join(sensors, ", "))
		}
	}
	if len(features) == 0 {
		return nil, nil, nil, usage("no features: %s has no sensor columns besides the condition columns", s.Labeled)
	}
	read = slices.Clone(features)
	for _, c := range s.ConditionColumns {
		if !slices.Contains(read, c) {
			read = append(read, c)
		}
	}
	switch {
	case len(s.Vibration) == 0:
		for _, f := range features {
			if strings.Contains(strings.ToLower(f), "vibration") {
				vib = append(vib, f)
			}
		}
	case len(s.Vibration) == 1 && (s.Vibration[0] == "none" || s.Vibration[0] == ""):
	default:
		for _, v := range s.Vibration {
			if !slices.Contains(features, v) {
				return nil, nil, nil, usage("--vibration: %q is not one of the features (%s)", v, strings.Join(features, ", "))
			}
		}
		vib = s.Vibration
	}
	return features, read, vib, nil
}
