package autodiff

import (
	"fmt"
	"math"
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
	cases := []struct {
		b, t  int
		huber float64
		drop  bool
		dt    tensor.Dtype
		tol   float64
	}{
		{3, 5, 0, true, tensor.Float64, 1e-12},
		{3, 5, 1, true, tensor.Float64, 1e-12},
		{1, 1, 0, false, tensor.Float64, 1e-12},
		{4, 6, 0, true, tensor.Float32, 1e-4},
		{4, 6, 0.5, true, tensor.Float32, 1e-4},
		{1, 3, 0, false, tensor.Float32, 1e-4},
	}
	var ours []result
	var tcs []torchCase
	var names []string
	for _, c := range cases {
		p := initParams(t, arch, 21)
		x, y := batch(22, arch, c.b, c.t)
		var m *nn.Masks
		if c.drop {
			m = masks(23, arch, c.b, c.t)
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
		t.Run(fmt.Sprintf("%v/b=%d/t=%d/huber=%g/dropout=%v", c.dt, c.b, c.t, c.huber, c.drop), func(t *testing.T) {
			r, ref := ours[k], refs[k]
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
	arch := smallArch()
	const B, T, steps = 4, 5, 6
	cases := []struct {
		name string
		adam nn.Adam
	}{
		{"defaults", nn.DefaultAdam()},
		{"decay+clip+lr", nn.Adam{LR: 3e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.05, ClipNorm: 0.05}},
	}
	p := initParams(t, arch, 31)
	x, y := batch(32, arch, B, T)
	m := masks(33, arch, B, T)
	var losses [][]float64
	var after []*model.Params
	var tcs []torchCase
	for _, c := range cases {
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
			ref := refs[k]
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
