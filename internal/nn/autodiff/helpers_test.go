package autodiff

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/testutil"
)

// smallArch is the architecture of the gradient tests: two layers, so the
// inter-layer dropout path is exercised, and sizes small enough for a
// finite-difference check of every parameter.
func smallArch() model.Arch {
	return model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 2, FC: 5, Dropout: 0.25}
}

// batch returns seeded inputs x [b][t][F] and targets y [b] spread so that
// Huber(1) sees residuals on both sides of delta.
func batch(seed uint64, arch model.Arch, b, t int) (x, y []float32) {
	rng := rand.New(rand.NewPCG(seed, 7))
	x = make([]float32, b*t*arch.InputSize)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y = make([]float32, b)
	for i := range y {
		y[i] = float32(rng.NormFloat64() * 2)
	}
	return x, y
}

// initParams returns PyTorch-default parameters with a seed.
func initParams(t testing.TB, arch model.Arch, seed uint64) *model.Params {
	t.Helper()
	p, err := model.NewParams(arch)
	if err != nil {
		t.Fatal(err)
	}
	p.Init(seed)
	return p
}

// masks draws dropout masks (never nil for these tests' dropout > 0).
func masks(seed uint64, arch model.Arch, b, t int) *nn.Masks {
	return nn.NewMasks(rand.New(rand.NewPCG(seed, 11)), arch, b, t)
}

// gradsF64 runs the training graph and returns the loss and every
// parameter's gradient at the engine's precision, in Spec order.
func gradsF64(t testing.TB, e *Engine, x, y []float32, b int, m *nn.Masks) (float64, [][]float64) {
	t.Helper()
	gr, loss, err := e.train(x, y, b, m)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(gr.grads))
	for i, n := range gr.grads {
		out[i] = toFloat64(n.Value())
	}
	return loss, out
}

// relErr is ‖a − b‖₂ / ‖b‖₂ (‖a − b‖₂ when b is zero).
func relErr(a, b []float64) float64 {
	var d, n float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		n += b[i] * b[i]
	}
	if n == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d / n)
}

func f64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

// torchCase is the input of testdata/masked_ref.py.
type torchCase struct {
	Arch   model.Arch           `json:"arch"`
	Dtype  string               `json:"dtype"`
	Params map[string][]float32 `json:"params"`
	B      int                  `json:"b"`
	T      int                  `json:"t"`
	X      []float32            `json:"x"`
	Y      []float32            `json:"y"`
	Inter  [][]float32          `json:"inter,omitempty"`
	FC     []float32            `json:"fc,omitempty"`
	Huber  float64              `json:"huber"`
	Adam   *nn.Adam             `json:"adam,omitempty"`
	Steps  int                  `json:"steps"`
	LRs    []float64            `json:"lrs,omitempty"`
}

// torchResult is its output.
type torchResult struct {
	Loss        float64              `json:"loss"`
	Grads       map[string][]float64 `json:"grads"`
	Out         []float64            `json:"out"`
	StepLosses  []float64            `json:"step_losses"`
	ParamsAfter map[string][]float64 `json:"params_after"`
}

func newTorchCase(p *model.Params, dtype string, x, y []float32, b, t int, m *nn.Masks) torchCase {
	c := torchCase{Arch: p.Arch, Dtype: dtype, Params: map[string][]float32{}, B: b, T: t, X: x, Y: y}
	for _, tt := range p.Tensors {
		c.Params[tt.Name] = tt.Data
	}
	if m != nil {
		c.Inter, c.FC = m.Inter, m.FC
	}
	return c
}

// runTorch runs the PyTorch reference (Debian's python3-torch) on cases, in
// one process (importing torch takes seconds).
func runTorch(t *testing.T, c ...torchCase) []torchResult {
	t.Helper()
	py := testutil.Python(t, "torch")
	in, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "masked_ref.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), py, script)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("masked_ref.py: %v\n%s", err, stderr.String())
	}
	var r []torchResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("masked_ref.py output: %v", err)
	}
	if len(r) != len(c) {
		t.Fatalf("masked_ref.py returned %d results for %d cases", len(r), len(c))
	}
	return r
}

// toFloat64 returns the elements of a tensor Value in row-major order.
func toFloat64(v G.Value) []float64 {
	d, err := contiguous(v)
	if err != nil {
		panic(err)
	}
	switch s := d.Data().(type) {
	case []float32:
		out := make([]float64, len(s))
		for i, x := range s {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return slices.Clone(s)
	}
	panic(fmt.Sprintf("autodiff: unexpected tensor data %T", d.Data()))
}
