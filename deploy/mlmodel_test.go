package deploy

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/infer"
	"github.com/modax/modax-ml/internal/onnxmodel"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestMLmodel: every deployed version is an MLflow model directory. Its
// MLmodel file has the keys MLflow's loaders read (the onnx and
// python_function flavors, the signature, model_uuid, utc_time_created,
// mlflow_version), in YAML that PyYAML's safe_load (MLflow's parser) reads
// back with the same types; the files it names exist; and the model.onnx
// it points at runs in ONNX Runtime on an input of the signature's shape,
// predicting what modax-ml's own ONNX path predicts.
func TestMLmodel(t *testing.T) {
	models := filepath.Join(t.TempDir(), "models")
	c := candidateDir(t, 1, 7)
	res, err := Run(context.Background(), env(), opts(models, c))
	if err != nil {
		t.Fatal(err)
	}
	dir := res.Dir
	raw, err := os.ReadFile(filepath.Join(dir, fileMLmodel))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Flavors struct {
			ONNX struct {
				Code        *string  `yaml:"code"`
				Data        string   `yaml:"data"`
				ONNXVersion string   `yaml:"onnx_version"`
				Providers   []string `yaml:"providers"`
			} `yaml:"onnx"`
			PyFunc struct {
				Data          string            `yaml:"data"`
				Env           map[string]string `yaml:"env"`
				LoaderModule  string            `yaml:"loader_module"`
				PythonVersion string            `yaml:"python_version"`
			} `yaml:"python_function"`
		} `yaml:"flavors"`
		Signature      MLmodelSignature `yaml:"signature"`
		ModelUUID      string           `yaml:"model_uuid"`
		UTCTimeCreated string           `yaml:"utc_time_created"`
		MLflowVersion  string           `yaml:"mlflow_version"`
		Metadata       map[string]any   `yaml:"metadata"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("MLmodel: %v\n%s", err, raw)
	}
	t.Logf("MLmodel:\n%s", raw)
	f := m.Flavors
	if f.ONNX.Data != "model.onnx" || f.ONNX.ONNXVersion != ONNXVersion || len(f.ONNX.Providers) == 0 {
		t.Errorf("onnx flavor %+v", f.ONNX)
	}
	if f.PyFunc.LoaderModule != "mlflow.onnx" || f.PyFunc.Data != "model.onnx" || f.PyFunc.PythonVersion == "" ||
		f.PyFunc.Env["conda"] != "conda.yaml" || f.PyFunc.Env["virtualenv"] != "python_env.yaml" {
		t.Errorf("python_function flavor %+v", f.PyFunc)
	}
	for _, name := range []string{f.ONNX.Data, f.PyFunc.Env["conda"], f.PyFunc.Env["virtualenv"], "requirements.txt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("MLmodel names %s: %v", name, err)
		}
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(m.ModelUUID) || m.MLflowVersion != MLflowVersion {
		t.Errorf("model_uuid %q, mlflow_version %q", m.ModelUUID, m.MLflowVersion)
	}
	if _, err := time.Parse("2006-01-02 15:04:05.000000", m.UTCTimeCreated); err != nil {
		t.Errorf("utc_time_created: %v", err)
	}
	if m.Metadata["modax_model_version"] != "v1" || m.Metadata["window"] != 8 {
		t.Errorf("metadata %v", m.Metadata)
	}
	var in, out []tensorSpec
	if err := json.Unmarshal([]byte(m.Signature.Inputs), &in); err != nil {
		t.Fatalf("signature inputs %q: %v", m.Signature.Inputs, err)
	}
	if err := json.Unmarshal([]byte(m.Signature.Outputs), &out); err != nil {
		t.Fatalf("signature outputs %q: %v", m.Signature.Outputs, err)
	}
	if len(in) != 1 || in[0].Name != onnxmodel.InputName || in[0].Type != "tensor" || in[0].Tensor.DType != "float32" ||
		len(in[0].Tensor.Shape) != 3 || in[0].Tensor.Shape[0] != -1 || in[0].Tensor.Shape[1] != 8 || in[0].Tensor.Shape[2] != arch.InputSize {
		t.Errorf("signature inputs %+v", in)
	}
	if len(out) != 1 || out[0].Name != onnxmodel.OutputName || out[0].Tensor.DType != "float32" || len(out[0].Tensor.Shape) != 2 || out[0].Tensor.Shape[1] != 1 {
		t.Errorf("signature outputs %+v", out)
	}
	reqs, _ := os.ReadFile(filepath.Join(dir, "requirements.txt"))
	for _, r := range []string{"mlflow", "onnx", "onnxruntime"} {
		if !regexp.MustCompile(`(?m)^` + r + `[<>=]`).Match(reqs) {
			t.Errorf("requirements.txt lacks %s:\n%s", r, reqs)
		}
	}

	t.Run("pyyaml", func(t *testing.T) {
		py := testutil.Python(t, "yaml")
		got, err := exec.Command(py, "-c", `import json, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
print(json.dumps({"types": {k: type(v).__name__ for k, v in d.items()}, "inputs": json.loads(d["signature"]["inputs"]),
  "conda": yaml.safe_load(open(sys.argv[2])), "pyenv": yaml.safe_load(open(sys.argv[3]))}))`,
			filepath.Join(dir, fileMLmodel), filepath.Join(dir, fileConda), filepath.Join(dir, filePythonEnv)).Output()
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Types  map[string]string `json:"types"`
			Inputs []tensorSpec      `json:"inputs"`
			Conda  map[string]any    `json:"conda"`
			PyEnv  map[string]any    `json:"pyenv"`
		}
		if err := json.Unmarshal(got, &r); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"flavors": "dict", "signature": "dict", "model_uuid": "str", "utc_time_created": "str", "mlflow_version": "str", "metadata": "dict"}
		for k, v := range want {
			if r.Types[k] != v {
				t.Errorf("PyYAML reads %s as %s, want %s (all: %v)", k, r.Types[k], v, r.Types)
			}
		}
		if len(r.Inputs) != 1 || r.Inputs[0].Tensor.Shape[1] != 8 {
			t.Errorf("inputs through PyYAML %+v", r.Inputs)
		}
		if r.PyEnv["python"] != PythonVersion || r.Conda["name"] != "mlflow-env" {
			t.Errorf("python_env %v, conda %v", r.PyEnv, r.Conda)
		}
	})

	t.Run("onnxruntime", func(t *testing.T) {
		idir, node := testutil.InteropDir(t)
		shape := slicesReplace(in[0].Tensor.Shape, -1, 3)
		n := 1
		for _, d := range shape {
			n *= d
		}
		rng := rand.New(rand.NewPCG(1, 2))
		x := make([]float32, n)
		b := make([]byte, 4*n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x[i]))
		}
		tmp := t.TempDir()
		xp, yp := filepath.Join(tmp, "x.f32"), filepath.Join(tmp, "y.f32")
		if err := os.WriteFile(xp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		dims := make([]string, len(shape))
		for i, d := range shape {
			dims[i] = strconv.Itoa(d)
		}
		onnxPath := filepath.Join(dir, f.ONNX.Data)
		cmd := exec.Command(node, filepath.Join(idir, "ort_run.js"), "run", onnxPath, xp, strings.Join(dims, ","), yp)
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
		if o, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ort_run: %v\n%s", err, o)
		} else if !strings.Contains(string(o), `"dims":[3,1]`) || !strings.Contains(string(o), `"inputs":["`+in[0].Name+`"]`) || !strings.Contains(string(o), `"outputs":["`+out[0].Name+`"]`) {
			t.Fatalf("ort_run: %s", o)
		}
		yb, err := os.ReadFile(yp)
		if err != nil {
			t.Fatal(err)
		}
		m, err := infer.LoadONNX(onnxPath, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		want := make([]float32, 3)
		if err := m.Forward.Predict(x, 3, want); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			got := math.Float32frombits(binary.LittleEndian.Uint32(yb[4*i:]))
			if math.Abs(float64(got-want[i])) > 1e-3*(1+math.Abs(float64(want[i]))) {
				t.Errorf("window %d: ONNX Runtime %v, modax-ml %v", i, got, want[i])
			}
		}
	})
}

func slicesReplace(s []int, old, new int) []int {
	out := make([]int, len(s))
	for i, v := range s {
		if v == old {
			v = new
		}
		out[i] = v
	}
	return out
}
