package nn

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/modax/modax-ml/internal/model"
)

// Config configures a fused engine.
type Config struct {
	// Workers is the number of goroutines a batch is sharded across (default
	// GOMAXPROCS). Results are bit-identical for the same worker count.
	Workers int
	// BLAS names the matrix-product backend ("" or "auto": the binary's
	// default, see Backends).
	BLAS string
	Adam Adam
	Loss Loss
}

// Fused is the fused float32 engine: a hand-written LSTM forward pass and
// backpropagation through time with per-time-step batched products, the
// batch sharded across worker goroutines whose gradients are summed in a
// fixed order, Adam as torch.optim.Adam. It allocates nothing per step once
// its buffers have grown to the batch shape.
type Fused struct{ e *engine[float32] }

var _ Engine = (*Fused)(nil)

// NewFused returns a fused engine training a copy of p.
func NewFused(p *model.Params, cfg Config) (*Fused, error) {
	be, err := lookupBackend(cfg.BLAS)
	if err != nil {
		return nil, err
	}
	e, err := newEngine(p, cfg, be.new)
	if err != nil {
		return nil, err
	}
	return &Fused{e: e}, nil
}

// Grad implements Engine.
func (f *Fused) Grad(x, y []float32, b int, masks *Masks, grads *model.Params) (float64, error) {
	loss, err := f.e.grad(x, y, b, masks)
	if err != nil {
		return 0, err
	}
	if grads.Arch != f.e.net.arch {
		return 0, fmt.Errorf("nn: gradient parameters of architecture %+v, engine has %+v", grads.Arch, f.e.net.arch)
	}
	unflatten(&f.e.net.lay, f.e.total, grads)
	return loss, nil
}

// Step implements Engine.
func (f *Fused) Step(x, y []float32, b int, masks *Masks) (float64, error) {
	return f.e.step(x, y, b, masks)
}

// Predict implements Engine.
func (f *Fused) Predict(x []float32, b int, out []float32) error { return f.e.predict(x, b, out) }

// SetLR implements Engine.
func (f *Fused) SetLR(lr float64) { f.e.cfg.Adam.LR = lr }

// Params implements Engine.
func (f *Fused) Params() *model.Params { return f.e.params() }

// ParamsInto copies the current parameters into p (same architecture)
// without allocating: the training loop's weight average reads them after
// every step.
func (f *Fused) ParamsInto(p *model.Params) { unflatten(&f.e.net.lay, f.e.net.w, p) }

// SetParams implements Engine.
func (f *Fused) SetParams(p *model.Params) error { return f.e.setParams(p) }

// OptimizerState implements Engine.
func (f *Fused) OptimizerState() (int, *model.Params, *model.Params) { return f.e.optimizerState() }

// SetOptimizerState implements Engine.
func (f *Fused) SetOptimizerState(step int, m, v *model.Params) error {
	return f.e.setOptimizerState(step, m, v)
}

// Close implements Engine: it stops the worker goroutines.
func (f *Fused) Close() error { f.e.close(); return nil }

// engine is the fused engine for element type T (float32 in production,
// float64 for gradient checks).
type engine[T Float] struct {
	cfg     Config
	net     *net[T]
	workers []*worker[T]
	pool    *pool
	total   []T // summed gradient
	m, v    []T // Adam moments
	nstep   int
	losses  []float64

	// job holds the arguments of the batch the workers are running; gradFn
	// and predFn are bound once so that dispatching allocates nothing.
	job            job
	gradFn, predFn func(int)
}

type job struct {
	x, y  []float32
	b, tn int
	nw    int
	masks *Masks
	out   []float32
	chunk int
}

func newEngine[T Float](p *model.Params, cfg Config, newBLAS func() blas[T]) (*engine[T], error) {
	if err := p.Arch.Validate(); err != nil {
		return nil, err
	}
	if p.Arch.Type != model.TypeLSTM {
		return nil, fmt.Errorf("nn: the fused engine trains lstm models, not %s", p.Arch.Type)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Adam == (Adam{}) {
		cfg.Adam = DefaultAdam()
	}
	n := newNet(p.Arch, newBLAS())
	if err := flatten(&n.lay, p, n.w); err != nil {
		return nil, err
	}
	n.prepare()
	e := &engine[T]{cfg: cfg, net: n, total: make([]T, n.lay.total), m: make([]T, n.lay.total), v: make([]T, n.lay.total),
		losses: make([]float64, cfg.Workers)}
	for range cfg.Workers {
		e.workers = append(e.workers, newWorker(n, newBLAS()))
	}
	e.pool = newPool(cfg.Workers)
	e.gradFn, e.predFn = e.gradShard, e.predShard
	return e, nil
}

func (e *engine[T]) close() { e.pool.close() }

// shape checks a batch and returns its window length.
func (e *engine[T]) shape(x []float32, b int) (int, error) {
	I := e.net.arch.InputSize
	if b <= 0 {
		return 0, fmt.Errorf("nn: batch of %d windows", b)
	}
	if len(x) == 0 || len(x)%(b*I) != 0 {
		return 0, fmt.Errorf("nn: %d input values are not %d windows of %d features", len(x), b, I)
	}
	return len(x) / (b * I), nil
}

func checkMasks(masks *Masks, arch model.Arch, b, t int) error {
	if masks == nil {
		return nil
	}
	if masks.FC != nil && len(masks.FC) != b*arch.FC {
		return fmt.Errorf("nn: fc dropout mask has %d values, want %d", len(masks.FC), b*arch.FC)
	}
	if len(masks.Inter) > arch.Layers-1 {
		return fmt.Errorf("nn: %d inter-layer masks for %d layers", len(masks.Inter), arch.Layers)
	}
	for k, m := range masks.Inter {
		if m != nil && len(m) != t*b*arch.Hidden {
			return fmt.Errorf("nn: inter-layer mask %d has %d values, want %d", k, len(m), t*b*arch.Hidden)
		}
	}
	return nil
}

// shard returns the rows of part i of a batch of b split into nw parts.
func shard(b, nw, i int) (j0, rows int) {
	j0 = i * b / nw
	return j0, (i+1)*b/nw - j0
}

// grad computes the mean batch loss and its gradient into e.total.
func (e *engine[T]) grad(x, y []float32, b int, masks *Masks) (float64, error) {
	tn, err := e.shape(x, b)
	if err != nil {
		return 0, err
	}
	if len(y) != b {
		return 0, fmt.Errorf("nn: %d targets for %d windows", len(y), b)
	}
	if err := checkMasks(masks, e.net.arch, b, tn); err != nil {
		return 0, err
	}
	nw := min(len(e.workers), b)
	e.job = job{x: x, y: y, b: b, tn: tn, nw: nw, masks: masks}
	e.pool.run(nw, e.gradFn)
	e.job = job{}
	// Sum the shards' gradients in worker order (deterministic).
	copy(e.total, e.workers[0].grad)
	loss := e.losses[0]
	for i := 1; i < nw; i++ {
		for j, v := range e.workers[i].grad {
			e.total[j] += v
		}
		loss += e.losses[i]
	}
	return loss / float64(b), nil
}

func (e *engine[T]) gradShard(i int) {
	jb := &e.job
	j0, rows := shard(jb.b, jb.nw, i)
	w := e.workers[i]
	w.forward(jb.x, jb.b, j0, rows, jb.tn, jb.masks, true)
	w.dout = growT(w.dout, rows)
	e.losses[i] = e.lossGrad(w.out[:rows], jb.y[j0:j0+rows], w.dout, jb.b)
	clear(w.grad)
	w.backward(jb.b, j0, rows, jb.tn, jb.masks)
}

// lossGrad returns the summed loss of a shard and writes dLoss/dout (for the
// mean over the whole batch of B) into d.
func (e *engine[T]) lossGrad(out []T, y []float32, d []T, B int) float64 {
	var sum float64
	delta := e.cfg.Loss.Huber
	scale := T(1) / T(B)
	for j, o := range out {
		r := o - T(y[j])
		if delta > 0 {
			dl := T(delta)
			if ar := max(r, -r); ar < dl {
				sum += 0.5 * float64(r) * float64(r)
				d[j] = r * scale
			} else {
				sum += delta * (float64(ar) - 0.5*delta)
				if r > 0 {
					d[j] = dl * scale
				} else {
					d[j] = -dl * scale
				}
			}
			continue
		}
		sum += float64(r) * float64(r)
		d[j] = 2 * r * scale
	}
	return sum
}

var errNonFinite = errors.New("nn: loss is not finite")

// step is grad, gradient clipping and one Adam update.
func (e *engine[T]) step(x, y []float32, b int, masks *Masks) (float64, error) {
	loss, err := e.grad(x, y, b, masks)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, errNonFinite
	}
	a := e.cfg.Adam
	g := e.total
	if a.ClipNorm > 0 {
		// torch.nn.utils.clip_grad_norm_: the 2-norm of the per-tensor norms,
		// coefficient max_norm/(norm+1e-6) clamped to 1.
		l := &e.net.lay
		var sq float64
		for i := range l.spec {
			var s float64
			for _, v := range viewT(l, g, i) {
				s += float64(v) * float64(v)
			}
			sq += s
		}
		norm := math.Sqrt(sq)
		if coef := a.ClipNorm / (norm + 1e-6); coef < 1 {
			c := T(coef)
			for j := range g {
				g[j] *= c
			}
		}
	}
	e.nstep++
	// torch.optim.Adam (single-tensor implementation, PyTorch 1.13).
	bc1 := 1 - math.Pow(a.Beta1, float64(e.nstep))
	bc2 := 1 - math.Pow(a.Beta2, float64(e.nstep))
	stepSize := T(a.LR / bc1)
	bc2s := T(math.Sqrt(bc2))
	b1, b2 := T(a.Beta1), T(a.Beta2)
	ob1, ob2 := T(1-a.Beta1), T(1-a.Beta2)
	eps, wd := T(a.Eps), T(a.WeightDecay)
	w, m, v := e.net.w, e.m, e.v
	for j, gj := range g {
		if wd != 0 {
			gj += wd * w[j]
		}
		m[j] = m[j]*b1 + gj*ob1
		v[j] = v[j]*b2 + gj*gj*ob2
		denom := sqrtT(v[j])/bc2s + eps
		w[j] -= stepSize * (m[j] / denom)
	}
	e.net.prepare()
	return loss, nil
}

func sqrtT[T Float](x T) T {
	if is32[T]() {
		return T(float32(math.Sqrt(float64(x))))
	}
	return T(math.Sqrt(float64(x)))
}

// predict writes the outputs of b windows (no dropout) into out[:b].
func (e *engine[T]) predict(x []float32, b int, out []float32) error {
	tn, err := e.shape(x, b)
	if err != nil {
		return err
	}
	if len(out) < b {
		return fmt.Errorf("nn: output has room for %d of %d windows", len(out), b)
	}
	// Chunks of at most predictChunk rows, small enough that every worker
	// gets one when the batch allows.
	nw := len(e.workers)
	e.forwardAll(x, b, tn, out, min(predictChunk, (b+nw-1)/nw))
	return nil
}

// predictChunk bounds the rows a worker runs at once in inference (its
// buffers hold T × chunk × 6H values).
const predictChunk = 64

// forwardAll runs inference over b windows in chunks of at most chunk rows
// per worker.
func (e *engine[T]) forwardAll(x []float32, b, tn int, out []float32, chunk int) {
	nw := min(len(e.workers), (b+chunk-1)/chunk)
	e.job = job{x: x, b: b, tn: tn, nw: nw, out: out, chunk: chunk}
	e.pool.run(nw, e.predFn)
	e.job = job{}
}

func (e *engine[T]) predShard(i int) {
	jb := &e.job
	I := e.net.arch.InputSize
	j0, rows := shard(jb.b, jb.nw, i)
	w := e.workers[i]
	for c0 := 0; c0 < rows; c0 += jb.chunk {
		cr := min(jb.chunk, rows-c0)
		xs := jb.x[(j0+c0)*jb.tn*I : (j0+c0+cr)*jb.tn*I]
		w.forward(xs, cr, 0, cr, jb.tn, nil, false)
		for j := range cr {
			jb.out[j0+c0+j] = float32(w.out[j])
		}
	}
}

func (e *engine[T]) params() *model.Params {
	p, _ := model.NewParams(e.net.arch)
	unflatten(&e.net.lay, e.net.w, p)
	return p
}

func (e *engine[T]) setParams(p *model.Params) error {
	if err := flatten(&e.net.lay, p, e.net.w); err != nil {
		return err
	}
	e.net.prepare()
	return nil
}

func (e *engine[T]) optimizerState() (int, *model.Params, *model.Params) {
	m, _ := model.NewParams(e.net.arch)
	v, _ := model.NewParams(e.net.arch)
	unflatten(&e.net.lay, e.m, m)
	unflatten(&e.net.lay, e.v, v)
	return e.nstep, m, v
}

func (e *engine[T]) setOptimizerState(step int, m, v *model.Params) error {
	if step < 0 {
		return fmt.Errorf("nn: optimizer step %d", step)
	}
	if m == nil || v == nil {
		if step != 0 {
			return fmt.Errorf("nn: optimizer state at step %d without moments", step)
		}
		clear(e.m)
		clear(e.v)
		e.nstep = 0
		return nil
	}
	if err := flatten(&e.net.lay, m, e.m); err != nil {
		return fmt.Errorf("nn: optimizer state: %w", err)
	}
	if err := flatten(&e.net.lay, v, e.v); err != nil {
		return fmt.Errorf("nn: optimizer state: %w", err)
	}
	e.nstep = step
	return nil
}

// pool runs a function on n persistent goroutines (part 0 on the caller's),
// without allocating per call.
type pool struct {
	work []chan func(int)
	wg   sync.WaitGroup
}

func newPool(n int) *pool {
	p := &pool{}
	for i := 1; i < n; i++ {
		ch := make(chan func(int))
		p.work = append(p.work, ch)
		go func() {
			for f := range ch {
				f(i)
				p.wg.Done()
			}
		}()
	}
	return p
}

// run calls f(0..n-1) in parallel and waits for all of them.
func (p *pool) run(n int, f func(int)) {
	p.wg.Add(n - 1)
	for i := 1; i < n; i++ {
		p.work[i-1] <- f
	}
	f(0)
	p.wg.Wait()
}

func (p *pool) close() {
	for _, ch := range p.work {
		close(ch)
	}
	p.work = nil
}
