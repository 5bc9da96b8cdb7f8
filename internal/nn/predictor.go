package nn

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/modax/modax-ml/internal/model"
)

// Predictor runs a model's forward pass natively (float32, no dropout),
// batched and parallel: the inference path of predict, evaluate and the
// export validation. It uses the same kernels as the fused engine and
// allocates nothing per call once its buffers fit the largest batch seen.
// A Predictor is not safe for concurrent use; create one per goroutine.
type Predictor struct {
	arch model.Arch
	e    *engine[float32] // lstm
	w    []float32        // ridge weight
	b    float32          // ridge bias
	err  error
}

// NewPredictor returns a predictor for p using up to workers goroutines
// (≤ 0: GOMAXPROCS). Parameters are copied. An invalid p is reported by
// Predict.
//
// For an lstm model x is [b][T][F] scaled windows (as windows.parquet stores
// x); for a ridge model it is [b][F] standardised statistical features.
// Either way out[:b] receives the model output (hours, for checkpoints).
func NewPredictor(p *model.Params, workers int) *Predictor {
	if p == nil {
		return &Predictor{err: errors.New("nn: predictor without parameters")}
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	pr := &Predictor{arch: p.Arch}
	if err := p.Arch.Validate(); err != nil {
		pr.err = err
		return pr
	}
	if p.Arch.Type == model.TypeRidge {
		w, ok1 := p.Lookup("ridge.weight")
		b, ok2 := p.Lookup("ridge.bias")
		if !ok1 || !ok2 || len(w.Data) != p.Arch.InputSize || len(b.Data) != 1 {
			pr.err = errors.New("nn: ridge parameters missing or of the wrong size")
			return pr
		}
		pr.w, pr.b = append([]float32(nil), w.Data...), b.Data[0]
		return pr
	}
	be, err := lookupBackend("")
	if err != nil {
		pr.err = err
		return pr
	}
	e, err := newEngine(p, Config{Workers: workers}, be.new)
	if err != nil {
		pr.err = err
		return pr
	}
	e.m, e.v, e.total = nil, nil, nil // inference only
	pr.e = e
	runtime.AddCleanup(pr, func(p *pool) { p.close() }, e.pool)
	return pr
}

// Arch returns the model architecture.
func (p *Predictor) Arch() model.Arch { return p.arch }

// Predict writes the model output for b inputs into out[:b].
func (p *Predictor) Predict(x []float32, b int, out []float32) error {
	if p.err != nil {
		return p.err
	}
	if b == 0 {
		return nil
	}
	if p.e != nil {
		return p.e.predict(x, b, out)
	}
	F := p.arch.InputSize
	if b < 0 || len(x) != b*F {
		return fmt.Errorf("nn: %d input values are not %d rows of %d features", len(x), b, F)
	}
	if len(out) < b {
		return fmt.Errorf("nn: output has room for %d of %d rows", len(out), b)
	}
	for j := range b {
		s := float64(p.b)
		for f, v := range x[j*F : (j+1)*F] {
			s += float64(v) * float64(p.w[f])
		}
		out[j] = float32(s)
	}
	return nil
}

// Close stops the predictor's worker goroutines (they are also stopped when
// the predictor is garbage-collected).
func (p *Predictor) Close() {
	if p.e != nil {
		p.e.close()
	}
}
