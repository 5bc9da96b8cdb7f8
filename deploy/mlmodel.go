package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/onnxmodel"
)

// The MLflow model files of a version directory: with them the directory
// (and the "model" artifact deploy logs to MLflow from it) is an MLflow
// model that mlflow.pyfunc.load_model and mlflow.onnx.load_model can load.
const (
	fileMLmodel      = "MLmodel"
	fileConda        = "conda.yaml"
	filePythonEnv    = "python_env.yaml"
	fileRequirements = "requirements.txt"
)

// mlflowFiles are the optional version files deploy writes for MLflow.
var mlflowFiles = []string{fileMLmodel, fileConda, filePythonEnv, fileRequirements}

// MLflowFiles returns the names of the MLflow model files of a version
// directory (MLmodel and its environment files), beside model.onnx.
func MLflowFiles() []string { return slices.Clone(mlflowFiles) }

// The MLmodel file follows the format MLflow's Model.to_dict/to_yaml writes
// (mlflow/models/model.py) with the flavors mlflow.onnx.save_model adds
// (mlflow/onnx/__init__.py: "onnx" and "python_function" through
// pyfunc.add_to_model). MLflowVersion is the release recorded as
// mlflow_version; ONNXVersion the onnx package recorded as onnx_version (the
// one whose checker tests every export, Debian's python3-onnx); PythonVersion
// the interpreter python_env.yaml asks for (the model has no Python code).
const (
	MLflowVersion = "2.16.2"
	ONNXVersion   = "1.12.0"
	PythonVersion = "3.11.2"
)

// requirements are the pip requirements of the pyfunc flavor: the loader
// (mlflow.onnx) and the runtime it runs the model with.
var requirements = []string{"mlflow>=" + MLflowVersion, "onnx>=" + ONNXVersion, "onnxruntime>=1.16"}

// tensorSpec is one entry of an MLflow tensor-based signature
// (mlflow.types.TensorSpec.to_dict).
type tensorSpec struct {
	Name   string     `json:"name,omitempty"`
	Type   string     `json:"type"`
	Tensor tensorType `json:"tensor-spec"`
}

type tensorType struct {
	DType string `json:"dtype"`
	Shape []int  `json:"shape"`
}

// MLmodelSignature is the model's MLflow signature: inputs and outputs are
// JSON strings, as MLflow stores them.
type MLmodelSignature struct {
	Inputs  string  `yaml:"inputs"`
	Outputs string  `yaml:"outputs"`
	Params  *string `yaml:"params"`
}

// newModelUUID returns a random 32-hex-digit id (MLflow: uuid.uuid4().hex).
func newModelUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("model uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:]), nil
}

// mlflowModel renders the MLmodel file and the environment files of a
// release described by md, whose ONNX graph takes input (the graph's input
// name) of the given shape (-1: the batch) and returns onnxmodel.OutputName.
func mlflowModel(md *Metadata, input string, shape []int, created time.Time) (map[string][]byte, error) {
	if input == "" {
		return nil, fmt.Errorf("MLmodel: the ONNX graph has no single input")
	}
	in, err := json.Marshal([]tensorSpec{{Name: input, Type: "tensor", Tensor: tensorType{DType: "float32", Shape: shape}}})
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal([]tensorSpec{{Name: onnxmodel.OutputName, Type: "tensor", Tensor: tensorType{DType: "float32", Shape: []int{-1, 1}}}})
	if err != nil {
		return nil, err
	}
	id, err := newModelUUID()
	if err != nil {
		return nil, err
	}
	layout := "scaled values (apply metadata.scaler first)"
	if md.ONNX.ScalerEmbedded {
		layout = "raw sensor values (the graph scales them)"
	}
	// Keys as MLflow writes them (yaml.safe_dump sorts them).
	doc := map[string]any{
		"flavors": map[string]any{
			"onnx": map[string]any{
				"code":         nil,
				"data":         fileONNX,
				"onnx_version": ONNXVersion,
				"providers":    []string{"CPUExecutionProvider"},
			},
			"python_function": map[string]any{
				"data":           fileONNX,
				"env":            map[string]string{"conda": fileConda, "virtualenv": filePythonEnv},
				"loader_module":  "mlflow.onnx",
				"python_version": PythonVersion,
			},
		},
		"metadata": map[string]any{
			"modax_model_version": md.ModelVersion,
			"model_type":          md.ModelType,
			"features":            md.Features,
			"window":              md.Window,
			"input":               fmt.Sprintf("float32 %v (batch first; %d features in the order of features): %s", shape, len(md.Features), layout),
			"output":              "float32 [batch, 1]: remaining useful life in hours",
			"horizon_hours":       md.HorizonHours,
			"onnx_sha256":         md.ONNX.SHA256,
			"checkpoint_sha256":   md.Checkpoint.SHA256,
		},
		"mlflow_version":   MLflowVersion,
		"model_uuid":       id,
		"signature":        MLmodelSignature{Inputs: string(in), Outputs: string(out)},
		"utc_time_created": created.UTC().Format("2006-01-02 15:04:05.000000"),
	}
	mlmodel, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("MLmodel: %w", err)
	}
	pip := strings.Join(requirements, "\n")
	conda := map[string]any{
		"channels": []string{"conda-forge"},
		"dependencies": []any{
			"python=" + PythonVersion,
			"pip",
			map[string]any{"pip": requirements},
		},
		"name": "mlflow-env",
	}
	condaYAML, err := yaml.Marshal(conda)
	if err != nil {
		return nil, err
	}
	pyenv := map[string]any{
		"python":             PythonVersion,
		"build_dependencies": []string{"pip", "setuptools", "wheel"},
		"dependencies":       []string{"-r " + fileRequirements},
	}
	pyenvYAML, err := yaml.Marshal(pyenv)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{fileMLmodel: mlmodel, fileConda: condaYAML, filePythonEnv: pyenvYAML, fileRequirements: []byte(pip + "\n")}, nil
}

// addMLflowFiles adds the MLflow model files of candidate c to files.
func addMLflowFiles(files map[string][]byte, c *candidate, now time.Time) error {
	input := ""
	var shape []int
	if g := c.mp.GetGraph(); g != nil && len(g.GetInput()) == 1 {
		in := g.GetInput()[0]
		input = in.GetName()
		// The batch axis is -1 (any); a dynamic sequence axis is the
		// training window, the length the model was validated at.
		for i, d := range in.GetType().GetTensorType().GetShape().GetDim() {
			switch {
			case i == 0:
				shape = append(shape, -1)
			case d.GetDimParam() == "seq":
				shape = append(shape, c.metadata.Window)
			case d.GetDimParam() != "":
				shape = append(shape, -1)
			default:
				shape = append(shape, int(d.GetDimValue()))
			}
		}
	}
	mf, err := mlflowModel(c.metadata, input, shape, now)
	if err != nil {
		return err
	}
	for name, b := range mf {
		files[name] = b
	}
	return nil
}
