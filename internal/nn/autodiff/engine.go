package autodiff

import (
	"errors"
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
)

// ErrOptimizerState is returned by SetOptimizerState for a state this engine
// cannot restore: gorgonia's AdamSolver keeps its moment estimates and step
// count unexported, so only a fresh state (step 0, zero moments) can be set.
var ErrOptimizerState = errors.New("autodiff: gorgonia's AdamSolver cannot restore Adam moments (its state is unexported); resume with the fused engine, or restart the optimizer")

// ErrNonFinite is returned by Step when the batch loss or gradient is NaN or
// ±Inf; the parameters are left unchanged.
var ErrNonFinite = errors.New("autodiff: non-finite loss or gradient")

// Options configure the engine.
type Options struct {
	// Adam configures the optimizer; the zero value means nn.DefaultAdam()
	// (as for the fused engine).
	Adam nn.Adam `json:"adam" yaml:"adam"`
	Loss nn.Loss `json:"loss" yaml:"loss"`
	// MaxGraphs bounds the cache of compiled graphs (one per batch size,
	// window length and train/predict); the least recently used is dropped
	// beyond it. 0 means 4: a full and a last partial training batch, and
	// the same for prediction.
	MaxGraphs int `json:"max_graphs" yaml:"max_graphs"`
}

// DefaultOptions is PyTorch's Adam defaults and MSE.
func DefaultOptions() Options { return Options{Adam: nn.DefaultAdam()} }

// predictChunk bounds the batch of one forward graph: Predict splits larger
// requests, so the graph cache holds at most two prediction shapes.
const predictChunk = 256

// Engine is the LSTM RUL model as a gorgonia expression graph: forward pass,
// symbolic reverse-mode gradients (gorgonia.Grad) and gorgonia's AdamSolver.
// It implements nn.Engine. An Engine is not safe for concurrent use.
type Engine struct {
	arch   model.Arch
	opts   Options
	dt     tensor.Dtype
	loss   lossFn
	params []*tensor.Dense // Spec order; bound to the param nodes of every graph
	names  []string

	solver *G.AdamSolver
	gbuf   []*tensor.Dense // the gradients handed to the solver (it consumes them)
	vgs    []G.ValueGrad   // solver view of params and gbuf
	steps  int

	graphs map[graphKey]*graph
	clock  uint64
}

var _ nn.Engine = (*Engine)(nil)

// New returns a float32 engine starting from a copy of p.
func New(p *model.Params, opts Options) (*Engine, error) {
	return newEngine(p, opts, tensor.Float32)
}

func newEngine(p *model.Params, opts Options, dt tensor.Dtype) (*Engine, error) {
	if p == nil {
		return nil, errors.New("autodiff: nil parameters")
	}
	if err := p.Arch.Validate(); err != nil {
		return nil, fmt.Errorf("autodiff: %w", err)
	}
	if p.Arch.Type != model.TypeLSTM {
		return nil, fmt.Errorf("autodiff: model type %q: only lstm has a graph", p.Arch.Type)
	}
	if opts.Adam == (nn.Adam{}) {
		opts.Adam = nn.DefaultAdam()
	}
	if err := checkAdam(opts.Adam); err != nil {
		return nil, err
	}
	if opts.Loss.Huber < 0 || math.IsNaN(opts.Loss.Huber) {
		return nil, fmt.Errorf("autodiff: huber delta %g must be ≥ 0", opts.Loss.Huber)
	}
	if opts.MaxGraphs <= 0 {
		opts.MaxGraphs = 4
	}
	e := &Engine{arch: p.Arch, opts: opts, dt: dt, graphs: map[graphKey]*graph{}}
	e.loss = mse
	if opts.Loss.Huber > 0 {
		e.loss = huber(dt, opts.Loss.Huber)
	}
	for _, s := range p.Arch.Spec() {
		e.params = append(e.params, tensor.New(tensor.WithShape(s.Shape...), tensor.Of(dt)))
		e.gbuf = append(e.gbuf, tensor.New(tensor.WithShape(s.Shape...), tensor.Of(dt)))
		e.names = append(e.names, s.Name)
	}
	if err := e.SetParams(p); err != nil {
		return nil, err
	}
	e.resetSolver()
	return e, nil
}

func checkAdam(a nn.Adam) error {
	switch {
	case !(a.LR > 0):
		return fmt.Errorf("autodiff: adam lr %g must be > 0", a.LR)
	case !(a.Beta1 >= 0 && a.Beta1 < 1) || !(a.Beta2 >= 0 && a.Beta2 < 1):
		return fmt.Errorf("autodiff: adam betas %g, %g must be in [0, 1)", a.Beta1, a.Beta2)
	case !(a.Eps >= 0):
		return fmt.Errorf("autodiff: adam eps %g must be ≥ 0", a.Eps)
	case !(a.WeightDecay >= 0):
		return fmt.Errorf("autodiff: adam weight decay %g must be ≥ 0", a.WeightDecay)
	case !(a.ClipNorm >= 0):
		return fmt.Errorf("autodiff: clip norm %g must be ≥ 0", a.ClipNorm)
	}
	return nil
}

// resetSolver starts a fresh AdamSolver (zero moments, step 0).
//
// Weight decay goes to the solver's L2 option: it adds λ·w to the gradient
// before the moment updates, exactly as torch.optim.Adam's weight_decay, and
// after our norm clipping, as in PyTorch where clip_grad_norm_ runs before
// optimizer.step(). The solver's own WithClip is an element-wise clamp, not
// PyTorch's norm clipping, so it is not used.
func (e *Engine) resetSolver() {
	a := e.opts.Adam
	opts := []G.SolverOpt{
		G.WithLearnRate(a.LR), G.WithBeta1(a.Beta1), G.WithBeta2(a.Beta2), G.WithEps(a.Eps),
	}
	if a.WeightDecay > 0 {
		opts = append(opts, G.WithL2Reg(a.WeightDecay))
	}
	e.solver = G.NewAdamSolver(opts...)
	e.steps = 0
	e.vgs = make([]G.ValueGrad, len(e.params))
	for i := range e.vgs {
		e.vgs[i] = valueGrad{name: e.names[i], w: e.params[i], g: e.gbuf[i]}
	}
}

// valueGrad hands the solver a parameter tensor and this step's gradient.
// The solver updates the value in place (so every graph sees the update)
// and consumes the gradient (it squares and zeroes it).
// Its name appears in the solver's error messages.
type valueGrad struct {
	name string
	w, g G.Value
}

func (v valueGrad) Value() G.Value         { return v.w }
func (v valueGrad) Grad() (G.Value, error) { return v.g, nil }
func (v valueGrad) Name() string           { return v.name }

// graph returns the compiled graph for key, building it on first use.
func (e *Engine) graph(key graphKey) (*graph, error) {
	e.clock++
	if gr, ok := e.graphs[key]; ok {
		gr.used = e.clock
		return gr, nil
	}
	gr, err := build(e.arch, e.loss, e.dt, e.params, key)
	if err != nil {
		return nil, err
	}
	gr.used = e.clock
	for len(e.graphs) >= e.opts.MaxGraphs {
		var old graphKey
		var oldest uint64 = math.MaxUint64
		for k, g := range e.graphs {
			if g.used < oldest {
				old, oldest = k, g.used
			}
		}
		_ = e.graphs[old].vm.Close()
		delete(e.graphs, old)
	}
	e.graphs[key] = gr
	return gr, nil
}

// window returns T for an input of b windows.
func (e *Engine) window(x []float32, b int) (int, error) {
	F := e.arch.InputSize
	if b < 1 {
		return 0, fmt.Errorf("autodiff: batch size %d must be ≥ 1", b)
	}
	if len(x) == 0 || len(x)%(b*F) != 0 {
		return 0, fmt.Errorf("autodiff: x has %d values, not a multiple of batch %d × %d features", len(x), b, F)
	}
	return len(x) / (b * F), nil
}

// load copies a batch into the graph's inputs, transposing to [rows, B].
func (e *Engine) load(gr *graph, x, y []float32, masks *nn.Masks) error {
	B, T, F, H := gr.key.b, gr.key.t, e.arch.InputSize, e.arch.Hidden
	for t := range T {
		setT(gr.x[t], F, B, func(f, b int) float32 { return x[(b*T+t)*F+f] })
	}
	if !gr.key.train {
		return nil
	}
	if len(y) < B {
		return fmt.Errorf("autodiff: y has %d values, want %d", len(y), B)
	}
	setT(gr.y, 1, B, func(_, b int) float32 { return y[b] })
	var inter [][]float32
	var fc []float32
	if masks != nil {
		inter, fc = masks.Inter, masks.FC
	}
	one := func(int, int) float32 { return 1 }
	for k := range gr.inter {
		var m []float32
		if k < len(inter) {
			m = inter[k]
		}
		if m == nil {
			for t := range T {
				setT(gr.inter[k][t], H, B, one)
			}
			continue
		}
		if len(m) != T*B*H {
			return fmt.Errorf("autodiff: inter-layer mask %d has %d values, want %d×%d×%d", k, len(m), T, B, H)
		}
		for t := range T {
			setT(gr.inter[k][t], H, B, func(h, b int) float32 { return m[(t*B+b)*H+h] })
		}
	}
	if fc == nil {
		setT(gr.fc, e.arch.FC, B, one)
	} else {
		if len(fc) != B*e.arch.FC {
			return fmt.Errorf("autodiff: fc mask has %d values, want %d×%d", len(fc), B, e.arch.FC)
		}
		setT(gr.fc, e.arch.FC, B, func(j, b int) float32 { return fc[b*e.arch.FC+j] })
	}
	return nil
}

// setT fills a [rows, B] tensor with at(row, b).
func setT(d *tensor.Dense, rows, B int, at func(r, b int) float32) {
	switch v := d.Data().(type) {
	case []float32:
		for r := range rows {
			for b := range B {
				v[r*B+b] = at(r, b)
			}
		}
	case []float64:
		for r := range rows {
			for b := range B {
				v[r*B+b] = float64(at(r, b))
			}
		}
	}
}

// run executes the graph once.
func run(gr *graph) error {
	gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return fmt.Errorf("autodiff: run graph: %w", err)
	}
	return nil
}

// train runs the training graph on a batch and returns the loss; the
// gradients are then in gr.grads.
func (e *Engine) train(x, y []float32, b int, masks *nn.Masks) (*graph, float64, error) {
	T, err := e.window(x, b)
	if err != nil {
		return nil, 0, err
	}
	gr, err := e.graph(graphKey{b: b, t: T, train: true})
	if err != nil {
		return nil, 0, err
	}
	if err := e.load(gr, x, y, masks); err != nil {
		return nil, 0, err
	}
	if err := run(gr); err != nil {
		return nil, 0, err
	}
	return gr, scalar(gr.loss.Value()), nil
}

// Grad implements nn.Engine.
func (e *Engine) Grad(x, y []float32, b int, masks *nn.Masks, grads *model.Params) (float64, error) {
	if grads == nil || grads.Arch != e.arch {
		return 0, errors.New("autodiff: grads must have the engine's architecture")
	}
	gr, loss, err := e.train(x, y, b, masks)
	if err != nil {
		return 0, err
	}
	for i, n := range gr.grads {
		if err := copyOut(grads.Get(e.names[i]).Data, n.Value()); err != nil {
			return 0, fmt.Errorf("autodiff: gradient of %s: %w", e.names[i], err)
		}
	}
	return loss, nil
}

// Step implements nn.Engine: gradients, norm clipping (as
// torch.nn.utils.clip_grad_norm_), then one step of gorgonia's AdamSolver.
//
// The gradients are copied into engine-owned tensors first: gorgonia's
// gradient values may alias (b_ih and b_hh enter the graph only through their
// sum, so both get the very same gradient tensor), and the solver consumes
// each gradient in place (squares it, then zeroes it), which would leave the
// second of two aliased parameters with a zero gradient.
func (e *Engine) Step(x, y []float32, b int, masks *nn.Masks) (float64, error) {
	gr, loss, err := e.train(x, y, b, masks)
	if err != nil {
		return 0, err
	}
	grads := make([]*tensor.Dense, len(gr.grads))
	var sq float64
	for i, n := range gr.grads {
		if grads[i], err = contiguous(n.Value()); err != nil {
			return 0, fmt.Errorf("autodiff: gradient of %s: %w", e.names[i], err)
		}
		sq += sumSquares(grads[i])
	}
	norm := math.Sqrt(sq)
	if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return loss, fmt.Errorf("%w (loss %g, gradient norm %g)", ErrNonFinite, loss, norm)
	}
	scale := 1.0
	if c := e.opts.Adam.ClipNorm; c > 0 {
		// PyTorch: clip_coef = max_norm / (total_norm + 1e-6), applied when < 1.
		if coef := c / (norm + 1e-6); coef < 1 {
			scale = coef
		}
	}
	for i, g := range grads {
		if err := copyScaled(e.gbuf[i], g, scale); err != nil {
			return 0, fmt.Errorf("autodiff: gradient of %s: %w", e.names[i], err)
		}
	}
	if err := e.solver.Step(e.vgs); err != nil {
		return 0, fmt.Errorf("autodiff: adam step: %w", err)
	}
	e.steps++
	return loss, nil
}

// Predict implements nn.Engine.
func (e *Engine) Predict(x []float32, b int, out []float32) error {
	T, err := e.window(x, b)
	if err != nil {
		return err
	}
	if len(out) < b {
		return fmt.Errorf("autodiff: out has %d values, want %d", len(out), b)
	}
	per := T * e.arch.InputSize
	for lo := 0; lo < b; lo += predictChunk {
		n := min(predictChunk, b-lo)
		gr, err := e.graph(graphKey{b: n, t: T})
		if err != nil {
			return err
		}
		if err := e.load(gr, x[lo*per:(lo+n)*per], nil, nil); err != nil {
			return err
		}
		if err := run(gr); err != nil {
			return err
		}
		if err := copyOut(out[lo:lo+n], gr.out.Value()); err != nil {
			return fmt.Errorf("autodiff: output: %w", err)
		}
	}
	return nil
}

// SetLR implements nn.Engine; the solver's moments are kept.
func (e *Engine) SetLR(lr float64) {
	e.opts.Adam.LR = lr
	G.WithLearnRate(lr)(e.solver)
}

// LR returns the current learning rate.
func (e *Engine) LR() float64 { return e.opts.Adam.LR }

// Params implements nn.Engine.
func (e *Engine) Params() *model.Params {
	p, _ := model.NewParams(e.arch) // arch validated in New
	for i, t := range p.Tensors {
		_ = copyOut(t.Data, e.params[i]) // dense float tensors of the right size
	}
	return p
}

// SetParams implements nn.Engine.
func (e *Engine) SetParams(p *model.Params) error {
	if p == nil || p.Arch != e.arch {
		return fmt.Errorf("autodiff: parameters for %+v, engine has %+v", archOf(p), e.arch)
	}
	for i, name := range e.names {
		t, ok := p.Lookup(name)
		if !ok || len(t.Data) != e.params[i].Shape().TotalSize() {
			return fmt.Errorf("autodiff: parameter %s missing or mis-sized", name)
		}
		switch d := e.params[i].Data().(type) {
		case []float32:
			copy(d, t.Data)
		case []float64:
			for j, v := range t.Data {
				d[j] = float64(v)
			}
		}
	}
	return nil
}

func archOf(p *model.Params) any {
	if p == nil {
		return nil
	}
	return p.Arch
}

// OptimizerState implements nn.Engine as far as gorgonia allows: the step
// count is the engine's own; m and v are nil because gorgonia's AdamSolver
// does not expose its moment estimates.
func (e *Engine) OptimizerState() (step int, m, v *model.Params) {
	return e.steps, nil, nil
}

// SetOptimizerState implements nn.Engine: only a fresh state (step 0, and nil
// or all-zero moments) can be set, which restarts the solver; anything else
// returns ErrOptimizerState and leaves the engine unchanged.
func (e *Engine) SetOptimizerState(step int, m, v *model.Params) error {
	zero := func(p *model.Params) bool {
		if p == nil {
			return true
		}
		for _, t := range p.Tensors {
			for _, x := range t.Data {
				if x != 0 {
					return false
				}
			}
		}
		return true
	}
	if step != 0 || !zero(m) || !zero(v) {
		return fmt.Errorf("%w (step %d)", ErrOptimizerState, step)
	}
	e.resetSolver()
	return nil
}

// Close implements nn.Engine.
func (e *Engine) Close() error {
	for k, gr := range e.graphs {
		_ = gr.vm.Close()
		delete(e.graphs, k)
	}
	return nil
}

// Graphs returns how many compiled graphs the engine holds (for tests and
// diagnostics).
func (e *Engine) Graphs() int { return len(e.graphs) }

// Steps returns the number of optimizer steps taken.
func (e *Engine) Steps() int { return e.steps }

// scalar returns a scalar Value as float64.
func scalar(v G.Value) float64 {
	switch s := v.Data().(type) {
	case float32:
		return float64(s)
	case float64:
		return s
	case []float32:
		return float64(s[0])
	case []float64:
		return s[0]
	}
	return math.NaN()
}

// contiguous returns v as a dense tensor whose Data is its elements in
// row-major order (materialising a view).
func contiguous(v G.Value) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("value %T is not a dense tensor", v)
	}
	if d.IsView() {
		m, ok := d.Materialize().(*tensor.Dense)
		if !ok {
			return nil, fmt.Errorf("cannot materialise view %v", d.Shape())
		}
		return m, nil
	}
	return d, nil
}

// copyOut copies a float tensor's elements into dst (same size).
func copyOut(dst []float32, v G.Value) error {
	d, err := contiguous(v)
	if err != nil {
		return err
	}
	if d.Shape().TotalSize() != len(dst) {
		return fmt.Errorf("%d values, want %d", d.Shape().TotalSize(), len(dst))
	}
	switch s := d.Data().(type) {
	case []float32:
		copy(dst, s)
	case []float64:
		for i, x := range s {
			dst[i] = float32(x)
		}
	default:
		return fmt.Errorf("unexpected data %T", s)
	}
	return nil
}

func sumSquares(d *tensor.Dense) float64 {
	var sq float64
	switch v := d.Data().(type) {
	case []float32:
		for _, x := range v {
			sq += float64(x) * float64(x)
		}
	case []float64:
		for _, x := range v {
			sq += x * x
		}
	}
	return sq
}

// copyScaled sets dst = s·src (same shape and dtype).
func copyScaled(dst, src *tensor.Dense, s float64) error {
	switch d := dst.Data().(type) {
	case []float32:
		v, ok := src.Data().([]float32)
		if !ok || len(v) != len(d) {
			return fmt.Errorf("gradient %v of %v, want %d float32", src.Shape(), src.Dtype(), len(d))
		}
		for i, x := range v {
			d[i] = x * float32(s)
		}
	case []float64:
		v, ok := src.Data().([]float64)
		if !ok || len(v) != len(d) {
			return fmt.Errorf("gradient %v of %v, want %d float64", src.Shape(), src.Dtype(), len(d))
		}
		for i, x := range v {
			d[i] = x * s
		}
	}
	return nil
}
