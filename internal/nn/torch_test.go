package nn

import (
	"context"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/testutil"
)

// The PyTorch oracle (tools/torchref/torchref.py, Debian's python3-torch):
// the design's LSTMRULPredictor loads our parameters with a strict
// load_state_dict and must reproduce our forward pass, gradients and Adam
// steps.

func saveCheckpoint(t *testing.T, p *model.Params, path string) {
	t.Helper()
	feats := make([]string, p.Arch.InputSize)
	for i := range feats {
		feats[i] = "s" + itoa(i)
	}
	ck := &model.Checkpoint{Params: p, Info: model.Info{Arch: p.Arch, Features: feats, Window: 1, Horizon: 1,
		Thresholds: dataset.DefaultThresholds, Scaler: dataset.Scaler{Kind: "none", Features: feats,
			Offset: make([]float64, len(feats)), Scale: make([]float64, len(feats))}}}
	if err := model.Save(path, ck); err != nil {
		t.Fatal(err)
	}
}

func tensor(name string, data []float32, shape ...int) *model.Tensor {
	return &model.Tensor{Name: name, Shape: shape, Data: data}
}

// torchRef runs a torchref subcommand and returns the tensors it wrote.
func torchRef(t *testing.T, cmd, ckpt string, data []*model.Tensor, args ...string) map[string]*model.Tensor {
	t.Helper()
	py := testutil.Python(t, "torch", "numpy")
	dir := t.TempDir()
	dataPath, outPath := filepath.Join(dir, "data.safetensors"), filepath.Join(dir, "out.safetensors")
	if err := model.WriteSafetensors(dataPath, data, nil); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(testutil.RepoRoot(t), "tools", "torchref", "torchref.py")
	c := exec.CommandContext(context.Background(), py, append([]string{script, cmd, "--model", ckpt, "--data", dataPath, "--out", outPath}, args...)...)
	c.Env = append(c.Environ(), "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("torchref %s: %v\n%s", cmd, err, out)
	}
	ts, _, err := model.ReadSafetensors(outPath)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*model.Tensor{}
	for _, x := range ts {
		m[x.Name] = x
	}
	return m
}

// relDiff is ‖a-b‖/‖b‖.
func relDiff(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i] - b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / (den + 1e-30))
}

func TestTorchForward(t *testing.T) {
	for _, arch := range []model.Arch{model.DefaultArch(5), {Type: model.TypeLSTM, InputSize: 14, Hidden: 32, Layers: 3, FC: 16, Dropout: 0.2}} {
		t.Run(strings.ReplaceAll(itoa(arch.InputSize)+"x"+itoa(arch.Layers), " ", ""), func(t *testing.T) {
			const n, tn = 9, 20
			p, x, _, _ := testBatch(t, arch, n, tn, 21)
			ckpt := filepath.Join(t.TempDir(), "model.safetensors")
			saveCheckpoint(t, p, ckpt)
			want := torchRef(t, "forward", ckpt, []*model.Tensor{tensor("x", x, n, tn, arch.InputSize)})["y"].Data
			pr := NewPredictor(p, 2)
			defer pr.Close()
			got := make([]float32, n)
			if err := pr.Predict(x, n, got); err != nil {
				t.Fatal(err)
			}
			for j := range n {
				if d := math.Abs(float64(got[j] - want[j])); d > 1e-4*math.Abs(float64(want[j]))+1e-6 {
					t.Errorf("window %d: ours %.7g, PyTorch %.7g", j, got[j], want[j])
				}
			}
		})
	}
}

func TestTorchGrad(t *testing.T) {
	arch := model.DefaultArch(5)
	arch.Dropout = 0
	const b, tn = 8, 15
	for _, huber := range []float64{0, 0.1} {
		p, x, y, _ := testBatch(t, arch, b, tn, 31)
		ckpt := filepath.Join(t.TempDir(), "model.safetensors")
		saveCheckpoint(t, p, ckpt)
		ref := torchRef(t, "grad", ckpt, []*model.Tensor{tensor("x", x, b, tn, arch.InputSize), tensor("y", y, b)},
			"--huber", ftoa(huber))
		for _, name := range Backends() {
			f, err := NewFused(p, Config{Workers: 2, BLAS: name, Loss: Loss{Huber: huber}})
			if err != nil {
				t.Fatal(err)
			}
			g, _ := model.NewParams(arch)
			loss, err := f.Grad(x, y, b, nil, g)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			if wl := float64(ref["loss"].Data[0]); math.Abs(loss-wl) > 1e-5*wl {
				t.Errorf("%s huber=%g: loss %g, PyTorch %g", name, huber, loss, wl)
			}
			worst := 0.0
			for _, gt := range g.Tensors {
				rd := relDiff(gt.Data, ref[gt.Name].Data)
				worst = max(worst, rd)
				if rd > 1e-4 {
					t.Errorf("%s huber=%g: %s gradient differs from PyTorch's by %.3g (relative)", name, huber, gt.Name, rd)
				}
			}
			t.Logf("%s huber=%g: worst relative gradient difference %.2g", name, huber, worst)
		}
	}
}

// TestTorchAdam trains a few steps from the same initial weights on the same
// batches (dropout 0) and compares losses and weights with torch.optim.Adam.
func TestTorchAdam(t *testing.T) {
	arch := model.DefaultArch(5)
	arch.Dropout = 0
	const steps, b, tn = 6, 8, 12
	for _, tc := range []struct {
		name string
		adam Adam
		loss Loss
	}{
		{"default", DefaultAdam(), Loss{}},
		{"decay-clip-huber", Adam{LR: 3e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2, ClipNorm: 0.05}, Loss{Huber: 0.2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, _, _ := testBatch(t, arch, 1, tn, 41)
			rng := rand.New(rand.NewPCG(7, 7))
			xs := randSlice(rng, steps*b*tn*arch.InputSize)
			ys := make([]float32, steps*b)
			for i := range ys {
				ys[i] = float32(rng.Float64())
			}
			ckpt := filepath.Join(t.TempDir(), "model.safetensors")
			saveCheckpoint(t, p, ckpt)
			ref := torchRef(t, "train", ckpt, []*model.Tensor{tensor("x", xs, steps, b, tn, arch.InputSize), tensor("y", ys, steps, b)},
				"--lr", ftoa(tc.adam.LR), "--weight-decay", ftoa(tc.adam.WeightDecay), "--clip-norm", ftoa(tc.adam.ClipNorm), "--huber", ftoa(tc.loss.Huber))
			for _, name := range Backends() {
				f, err := NewFused(p, Config{Workers: 2, BLAS: name, Adam: tc.adam, Loss: tc.loss})
				if err != nil {
					t.Fatal(err)
				}
				n := b * tn * arch.InputSize
				for s := range steps {
					loss, err := f.Step(xs[s*n:(s+1)*n], ys[s*b:(s+1)*b], b, nil)
					if err != nil {
						t.Fatal(err)
					}
					if wl := float64(ref["losses"].Data[s]); math.Abs(loss-wl) > 1e-3*wl {
						t.Errorf("%s step %d: loss %.7g, PyTorch %.7g", name, s, loss, wl)
					}
				}
				got := f.Params()
				f.Close()
				worst := 0.0
				for _, gt := range got.Tensors {
					rd := relDiff(gt.Data, ref[gt.Name].Data)
					worst = max(worst, rd)
					if rd > 1e-3 {
						t.Errorf("%s: %s after %d steps differs from PyTorch's by %.3g (relative)", name, gt.Name, steps, rd)
					}
				}
				t.Logf("%s: worst relative weight difference after %d steps %.2g", name, steps, worst)
				// the weights moved: the comparison is not vacuous
				if rd := relDiff(got.Get("fc2.weight").Data, p.Get("fc2.weight").Data); rd < 1e-3 {
					t.Errorf("%s: fc2.weight barely moved (%.3g)", name, rd)
				}
			}
		})
	}
}

func ftoa(f float64) string { return strings.TrimRight(strings.TrimRight(fmtFloat(f), "0"), ".") }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', 10, 64) }
