package autodiff

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// TestGradIsPure checks that Grad and Predict change nothing: the parameters
// stay bit-identical (gorgonia's in-place ops never write into a bound
// parameter) and a repeated call gives bit-identical results.
func TestGradIsPure(t *testing.T) {
	arch := smallArch()
	const B, T = 5, 4
	p := initParams(t, arch, 41)
	e, err := New(p, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	x, y := batch(42, arch, B, T)
	m := masks(43, arch, B, T)
	g1, _ := model.NewParams(arch)
	g2, _ := model.NewParams(arch)
	l1, err := e.Grad(x, y, B, m, g1)
	if err != nil {
		t.Fatal(err)
	}
	out1 := make([]float32, B)
	if err := e.Predict(x, B, out1); err != nil {
		t.Fatal(err)
	}
	l2, err := e.Grad(x, y, B, m, g2)
	if err != nil {
		t.Fatal(err)
	}
	out2 := make([]float32, B)
	if err := e.Predict(x, B, out2); err != nil {
		t.Fatal(err)
	}
	if l1 != l2 || !slices.Equal(out1, out2) {
		t.Errorf("repeated calls differ: loss %v vs %v, predict %v vs %v", l1, l2, out1, out2)
	}
	q := e.Params()
	for i, tt := range p.Tensors {
		if !slices.Equal(tt.Data, q.Tensors[i].Data) {
			t.Errorf("%s changed by Grad/Predict", tt.Name)
		}
		if !slices.Equal(g1.Tensors[i].Data, g2.Tensors[i].Data) {
			t.Errorf("%s: gradient of a repeated Grad differs", tt.Name)
		}
		if norm := math.Sqrt(sumSq(g1.Tensors[i].Data)); norm == 0 {
			t.Errorf("%s: zero gradient", tt.Name)
		}
	}
	// Without masks the training graph sees no dropout: its loss is the
	// loss of Predict's output.
	l0, err := e.Grad(x, y, B, nil, g1)
	if err != nil {
		t.Fatal(err)
	}
	var want float64
	for b := range B {
		d := float64(out1[b] - y[b])
		want += d * d / B
	}
	if math.Abs(l0-want) > 1e-6*want {
		t.Errorf("loss without masks %g, MSE of Predict %g", l0, want)
	}
}

func sumSq(s []float32) float64 {
	var a float64
	for _, v := range s {
		a += float64(v) * float64(v)
	}
	return a
}

// TestGraphCache checks that a graph is compiled once per shape and reused,
// that a new window length gets its own graph, that Predict splits large
// batches, and that the cache is bounded.
func TestGraphCache(t *testing.T) {
	arch := smallArch()
	p := initParams(t, arch, 51)
	e, err := New(p, Options{Adam: nn.DefaultAdam(), MaxGraphs: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const T = 3
	for epoch := range 3 {
		for _, b := range []int{8, 8, 3} { // an epoch: two full batches, one partial
			x, y := batch(uint64(epoch*10+b), arch, b, T)
			if _, err := e.Step(x, y, b, masks(1, arch, b, T)); err != nil {
				t.Fatal(err)
			}
		}
		if e.Graphs() != 2 {
			t.Fatalf("epoch %d: %d graphs, want 2 (batch 8 and 3)", epoch, e.Graphs())
		}
	}
	gr := e.graphs[graphKey{8, T, true}]
	x, y := batch(60, arch, 8, T)
	if _, err := e.Step(x, y, 8, nil); err != nil {
		t.Fatal(err)
	}
	if e.graphs[graphKey{8, T, true}] != gr {
		t.Error("the batch-8 graph was rebuilt")
	}
	// Predict on more than one chunk: chunks of predictChunk plus the rest;
	// the cache bound (3) evicts the least recently used training graph.
	const n = predictChunk + 2
	xp, _ := batch(61, arch, n, T)
	out := make([]float32, n)
	if err := e.Predict(xp, n, out); err != nil {
		t.Fatal(err)
	}
	if e.Graphs() != 3 {
		t.Errorf("%d graphs after Predict, want 3 (bounded)", e.Graphs())
	}
	if _, ok := e.graphs[graphKey{3, T, true}]; ok {
		t.Error("least recently used graph (batch 3) was not evicted")
	}
	// The chunked prediction equals window-by-window prediction.
	per := T * arch.InputSize
	for _, b := range []int{0, predictChunk - 1, predictChunk, n - 1} {
		one := make([]float32, 1)
		if err := e.Predict(xp[b*per:(b+1)*per], 1, one); err != nil {
			t.Fatal(err)
		}
		if math.Abs(float64(one[0]-out[b])) > 1e-5 {
			t.Errorf("window %d: chunked %g, alone %g", b, out[b], one[0])
		}
	}
	// Another window length is another graph.
	x5, y5 := batch(62, arch, 8, 5)
	if _, err := e.Step(x5, y5, 8, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.graphs[graphKey{8, 5, true}]; !ok {
		t.Error("no graph for window 5")
	}
}

func TestBadInput(t *testing.T) {
	arch := smallArch()
	p := initParams(t, arch, 71)
	e, err := New(p, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const B, T = 2, 3
	x, y := batch(72, arch, B, T)
	g, _ := model.NewParams(arch)
	other := arch
	other.Hidden = 5
	og, _ := model.NewParams(other)
	m := masks(73, arch, B, T)
	short := &nn.Masks{Inter: [][]float32{m.Inter[0][1:]}, FC: m.FC}
	shortFC := &nn.Masks{Inter: m.Inter, FC: m.FC[1:]}
	for name, err := range map[string]error{
		"batch 0":          e.Predict(x, 0, make([]float32, 1)),
		"ragged x":         e.Predict(x[1:], B, make([]float32, B)),
		"short out":        e.Predict(x, B, make([]float32, B-1)),
		"short y":          func() error { _, err := e.Step(x, y[:1], B, nil); return err }(),
		"short inter mask": func() error { _, err := e.Step(x, y, B, short); return err }(),
		"short fc mask":    func() error { _, err := e.Grad(x, y, B, shortFC, g); return err }(),
		"grads arch":       func() error { _, err := e.Grad(x, y, B, nil, og); return err }(),
		"set params arch":  e.SetParams(og),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if !slices.Equal(e.Params().Tensors[0].Data, p.Tensors[0].Data) {
		t.Error("failed calls changed the parameters")
	}
	for name, opts := range map[string]Options{
		"lr 0":         {Adam: nn.Adam{LR: 0, Beta1: 0.9, Beta2: 0.999}},
		"beta 1":       {Adam: nn.Adam{LR: 1e-3, Beta1: 1, Beta2: 0.999}},
		"huber < 0":    {Adam: nn.DefaultAdam(), Loss: nn.Loss{Huber: -1}},
		"clip NaN":     {Adam: nn.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, ClipNorm: math.NaN()}},
		"decay < 0":    {Adam: nn.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -1}},
		"eps negative": {Adam: nn.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1}},
	} {
		if _, err := New(p, opts); err == nil {
			t.Errorf("New with %s: no error", name)
		}
	}
	ridge, _ := model.NewParams(model.Arch{Type: model.TypeRidge, InputSize: 3})
	if _, err := New(ridge, DefaultOptions()); err == nil {
		t.Error("New with a ridge model: no error")
	}
}

// TestNonFiniteStep checks that a NaN loss is reported and the parameters
// are not updated.
func TestNonFiniteStep(t *testing.T) {
	arch := smallArch()
	p := initParams(t, arch, 81)
	e, err := New(p, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	x, y := batch(82, arch, 2, 3)
	y[1] = float32(math.NaN())
	l, err := e.Step(x, y, 2, nil)
	if !errors.Is(err, ErrNonFinite) || !math.IsNaN(l) {
		t.Fatalf("Step with a NaN target: loss %g, error %v; want NaN and ErrNonFinite", l, err)
	}
	if e.Steps() != 0 || !slices.Equal(e.Params().Tensors[0].Data, p.Tensors[0].Data) {
		t.Error("a non-finite step updated the parameters")
	}
}

// TestOptimizerState checks what can and cannot be restored: gorgonia's
// AdamSolver does not expose its moments.
func TestOptimizerState(t *testing.T) {
	arch := smallArch()
	p := initParams(t, arch, 91)
	e, err := New(p, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const B, T = 3, 2
	x, y := batch(92, arch, B, T)
	for range 2 {
		if _, err := e.Step(x, y, B, nil); err != nil {
			t.Fatal(err)
		}
	}
	step, m, v := e.OptimizerState()
	if step != 2 || m != nil || v != nil {
		t.Errorf("OptimizerState() = %d, %v, %v; want 2, nil, nil", step, m, v)
	}
	mm, _ := model.NewParams(arch)
	mm.Tensors[0].Data[0] = 0.1
	if err := e.SetOptimizerState(5, mm, mm); !errors.Is(err, ErrOptimizerState) {
		t.Errorf("SetOptimizerState(5, moments) = %v, want ErrOptimizerState", err)
	}
	if s, _, _ := e.OptimizerState(); s != 2 {
		t.Errorf("a refused SetOptimizerState changed the step to %d", s)
	}
	// A fresh state restarts Adam: the next step equals a new engine's first.
	zero, _ := model.NewParams(arch)
	if err := e.SetOptimizerState(0, zero, nil); err != nil {
		t.Fatal(err)
	}
	cur := e.Params()
	fresh, err := New(cur, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if _, err := e.Step(x, y, B, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Step(x, y, B, nil); err != nil {
		t.Fatal(err)
	}
	a, b := e.Params(), fresh.Params()
	for i := range a.Tensors {
		if !slices.Equal(a.Tensors[i].Data, b.Tensors[i].Data) {
			t.Errorf("%s: step after reset differs from a fresh engine's first step", a.Tensors[i].Name)
		}
	}
}

// TestSetParams checks that new parameters reach every cached graph.
func TestSetParams(t *testing.T) {
	arch := smallArch()
	e, err := New(initParams(t, arch, 101), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const B, T = 2, 3
	x, _ := batch(102, arch, B, T)
	out := make([]float32, B)
	if err := e.Predict(x, B, out); err != nil {
		t.Fatal(err)
	}
	q := initParams(t, arch, 103)
	if err := e.SetParams(q); err != nil {
		t.Fatal(err)
	}
	ref, err := New(q, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	got, want := make([]float32, B), make([]float32, B)
	if err := e.Predict(x, B, got); err != nil {
		t.Fatal(err)
	}
	if err := ref.Predict(x, B, want); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) || slices.Equal(got, out) {
		t.Errorf("after SetParams: predict %v, want %v (before %v)", got, want, out)
	}
	// Params returns a copy.
	c := e.Params()
	c.Tensors[0].Data[0] += 1
	if e.Params().Tensors[0].Data[0] == c.Tensors[0].Data[0] {
		t.Error("Params does not return a copy")
	}
}

// TestDeterministic checks that the same weights and batches give
// bit-identical weights (the trainer promises it per engine), and that a zero
// Adam configuration means PyTorch's defaults.
func TestDeterministic(t *testing.T) {
	arch := model.DefaultArch(3)
	arch.Hidden, arch.FC = 32, 16
	p := initParams(t, arch, 121)
	run := func(opts Options) *model.Params {
		e, err := New(p, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		for s := range 3 {
			b := 9 - 3*s // shapes change between steps
			x, y := batch(uint64(122+s), arch, b, 7)
			if _, err := e.Step(x, y, b, masks(uint64(130+s), arch, b, 7)); err != nil {
				t.Fatal(err)
			}
		}
		return e.Params()
	}
	a, b := run(DefaultOptions()), run(Options{})
	for i := range a.Tensors {
		if !slices.Equal(a.Tensors[i].Data, b.Tensors[i].Data) {
			t.Errorf("%s differs between two identical runs", a.Tensors[i].Name)
		}
	}
}
