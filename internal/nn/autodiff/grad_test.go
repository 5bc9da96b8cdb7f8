package autodiff

import (
	"fmt"
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// TestGradFiniteDifference checks every parameter's gradient of the float64
// graph against central finite differences of its loss, with dropout masks,
// for MSE and for Huber with residuals on both sides of delta.
func TestGradFiniteDifference(t *testing.T) {
	arch := smallArch()
	const B, T = 3, 4
	x, y := batch(1, arch, B, T)
	m := masks(2, arch, B, T)
	for _, huber := range []float64{0, 1} {
		t.Run(fmt.Sprintf("huber=%g", huber), func(t *testing.T) {
			opts := DefaultOptions()
			opts.Loss.Huber = huber
			e, err := newEngine(initParams(t, arch, 3), opts, tensor.Float64)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			_, grads := gradsF64(t, e, x, y, B, m)
			if huber > 0 { // both branches of the Huber loss are exercised
				mse, err := newEngine(initParams(t, arch, 3), DefaultOptions(), tensor.Float64)
				if err != nil {
					t.Fatal(err)
				}
				per := T * arch.InputSize
				var small, large int
				for b := range B {
					// one window under MSE: the loss is the squared residual
					l, _ := gradsF64(t, mse, x[b*per:(b+1)*per], y[b:b+1], 1, windowMasks(m, arch, B, T, b))
					if math.Sqrt(l) < huber {
						small++
					} else {
						large++
					}
				}
				if small == 0 || large == 0 {
					t.Fatalf("residuals do not straddle delta %g (%d below, %d above)", huber, small, large)
				}
			}
			const h = 1e-6
			for i, name := range e.names {
				w := e.params[i].Data().([]float64)
				fd := make([]float64, len(w))
				for j := range w {
					orig := w[j]
					w[j] = orig + h
					lp, _ := gradsF64(t, e, x, y, B, m)
					w[j] = orig - h
					lm, _ := gradsF64(t, e, x, y, B, m)
					w[j] = orig
					fd[j] = (lp - lm) / (2 * h)
				}
				for j := range w {
					if d := math.Abs(grads[i][j] - fd[j]); d > 1e-8+1e-5*math.Abs(fd[j]) {
						t.Errorf("%s[%d]: autodiff %.10g, finite difference %.10g", name, j, grads[i][j], fd[j])
					}
				}
				if re := relErr(grads[i], fd); re > 1e-6 {
					t.Errorf("%s: relative error %.3g vs finite differences", name, re)
				}
			}
		})
	}
}

// TestGradIsBatchMean checks the batch layout (transposes, mask indexing):
// the gradient of a batch is the mean of its windows' gradients, each run
// alone with its slice of the masks.
func TestGradIsBatchMean(t *testing.T) {
	arch := smallArch()
	const B, T = 3, 4
	x, y := batch(4, arch, B, T)
	m := masks(5, arch, B, T)
	e, err := newEngine(initParams(t, arch, 6), DefaultOptions(), tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	loss, grads := gradsF64(t, e, x, y, B, m)
	per := T * arch.InputSize
	var meanLoss float64
	mean := make([][]float64, len(grads))
	for i := range grads {
		mean[i] = make([]float64, len(grads[i]))
	}
	for b := range B {
		mb := windowMasks(m, arch, B, T, b)
		l, g := gradsF64(t, e, x[b*per:(b+1)*per], y[b:b+1], 1, mb)
		meanLoss += l / B
		for i := range g {
			for j := range g[i] {
				mean[i][j] += g[i][j] / B
			}
		}
	}
	if math.Abs(loss-meanLoss) > 1e-12 {
		t.Errorf("batch loss %g, mean of single-window losses %g", loss, meanLoss)
	}
	for i, name := range e.names {
		if re := relErr(grads[i], mean[i]); re > 1e-10 {
			t.Errorf("%s: batch gradient differs from the mean of per-window gradients (relative %.3g)", name, re)
		}
	}
}

// windowMasks returns window b's share of a batch's masks.
func windowMasks(m *nn.Masks, arch model.Arch, B, T, b int) *nn.Masks {
	mb := &nn.Masks{FC: m.FC[b*arch.FC : (b+1)*arch.FC]}
	for _, full := range m.Inter {
		one := make([]float32, 0, T*arch.Hidden)
		for tt := range T {
			one = append(one, full[(tt*B+b)*arch.Hidden:(tt*B+b+1)*arch.Hidden]...)
		}
		mb.Inter = append(mb.Inter, one)
	}
	return mb
}
