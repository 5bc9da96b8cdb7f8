// Package nn holds the training engines of the LSTM RUL model behind one
// interface: the fused float32 engine of this package (the default) and the
// gorgonia autodiff engine (package internal/nn/autodiff, the reference).
//
// Data layout shared by every engine: a batch of B windows is x [B][T][F]
// (row-major, time-major within a window, exactly as windows.parquet stores
// x), targets y [B]. Parameters are model.Params (PyTorch state_dict layout,
// gate order i, f, g, o).
package nn

import (
	"math/rand/v2"

	"github.com/modax/modax-ml/internal/model"
)

// Masks are the dropout masks of one batch, given to an engine so that two
// engines (or PyTorch) see the same dropout. Each value is 0 or 1/(1-p).
// A nil *Masks, or a nil slice in it, means no dropout there.
type Masks struct {
	// Inter holds nn.LSTM's inter-layer dropout, applied to the output h_t of
	// every layer but the last before it feeds the next layer:
	// Inter[k] is [T][B][H] for layer k = 0 .. Layers-2.
	Inter [][]float32
	// FC is the dropout after fc1's ReLU: [B][FC].
	FC []float32
}

// NewMasks draws masks for a batch of b windows of length t with drop
// probability arch.Dropout (nil when the dropout is 0).
func NewMasks(rng *rand.Rand, arch model.Arch, b, t int) *Masks {
	p := arch.Dropout
	if p <= 0 {
		return nil
	}
	keep := float32(1 / (1 - p))
	draw := func(n int) []float32 {
		m := make([]float32, n)
		for i := range m {
			if rng.Float64() >= p {
				m[i] = keep
			}
		}
		return m
	}
	m := &Masks{FC: draw(b * arch.FC)}
	for range arch.Layers - 1 {
		m.Inter = append(m.Inter, draw(t*b*arch.Hidden))
	}
	return m
}

// Adam configures the optimizer (PyTorch's torch.optim.Adam semantics; weight
// decay is L2 added to the gradient, as torch.optim.Adam's weight_decay).
type Adam struct {
	LR          float64 `json:"lr" yaml:"lr"`
	Beta1       float64 `json:"beta1" yaml:"beta1"`
	Beta2       float64 `json:"beta2" yaml:"beta2"`
	Eps         float64 `json:"eps" yaml:"eps"`
	WeightDecay float64 `json:"weight_decay" yaml:"weight_decay"`
	// ClipNorm rescales the whole gradient to this L2 norm when it is larger
	// (torch.nn.utils.clip_grad_norm_); 0 disables.
	ClipNorm float64 `json:"clip_norm" yaml:"clip_norm"`
}

// DefaultAdam is lr 1e-3, betas 0.9/0.999, eps 1e-8, no decay, no clipping.
func DefaultAdam() Adam { return Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// Engine trains one model. Loss is the mean over the batch of the squared
// error (or Huber with delta when Loss.Huber > 0) between the model output and y.
type Engine interface {
	// Grad computes the batch loss and writes dLoss/dθ into grads (same
	// architecture as the engine's parameters) without changing anything.
	Grad(x, y []float32, b int, masks *Masks, grads *model.Params) (float64, error)
	// Step computes loss and gradients on the batch and applies one Adam
	// update (after clipping); it returns the batch loss before the update.
	Step(x, y []float32, b int, masks *Masks) (float64, error)
	// Predict writes the model output (no dropout) for b windows into out[:b].
	Predict(x []float32, b int, out []float32) error
	// SetLR changes the learning rate (for reduce-on-plateau).
	SetLR(lr float64)
	// Params returns the current parameters (a copy the caller owns).
	Params() *model.Params
	// SetParams replaces the parameters (restoring best weights, resume).
	SetParams(p *model.Params) error
	// OptimizerState returns Adam's step count and moment tensors (named as the
	// parameters) so that a checkpoint can resume; SetOptimizerState restores it.
	OptimizerState() (step int, m, v *model.Params)
	SetOptimizerState(step int, m, v *model.Params) error
	// Close releases the engine's resources (goroutines, graph, VM).
	Close() error
}

// Loss selects the training loss.
type Loss struct {
	// Huber > 0 selects the Huber loss with this delta (on the engine's target
	// scale); 0 selects MSE.
	Huber float64 `json:"huber" yaml:"huber"`
}
