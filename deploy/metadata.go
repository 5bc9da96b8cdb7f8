package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/metricsfile"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
)

// MetadataSchema is the schema of model_metadata.json.
const MetadataSchema = "modax.model_metadata/v1"

// FileRef names a file of the release with its hash.
type FileRef struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes,omitempty"`
}

// ONNXInfo describes the served ONNX file.
type ONNXInfo struct {
	FileRef
	Opset          int    `json:"opset"`
	IRVersion      int64  `json:"ir_version"`
	Input          string `json:"input"`  // name and layout, e.g. "input [batch,50,5] raw sensor values"
	Output         string `json:"output"` // "output [batch,1] hours"
	DynamicSeq     bool   `json:"dynamic_seq"`
	ScalerEmbedded bool   `json:"scaler_embedded"`
}

// Metadata is model_metadata.json: what a consumer of rul_predictor.onnx
// needs to feed it and to judge it. Metrics are the evaluation's real
// numbers (the design wrote config.get('metrics', {}), always empty).
type Metadata struct {
	Schema          string             `json:"schema"`
	ModelVersion    string             `json:"model_version"`
	ModelType       string             `json:"model_type"`
	Architecture    model.Arch         `json:"architecture"`
	TrainingDate    string             `json:"training_date"`
	DeployedAt      time.Time          `json:"deployed_at"`
	PreviousVersion string             `json:"previous_version,omitempty"`
	Features        []string           `json:"features"`
	Window          int                `json:"window"`
	HorizonHours    float64            `json:"horizon_hours"`
	Thresholds      dataset.Thresholds `json:"thresholds"`
	Scaler          dataset.Scaler     `json:"scaler"`
	// Calibration gives the served model's predictions their intervals
	// (absent: uncalibrated).
	Calibration *conformal.Calibration `json:"calibration,omitempty"`
	ONNX        ONNXInfo               `json:"onnx"`
	Checkpoint  FileRef                `json:"checkpoint"`
	// WeightsSHA256 is the weights digest (model.WeightsDigest) of the
	// version's checkpoint, the same as its ONNX model's
	// modax.weights_sha256; a loader of the deployed model checks the
	// weights it loaded against it (CheckWeights). Absent in metadata
	// deployed before digests were recorded.
	WeightsSHA256 string `json:"weights_sha256,omitempty"`
	// TestMetrics are the gate split's contract metrics; Metrics the whole
	// "splits" object of metrics.json as evaluate wrote it.
	TestMetrics metricsfile.Split `json:"test_metrics"`
	Metrics     json.RawMessage   `json:"metrics"`
	MetricsFile FileRef           `json:"metrics_file"`
	// Validation is the validation report published with the version (the
	// training data's reference statistics for monitor); nil when none was.
	Validation    *FileRef        `json:"validation,omitempty"`
	DataRange     json.RawMessage `json:"data_range"`
	TrainingRunID string          `json:"training_run_id,omitempty"`
	ExportRunID   string          `json:"export_run_id,omitempty"`
	DeployRunID   string          `json:"deploy_run_id,omitempty"`
	ToolVersion   string          `json:"tool_version"`
	GitCommit     string          `json:"git_commit,omitempty"`
}

func newMetadata(c *candidate, opts Options) (*Metadata, error) {
	in := c.ck.Info
	p := onnxmodel.Props(c.mp)
	splits, err := c.metrics.SplitsJSON()
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", opts.Metrics, err)
	}
	embedded, _ := strconv.ParseBool(p[onnxmodel.MetaScalerEmbedded])
	dynamic := false
	var input string
	if g := c.mp.GetGraph(); g != nil && len(g.GetInput()) == 1 {
		input = g.GetInput()[0].GetName() + " " + shapeString(g.GetInput()[0])
		for _, d := range g.GetInput()[0].GetType().GetTensorType().GetShape().GetDim() {
			if d.GetDimParam() == "seq" {
				dynamic = true
			}
		}
	}
	if embedded {
		input += " raw sensor values"
	} else {
		input += " scaled values"
	}
	md := &Metadata{
		Schema: MetadataSchema, ModelVersion: c.version, ModelType: c.ck.Params.Arch.Type, Architecture: c.ck.Params.Arch,
		TrainingDate: in.CreatedAt, Features: in.Features, Window: in.Window, HorizonHours: in.Horizon, Thresholds: in.Thresholds,
		Scaler: in.Scaler, Calibration: in.Calibration,
		ONNX: ONNXInfo{FileRef: FileRef{File: fileONNX, SHA256: onnxmodel.SHA256(c.onnx), Bytes: int64(len(c.onnx))},
			Opset: onnxmodel.Opset(c.mp), IRVersion: c.mp.GetIrVersion(), Input: input, Output: onnxmodel.OutputName + " [batch,1] hours",
			DynamicSeq: dynamic, ScalerEmbedded: embedded},
		Checkpoint:    FileRef{File: fileCheckpoint, SHA256: c.ckSHA, Bytes: int64(len(c.ckBytes))},
		WeightsSHA256: model.WeightsDigest(c.ck.Params.Tensors),
		TestMetrics:   c.metrics.Splits[opts.Split],
		Metrics:       splits,
		MetricsFile:   FileRef{File: fileMetrics, SHA256: c.metrics.SHA256, Bytes: int64(len(c.metrics.Raw))},
		TrainingRunID: in.RunID, ExportRunID: p[onnxmodel.MetaRunID],
		GitCommit: gitCommit(),
	}
	if c.validation != nil {
		md.Validation = &FileRef{File: fileValidation, SHA256: onnxmodel.SHA256(c.validation), Bytes: int64(len(c.validation))}
	}
	if dr := p[onnxmodel.MetaDataRange]; dr != "" && json.Valid([]byte(dr)) {
		md.DataRange = json.RawMessage(dr)
	} else {
		md.DataRange = json.RawMessage("null")
	}
	return md, nil
}

// shapeString renders a value's dims, e.g. "[batch,50,5]".
func shapeString(vi *onnx.ValueInfoProto) string {
	var ds []string
	for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
		if p := d.GetDimParam(); p != "" {
			ds = append(ds, p)
		} else {
			ds = append(ds, strconv.FormatInt(d.GetDimValue(), 10))
		}
	}
	return "[" + strings.Join(ds, ",") + "]"
}

// CheckWeights compares the weights digest of a model loaded from the
// version (file names it) with the one the metadata records. Metadata
// written before digests were recorded has none and passes; a loaded model
// without one (an ONNX file exported before digests were recorded) cannot be
// checked and passes too. A mismatch wraps model.ErrWeightsDigest and
// exitcode.ErrValidation (exit 3).
func (m *Metadata) CheckWeights(file, digest string) error {
	if m.WeightsSHA256 == "" || digest == "" || digest == m.WeightsSHA256 {
		return nil
	}
	return fmt.Errorf("%w: %s: %w: model_metadata.json records weights_sha256 %.12s…, the weights loaded give %.12s… (corrupt or replaced; redeploy)",
		exitcode.ErrValidation, file, model.ErrWeightsDigest, m.WeightsSHA256, digest)
}

func readMetadata(path string) (*Metadata, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s is not a model_metadata.json: %w", path, err)
	}
	if m.Schema != MetadataSchema {
		return nil, fmt.Errorf("%s is not a model_metadata.json (schema %q, want %q)", path, m.Schema, MetadataSchema)
	}
	return &m, nil
}

// Served is the deployed model as a consumer of the model directory finds it:
// the version models/rul_predictor.onnx points at, resolved once, so that its
// files and metadata come from one version even while a deploy switches.
type Served struct {
	// Dir is the version's directory (models/versions/<version>).
	Dir        string
	Metadata   *Metadata
	ONNX       string // Dir/model.onnx
	Checkpoint string // Dir/model.safetensors
}

// ReadServed resolves the served model of a model directory. The error says
// so when nothing is deployed there.
func ReadServed(modelsDir string) (*Served, error) {
	link := filepath.Join(modelsDir, servedONNX)
	resolved, err := filepath.EvalSymlinks(link)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no deployed model: %s does not exist (deploy one, or name a model with --model)", link)
	}
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(resolved)
	md, err := readMetadata(filepath.Join(dir, fileMetadata))
	if err != nil {
		return nil, fmt.Errorf("served model %s: %w", link, err)
	}
	if md.Checkpoint.File != fileCheckpoint {
		return nil, fmt.Errorf("served model %s: model_metadata.json names checkpoint %q, want %s", link, md.Checkpoint.File, fileCheckpoint)
	}
	return &Served{Dir: dir, Metadata: md, ONNX: resolved, Checkpoint: filepath.Join(dir, fileCheckpoint)}, nil
}
