package onnxmodel

import (
	"fmt"
	"testing"

	"github.com/modax/modax-ml/internal/model"
)

// BenchmarkGonnx is gonnx's latency on the default model (5 features,
// window 50, hidden 128, 2 layers, fc 64): the cost of export's validation.
// ONNX Runtime's is measured by tools/interop/ort_run.js bench.
func BenchmarkGonnx(b *testing.B) {
	ck := testCheckpoint(b, model.DefaultArch(5), 50, 1)
	mp, err := Build(ck, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRunner(mp)
	if err != nil {
		b.Fatal(err)
	}
	for _, B := range []int{1, 256} {
		raw, _ := testInputs(ck, B, 50, 1)
		b.Run(fmt.Sprintf("batch=%d", B), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Run(raw, B, 50, 5); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(B)*float64(b.N)/b.Elapsed().Seconds(), "windows/s")
		})
	}
}

// BenchmarkForward is the reference forward pass on the same model.
func BenchmarkForward(b *testing.B) {
	ck := testCheckpoint(b, model.DefaultArch(5), 50, 1)
	for _, B := range []int{1, 256} {
		_, x := testInputs(ck, B, 50, 1)
		b.Run(fmt.Sprintf("batch=%d", B), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ck.Params.Forward(x, B, 50); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(B)*float64(b.N)/b.Elapsed().Seconds(), "windows/s")
		})
	}
}
