package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
)

// The training loop hosts hooks, as gomlx's does: each hook sees every batch
// and every validated epoch, in the order of loop.hooks, and may stop the
// run. Early stopping with best-weight tracking, the learning-rate schedule,
// the per-epoch log line and the progress bar are hooks; the loop itself only
// shuffles, steps, validates and honours cancellation.

// hook observes the loop.
type hook struct {
	name string
	// batch runs after every optimizer step (may be nil).
	batch func(l *loop, epoch, batch int, loss float64)
	// epoch runs after every epoch's validation with its history row (may
	// be nil); it may set l.stop.
	epoch func(l *loop, e *model.Epoch) error
}

// loop is one training run of an engine on loaded windows.
type loop struct {
	ctx   context.Context
	env   *runenv.Env
	o     *Options
	d     *data
	eng   nn.Engine
	arch  model.Arch
	scale float64

	st      trainState
	history []model.Epoch
	best    *model.Params // engine-scale weights of the best epoch (nil: none yet)
	stop    bool
	// ema is the moving average of the weights (nil: --ema-decay 0); cur
	// the buffer the current weights are read into (engines with
	// ParamsInto only; others hand out a copy).
	ema, cur *model.Params

	shuffle, maskSrc *rand.PCG
	maskRNG          *rand.Rand
	perm             []int
	ytrain, yval     []float32 // targets / scale
	xb, yb           []float32
	masks            nn.Masks
	out              []float32
	batches          int

	hooks []hook
	bar   progress.Bar
}

// errInterrupted wraps the context error of a run stopped between batches.
type errInterrupted struct {
	epoch, batch int
	err          error
}

func (e *errInterrupted) Error() string {
	return fmt.Sprintf("interrupted in epoch %d after batch %d: %v", e.epoch, e.batch, e.err)
}
func (e *errInterrupted) Unwrap() error { return e.err }

func newLoop(ctx context.Context, env *runenv.Env, o *Options, d *data, eng nn.Engine, arch model.Arch, scale float64, st trainState) *loop {
	l := &loop{ctx: ctx, env: env, o: o, d: d, eng: eng, arch: arch, scale: scale, st: st}
	l.ytrain = scaled(d.train.rul, scale)
	l.yval = scaled(d.val.rul, scale)
	l.perm = make([]int, d.train.n)
	l.batches = (d.train.n + o.BatchSize - 1) / o.BatchSize
	size := d.t * d.f
	l.xb = make([]float32, o.BatchSize*size)
	l.yb = make([]float32, o.BatchSize)
	l.out = make([]float32, min(max(d.val.n, 1), valChunk))
	l.shuffle = rand.NewPCG(uint64(o.Seed), 1)
	l.maskSrc = rand.NewPCG(uint64(o.Seed), 2)
	if st.ShuffleRNG != nil {
		_ = l.shuffle.UnmarshalBinary(st.ShuffleRNG) // validated by resume
	}
	if st.MaskRNG != nil {
		_ = l.maskSrc.UnmarshalBinary(st.MaskRNG)
	}
	l.maskRNG = rand.New(l.maskSrc)
	if o.EMADecay > 0 {
		l.ema = eng.Params()
		if _, ok := eng.(paramsInto); ok {
			l.cur = eng.Params()
		}
	}
	return l
}

// paramsInto is implemented by engines that can copy their weights into a
// caller's buffer (the fused engine); others are asked for a copy.
type paramsInto interface{ ParamsInto(p *model.Params) }

// updateEMA folds the current weights into the moving average after step
// l.st.Step (the decay warms up as (1+t)/(10+t), as TensorFlow's
// ExponentialMovingAverage with num_updates).
func (l *loop) updateEMA() {
	cur := l.cur
	if pi, ok := l.eng.(paramsInto); ok {
		pi.ParamsInto(cur)
	} else {
		cur = l.eng.Params()
	}
	t := float64(l.st.Step)
	a := float32(1 - min(l.o.EMADecay, (1+t)/(10+t)))
	for i, e := range l.ema.Tensors {
		c := cur.Tensors[i].Data
		for j, v := range e.Data {
			e.Data[j] = v + a*(c[j]-v)
		}
	}
}

// evalParams is a copy of the weights that are validated and saved: the
// moving average with --ema-decay, else the current weights.
func (l *loop) evalParams() *model.Params {
	if l.ema != nil {
		return l.ema.Clone()
	}
	return l.eng.Params()
}

func scaled(rul []float32, s float64) []float32 {
	out := make([]float32, len(rul))
	for i, v := range rul {
		out[i] = float32(float64(v) / s)
	}
	return out
}

// valChunk is the number of val windows predicted at once.
const valChunk = 4096

// run trains until the last epoch, early stopping, an error or
// cancellation (an *errInterrupted).
func (l *loop) run() error {
	o := l.o
	l.eng.SetLR(l.st.LR)
	for l.st.Epoch < o.Epochs && !l.stop && !l.st.Stopped {
		epoch := l.st.Epoch + 1
		// The epoch's permutation comes from the shuffle stream's state at
		// the epoch start (saved, so a resumed run reshuffles identically).
		start, err := l.shuffle.MarshalBinary()
		if err != nil {
			return err
		}
		for i := range l.perm {
			l.perm[i] = i
		}
		rng := rand.New(l.shuffle)
		rng.Shuffle(len(l.perm), func(i, j int) { l.perm[i], l.perm[j] = l.perm[j], l.perm[i] })
		sumLoss, samples, secs := l.st.PartialLoss, l.st.PartialSamples, l.st.PartialSeconds
		t0 := time.Now()
		for bi := l.st.NextBatch; bi < l.batches; bi++ {
			lo := bi * o.BatchSize
			hi := min(lo+o.BatchSize, l.d.train.n)
			b := hi - lo
			size := l.d.t * l.d.f
			for j, idx := range l.perm[lo:hi] {
				copy(l.xb[j*size:(j+1)*size], l.d.xAt(&l.d.train, idx))
				l.yb[j] = l.ytrain[idx]
			}
			masks := l.masks.Draw(l.maskRNG, l.arch, b, l.d.t)
			loss, err := l.eng.Step(l.xb[:b*size], l.yb[:b], b, masks)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return fmt.Errorf("train: epoch %d, batch %d of %d: loss is %v (lower --lr, set --clip-norm, or check the windows' scaling)", epoch, bi+1, l.batches, loss)
			}
			if err != nil {
				return fmt.Errorf("train: epoch %d, batch %d of %d: %w", epoch, bi+1, l.batches, err)
			}
			l.st.Step++
			if l.ema != nil {
				l.updateEMA()
			}
			sumLoss += loss * float64(b)
			samples += b
			for _, h := range l.hooks {
				if h.batch != nil {
					h.batch(l, epoch, bi+1, loss)
				}
			}
			if err := l.ctx.Err(); err != nil && bi+1 < l.batches {
				// Finish here: record where the epoch stands so that the
				// checkpoint written by the caller resumes exactly.
				l.st.ShuffleRNG = start
				l.st.NextBatch = bi + 1
				l.st.PartialLoss, l.st.PartialSamples = sumLoss, samples
				l.st.PartialSeconds = secs + time.Since(t0).Seconds()
				l.saveMaskRNG()
				return &errInterrupted{epoch: epoch, batch: bi + 1, err: err}
			}
		}
		secs += time.Since(t0).Seconds()
		l.st.NextBatch, l.st.PartialLoss, l.st.PartialSamples, l.st.PartialSeconds = 0, 0, 0, 0
		l.st.Epoch = epoch
		l.saveMaskRNG()
		if next, err := l.shuffle.MarshalBinary(); err == nil {
			l.st.ShuffleRNG = next // the state at the start of the next epoch
		}
		row := model.Epoch{Epoch: epoch, TrainLoss: sumLoss / float64(samples), LR: l.st.LR, Seconds: secs}
		if secs > 0 {
			row.SamplesPerS = float64(samples) / secs
		}
		if o.Loss == "mse" {
			row.TrainRMSE = math.Sqrt(row.TrainLoss) * l.scale
		}
		if l.d.val.n > 0 {
			vl, vr, err := l.validate()
			if err != nil {
				return err
			}
			row.ValLoss, row.ValRMSE = vl, vr
		}
		l.history = append(l.history, row)
		for _, h := range l.hooks {
			if h.epoch != nil {
				if err := h.epoch(l, &l.history[len(l.history)-1]); err != nil {
					return err
				}
			}
		}
		if err := l.ctx.Err(); err != nil && l.st.Epoch < o.Epochs && !l.stop {
			return &errInterrupted{epoch: epoch, batch: l.batches, err: err}
		}
	}
	return nil
}

func (l *loop) saveMaskRNG() {
	if b, err := l.maskSrc.MarshalBinary(); err == nil {
		l.st.MaskRNG = b
	}
}

// validate returns the val loss (on the training scale) and RMSE in hours
// of the moving average with --ema-decay, else of the current weights.
func (l *loop) validate() (loss, rmse float64, err error) {
	if l.ema == nil {
		return l.validateCurrent()
	}
	cur := l.eng.Params()
	if err := l.eng.SetParams(l.ema); err != nil {
		return 0, 0, fmt.Errorf("train: validate: %w", err)
	}
	loss, rmse, err = l.validateCurrent()
	if serr := l.eng.SetParams(cur); serr != nil && err == nil {
		err = fmt.Errorf("train: validate: %w", serr)
	}
	return loss, rmse, err
}

func (l *loop) validateCurrent() (loss, rmse float64, err error) {
	v := &l.d.val
	size := l.d.t * l.d.f
	var sumLoss, sumSq float64
	delta := 0.0
	if l.o.Loss == "huber" {
		delta = l.o.HuberDelta / l.scale
	}
	for lo := 0; lo < v.n; lo += valChunk {
		hi := min(lo+valChunk, v.n)
		b := hi - lo
		if err := l.eng.Predict(v.x[lo*size:hi*size], b, l.out[:b]); err != nil {
			return 0, 0, fmt.Errorf("train: validate: %w", err)
		}
		for j := range b {
			r := float64(l.out[j]) - float64(l.yval[lo+j])
			sumSq += r * r
			if delta > 0 {
				if a := math.Abs(r); a < delta {
					sumLoss += 0.5 * r * r
				} else {
					sumLoss += delta * (a - 0.5*delta)
				}
			} else {
				sumLoss += r * r
			}
		}
	}
	n := float64(v.n)
	return sumLoss / n, math.Sqrt(sumSq/n) * l.scale, nil
}

// earlyStopping keeps the best epoch's weights and stops after Patience
// epochs without an improvement larger than MinDelta.
func earlyStopping() hook {
	return hook{name: "early-stopping", epoch: func(l *loop, e *model.Epoch) error {
		if l.d.val.n == 0 {
			return nil
		}
		if !l.st.HasBest || e.ValLoss < l.st.BestValLoss-l.o.MinDelta {
			l.st.HasBest, l.st.BestValLoss, l.st.BestEpoch, l.st.BadEpochs = true, e.ValLoss, e.Epoch, 0
			l.best = l.evalParams()
			return nil
		}
		l.st.BadEpochs++
		if l.o.Patience > 0 && l.st.BadEpochs >= l.o.Patience {
			l.env.Log.Info("early stopping", "epoch", e.Epoch, "best_epoch", l.st.BestEpoch, "patience", l.o.Patience)
			l.st.Stopped, l.stop = true, true
		}
		return nil
	}}
}

// reduceLROnPlateau is torch.optim.lr_scheduler.ReduceLROnPlateau (mode
// min, relative threshold 1e-4, no cooldown) on the val loss.
func reduceLROnPlateau() hook {
	return hook{name: "reduce-lr-on-plateau", epoch: func(l *loop, e *model.Epoch) error {
		if l.o.LRPatience == 0 || l.d.val.n == 0 {
			return nil
		}
		if e.Epoch == 1 && l.st.PlateauBad == 0 && l.st.PlateauBest == 0 {
			l.st.PlateauBest = math.Inf(1)
		}
		if e.ValLoss < l.st.PlateauBest*(1-1e-4) {
			l.st.PlateauBest, l.st.PlateauBad = e.ValLoss, 0
		} else {
			l.st.PlateauBad++
		}
		if l.st.PlateauBad > l.o.LRPatience {
			lr := max(l.st.LR*l.o.LRFactor, l.o.MinLR)
			if l.st.LR-lr > 1e-8 {
				l.env.Log.Info("reducing learning rate", "epoch", e.Epoch, "lr", lr)
				l.st.LR = lr
				l.eng.SetLR(lr)
			}
			l.st.PlateauBad = 0
		}
		return nil
	}}
}

// logEpoch writes one log line per epoch with message msg.
func logEpoch(msg string) hook {
	return hook{name: "log", epoch: func(l *loop, e *model.Epoch) error {
		args := []any{"epoch", e.Epoch, "of", l.o.Epochs, "train_loss", e.TrainLoss}
		if l.d.val.n > 0 {
			args = append(args, "val_loss", e.ValLoss, "val_rmse_h", e.ValRMSE)
		}
		args = append(args, "lr", e.LR, "samples_per_s", math.Round(e.SamplesPerS), "seconds", math.Round(e.Seconds*100)/100)
		l.env.Log.Info(msg, args...)
		return nil
	}}
}

// progressBar draws epoch, batch, loss, val loss, samples/s and ETA.
func progressBar() hook {
	var lastVal string
	return hook{
		name: "progress",
		batch: func(l *loop, epoch, batch int, loss float64) {
			l.bar.Add(int64(min(l.o.BatchSize, l.d.train.n-(batch-1)*l.o.BatchSize)))
			if batch%8 == 0 || batch == l.batches {
				l.bar.Describe(fmt.Sprintf("epoch %d/%d batch %d/%d loss %.4g%s", epoch, l.o.Epochs, batch, l.batches, loss, lastVal))
			}
		},
		epoch: func(l *loop, e *model.Epoch) error {
			if l.d.val.n > 0 {
				lastVal = fmt.Sprintf(" val %.4g (%.3g h)", e.ValLoss, e.ValRMSE)
			}
			return nil
		},
	}
}
