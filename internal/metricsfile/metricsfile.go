// Package metricsfile reads the contract part of metrics.json (CONTRACTS.md):
// the schema, the model it belongs to (sha256 of model.safetensors) and the
// per-split mae, rmse, score and n. Everything else in the file is evaluate's
// to shape and is kept verbatim in Raw.
package metricsfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/location"
)

// Schema is the value of the "schema" key.
const Schema = "modax.metrics/v1"

// Metrics are the metric names a gate can use.
var Metrics = []string{"mae", "rmse", "score"}

// Ref names a file with its content hash.
type Ref struct {
	Path         string `json:"path"`
	SHA256       string `json:"sha256"`
	ModelVersion string `json:"model_version,omitempty"`
}

// Split holds the contract metrics of one split; nil means undefined (null).
type Split struct {
	N     int      `json:"n"`
	MAE   *float64 `json:"mae"`
	RMSE  *float64 `json:"rmse"`
	Score *float64 `json:"score"`
}

// File is a decoded metrics.json.
type File struct {
	Schema    string           `json:"schema"`
	CreatedAt string           `json:"created_at"`
	Model     Ref              `json:"model"`
	Windows   *Ref             `json:"windows,omitempty"`
	Splits    map[string]Split `json:"splits"`
	// Path and SHA256 of the metrics file itself.
	Path   string          `json:"-"`
	SHA256 string          `json:"-"`
	Raw    json.RawMessage `json:"-"`
}

// Read reads and checks a metrics file.
func Read(path string) (*File, error) {
	b, err := location.ReadFile(context.Background(), path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return Decode(path, b)
}

// Decode parses the bytes of the metrics file at path.
func Decode(path string, b []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("metrics %s: %w", path, err)
	}
	if f.Schema != Schema {
		return nil, fmt.Errorf("metrics %s: schema %q, want %q", path, f.Schema, Schema)
	}
	if f.Model.SHA256 == "" {
		return nil, fmt.Errorf("metrics %s: model.sha256 is missing (which model do these metrics belong to?)", path)
	}
	// encoding/json matches keys regardless of case, SplitsJSON (what
	// export and deploy embed) by the exact key: they must agree.
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("metrics %s: %w", path, err)
	}
	if _, ok := top["splits"]; len(f.Splits) == 0 || !ok {
		return nil, fmt.Errorf("metrics %s: no splits", path)
	}
	f.Path, f.Raw, f.SHA256 = path, json.RawMessage(slices.Clone(b)), sha(b)
	return &f, nil
}

// CheckModel returns an error unless the metrics belong to the checkpoint
// with the given sha256.
func (f *File) CheckModel(modelSHA string) error {
	if f.Model.SHA256 != modelSHA {
		return fmt.Errorf("metrics %s belong to another model (model.sha256 %s…, this checkpoint is %s…): evaluate this model first", f.Path, short(f.Model.SHA256), short(modelSHA))
	}
	return nil
}

// Value returns metric ("mae", "rmse" or "score") of split, and whether it is
// defined and finite.
func (f *File) Value(split, metric string) (float64, bool) {
	s, ok := f.Splits[split]
	if !ok {
		return 0, false
	}
	var p *float64
	switch metric {
	case "mae":
		p = s.MAE
	case "rmse":
		p = s.RMSE
	case "score":
		p = s.Score
	}
	if p == nil || math.IsNaN(*p) || math.IsInf(*p, 0) {
		return 0, false
	}
	return *p, true
}

// SplitsJSON returns the "splits" object as compact JSON (for embedding).
func (f *File) SplitsJSON() (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(f.Raw, &m); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, m["splits"]); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
