package nn_test

import (
	"fmt"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// A predictor runs a checkpoint's parameters natively: x holds b windows of
// T steps × F scaled features, time-major, as windows.parquet stores them.
func ExampleNewPredictor() {
	p, err := model.NewParams(model.DefaultArch(2)) // 2 features, hidden 128, 2 layers
	if err != nil {
		panic(err)
	}
	p.Init(1)
	pr := nn.NewPredictor(p, 1)
	defer pr.Close()
	const b, t, f = 2, 3, 2
	x := []float32{
		0, 0, 0, 0, 0, 0, // window 0: all zeros
		1, -1, 1, -1, 1, -1, // window 1
	}
	out := make([]float32, b)
	if err := pr.Predict(x[:b*t*f], b, out); err != nil {
		panic(err)
	}
	fmt.Printf("%.4f %.4f\n", out[0], out[1])
	// Output: 0.0202 0.0197
}

// The fused engine trains: each Step is forward, backward and an Adam update
// on one batch (dropout masks drawn by the caller, so that engines can be
// compared on the same ones).
func ExampleNewFused() {
	arch := model.Arch{Type: model.TypeLSTM, InputSize: 1, Hidden: 8, Layers: 1, FC: 16}
	p, err := model.NewParams(arch)
	if err != nil {
		panic(err)
	}
	p.Init(1)
	eng, err := nn.NewFused(p, nn.Config{Workers: 1, Adam: nn.Adam{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}})
	if err != nil {
		panic(err)
	}
	defer eng.Close()
	x := []float32{0, 0, 1, 1} // two windows of two steps
	y := []float32{0, 1}       // learn: the last value
	var first, last float64
	for i := range 200 {
		loss, err := eng.Step(x, y, 2, nil)
		if err != nil {
			panic(err)
		}
		if i == 0 {
			first = loss
		}
		last = loss
	}
	fmt.Printf("loss %.3f -> %.5f\n", first, last)
	// Output: loss 0.697 -> 0.00000
}
