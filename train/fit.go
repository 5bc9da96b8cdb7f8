package train

import (
	"context"
	"fmt"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
)

// Fit is the training loop of Run without its files, for many runs on one
// loaded windows file (the trials of a hyper-parameter sweep): the same
// engine, initialisation, shuffling, early stopping and learning-rate
// schedule as Run, no checkpoint, no calibration.

// Windows are the train and val splits of a windows file held in memory
// (LoadWindows); any number of Fit calls may share them, concurrently.
type Windows struct {
	d *data
}

// LoadWindows reads the train split and the val split of a windows file.
// The rows of every other split (test) are skipped as they are read: their
// values are never kept, predicted or scored.
func LoadWindows(ctx context.Context, loc string) (*Windows, error) {
	d, err := loadWindows(ctx, loc, dataset.SplitVal)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return &Windows{d: d}, nil
}

// Loc is the windows file read.
func (w *Windows) Loc() string { return w.d.loc }

// TrainWindows and ValWindows count the windows of the two splits.
func (w *Windows) TrainWindows() int { return w.d.train.n }

// ValWindows counts the val windows.
func (w *Windows) ValWindows() int { return w.d.val.n }

// Features are the windows' feature names.
func (w *Windows) Features() []string { return w.d.meta.Features }

// FitResult is what a Fit run did.
type FitResult struct {
	// History has one row per epoch run.
	History []model.Epoch
	// BestEpoch is the epoch with the lowest val loss (early stopping's
	// choice, 0 without one), BestValRMSE and BestValLoss its metrics.
	BestEpoch    int
	BestValRMSE  float64
	BestValLoss  float64
	StoppedEarly bool
	// Stopped is set when onEpoch stopped the run.
	Stopped bool
	Seconds float64
}

// Validate checks the options as Run does (a usage error, exit 2, naming
// the flag).
func (o Options) Validate() error { return o.validate() }

// Fit trains a model as opts say on w, validating on w's val split after
// every epoch, and writes nothing. onEpoch (may be nil) sees each epoch's
// history row after early stopping has; returning true stops the run there
// (FitResult.Stopped). opts.Windows, Out, Resume, Refit and IntervalLevels
// do not apply. Cancellation returns the context's error.
func Fit(ctx context.Context, env *runenv.Env, opts Options, w *Windows, onEpoch func(e model.Epoch) bool) (*FitResult, error) {
	start := time.Now()
	o := opts
	o.Resume, o.Refit, o.IntervalLevels, o.ValSplit = "", false, "none", dataset.SplitVal
	if o.Model != ModelLSTM {
		return nil, usage("--model %q: only lstm trains epoch by epoch", o.Model)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	d := w.d
	if d.train.n < o.BatchSize {
		return nil, fmt.Errorf("%w: train: %s has %d train windows, fewer than one batch of %d (lower batch_size)", exitcode.ErrValidation, d.loc, d.train.n, o.BatchSize)
	}
	if d.val.n == 0 {
		return nil, fmt.Errorf("%w: train: %s has no windows in the %q split to validate on", exitcode.ErrValidation, d.loc, dataset.SplitVal)
	}
	scale := targetScale(&o, d)
	arch := o.arch(d.f)
	p, err := model.NewParams(arch)
	if err != nil {
		return nil, usage("%v", err)
	}
	p.Init(uint64(o.Seed))
	eng, err := newEngineFor(env, &o, scale)(p)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer eng.Close()
	l := newLoop(ctx, env, &o, d, eng, arch, scale, trainState{LR: o.LR, TargetScale: scale, TrainWindows: d.train.n})
	stopped := false
	l.hooks = []hook{earlyStopping(), reduceLROnPlateau(), {name: "fit", epoch: func(l *loop, e *model.Epoch) error {
		if onEpoch != nil && !l.stop && onEpoch(*e) {
			stopped, l.stop = true, true
		}
		return nil
	}}}
	l.bar = progress.None("", "", 0)
	if err := l.run(); err != nil {
		return nil, err
	}
	r := &FitResult{History: l.history, BestEpoch: l.st.BestEpoch, BestValLoss: l.st.BestValLoss,
		StoppedEarly: l.st.Stopped, Stopped: stopped, Seconds: time.Since(start).Seconds()}
	for _, e := range l.history {
		if e.Epoch == l.st.BestEpoch {
			r.BestValRMSE = e.ValRMSE
		}
	}
	return r, nil
}

// targetScale is the divisor of the targets while training (--target-scale).
func targetScale(o *Options, d *data) float64 {
	if o.TargetScale == ScaleHorizon && d.meta.Horizon > 0 {
		return d.meta.Horizon
	}
	return 1
}

// newEngineFor returns the factory of the engine o asks for, training on
// targets divided by scale.
func newEngineFor(env *runenv.Env, o *Options, scale float64) func(p *model.Params) (nn.Engine, error) {
	workers := o.Workers
	if workers == 0 {
		workers = env.Workers
	}
	loss := nn.Loss{}
	if o.Loss == "huber" {
		loss.Huber = o.HuberDelta / scale
	}
	adam := nn.Adam{LR: o.LR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: o.WeightDecay, ClipNorm: o.ClipNorm}
	blasName := o.BLAS
	if blasName == "auto" {
		blasName = ""
	}
	return func(p *model.Params) (nn.Engine, error) {
		return engines[o.Engine](p, engineConfig{workers: workers, blas: blasName, adam: adam, loss: loss})
	}
}
