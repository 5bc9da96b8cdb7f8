package model

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
)

// Checkpoint metadata keys (safetensors __metadata__, string values; JSON for
// structured ones).
const (
	MetaFormat       = "format" // "pt", as safetensors.torch writes
	MetaArch         = "modax.arch"
	MetaFeatures     = "modax.features"
	MetaWindow       = "modax.window"
	MetaScaler       = "modax.scaler"
	MetaHorizon      = "modax.horizon_hours"
	MetaThresholds   = "modax.thresholds"
	MetaTrain        = "modax.train"
	MetaHistory      = "modax.history"
	MetaModelVersion = "modax.model_version"
	MetaRunID        = "modax.run_id"
	MetaCreatedAt    = "modax.created_at"
	MetaInputs       = "modax.inputs"
	MetaToolVersion  = "modax.tool_version"
	MetaSeed         = "modax.seed"
	// MetaWriteSet is the ID of the write set the file was committed in
	// (internal/atomicfile): a checkpoint and its optimizer state carry the
	// same one.
	MetaWriteSet = "modax.write_set"
	// MetaCalibration is the interval calibration (conformal.Calibration
	// JSON), absent for a model trained without a val split.
	MetaCalibration = "modax.calibration"
)

// Epoch is one row of the training history.
type Epoch struct {
	Epoch       int     `json:"epoch"`
	TrainLoss   float64 `json:"train_loss"`
	ValLoss     float64 `json:"val_loss"`
	TrainRMSE   float64 `json:"train_rmse"`
	ValRMSE     float64 `json:"val_rmse"`
	LR          float64 `json:"lr"`
	SamplesPerS float64 `json:"samples_per_s"`
	Seconds     float64 `json:"seconds"`
}

// Info is what a checkpoint says about its model besides the weights: what the
// input must look like, how it was trained, where it came from.
type Info struct {
	Arch         Arch               `json:"arch"`
	Features     []string           `json:"features"`
	Window       int                `json:"window"`
	Scaler       dataset.Scaler     `json:"scaler"`
	Horizon      float64            `json:"horizon_hours"`
	Thresholds   dataset.Thresholds `json:"thresholds"`
	ModelVersion string             `json:"model_version"`
	RunID        string             `json:"run_id,omitempty"`
	CreatedAt    string             `json:"created_at"`
	ToolVersion  string             `json:"tool_version,omitempty"`
	Seed         uint64             `json:"seed"`
	// Train holds the training options (engine-specific JSON).
	Train   json.RawMessage `json:"train,omitempty"`
	History []Epoch         `json:"history,omitempty"`
	Inputs  []dataset.Input `json:"inputs,omitempty"`
	// WriteSet is the ID of the write set the checkpoint was saved in (""
	// for a checkpoint saved alone).
	WriteSet string `json:"write_set,omitempty"`
	// Calibration gives predictions their intervals (nil: uncalibrated).
	Calibration *conformal.Calibration `json:"calibration,omitempty"`
	// WeightsSHA256 is the weights digest the file recorded
	// (MetaWeightsSHA256, verified on load; "" for a file written before
	// digests were recorded). Saving records the digest of the saved
	// tensors whatever this says.
	WeightsSHA256 string `json:"weights_sha256,omitempty"`
}

// Checkpoint is a model's parameters with its Info.
type Checkpoint struct {
	Params *Params
	Info   Info
}

func (ck *Checkpoint) meta() (map[string]string, error) {
	m := map[string]string{MetaFormat: "pt"}
	set := func(k string, v any) error {
		if s, ok := v.(string); ok {
			m[k] = s
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("checkpoint metadata %s: %w", k, err)
		}
		m[k] = string(b)
		return nil
	}
	in := ck.Info
	for _, kv := range []struct {
		k string
		v any
	}{
		{MetaArch, in.Arch}, {MetaFeatures, in.Features}, {MetaWindow, in.Window}, {MetaScaler, in.Scaler},
		{MetaHorizon, in.Horizon}, {MetaThresholds, in.Thresholds}, {MetaModelVersion, in.ModelVersion},
		{MetaCreatedAt, in.CreatedAt}, {MetaSeed, in.Seed}, {MetaHistory, in.History}, {MetaInputs, in.Inputs},
	} {
		if err := set(kv.k, kv.v); err != nil {
			return nil, err
		}
	}
	if in.RunID != "" {
		m[MetaRunID] = in.RunID
	}
	if in.ToolVersion != "" {
		m[MetaToolVersion] = in.ToolVersion
	}
	if len(in.Train) > 0 {
		m[MetaTrain] = string(in.Train)
	}
	if in.Calibration != nil {
		if err := set(MetaCalibration, in.Calibration); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Save writes the checkpoint atomically as safetensors. Extra tensors (e.g.
// optimizer state) belong in a separate file so that PyTorch's strict
// load_state_dict accepts this one.
func Save(path string, ck *Checkpoint) error {
	if ck.Params.Arch != ck.Info.Arch {
		return fmt.Errorf("save %s: params architecture %+v differs from info %+v", path, ck.Params.Arch, ck.Info.Arch)
	}
	meta, err := ck.meta()
	if err != nil {
		return err
	}
	return WriteSafetensors(path, ck.Params.Tensors, meta)
}

// SaveIn writes the checkpoint as a file of the write set set (it is in place
// once the set is committed) and records the set's ID.
func SaveIn(set *atomicfile.Set, path string, ck *Checkpoint) error {
	if ck.Params.Arch != ck.Info.Arch {
		return fmt.Errorf("save %s: params architecture %+v differs from info %+v", path, ck.Params.Arch, ck.Info.Arch)
	}
	meta, err := ck.meta()
	if err != nil {
		return err
	}
	return WriteSafetensorsIn(set, path, ck.Params.Tensors, meta)
}

// Load reads a checkpoint and checks that its tensors are exactly those of its
// recorded architecture.
func Load(path string) (*Checkpoint, error) {
	ts, meta, err := ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	var in Info
	get := func(k string, v any, required bool) error {
		s, ok := meta[k]
		if !ok {
			if required {
				return fmt.Errorf("checkpoint %s: metadata lacks %s (not a modax-ml checkpoint?)", path, k)
			}
			return nil
		}
		if p, ok := v.(*string); ok {
			*p = s
			return nil
		}
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return fmt.Errorf("checkpoint %s: metadata %s: %w", path, k, err)
		}
		return nil
	}
	for _, kv := range []struct {
		k   string
		v   any
		req bool
	}{
		{MetaArch, &in.Arch, true}, {MetaFeatures, &in.Features, true}, {MetaWindow, &in.Window, true},
		{MetaScaler, &in.Scaler, true}, {MetaHorizon, &in.Horizon, true}, {MetaThresholds, &in.Thresholds, true},
		{MetaModelVersion, &in.ModelVersion, false}, {MetaRunID, &in.RunID, false}, {MetaCreatedAt, &in.CreatedAt, false},
		{MetaToolVersion, &in.ToolVersion, false}, {MetaSeed, &in.Seed, false}, {MetaHistory, &in.History, false},
		{MetaInputs, &in.Inputs, false}, {MetaCalibration, &in.Calibration, false},
	} {
		if err := get(kv.k, kv.v, kv.req); err != nil {
			return nil, fmt.Errorf("%w: %w", exitcode.ErrValidation, err)
		}
	}
	if in.Window < 0 || in.Window > dataset.MaxWindow {
		return nil, fmt.Errorf("%w: checkpoint %s: metadata %s %d: want 0 to %d time steps", exitcode.ErrValidation, path, MetaWindow, in.Window, dataset.MaxWindow)
	}
	in.WriteSet = meta[MetaWriteSet]
	if s, ok := meta[MetaTrain]; ok {
		in.Train = json.RawMessage(s)
	}
	if err := in.Calibration.Validate(); err != nil {
		return nil, fmt.Errorf("checkpoint %s: metadata %s: %w", path, MetaCalibration, err)
	}
	p, err := ParamsFrom(in.Arch, ts)
	if err != nil {
		return nil, fmt.Errorf("%w: checkpoint %s: %w", exitcode.ErrValidation, path, err)
	}
	in.WeightsSHA256 = meta[MetaWeightsSHA256]
	if in.WeightsSHA256 == "" {
		slog.Debug("checkpoint records no weights digest (written before digests were recorded)", "path", path)
	}
	if in.Arch.Type == TypeLSTM && in.Arch.InputSize != len(in.Features) {
		return nil, fmt.Errorf("checkpoint %s: input size %d but %d features", path, in.Arch.InputSize, len(in.Features))
	}
	return &Checkpoint{Params: p, Info: in}, nil
}
