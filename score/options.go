// Package score is the score stage: the current Remaining Useful Life of every
// device of a tenant, as of a point in time, from the device's most recent
// readings — no labels and no failure log needed (the failure log, when there
// is one, only says where the device's current life started).
//
// Per device it reads the last window + max_fill readings at or before --at
// since the device's last failure, builds the model's input with the features
// stage's own code (features.Online: forward fill, gap and missing-value
// rules, scaler), and runs the model's batched forward pass over a batch of
// devices at a time. Readings come from a readings file or from PostgreSQL /
// TimescaleDB, one bounded query per batch of devices; memory holds one batch
// of devices' readings, not the fleet's.
package score

import (
	"fmt"
	"math"
	"time"

	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
)

// Stage is the stage name recorded in the scores file's metadata.
const Stage = "score"

// Sources of readings.
const (
	SourceFile     = "file"
	SourcePostgres = "postgres"
)

// Defaults.
const (
	DefaultBatchDevices  = 512
	DefaultModelsDir     = "models"
	DefaultIntervalLevel = 0.9
)

// Options configure the score stage (the `score` config section).
type Options struct {
	// Source is file (Readings) or postgres (db section).
	Source string `yaml:"source"`
	// Readings is the readings file of source file; Failures its failure log
	// (optional: a missing default file means no failures known).
	Readings string `yaml:"readings"`
	Failures string `yaml:"failures"`
	// Model is a checkpoint (model.safetensors) or an ONNX file; empty: the
	// model deployed in ModelsDir.
	Model     string `yaml:"model"`
	ModelsDir string `yaml:"models_dir"`
	// At is the time scored (RFC 3339); empty: now.
	At string `yaml:"at"`
	// Devices restricts the devices (all of the tenant when empty).
	Devices []string `yaml:"devices"`
	// MaxAge: a device whose last reading is older than this at At is stale
	// and not scored (0: 2 × the window's span, window × the device's median
	// sampling interval).
	MaxAge duration.Duration `yaml:"max_age"`
	// IntervalLevel is the coverage level of the interval printed and stored
	// (one the model was calibrated at).
	IntervalLevel float64 `yaml:"interval_level"`
	// Out is the scores file (empty: none).
	Out string `yaml:"out"`
	// ToDB upserts the scores into db.prediction_table.
	ToDB bool `yaml:"to_db"`
	// BatchDevices is the number of devices read and predicted at once.
	BatchDevices int `yaml:"batch_devices"`
	// Workers is the number of goroutines of the forward pass (0: one per core).
	Workers int `yaml:"workers"`

	// DB is the database (the config's db section; set by the command layer).
	DB pg.Config `yaml:"-" json:"-"`
	// MaxFill and MaxGap are the features options the model's windows were
	// built with (the config's features section; set by the command layer).
	MaxFill int               `yaml:"-" json:"-"`
	MaxGap  duration.Duration `yaml:"-" json:"-"`
}

// DefaultOptions returns the defaults: source file readings.parquet, the
// deployed model, now, batches of 512 devices.
func DefaultOptions() Options {
	return Options{Source: SourceFile, Readings: "readings.parquet", Failures: "failures.parquet", ModelsDir: DefaultModelsDir,
		IntervalLevel: DefaultIntervalLevel, BatchDevices: DefaultBatchDevices, MaxFill: 5, DB: pg.DefaultConfig()}
}

func usage(format string, a ...any) error {
	return fmt.Errorf("%w: score: %s", exitcode.ErrUsage, fmt.Sprintf(format, a...))
}

// settings are Options checked.
type settings struct {
	Options
	at     time.Time
	maxAge int64 // µs; 0: automatic
}

func (o Options) check(now time.Time) (settings, error) {
	s := settings{Options: o, at: now.UTC()}
	switch o.Source {
	case SourceFile:
		if o.Readings == "" {
			return s, usage("--readings is empty")
		}
	case SourcePostgres:
	default:
		return s, usage("--source %q: want file or postgres", o.Source)
	}
	switch {
	case o.Model == "" && o.ModelsDir == "":
		return s, usage("no model: --model and --models-dir are empty")
	case o.MaxAge < 0:
		return s, usage("--max-age %s: want ≥ 0 (0: 2 × the window's span)", o.MaxAge)
	case o.BatchDevices < 1:
		return s, usage("--batch-devices %d: want ≥ 1", o.BatchDevices)
	case o.Workers < 0 || o.Workers > runenv.MaxWorkers:
		return s, usage("--workers %d (config score.workers): want 0 (one per core) to %d", o.Workers, runenv.MaxWorkers)
	case !(o.IntervalLevel > 0 && o.IntervalLevel < 1):
		return s, usage("--interval-level %g: want a coverage level in (0, 1)", o.IntervalLevel)
	case o.MaxFill < 0:
		return s, usage("features.max_fill %d: want ≥ 0", o.MaxFill)
	case o.MaxGap < 0:
		return s, usage("features.max_gap %s: want ≥ 0", o.MaxGap)
	case o.ToDB && o.DB.Tenant == "":
		return s, usage("--to-db needs a tenant (db.tenant)")
	}
	if o.At != "" {
		t, err := parseAt(o.At)
		if err != nil {
			return s, usage("--at %q: %v", o.At, err)
		}
		s.at = t
	}
	s.maxAge = int64(o.MaxAge.D() / time.Microsecond)
	for i, d := range o.Devices {
		if d == "" {
			return s, usage("--device: empty device id (position %d)", i+1)
		}
	}
	return s, nil
}

// parseAt reads an RFC 3339 time (a date alone means its midnight UTC).
func parseAt(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			if t.Year() < 1 || t.Year() > 9999 || math.Abs(float64(t.Unix())) > 253402300799 {
				break
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time such as 2026-03-01T12:00:00Z")
}
