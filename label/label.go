// Package label is the label stage: it reads readings and failure events and
// writes the labeled file (DESIGN.md §3): every reading with its Remaining
// Useful Life in hours to the next failure of its device (capped at the
// horizon, raw value kept), right-censoring after the last failure, the
// run-to-failure segment (life_id) and the health class. The rules live in
// internal/rul, shared with the validate stage.
//
// The readings are streamed one device at a time (dataset.Reader.DeviceFrames):
// memory holds one device's rows, one output batch and the failure events.
package label

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/rul"
	"github.com/modax/modax-ml/internal/runenv"
)

// Options configure the label stage (the `label` config section).
type Options struct {
	// Readings is the readings file (input).
	Readings string `yaml:"readings"`
	// Failures is the failure-events file (input). Empty means no failure log:
	// every reading is right-censored.
	Failures string `yaml:"failures"`
	// Out is the labeled file (output).
	Out string `yaml:"out"`
	// Horizon caps the RUL in hours (C-MAPSS users pass 125).
	Horizon float64 `yaml:"horizon"`
	// Critical and Warning are the health-class thresholds in hours.
	Critical float64 `yaml:"critical"`
	Warning  float64 `yaml:"warning"`
}

// DefaultOptions returns the design's defaults: horizon 100 h, critical below
// 10 h, warning below 50 h, the DESIGN §3 file names.
func DefaultOptions() Options {
	r := rul.DefaultRules()
	return Options{
		Readings: "readings.parquet",
		Failures: "failures.parquet",
		Out:      "labeled.parquet",
		Horizon:  r.Horizon,
		Critical: r.Thresholds.Critical,
		Warning:  r.Thresholds.Warning,
	}
}

// Rules returns the labelling rules the options describe.
func (o Options) Rules() rul.Rules {
	return rul.Rules{Horizon: o.Horizon, Thresholds: dataset.Thresholds{Critical: o.Critical, Warning: o.Warning}}
}

// Result is what a label run produced (printed by --output json).
type Result struct {
	Out      string `json:"out"`
	Rows     int64  `json:"rows"`
	Devices  int64  `json:"devices"`
	Lives    int64  `json:"lives"`
	Failures int64  `json:"failures"`
	// FailuresWithoutReadings end no observed life (no reading since the
	// previous failure or before the device's first reading).
	FailuresWithoutReadings int64 `json:"failures_without_readings"`
	// FailuresUnknownDevice name a device with no readings; they are ignored.
	FailuresUnknownDevice int64 `json:"failures_unknown_device"`
	// FailuresSimultaneous are events at the same time as another event of
	// the same device; they are counted once.
	FailuresSimultaneous int64 `json:"failures_simultaneous"`
	// CensoredRows are excluded from training; ExactCappedRows follow the last
	// failure but are labelled exactly (horizon).
	CensoredRows    int64              `json:"censored_rows"`
	ExactCappedRows int64              `json:"exact_capped_rows"`
	Health          map[string]int64   `json:"health"`
	HorizonHours    float64            `json:"horizon_hours"`
	Thresholds      dataset.Thresholds `json:"thresholds"`
}

// deviceKey identifies a device across files.
type deviceKey struct{ tenant, device string }

// metaOwn are the metadata keys the label stage sets itself; every other key
// of the readings file is carried into the labeled file.
var metaOwn = map[string]bool{
	dataset.MetaSchema: true, dataset.MetaRunID: true, dataset.MetaStage: true, dataset.MetaCreatedAt: true,
	dataset.MetaInputs: true, dataset.MetaToolVersion: true, dataset.MetaSensors: true, dataset.MetaSortedBy: true,
	dataset.MetaHorizon: true, dataset.MetaThresholds: true,
}

// Run labels opts.Readings with opts.Failures into opts.Out.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := time.Now()
	rules := opts.Rules()
	if err := rules.Validate(); err != nil {
		return nil, fmt.Errorf("label: %w: %w", exitcode.ErrUsage, err)
	}
	if opts.Readings == "" || opts.Out == "" {
		return nil, fmt.Errorf("label: %w: readings and out must be named", exitcode.ErrUsage)
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--readings", opts.Readings), atomicfile.P("--failures", opts.Failures)},
		[]atomicfile.Path{atomicfile.P("--out", opts.Out)}); err != nil {
		return nil, err
	}
	if rules.Thresholds.Warning > rules.Horizon {
		env.Log.Warn("label: the warning threshold exceeds the horizon: no row can be normal",
			"warning_hours", rules.Thresholds.Warning, "horizon_hours", rules.Horizon)
	}

	failures, fmeta, res, err := readFailures(ctx, opts.Failures)
	if err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	r, err := dataset.Open(opts.Readings, dataset.KindReadings)
	if err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	defer r.Close()
	if fmeta != nil {
		// Another collect's failures would label these readings with
		// another fleet's failure times.
		if err := dataset.CheckSameSet(opts.Readings, r.Meta(), opts.Failures, fmeta); err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
	}
	sensors, err := r.Sensors()
	if err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}

	inputs := []string{opts.Readings}
	if opts.Failures != "" {
		inputs = append(inputs, opts.Failures)
	}
	meta, err := env.FileMeta("label", inputs...)
	if err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	for k, v := range r.Meta() {
		if !metaOwn[k] {
			meta[k] = v
		}
	}
	meta.MustSet(dataset.MetaHorizon, rules.Horizon)
	meta.MustSet(dataset.MetaThresholds, rules.Thresholds)

	w, err := dataset.CreateFrames(opts.Out, sensors, true, meta)
	if err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	defer w.Abort()

	bar := env.Progress("label", "rows", r.NumRows())
	defer bar.Finish()
	var st rul.Stats
	var buf rul.Labels
	seen := make(map[deviceKey]bool, len(failures))
	for f, err := range r.DeviceFrames(ctx, sensors) {
		if err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
		key := deviceKey{f.Tenant, f.Device}
		fs := failures[key]
		seen[key] = true
		buf = buf.Resize(f.Len())
		ds, err := rul.Label(f.Time, fs, rules, buf)
		if err != nil {
			return nil, fmt.Errorf("label: %s: device %s/%s: %w", opts.Readings, f.Tenant, f.Device, err)
		}
		st.Add(ds)
		res.Devices++
		f.RUL, f.RULRaw, f.Health, f.Censored, f.LifeID = buf.RUL, buf.Raw, buf.Health, buf.Censored, buf.Life
		if err := w.Append(f); err != nil {
			return nil, fmt.Errorf("label: %w", err)
		}
		bar.Add(int64(f.Len()))
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}
	for key, fs := range failures {
		if !seen[key] {
			res.FailuresUnknownDevice += int64(len(fs))
		}
	}
	if err := w.Commit(); err != nil {
		return nil, fmt.Errorf("label: %w", err)
	}

	res.Out = opts.Out
	res.Rows = st.Rows
	res.Lives = st.Lives
	res.Failures = st.Failures
	res.FailuresWithoutReadings = st.FailuresWithoutReadings
	res.CensoredRows = st.Censored
	res.ExactCappedRows = st.ExactCapped
	res.Health = make(map[string]int64, len(dataset.HealthClasses))
	for _, h := range dataset.HealthClasses {
		res.Health[h.String()] = st.Health[h]
	}
	res.HorizonHours = rules.Horizon
	res.Thresholds = rules.Thresholds
	if res.FailuresUnknownDevice > 0 {
		env.Log.Warn("label: failure events of devices without readings were ignored", "events", res.FailuresUnknownDevice)
	}
	if res.Failures == 0 {
		env.Log.Warn("label: no failure of a device with readings: every label is a censored lower bound or the horizon")
	}
	env.Log.Info("label: done", "out", res.Out, "rows", res.Rows, "devices", res.Devices, "lives", res.Lives,
		"censored_rows", res.CensoredRows, "seconds", time.Since(start).Seconds())
	return res, nil
}

// readFailures reads the failure times of each device, distinct and sorted,
// and the file's metadata (nil without a file). It returns a Result with the
// simultaneous-event count filled in.
func readFailures(ctx context.Context, loc string) (map[deviceKey][]int64, dataset.Meta, *Result, error) {
	res := &Result{}
	out := map[deviceKey][]int64{}
	if strings.TrimSpace(loc) == "" {
		return out, nil, res, nil
	}
	events, meta, err := dataset.ReadFailures(ctx, loc)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, e := range events {
		k := deviceKey{e.Tenant, e.Device}
		out[k] = append(out[k], e.Time)
	}
	for k, ts := range out {
		d := rul.FailureTimes(ts)
		res.FailuresSimultaneous += int64(len(ts) - len(d))
		out[k] = d
	}
	return out, meta, res, nil
}
