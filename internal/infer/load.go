package infer

import (
	"fmt"
	"strings"

	"github.com/modax/modax-ml/internal/location"

	"golang.org/x/sync/errgroup"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// Load loads a model.safetensors checkpoint and runs it with the native
// forward pass on workers goroutines; a path ending in .onnx is loaded with
// LoadONNX.
func Load(path string, workers int) (*Model, error) {
	if strings.EqualFold(location.Ext(path), ".onnx") {
		return LoadONNX(path, workers)
	}
	ck, err := model.Load(path)
	if err != nil {
		return nil, err
	}
	sha, err := dataset.FileSHA256(path)
	if err != nil {
		return nil, err
	}
	m, err := FromCheckpoint(path, sha, ck, nil)
	if err != nil {
		return nil, err
	}
	fwd, closer := NewNative(ck.Params, workers)
	m.Forward, m.close = fwd, closer
	return m, nil
}

// NewNative returns the native forward pass of p (nn.Predictor: float32,
// batched, parallel over workers goroutines; ≤ 0: one per core) and the
// function that releases it.
func NewNative(p *model.Params, workers int) (Forward, func() error) {
	pr := nn.NewPredictor(p, workers)
	return pr, func() error { pr.Close(); return nil }
}

// Reference runs the reference forward pass (model.Params.Forward, float64
// accumulation, written for clarity) with the batch split over workers
// goroutines. The product path is NewNative; Reference is the yardstick its
// tests and benchmarks compare with.
type Reference struct {
	p       *model.Params
	t       int
	workers int
}

// NewReference returns the reference forward pass of p for windows of t
// steps on workers goroutines (at least one).
func NewReference(p *model.Params, t, workers int) *Reference {
	return &Reference{p: p, t: t, workers: max(1, workers)}
}

// Predict implements Forward.
func (r *Reference) Predict(x []float32, b int, out []float32) error {
	if b == 0 {
		return nil
	}
	size := len(x) / b
	if size*b != len(x) || len(out) < b {
		return fmt.Errorf("forward: %d values for %d windows, output room %d", len(x), b, len(out))
	}
	chunk := (b + r.workers - 1) / r.workers
	var g errgroup.Group
	for lo := 0; lo < b; lo += chunk {
		hi := min(lo+chunk, b)
		g.Go(func() error {
			y, err := r.p.Forward(x[lo*size:hi*size], hi-lo, r.t)
			if err != nil {
				return err
			}
			copy(out[lo:hi], y)
			return nil
		})
	}
	return g.Wait()
}
