package autodiff

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// BenchmarkStep measures one training step (forward, symbolic backward,
// clipping, AdamSolver) of the design's model (H=128, 2 layers, FC 64,
// dropout 0.2 with masks) for the two shapes, and reports samples/s
// and bytes allocated per step (the graph is compiled once, before the
// timer).
//
//	go test ./internal/nn/autodiff -run '^$' -bench Step -benchtime 20x
func BenchmarkStep(b *testing.B) {
	for _, c := range []struct{ i, t, b int }{{5, 50, 32}, {14, 30, 256}} {
		b.Run(fmt.Sprintf("I=%d/T=%d/B=%d", c.i, c.t, c.b), func(b *testing.B) {
			arch := model.DefaultArch(c.i)
			p, err := model.NewParams(arch)
			if err != nil {
				b.Fatal(err)
			}
			p.Init(1)
			opts := DefaultOptions()
			opts.Adam.ClipNorm = 1
			e, err := New(p, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			x, y := batch(2, arch, c.b, c.t)
			m := nn.NewMasks(rand.New(rand.NewPCG(3, 4)), arch, c.b, c.t)
			if _, err := e.Step(x, y, c.b, m); err != nil { // compile
				b.Fatal(err)
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := e.Step(x, y, c.b, m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.b*b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}

// BenchmarkBuild measures compiling a training graph (what a per-shape cache
// saves on every later batch of that shape).
func BenchmarkBuild(b *testing.B) {
	arch := model.DefaultArch(5)
	p, _ := model.NewParams(arch)
	p.Init(1)
	e, err := New(p, DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		gr, err := build(e.arch, e.loss, e.dt, e.params, graphKey{b: 32, t: 50, train: true})
		if err != nil {
			b.Fatal(err)
		}
		_ = gr.vm.Close()
	}
}
