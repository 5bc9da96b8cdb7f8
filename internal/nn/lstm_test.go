package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modax/modax-ml/internal/model"
)

// testBatch returns random parameters, inputs, targets and dropout masks.
func testBatch(t testing.TB, arch model.Arch, b, tn int, seed uint64) (*model.Params, []float32, []float32, *Masks) {
	t.Helper()
	p, err := model.NewParams(arch)
	if err != nil {
		t.Fatal(err)
	}
	p.Init(seed)
	rng := rand.New(rand.NewPCG(seed, 99))
	x := randSlice(rng, b*tn*arch.InputSize)
	y := make([]float32, b)
	for i := range y {
		y[i] = float32(rng.Float64())
	}
	return p, x, y, NewMasks(rng, arch, b, tn)
}

func newEngine64(t testing.TB, p *model.Params, cfg Config) *engine[float64] {
	t.Helper()
	e, err := newEngine(p, cfg, func() blas[float64] { return refBLAS[float64]{} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

// TestGradFiniteDifferences checks every parameter's gradient of the float64
// instantiation of the engine against central differences, with dropout
// masks on every layer, three LSTM layers (so a middle layer is covered), a
// batch split across workers, MSE and Huber.
func TestGradFiniteDifferences(t *testing.T) {
	arch := model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 4, Layers: 3, FC: 5, Dropout: 0.3}
	for _, tc := range []struct {
		name    string
		loss    Loss
		workers int
		masks   bool
	}{
		{"mse", Loss{}, 1, true},
		{"mse-2workers", Loss{}, 2, true},
		{"huber", Loss{Huber: 0.3}, 3, true},
		{"nomask", Loss{}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const b, tn = 5, 6
			p, x, y, masks := testBatch(t, arch, b, tn, 3)
			if !tc.masks {
				masks = nil
			}
			e := newEngine64(t, p, Config{Workers: tc.workers, Loss: tc.loss})
			if _, err := e.grad(x, y, b, masks); err != nil {
				t.Fatal(err)
			}
			analytic := append([]float64(nil), e.total...)
			w := e.net.w
			const h = 1e-6
			lossAt := func() float64 {
				e.net.prepare()
				l, err := e.grad(x, y, b, masks)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}
			gmax := 0.0
			for _, g := range analytic {
				gmax = max(gmax, math.Abs(g))
			}
			worst := 0.0
			for j := range w {
				orig := w[j]
				w[j] = orig + h
				lp := lossAt()
				w[j] = orig - h
				lm := lossAt()
				w[j] = orig
				num := (lp - lm) / (2 * h)
				// relative to the gradient's own size, or to the largest
				// gradient for the tiny ones finite differences cannot resolve
				err := math.Abs(num-analytic[j]) / (math.Abs(analytic[j]) + 1e-3*gmax)
				worst = max(worst, err)
				if err > 1e-5 {
					t.Errorf("%s: analytic %.10g, numeric %.10g", paramName(&e.net.lay, j), analytic[j], num)
				}
			}
			t.Logf("%d parameters, worst relative difference %.2g", len(w), worst)
		})
	}
}

func paramName(l *layout, j int) string {
	for i := len(l.off) - 1; i >= 0; i-- {
		if j >= l.off[i] {
			return fmt.Sprintf("%s[%d]", l.spec[i].Name, j-l.off[i])
		}
	}
	return "?"
}

// TestFloat32MatchesFloat64 checks the float32 engine (fast kernels, fast
// exp) against the float64 one on the default architecture's shapes.
func TestFloat32MatchesFloat64(t *testing.T) {
	arch := model.DefaultArch(5)
	const b, tn = 7, 12
	p, x, y, masks := testBatch(t, arch, b, tn, 5)
	e64 := newEngine64(t, p, Config{Workers: 2})
	l64, err := e64.grad(x, y, b, masks)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Backends() {
		t.Run(name, func(t *testing.T) {
			f, err := NewFused(p, Config{Workers: 2, BLAS: name})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			g, _ := model.NewParams(arch)
			l32, err := f.Grad(x, y, b, masks, g)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(l32-l64) > 1e-5*math.Abs(l64) {
				t.Errorf("loss %g, float64 %g", l32, l64)
			}
			g64, _ := model.NewParams(arch)
			unflatten(&e64.net.lay, e64.total, g64)
			for i, gt := range g.Tensors {
				want := g64.Tensors[i]
				var num, den float64
				for j := range gt.Data {
					d := float64(gt.Data[j] - want.Data[j])
					num += d * d
					den += float64(want.Data[j]) * float64(want.Data[j])
				}
				if rel := math.Sqrt(num / (den + 1e-30)); rel > 1e-4 {
					t.Errorf("%s: relative difference %.3g", gt.Name, rel)
				}
			}
		})
	}
}

// TestCellInferSameBits: the fused inference cell gives c and h the bits of
// cellForward32 (the training cell), with and without a previous state, on
// pre-activations from tiny to beyond the exp clamp.
func TestCellInferSameBits(t *testing.T) {
	if !use512 {
		t.Skip("no AVX-512 on this machine (or MODAX_NO_AVX512=1)")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, H := range []int{16, 128} {
		for _, scale := range []float64{1e-3, 1, 8, 120} {
			g := make([]float32, 4*H)
			cp := make([]float32, H)
			for i := range g {
				g[i] = float32(rng.NormFloat64() * scale)
			}
			for i := range cp {
				cp[i] = float32(rng.NormFloat64() * scale)
			}
			for _, prev := range [][]float32{nil, cp} {
				gw := append([]float32(nil), g...)
				cw, tw, hw := make([]float32, H), make([]float32, H), make([]float32, H)
				cellForward32(gw, prev, cw, tw, hw, 1, H)
				cg, hg := make([]float32, H), make([]float32, H)
				gg := append([]float32(nil), g...)
				if !cellInferRow32(gg, prev, cg, hg, H) {
					t.Fatal("cellInferRow32 refused H =", H)
				}
				for u := range H {
					if math.Float32bits(cg[u]) != math.Float32bits(cw[u]) || math.Float32bits(hg[u]) != math.Float32bits(hw[u]) {
						t.Fatalf("H=%d scale=%g prev=%v unit %d: c, h = %g, %g; cellForward32 gives %g, %g", H, scale, prev != nil, u, cg[u], hg[u], cw[u], hw[u])
					}
				}
			}
		}
	}
}
