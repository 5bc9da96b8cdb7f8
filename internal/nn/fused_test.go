package nn

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/modax/modax-ml/internal/model"
)

// trainSome runs a few steps with dropout masks and returns the weights.
func trainSome(t *testing.T, p *model.Params, workers int, blasName string) *model.Params {
	t.Helper()
	f, err := NewFused(p, Config{Workers: workers, BLAS: blasName, Adam: DefaultAdam()})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	const b, tn = 13, 10
	for range 4 {
		x := randSlice(rng, b*tn*p.Arch.InputSize)
		y := randSlice(rng, b)
		if _, err := f.Step(x, y, b, NewMasks(rng, p.Arch, b, tn)); err != nil {
			t.Fatal(err)
		}
	}
	return f.Params()
}

// TestDeterministic: same seed, data, engine and worker count give
// bit-identical weights.
func TestDeterministic(t *testing.T) {
	arch := model.DefaultArch(4)
	p, _, _, _ := testBatch(t, arch, 1, 1, 8)
	for _, name := range Backends() {
		for _, workers := range []int{1, 2, 3} {
			a := trainSome(t, p, workers, name)
			b := trainSome(t, p, workers, name)
			for i, ta := range a.Tensors {
				if !slices.Equal(ta.Data, b.Tensors[i].Data) {
					t.Fatalf("%s, %d workers: %s differs between two identical runs", name, workers, ta.Name)
				}
			}
			if slices.Equal(a.Get("fc1.weight").Data, p.Get("fc1.weight").Data) {
				t.Fatal("weights did not change")
			}
		}
	}
}

// TestStepAllocs: no allocation per step once the buffers are warm.
func TestStepAllocs(t *testing.T) {
	arch := model.DefaultArch(5)
	const b, tn = 16, 20
	p, x, y, _ := testBatch(t, arch, b, tn, 9)
	rng := rand.New(rand.NewPCG(1, 1))
	masks := NewMasks(rng, arch, b, tn)
	for _, name := range Backends() {
		f, err := NewFused(p, Config{Workers: 2, BLAS: name, Adam: Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, ClipNorm: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Step(x, y, b, masks); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(5, func() { _, _ = f.Step(x, y, b, masks) }); n != 0 {
			t.Errorf("%s: %v allocations per step", name, n)
		}
		out := make([]float32, b)
		_ = f.Predict(x, b, out)
		if n := testing.AllocsPerRun(5, func() { _ = f.Predict(x, b, out) }); n != 0 {
			t.Errorf("%s: %v allocations per predict", name, n)
		}
		f.Close()
	}
}

func TestEngineState(t *testing.T) {
	arch := model.DefaultArch(3)
	const b, tn = 4, 5
	p, x, y, _ := testBatch(t, arch, b, tn, 10)
	f, err := NewFused(p, Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 3 {
		if _, err := f.Step(x, y, b, nil); err != nil {
			t.Fatal(err)
		}
	}
	// A second engine given the first's weights and optimizer state takes
	// the same next step (resume).
	step, m, v := f.OptimizerState()
	if step != 3 {
		t.Fatalf("step %d, want 3", step)
	}
	g, err := NewFused(f.Params(), Config{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.SetOptimizerState(step, m, v); err != nil {
		t.Fatal(err)
	}
	l1, _ := f.Step(x, y, b, nil)
	l2, _ := g.Step(x, y, b, nil)
	if l1 != l2 || !slices.Equal(f.Params().Get("lstm.weight_hh_l1").Data, g.Params().Get("lstm.weight_hh_l1").Data) {
		t.Fatal("resumed engine diverged")
	}
	// SetLR changes the step size.
	g.SetLR(0)
	before := g.Params()
	if _, err := g.Step(x, y, b, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before.Get("fc2.weight").Data, g.Params().Get("fc2.weight").Data) {
		t.Fatal("lr 0 still moved the weights")
	}
	// Mismatched architectures and shapes are errors.
	other, _ := model.NewParams(model.DefaultArch(4))
	if err := f.SetParams(other); err == nil {
		t.Error("SetParams accepted another architecture")
	}
	if err := f.SetOptimizerState(1, other, other); err == nil {
		t.Error("SetOptimizerState accepted another architecture")
	}
	if _, err := f.Step(x[:len(x)-1], y, b, nil); err == nil {
		t.Error("ragged input accepted")
	}
	if _, err := f.Step(x, y[:b-1], b, nil); err == nil {
		t.Error("short targets accepted")
	}
	// A non-finite loss is an error and leaves the weights alone.
	bad := slices.Clone(y)
	bad[0] = float32(math.Inf(1))
	before = f.Params()
	if _, err := f.Step(x, bad, b, nil); !errors.Is(err, errNonFinite) {
		t.Errorf("infinite target: %v", err)
	}
	if !slices.Equal(before.Get("fc2.bias").Data, f.Params().Get("fc2.bias").Data) {
		t.Error("a non-finite step changed the weights")
	}
}

// flopsPerSample is the multiply-add count ×2 of one training sample:
// forward products plus the two backward products of each (3× forward).
func flopsPerSample(arch model.Arch, tn int) float64 {
	G := 4 * arch.Hidden
	f := 0.0
	for k := range arch.Layers {
		in := arch.InputSize
		if k > 0 {
			in = arch.Hidden
		}
		f += 2 * float64(G*(in+arch.Hidden)*tn)
	}
	f += 2 * float64(arch.Hidden*arch.FC+arch.FC)
	return 3 * f
}

// BenchmarkFusedStep measures training throughput (samples/s) of the fused
// engine for the two shapes (hidden 128, 2 layers, fc 64, dropout
// 0.2) on each backend, with the CPU time per step (the machine is shared)
// and GFLOP/s of the products.
func BenchmarkFusedStep(b *testing.B) {
	for _, cfg := range []struct {
		name     string
		in, t, b int
	}{{"I5xT50xB32", 5, 50, 32}, {"I14xT30xB256", 14, 30, 256}} {
		for _, name := range Backends() {
			b.Run(name+"/"+cfg.name, func(b *testing.B) {
				arch := model.DefaultArch(cfg.in)
				p, _ := model.NewParams(arch)
				p.Init(1)
				f, err := NewFused(p, Config{BLAS: name})
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				rng := rand.New(rand.NewPCG(1, 1))
				x := randSlice(rng, cfg.b*cfg.t*cfg.in)
				y := randSlice(rng, cfg.b)
				masks := NewMasks(rng, arch, cfg.b, cfg.t)
				if _, err := f.Step(x, y, cfg.b, masks); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				c0 := cpuTime()
				for b.Loop() {
					if _, err := f.Step(x, y, cfg.b, masks); err != nil {
						b.Fatal(err)
					}
				}
				s := b.Elapsed().Seconds()
				b.ReportMetric(float64(cfg.b*b.N)/s, "samples/s")
				b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
				b.ReportMetric(flopsPerSample(arch, cfg.t)*float64(cfg.b*b.N)/s/1e9, "GFLOP/s")
			})
		}
	}
}

func TestMasksDraw(t *testing.T) {
	arch := model.DefaultArch(3)
	arch.Dropout = 0.25
	rng := rand.New(rand.NewPCG(1, 2))
	var m Masks
	m.Draw(rng, arch, 8, 10)
	keep := float32(1 / 0.75)
	zeros := 0
	for _, s := range append([][]float32{m.FC}, m.Inter...) {
		for _, v := range s {
			switch v {
			case 0:
				zeros++
			case keep:
			default:
				t.Fatalf("mask value %g", v)
			}
		}
	}
	n := len(m.FC) + len(m.Inter[0])
	if len(m.Inter) != 1 || len(m.Inter[0]) != 10*8*arch.Hidden || len(m.FC) != 8*arch.FC {
		t.Fatalf("mask shapes %d, %d", len(m.Inter), len(m.FC))
	}
	if frac := float64(zeros) / float64(n); math.Abs(frac-0.25) > 0.02 {
		t.Fatalf("dropped %.3f, want 0.25", frac)
	}
	if n := testing.AllocsPerRun(3, func() { m.Draw(rng, arch, 8, 10) }); n != 0 {
		t.Fatalf("%v allocations per Draw", n)
	}
	arch.Dropout = 0
	if m.Draw(rng, arch, 8, 10) != nil {
		t.Fatal("masks without dropout")
	}
}
