package autodiff

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGorgoniaDropoutBackwardScale documents why the engine takes dropout
// masks as inputs instead of using gorgonia.Dropout: in v0.9.18 its forward
// pass keeps an element with probability 1−p and scales it by 1/(1−p)
// (correct, inverted dropout), but its backward pass (dropoutDiffOp) divides
// the incoming gradient by p instead, so for p = 0.2 the gradient of a kept
// element is 5 instead of 1.25. If this test fails after a gorgonia upgrade,
// the bug is fixed upstream.
func TestGorgoniaDropoutBackwardScale(t *testing.T) {
	const n, p = 1000, 0.2
	g := G.NewGraph()
	x := G.NewVector(g, tensor.Float64, G.WithShape(n), G.WithName("x"),
		G.WithValue(tensor.New(tensor.WithShape(n), tensor.WithBacking(ones(n)))))
	y, err := G.Dropout(x, p)
	if err != nil {
		t.Fatal(err)
	}
	cost, err := G.Sum(y)
	if err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(cost, x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	out := y.Value().Data().([]float64)
	dx := grads[0].Value().Data().([]float64)
	var kept int
	for i := range n {
		switch out[i] {
		case 0:
			if dx[i] != 0 {
				t.Fatalf("dropped element %d has gradient %g", i, dx[i])
			}
		default:
			kept++
			// forward: y = x/(1−p), so the true dy/dx is 1/(1−p)
			if math.Abs(out[i]-1/(1-p)) > 1e-12 {
				t.Fatalf("kept element %d: forward %g, want 1/(1−p) = %g", i, out[i], 1/(1-p))
			}
			if math.Abs(dx[i]-1/p) > 1e-12 {
				t.Fatalf("kept element %d: gradient %g; gorgonia v0.9.18 gives 1/p = %g "+
					"(the correct value is 1/(1−p) = %g): has the bug been fixed?", i, dx[i], 1/p, 1/(1-p))
			}
		}
	}
	if kept < n/2 || kept == n {
		t.Fatalf("%d of %d kept with p = %g", kept, n, p)
	}
	t.Logf("gorgonia.Dropout(p=%g): kept %d/%d, forward scale %g, backward scale %g (correct: %g)",
		p, kept, n, 1/(1-p), 1/p, 1/(1-p))
}

func ones(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = 1
	}
	return s
}
