package infer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
)

// MetaPredict is the predictions-file metadata key recording how the
// predictions were made (PredictMeta as JSON).
const MetaPredict = "modax.predict"

// PredictMeta is the value of MetaPredict.
type PredictMeta struct {
	Splits         []string `json:"splits"` // empty: all
	LastWindowOnly bool     `json:"last_window_only"`
	Format         string   `json:"format"`
	Rescaled       bool     `json:"rescaled"` // windows re-scaled to the model's scaler
}

// FromCheckpoint makes a Model of a loaded checkpoint run by fwd (any
// implementation of the forward pass of ck.Params).
func FromCheckpoint(path, sha string, ck *model.Checkpoint, fwd Forward) (*Model, error) {
	if ck.Info.Arch.Type != model.TypeLSTM {
		return nil, fmt.Errorf("%w: %s is a %s model: predict runs LSTM checkpoints over windows (a ridge model predicts from stats.parquet)",
			exitcode.ErrUsage, path, ck.Info.Arch.Type)
	}
	info := ck.Info
	sc := info.Scaler
	if !sc.PerCondition() && (len(sc.Offset) != len(info.Features) || len(sc.Scale) != len(info.Features)) {
		return nil, fmt.Errorf("checkpoint %s: scaler has %d/%d parameters for %d features", path, len(sc.Offset), len(sc.Scale), len(info.Features))
	}
	return &Model{Path: path, SHA256: sha, Version: info.ModelVersion, Format: "safetensors", WeightsSHA256: model.WeightsDigest(ck.Params.Tensors), Features: info.Features,
		Window: info.Window, Scaler: &sc, Horizon: info.Horizon, Thresholds: info.Thresholds, Calibration: info.Calibration, Info: &info, Forward: fwd}, nil
}

// Spec names the files and options of one prediction run.
type Spec struct {
	Windows string
	Out     string
	// Splits restricts the windows read (nil: all).
	Splits         []string
	LastWindowOnly bool
	BatchSize      int
	// IntervalLevel is the coverage level of the rul_lower/rul_upper
	// columns (0: no intervals). A model not calibrated at it predicts
	// without intervals, with one warning.
	IntervalLevel float64
	// Stage is recorded as the predictions file's modax.stage.
	Stage string
}

// Summary describes a prediction run.
type Summary struct {
	Predictions string         `json:"predictions"`
	Rows        int            `json:"rows"`
	WindowsRead int            `json:"windows_read"`
	Devices     int            `json:"devices"`
	Splits      map[string]int `json:"splits"`
	Model       ModelRef       `json:"model"`
	Format      string         `json:"format"`
	Rescaled    bool           `json:"rescaled"`
	// IntervalLevel is the level of the rul_lower/rul_upper columns (null:
	// no intervals; IntervalNote then says why).
	IntervalLevel    *float64 `json:"interval_level"`
	IntervalNote     string   `json:"interval_note,omitempty"`
	Seconds          float64  `json:"seconds"`
	WindowsPerSecond float64  `json:"windows_per_second"`
}

// PredictFile runs m over the windows file spec.Windows and writes the
// predictions to spec.Out (atomically) with their lineage: the windows file
// and the model (path, sha256, version), thresholds and horizon.
func PredictFile(ctx context.Context, env *runenv.Env, m *Model, spec Spec) (*Summary, error) {
	w, err := dataset.ReadWindows(ctx, spec.Windows, spec.Splits...)
	if err != nil {
		return nil, err
	}
	if w.Len() == 0 {
		what := "windows"
		if len(spec.Splits) > 0 {
			what = "windows of split " + strings.Join(spec.Splits, ", ")
		}
		return nil, fmt.Errorf("%w: %s holds no %s", exitcode.ErrValidation, spec.Windows, what)
	}
	var iv Interval
	if spec.IntervalLevel != 0 {
		if iv = m.IntervalAt(spec.IntervalLevel); !iv.OK {
			env.Log.Warn(iv.Note+": predicting without intervals (rul_lower/rul_upper are null)", "model", m.Path, "interval_level", spec.IntervalLevel)
		}
	}
	start := time.Now()
	ps, err := Predict(ctx, env, m, w, spec.Windows, Options{BatchSize: spec.BatchSize, LastWindowOnly: spec.LastWindowOnly, Interval: iv})
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	wsha, err := dataset.FileSHA256(spec.Windows)
	if err != nil {
		return nil, err
	}
	stage := spec.Stage
	if stage == "" {
		stage = "predict"
	}
	meta, err := env.FileMeta(stage)
	if err != nil {
		return nil, err
	}
	meta.MustSet(dataset.MetaInputs, []dataset.Input{{Path: spec.Windows, SHA256: wsha}, {Path: m.Path, SHA256: m.SHA256}})
	meta.MustSet(dataset.MetaModel, m.Ref())
	meta.MustSet(dataset.MetaThresholds, w.Meta.Thresholds)
	meta.MustSet(dataset.MetaHorizon, w.Meta.Horizon)
	meta.MustSet(dataset.MetaWindow, w.Meta.Window)
	meta.MustSet(dataset.MetaFeatures, w.Meta.Features)
	tr, err := newTransform(m, w.Meta.Scaler, spec.Windows)
	if err != nil {
		return nil, err
	}
	rescaled := tr.rescaled
	if m.Calibration != nil {
		// evaluate measures the coverage at every calibrated level from it.
		meta.MustSet(model.MetaCalibration, m.Calibration)
	}
	meta.MustSet(MetaPredict, PredictMeta{Splits: spec.Splits, LastWindowOnly: spec.LastWindowOnly, Format: m.Format, Rescaled: rescaled})
	if err := dataset.WritePredictions(spec.Out, ps, meta); err != nil {
		return nil, err
	}
	s := &Summary{Predictions: spec.Out, Rows: len(ps), WindowsRead: w.Len(), Devices: devices(ps), Splits: splitCounts(ps),
		Model: m.Ref(), Format: m.Format, Rescaled: rescaled, Seconds: secs}
	if iv.OK {
		s.IntervalLevel = &iv.Level
	} else if spec.IntervalLevel != 0 {
		s.IntervalNote = iv.Note
	}
	if secs > 0 {
		s.WindowsPerSecond = float64(len(ps)) / secs
	}
	env.Log.Info("predicted", "windows", spec.Windows, "rows", len(ps), "splits", fmt.Sprint(sortedKeys(s.Splits)),
		"seconds", secs, "out", spec.Out)
	return s, nil
}
