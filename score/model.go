package score

import (
	"fmt"

	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/infer"
)

// ModelInfo is what the result says about the model scored with.
type ModelInfo struct {
	Path    string `json:"path"`
	SHA256  string `json:"sha256"`
	Version string `json:"model_version"`
	Format  string `json:"format"`
	// Deployed names the model directory when the served model was used.
	Deployed string `json:"deployed,omitempty"`
	// Interval is false when the model has no interval calibration.
	Interval bool `json:"interval"`
}

// loadModel loads --model, or the checkpoint of the version the model
// directory serves (its native forward pass; the served ONNX file is the
// same model, see deploy). The checkpoint must be the one the version's
// model_metadata.json names.
func loadModel(s *settings, workers int) (*infer.Model, ModelInfo, error) {
	if s.Model != "" {
		m, err := infer.Load(s.Model, workers)
		if err != nil {
			return nil, ModelInfo{}, fmt.Errorf("score: %w", err)
		}
		return m, ModelInfo{Path: m.Path, SHA256: m.SHA256, Version: m.Version, Format: m.Format}, nil
	}
	sv, err := deploy.ReadServed(s.ModelsDir)
	if err != nil {
		return nil, ModelInfo{}, fmt.Errorf("%w: score: %w", exitcode.ErrUsage, err)
	}
	m, err := infer.Load(sv.Checkpoint, workers)
	if err != nil {
		return nil, ModelInfo{}, fmt.Errorf("score: served model %s: %w", sv.Dir, err)
	}
	if err := sv.Metadata.CheckWeights(sv.Checkpoint, m.WeightsSHA256); err != nil {
		m.Close()
		return nil, ModelInfo{}, fmt.Errorf("score: served model %s: %w", sv.Dir, err)
	}
	if m.SHA256 != sv.Metadata.Checkpoint.SHA256 {
		m.Close()
		return nil, ModelInfo{}, fmt.Errorf("score: served model %s: %s has sha256 %.12s…, its model_metadata.json records %.12s… (corrupt; redeploy)",
			sv.Dir, sv.Checkpoint, m.SHA256, sv.Metadata.Checkpoint.SHA256)
	}
	if m.Version != sv.Metadata.ModelVersion {
		m.Close()
		return nil, ModelInfo{}, fmt.Errorf("score: served model %s: checkpoint version %q, model_metadata.json says %q", sv.Dir, m.Version, sv.Metadata.ModelVersion)
	}
	return m, ModelInfo{Path: m.Path, SHA256: m.SHA256, Version: m.Version, Format: m.Format, Deployed: s.ModelsDir}, nil
}
