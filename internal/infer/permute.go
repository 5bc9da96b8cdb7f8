package infer

import (
	"context"
	"fmt"
	"math"

	"github.com/modax/modax-ml/internal/dataset"
)

// Runner runs a model over chosen windows of a windows file, optionally
// with one feature's values taken from other windows: the forward pass
// behind permutation importance. It is the batched path of Predict (the
// same input check, scaling and batches), without the predictions around
// it.
type Runner struct {
	m     *Model
	w     *dataset.Windows
	loc   string
	tr    transform
	batch int
	x     []float32
	y     []float32
}

// NewRunner checks that w fits m (as Predict does) and prepares batches of
// up to batch windows.
func NewRunner(m *Model, w *dataset.Windows, loc string, batch int) (*Runner, error) {
	if err := Check(m, w.Meta, loc); err != nil {
		return nil, err
	}
	if batch < 1 {
		return nil, fmt.Errorf("batch size %d: want ≥ 1", batch)
	}
	tr, err := newTransform(m, w.Meta.Scaler, loc)
	if err != nil {
		return nil, err
	}
	size := w.T * w.F
	return &Runner{m: m, w: w, loc: loc, tr: tr, batch: batch, x: make([]float32, batch*size), y: make([]float32, batch)}, nil
}

// Run predicts the RUL (hours) of the windows rows into out[:len(rows)].
// When src is not nil (len(src) == len(rows)), feature f of window rows[k]
// takes, at every time step, the values of window rows[src[k]]; the other
// features keep their own. A non-finite model output is an error naming
// the window.
func (r *Runner) Run(ctx context.Context, rows []int, f int, src []int, out []float64) error {
	if src != nil && len(src) != len(rows) {
		return fmt.Errorf("runner: %d sources for %d rows", len(src), len(rows))
	}
	if src != nil && (f < 0 || f >= r.w.F) {
		return fmt.Errorf("runner: feature %d of %d", f, r.w.F)
	}
	w := r.w
	size, nf := w.T*w.F, w.F
	for lo := 0; lo < len(rows); lo += r.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		hi := min(lo+r.batch, len(rows))
		b := hi - lo
		for k, i := range rows[lo:hi] {
			dst := r.x[k*size : (k+1)*size]
			r.tr.apply(dst, w.XAt(i))
			if src == nil {
				continue
			}
			from := w.XAt(rows[src[lo+k]])
			a, c := 1.0, 0.0
			if !r.tr.identity {
				a, c = r.tr.a[f], r.tr.b[f]
			}
			for t := f; t < size; t += nf {
				dst[t] = float32(a*float64(from[t]) + c)
			}
		}
		if err := r.m.Forward.Predict(r.x[:b*size], b, r.y[:b]); err != nil {
			return fmt.Errorf("predict %s: %w", r.m.Path, err)
		}
		for k := range b {
			v := float64(r.y[k])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				i := rows[lo+k]
				return fmt.Errorf("predict %s: the model output %v for window %d of %s (device %s)", r.m.Path, v, i+1, r.loc, w.Device[i])
			}
			out[lo+k] = v
		}
	}
	return nil
}
