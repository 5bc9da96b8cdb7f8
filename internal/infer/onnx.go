package infer

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"golang.org/x/sync/errgroup"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
)

// LoadONNX loads a model.onnx written by `modax-ml export` and runs it with
// gonnx (an ONNX interpreter independent of the native forward pass) on
// workers goroutines, one interpreter each. The input contract (features,
// window, scaling) comes from the file's metadata_props; a model with the
// scaler embedded takes raw sensor values, so predict un-scales the windows
// for it.
func LoadONNX(path string, workers int) (*Model, error) {
	b, err := location.ReadFile(context.Background(), path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	mp, err := onnxmodel.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	props := onnxmodel.Props(mp)
	if t := props[onnxmodel.MetaModelType]; t != model.TypeLSTM {
		return nil, fmt.Errorf("%w: %s is a %s model: predict runs LSTM models over windows", exitcode.ErrUsage, path, t)
	}
	m := &Model{Path: path, SHA256: onnxmodel.SHA256(b), Version: props[onnxmodel.MetaModelVersion], Format: "onnx", WeightsSHA256: props[onnxmodel.MetaWeightsSHA256]}
	get := func(key string, v any) error {
		s, ok := props[key]
		if !ok {
			return fmt.Errorf("load %s: metadata_props lack %s", path, key)
		}
		if err := json.Unmarshal([]byte(s), v); err != nil {
			return fmt.Errorf("load %s: metadata %s: %w", path, key, err)
		}
		return nil
	}
	var sc dataset.Scaler
	for _, kv := range []struct {
		key string
		v   any
	}{{onnxmodel.MetaFeatures, &m.Features}, {onnxmodel.MetaWindow, &m.Window}, {onnxmodel.MetaHorizon, &m.Horizon},
		{onnxmodel.MetaThresholds, &m.Thresholds}, {onnxmodel.MetaScaler, &sc}} {
		if err := get(kv.key, kv.v); err != nil {
			return nil, err
		}
	}
	if m.Window < 1 || m.Window > dataset.MaxWindow {
		return nil, fmt.Errorf("%w: load %s: metadata %s %d: want 1 to %d time steps", exitcode.ErrValidation, path, onnxmodel.MetaWindow, m.Window, dataset.MaxWindow)
	}
	if _, ok := props[onnxmodel.MetaCalibration]; ok {
		if err := get(onnxmodel.MetaCalibration, &m.Calibration); err != nil {
			return nil, err
		}
		if err := m.Calibration.Validate(); err != nil {
			return nil, fmt.Errorf("load %s: metadata %s: %w", path, onnxmodel.MetaCalibration, err)
		}
	}
	embedded, err := strconv.ParseBool(props[onnxmodel.MetaScalerEmbedded])
	if err != nil {
		return nil, fmt.Errorf("load %s: metadata %s: %w", path, onnxmodel.MetaScalerEmbedded, err)
	}
	m.trained = &sc
	if !embedded {
		if !sc.PerCondition() && (len(sc.Offset) != len(m.Features) || len(sc.Scale) != len(m.Features)) {
			return nil, fmt.Errorf("load %s: scaler has %d/%d parameters for %d features", path, len(sc.Offset), len(sc.Scale), len(m.Features))
		}
		m.Scaler = &sc
	}
	workers = max(1, workers)
	runners := make([]*onnxmodel.Runner, workers)
	for i := range runners {
		if runners[i], err = onnxmodel.NewRunner(mp); err != nil {
			return nil, fmt.Errorf("load %s: %w", path, err)
		}
	}
	m.Forward = &onnxForward{runners: runners, t: m.Window, f: len(m.Features)}
	return m, nil
}

// onnxForward splits a batch over its gonnx runners.
type onnxForward struct {
	runners []*onnxmodel.Runner
	t, f    int
}

func (o *onnxForward) Predict(x []float32, b int, out []float32) error {
	if b == 0 {
		return nil
	}
	size := o.t * o.f
	if len(x) != b*size || len(out) < b {
		return fmt.Errorf("onnx: %d values for %d windows of %d×%d, output room %d", len(x), b, o.t, o.f, len(out))
	}
	chunk := (b + len(o.runners) - 1) / len(o.runners)
	var g errgroup.Group
	for k, lo := 0, 0; lo < b; k, lo = k+1, lo+chunk {
		hi := min(lo+chunk, b)
		r := o.runners[k]
		g.Go(func() error {
			y, err := r.Run(x[lo*size:hi*size], hi-lo, o.t, o.f)
			if err != nil {
				return err
			}
			copy(out[lo:hi], y)
			return nil
		})
	}
	return g.Wait()
}
