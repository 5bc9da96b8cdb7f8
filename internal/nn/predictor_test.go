package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/modax/modax-ml/internal/model"
)

// TestPredictor compares the float32 predictor with the float64 engine's
// forward pass for batch sizes that exercise single-window, sharded and
// chunked inference, and checks it allocates nothing once warm.
func TestPredictor(t *testing.T) {
	arch := model.DefaultArch(5)
	arch.Layers = 3
	const tn = 9
	p, _, _, _ := testBatch(t, arch, 1, tn, 11)
	e64 := newEngine64(t, p, Config{Workers: 1})
	pr := NewPredictor(p, 2)
	defer pr.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	for _, b := range []int{1, 2, 7, 2*predictChunk + 3} {
		x := randSlice(rng, b*tn*arch.InputSize)
		want := make([]float32, b)
		if err := e64.predict(x, b, want); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, b)
		if err := pr.Predict(x, b, got); err != nil {
			t.Fatal(err)
		}
		for j := range b {
			if d := math.Abs(float64(got[j] - want[j])); d > 1e-5*(1+math.Abs(float64(want[j]))) {
				t.Fatalf("b=%d: out[%d] = %g, float64 %g", b, j, got[j], want[j])
			}
		}
		// A window alone gives (nearly) what it gives inside a batch.
		one := make([]float32, 1)
		last := b - 1
		if err := pr.Predict(x[last*tn*arch.InputSize:], 1, one); err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(float64(one[0] - got[last])); d > 1e-5*(1+math.Abs(float64(got[last]))) {
			t.Fatalf("b=%d: window %d alone %g, in the batch %g", b, last, one[0], got[last])
		}
		if allocs := testing.AllocsPerRun(5, func() { _ = pr.Predict(x, b, got) }); allocs != 0 {
			t.Errorf("b=%d: %v allocations per Predict", b, allocs)
		}
	}
	// Bad calls are errors, not panics.
	if err := pr.Predict(make([]float32, 11), 1, make([]float32, 1)); err == nil {
		t.Error("wrong input length accepted")
	}
	if err := pr.Predict(make([]float32, tn*arch.InputSize), 1, nil); err == nil {
		t.Error("short output accepted")
	}
	if err := NewPredictor(nil, 1).Predict(nil, 1, nil); err == nil {
		t.Error("nil parameters accepted")
	}
}

func TestPredictorRidge(t *testing.T) {
	p, err := model.NewParams(model.Arch{Type: model.TypeRidge, InputSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	copy(p.Get("ridge.weight").Data, []float32{1, -2, 0.5})
	p.Get("ridge.bias").Data[0] = 10
	out := make([]float32, 2)
	if err := NewPredictor(p, 1).Predict([]float32{1, 1, 2, 0, 1, 0}, 2, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 10 || out[1] != 8 {
		t.Fatalf("ridge out %v, want [10 8]", out)
	}
}

// BenchmarkPredictor measures throughput (windows/s, batch 256) and
// single-window latency for the default architecture on both issue shapes.
func BenchmarkPredictor(b *testing.B) {
	for _, cfg := range []struct {
		name  string
		in, t int
	}{{"I5xT50", 5, 50}, {"I14xT30", 14, 30}} {
		arch := model.DefaultArch(cfg.in)
		p, _ := model.NewParams(arch)
		p.Init(1)
		rng := rand.New(rand.NewPCG(1, 1))
		for _, bs := range []int{1, 256} {
			b.Run(cfg.name+"/batch"+itoa(bs), func(b *testing.B) {
				workers := 0
				if bs == 1 {
					workers = 1
				}
				pr := NewPredictor(p, workers)
				defer pr.Close()
				x := randSlice(rng, bs*cfg.t*cfg.in)
				out := make([]float32, bs)
				if err := pr.Predict(x, bs, out); err != nil { // warm up
					b.Fatal(err)
				}
				b.ReportAllocs()
				c0 := cpuTime()
				for b.Loop() {
					if err := pr.Predict(x, bs, out); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(bs)*float64(b.N)/b.Elapsed().Seconds(), "windows/s")
				b.ReportMetric(float64(cpuTime()-c0)/1e6/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var s []byte
	for ; n > 0; n /= 10 {
		s = append([]byte{byte('0' + n%10)}, s...)
	}
	return string(s)
}
