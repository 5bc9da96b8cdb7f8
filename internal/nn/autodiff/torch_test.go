package autodiff

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// TestGradVsTorch compares loss, gradients and the eval forward pass with
// PyTorch on the same weights, batch and dropout masks: float64 against
// float64 tightly, float32 against float32 to 1e-4 relative.
func TestGradVsTorch(t *testing.T) {
	arch := smallArch()
	type result struct {
		loss  float64
		grads [][]float64
		out   []float32
	}
	design := model.DefaultArch(5) // H = 128: gate blocks beyond row 256
	cases := []struct {
		arch  model.Arch
		b, t  int
		huber float64
		drop  bool
		dt    tensor.Dtype
		tol   float64
	}{
		{arch, 3, 5, 0, true, tensor.Float64, 1e-12},
		{arch, 3, 5, 1, true, tensor.Float64, 1e-12},
		{arch, 1, 1, 0, false, tensor.Float64, 1e-12},
		{design, 3, 4, 0, true, tensor.Float64, 1e-12},
		{arch, 4, 6, 0, true, tensor.Float32, 1e-4},
		{arch, 4, 6, 0.5, true, tensor.Float32, 1e-4},
		{arch, 1, 3, 0, false, tensor.Float32, 1e-4},
		{design, 5, 8, 0, true, tensor.Float32, 1e-4},
	}
	var ours []result
	var tcs []torchCase
	var names []string
	for _, c := range cases {
		p := initParams(t, c.arch, 21)
		x, y := batch(22, c.arch, c.b, c.t)
		var m *nn.Masks
		if c.drop {
			m = masks(23, c.arch, c.b, c.t)
		}
		opts := DefaultOptions()
		opts.Loss.Huber = c.huber
		e, err := newEngine(p, opts, c.dt)
		if err != nil {
			t.Fatal(err)
		}
		names = e.names
		var r result
		r.loss, r.grads = gradsF64(t, e, x, y, c.b, m)
		r.out = make([]float32, c.b)
		if err := e.Predict(x, c.b, r.out); err != nil {
			t.Fatal(err)
		}
		_ = e.Close()
		ours = append(ours, r)
		tc := newTorchCase(p, c.dt.String(), x, y, c.b, c.t, m)
		tc.Huber = c.huber
		tcs = append(tcs, tc)
	}
	refs := runTorch(t, tcs...)
	for k, c := range cases {
		t.Run(fmt.Sprintf("%v/H=%d/b=%d/t=%d/huber=%g/dropout=%v", c.dt, c.arch.Hidden, c.b, c.t, c.huber, c.drop), func(t *testing.T) {
			r, ref := ours[k], refs[k]
			alive := names
			if c.t == 1 { // h_0 = 0: W_hh has no effect on one time step
				alive = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return strings.Contains(n, "weight_hh") })
			}
			requireAlive(t, alive, ref.Grads)
			if d := math.Abs(r.loss-ref.Loss) / math.Abs(ref.Loss); d > c.tol {
				t.Errorf("loss %.12g, torch %.12g (relative %.3g)", r.loss, ref.Loss, d)
			}
			// out is float32 whatever the graph's precision
			if re := relErr(f64(r.out), ref.Out); re > max(c.tol, 1e-6) {
				t.Errorf("predict %v, torch %v (relative %.3g)", r.out, ref.Out, re)
			}
			var worst float64
			for i, name := range names {
				re := relErr(r.grads[i], ref.Grads[name])
				if re > c.tol {
					t.Errorf("%s: relative error %.3g vs torch", name, re)
				}
				worst = max(worst, re)
			}
			t.Logf("largest gradient relative error vs torch: %.2g", worst)
		})
	}
}

// TestAdamVsTorch runs a few engine Steps and torch.optim.Adam steps from the
// same weights on the same batch and masks, with weight decay, gradient-norm
// clipping (active: the norm is far above the limit) and a learning-rate
// change half way, and compares the losses and the parameter updates.
func TestAdamVsTorch(t *testing.T) {
	const B, T, steps = 4, 5, 6
	tuned := nn.Adam{LR: 3e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.05, ClipNorm: 0.05}
	cases := []struct {
		name string
		arch model.Arch
		adam nn.Adam
	}{
		{"defaults", smallArch(), nn.DefaultAdam()},
		{"decay+clip+lr", smallArch(), tuned},
		{"design/decay+clip+lr", model.DefaultArch(3), tuned},
	}
	var losses [][]float64
	var after, start []*model.Params
	var tcs []torchCase
	for _, c := range cases {
		arch := c.arch
		p := initParams(t, arch, 111)
		x, y := batch(112, arch, B, T)
		m := masks(113, arch, B, T)
		start = append(start, p)
		lrs := make([]float64, steps)
		for s := range lrs {
			lrs[s] = c.adam.LR
			if c.adam.ClipNorm > 0 && s >= steps/2 {
				lrs[s] = c.adam.LR / 10
			}
		}
		e, err := New(p, Options{Adam: c.adam})
		if err != nil {
			t.Fatal(err)
		}
		if c.adam.ClipNorm > 0 { // make sure clipping is active
			g, _ := model.NewParams(arch)
			if _, err := e.Grad(x, y, B, m, g); err != nil {
				t.Fatal(err)
			}
			if n := norm(g); n < 2*c.adam.ClipNorm {
				t.Fatalf("gradient norm %g does not exceed clip norm %g enough to test clipping", n, c.adam.ClipNorm)
			}
		}
		var ls []float64
		for s := range steps {
			e.SetLR(lrs[s])
			l, err := e.Step(x, y, B, m)
			if err != nil {
				t.Fatal(err)
			}
			ls = append(ls, l)
		}
		if e.Steps() != steps {
			t.Errorf("Steps() = %d, want %d", e.Steps(), steps)
		}
		losses = append(losses, ls)
		after = append(after, e.Params())
		_ = e.Close()
		tc := newTorchCase(p, "float32", x, y, B, T, m)
		tc.Adam, tc.Steps, tc.LRs = &c.adam, steps, lrs
		tcs = append(tcs, tc)
	}
	refs := runTorch(t, tcs...)
	for k, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref, p := refs[k], start[k]
			requireAlive(t, after[k].Tensors, ref.Grads)
			if re := relErr(losses[k], ref.StepLosses); re > 1e-4 {
				t.Errorf("losses %v, torch %v (relative %.3g)", losses[k], ref.StepLosses, re)
			}
			var worst float64
			for _, tt := range after[k].Tensors {
				p0, ours, theirs := f64(p.Get(tt.Name).Data), f64(tt.Data), ref.ParamsAfter[tt.Name]
				du, dt := make([]float64, len(p0)), make([]float64, len(p0))
				for j := range p0 {
					du[j], dt[j] = ours[j]-p0[j], theirs[j]-p0[j]
				}
				re := relErr(du, dt)
				if re > 1e-3 {
					t.Errorf("%s: update differs from torch.optim.Adam by %.3g relative", tt.Name, re)
				}
				worst = max(worst, re)
			}
			t.Logf("largest update relative error vs torch.optim.Adam after %d steps: %.2g", steps, worst)
		})
	}
}

func norm(p *model.Params) float64 {
	var sq float64
	for _, t := range p.Tensors {
		for _, v := range t.Data {
			sq += float64(v) * float64(v)
		}
	}
	return math.Sqrt(sq)
}

// requireAlive fails the test when a parameter's reference gradient is all
// zeros (e.g. every ReLU of fc1 dead), which would make a comparison vacuous.
func requireAlive[N string | *model.Tensor](t *testing.T, names []N, grads map[string][]float64) {
	t.Helper()
	for _, n := range names {
		var name string
		switch v := any(n).(type) {
		case string:
			name = v
		case *model.Tensor:
			name = v.Name
		}
		g, ok := grads[name]
		if !ok {
			t.Fatalf("no reference gradient for %s", name)
		}
		if norm := math.Sqrt(sumSq64(g)); norm == 0 {
			t.Fatalf("%s: the reference gradient is zero; choose another seed", name)
		}
	}
}

func sumSq64(s []float64) float64 {
	var a float64
	for _, v := range s {
		a += v * v
	}
	return a
}
