package autodiff_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/nn/autodiff"
)

// Train the design's model (smaller) on one batch with the gorgonia engine.
func Example() {
	arch := model.Arch{Type: model.TypeLSTM, InputSize: 2, Hidden: 8, Layers: 2, FC: 4, Dropout: 0.2}
	p, err := model.NewParams(arch)
	if err != nil {
		panic(err)
	}
	p.Init(1) // PyTorch's default initialisation, seeded

	e, err := autodiff.New(p, autodiff.DefaultOptions())
	if err != nil {
		panic(err)
	}
	defer e.Close()

	const b, t = 4, 10 // x is [b][t][features], as windows.parquet stores it
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, b*t*arch.InputSize)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := []float32{0.5, -0.5, 1, 0}

	var first, last float64
	for step := range 200 {
		masks := nn.NewMasks(rng, arch, b, t) // fresh dropout masks per batch
		loss, err := e.Step(x, y, b, masks)
		if err != nil {
			panic(err)
		}
		if step == 0 {
			first = loss
		}
		last = loss
	}
	out := make([]float32, b)
	if err := e.Predict(x, b, out); err != nil {
		panic(err)
	}
	fmt.Println("loss decreased:", last < first/2)
	fmt.Println("graphs compiled:", e.Graphs()) // one training, one prediction
	// Output:
	// loss decreased: true
	// graphs compiled: 2
}
