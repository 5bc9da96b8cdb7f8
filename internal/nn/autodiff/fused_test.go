package autodiff

import (
	"fmt"
	"testing"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// TestFusedAgrees is the two-engine check: from the same initial
// weights, batch and dropout masks, the fused engine's gradients (its
// hand-written backpropagation through time) and this engine's (gorgonia's
// symbolic differentiation) agree to 1e-4 relative for every parameter, in
// float32, on the design's architecture and a small one, for MSE and Huber;
// and a few Adam steps (clipping, decay) keep the weights together to 1e-3.
func TestFusedAgrees(t *testing.T) {
	for _, c := range []struct {
		arch  model.Arch
		b, t  int
		huber float64
	}{
		{smallArch(), 7, 9, 0},
		{smallArch(), 7, 9, 1},
		{model.Arch{Type: model.TypeLSTM, InputSize: 4, Hidden: 12, Layers: 3, FC: 6, Dropout: 0.3}, 5, 6, 0},
		{model.DefaultArch(5), 16, 20, 0},
	} {
		t.Run(fmt.Sprintf("H=%d/L=%d/b=%d/t=%d/huber=%g", c.arch.Hidden, c.arch.Layers, c.b, c.t, c.huber), func(t *testing.T) {
			p := initParams(t, c.arch, 111)
			x, y := batch(112, c.arch, c.b, c.t)
			m := masks(113, c.arch, c.b, c.t)
			adam := nn.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-4, ClipNorm: 0.5}
			loss := nn.Loss{Huber: c.huber}
			g, err := New(p, Options{Adam: adam, Loss: loss})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			f, err := nn.NewFused(p, nn.Config{Workers: 2, Adam: adam, Loss: loss})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()

			gg, _ := model.NewParams(c.arch)
			fg, _ := model.NewParams(c.arch)
			gl, err := g.Grad(x, y, c.b, m, gg)
			if err != nil {
				t.Fatal(err)
			}
			fl, err := f.Grad(x, y, c.b, m, fg)
			if err != nil {
				t.Fatal(err)
			}
			if d := relErr([]float64{gl}, []float64{fl}); d > 1e-5 {
				t.Errorf("loss: gorgonia %.8g, fused %.8g", gl, fl)
			}
			fm := map[string][]float64{}
			for _, tt := range fg.Tensors {
				fm[tt.Name] = f64(tt.Data)
			}
			requireAlive(t, fg.Tensors, fm)
			var worst float64
			for i, tt := range gg.Tensors {
				re := relErr(f64(tt.Data), f64(fg.Tensors[i].Data))
				if re > 1e-4 {
					t.Errorf("%s: gorgonia and fused gradients differ by %.3g relative", tt.Name, re)
				}
				worst = max(worst, re)
			}
			t.Logf("largest gradient relative difference: %.2g (gradient norm %.3g, clip norm %g)", worst, norm(fg), adam.ClipNorm)

			const steps = 3
			for range steps {
				if _, err := g.Step(x, y, c.b, m); err != nil {
					t.Fatal(err)
				}
				if _, err := f.Step(x, y, c.b, m); err != nil {
					t.Fatal(err)
				}
			}
			ga, fa := g.Params(), f.Params()
			for i, tt := range ga.Tensors {
				p0 := p.Tensors[i].Data
				du, dv := make([]float64, len(p0)), make([]float64, len(p0))
				for j := range p0 {
					du[j] = float64(tt.Data[j] - p0[j])
					dv[j] = float64(fa.Tensors[i].Data[j] - p0[j])
				}
				if re := relErr(du, dv); re > 1e-3 {
					t.Errorf("%s: after %d Adam steps the updates differ by %.3g relative", tt.Name, steps, re)
				}
			}
		})
	}
}
