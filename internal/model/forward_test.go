package model

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/testutil"
)

// TestForwardOneUnit checks the forward pass of a 1-unit LSTM over two steps
// against the LSTM equations written out by hand. Every gate has its own
// weight, so a swapped gate block changes the result.
func TestForwardOneUnit(t *testing.T) {
	p, err := NewParams(Arch{Type: TypeLSTM, InputSize: 1, Hidden: 1, Layers: 1, FC: 1})
	if err != nil {
		t.Fatal(err)
	}
	wih, whh, bih, bhh := p.Layer(0)
	// PyTorch gate order i, f, g, o.
	copy(wih.Data, []float32{0.5, -0.25, 0.75, 1.0})
	copy(whh.Data, []float32{0.125, 0.5, -0.5, 0.25})
	copy(bih.Data, []float32{0.1, 0.2, -0.1, 0.0})
	copy(bhh.Data, []float32{0.0, 0.3, 0.1, -0.2})
	p.Get("fc1.weight").Data[0] = 2
	p.Get("fc1.bias").Data[0] = 0.5
	p.Get("fc2.weight").Data[0] = -3
	p.Get("fc2.bias").Data[0] = 10

	x1, x2 := 1.0, -2.0
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	// Step 1 (h0 = c0 = 0).
	i1 := sig(0.5*x1 + 0.1)
	f1 := sig(-0.25*x1 + 0.2 + 0.3)
	_ = f1 // multiplies c0 = 0
	g1 := math.Tanh(0.75*x1 - 0.1 + 0.1)
	o1 := sig(1.0*x1 - 0.2)
	c1 := i1 * g1
	h1 := o1 * math.Tanh(c1)
	// Step 2.
	i2 := sig(0.5*x2 + 0.125*h1 + 0.1)
	f2 := sig(-0.25*x2 + 0.5*h1 + 0.5)
	g2 := math.Tanh(0.75*x2 - 0.5*h1)
	o2 := sig(1.0*x2 + 0.25*h1 - 0.2)
	c2 := f2*c1 + i2*g2
	h2 := o2 * math.Tanh(c2)
	want := -3*math.Max(2*h2+0.5, 0) + 10

	got, err := p.Forward([]float32{float32(x1), float32(x2)}, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(got[0])-want) > 1e-6 {
		t.Fatalf("Forward = %.9g, hand-computed %.9g", got[0], want)
	}
	// The same window twice in a batch gives the same value twice.
	got, err = p.Forward([]float32{float32(x1), float32(x2), float32(x1), float32(x2)}, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != got[1] {
		t.Fatalf("batch rows differ: %v", got)
	}
}

func TestForwardRidge(t *testing.T) {
	p, err := NewParams(Arch{Type: TypeRidge, InputSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Get("ridge.weight").Data, []float32{1, -2, 0.5})
	p.Get("ridge.bias").Data[0] = 4
	got, err := p.Forward([]float32{1, 1, 1, 2, 0, -4}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 3.5 || got[1] != 4 {
		t.Fatalf("ridge = %v, want [3.5 4]", got)
	}
	if _, err := p.Forward([]float32{1, 1, 1, 2, 0, -4}, 1, 2); err == nil {
		t.Fatal("ridge accepted a sequence")
	}
}

func TestForwardShapeErrors(t *testing.T) {
	p, err := NewParams(DefaultArch(4))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		n, b, t int
	}{{10, 1, 3}, {12, 2, 3}, {0, 1, 0}} {
		if _, err := p.Forward(make([]float32, tc.n), tc.b, tc.t); err == nil {
			t.Errorf("Forward(len %d, b %d, t %d) accepted", tc.n, tc.b, tc.t)
		}
	}
}

// TestForwardTorch compares Forward with PyTorch's nn.LSTM/nn.Linear (the
// design's LSTMRULPredictor, float64, eval mode) loaded strictly from the same
// safetensors checkpoint.
func TestForwardTorch(t *testing.T) {
	py := testutil.Python(t, "torch", "numpy")
	for _, tc := range []struct {
		name string
		arch Arch
		b, t int
	}{
		{"lstm-2layer", Arch{Type: TypeLSTM, InputSize: 5, Hidden: 7, Layers: 2, FC: 3, Dropout: 0.2}, 4, 9},
		{"lstm-3layer", Arch{Type: TypeLSTM, InputSize: 2, Hidden: 4, Layers: 3, FC: 6}, 3, 5},
		{"ridge", Arch{Type: TypeRidge, InputSize: 6}, 5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewParams(tc.arch)
			if err != nil {
				t.Fatal(err)
			}
			p.Init(11)
			rng := rand.New(rand.NewPCG(3, 4))
			for _, tt := range p.Tensors { // ridge starts at zero; give every tensor values
				for i := range tt.Data {
					tt.Data[i] += float32(rng.NormFloat64() * 0.3)
				}
			}
			x := make([]float32, tc.b*tc.t*tc.arch.InputSize)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			got, err := p.Forward(x, tc.b, tc.t)
			if err != nil {
				t.Fatal(err)
			}
			want := torchForward(t, py, p, x, tc.b, tc.t)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*(1+math.Abs(float64(want[i]))) {
					t.Errorf("row %d: Forward %.7g, PyTorch %.7g", i, got[i], want[i])
				}
			}
		})
	}
}

func torchForward(t *testing.T, py string, p *Params, x []float32, b, T int) []float32 {
	t.Helper()
	dir := t.TempDir()
	feats := make([]string, p.Arch.InputSize)
	for i := range feats {
		feats[i] = "f" + strconv.Itoa(i)
	}
	ck := &Checkpoint{Params: p, Info: Info{Arch: p.Arch, Features: feats, Window: T, Horizon: 100,
		Thresholds: dataset.DefaultThresholds}}
	path := filepath.Join(dir, "model.safetensors")
	if err := Save(path, ck); err != nil {
		t.Fatal(err)
	}
	xb := make([]byte, 0, 4*len(x))
	for _, v := range x {
		xb = binary.LittleEndian.AppendUint32(xb, math.Float32bits(v))
	}
	xpath, opath := filepath.Join(dir, "x.f32"), filepath.Join(dir, "y.f32")
	if err := os.WriteFile(xpath, xb, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), py, filepath.Join(testutil.RepoRoot(t), "tools", "interop", "torch_forward.py"), path, xpath, strconv.Itoa(b), strconv.Itoa(T), opath)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pytorch: %v\n%s", err, out)
	}
	yb, err := os.ReadFile(opath)
	if err != nil {
		t.Fatal(err)
	}
	if len(yb) != 4*b {
		t.Fatalf("pytorch wrote %d bytes, want %d", len(yb), 4*b)
	}
	y := make([]float32, b)
	for i := range y {
		y[i] = math.Float32frombits(binary.LittleEndian.Uint32(yb[4*i:]))
	}
	return y
}
