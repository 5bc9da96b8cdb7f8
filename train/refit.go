package train

import (
	"context"
	"fmt"

	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/runenv"
)

// --refit: the selection run (early stopping on the val split) says how many
// epochs to train and with which learning rate in each; a fresh model from
// the same initial weights then trains on the train and val windows
// together for that many epochs, with nothing held out, and is the one
// saved. It is the usual last step in the C-MAPSS literature: the val units
// pick the epoch count and then add their windows to training.

// RefitResult describes the refit run of --refit (Result.Refit, and the
// checkpoint's modax.train metadata).
type RefitResult struct {
	// Epochs is the selection run's best epoch.
	Epochs int `json:"epochs"`
	// TrainWindows counts the train and val windows trained on.
	TrainWindows   int           `json:"train_windows"`
	FinalTrainLoss float64       `json:"final_train_loss"`
	SamplesPerS    float64       `json:"samples_per_s"`
	Seconds        float64       `json:"seconds"`
	History        []model.Epoch `json:"history"`
}

// refit trains a fresh model on the train and val windows of d for the
// selection loop's best epoch count, replaying the learning rate of each of
// its epochs, and returns the final weights (engine scale). An interruption
// is an *errInterrupted; the refit is not resumable mid-way (it restarts).
func refit(ctx context.Context, env *runenv.Env, o *Options, d *data, sel *loop, newEngine func(*model.Params) (nn.Engine, error)) (*RefitResult, *model.Params, error) {
	epochs := sel.st.BestEpoch
	lrs := make([]float64, epochs)
	for _, e := range sel.history {
		if e.Epoch >= 1 && e.Epoch <= epochs {
			lrs[e.Epoch-1] = e.LR
		}
	}
	for i, lr := range lrs {
		if !(lr > 0) {
			return nil, nil, fmt.Errorf("train: refit: the history has no learning rate for epoch %d of %d", i+1, epochs)
		}
	}
	p, err := model.NewParams(sel.arch)
	if err != nil {
		return nil, nil, usage("%v", err)
	}
	p.Init(uint64(o.Seed))
	eng, err := newEngine(p)
	if err != nil {
		return nil, nil, fmt.Errorf("train: refit: %w", err)
	}
	defer eng.Close()
	ro := *o
	ro.Epochs = epochs
	all := &data{loc: d.loc, meta: d.meta, t: d.t, f: d.f, train: d.trainAndVal()}
	env.Log.Info("refit on the train and val windows", "epochs", epochs, "windows", all.train.n)
	st := trainState{LR: lrs[0], TargetScale: sel.scale, TrainWindows: all.train.n}
	l := newLoop(ctx, env, &ro, all, eng, sel.arch, sel.scale, st)
	l.hooks = []hook{replayLR(lrs), logEpoch("refit epoch"), progressBar()}
	l.bar = env.Progress("refit", "samples", int64(epochs)*int64(all.train.n))
	err = l.run()
	l.bar.Finish()
	if err != nil {
		return nil, nil, err
	}
	r := &RefitResult{Epochs: epochs, TrainWindows: all.train.n, History: l.history}
	var samples float64
	for _, e := range l.history {
		samples += e.SamplesPerS * e.Seconds
		r.Seconds += e.Seconds
	}
	if r.Seconds > 0 {
		r.SamplesPerS = samples / r.Seconds
	}
	if n := len(l.history); n > 0 {
		r.FinalTrainLoss = l.history[n-1].TrainLoss
	}
	return r, l.evalParams(), nil
}

// replayLR sets the learning rate of each next epoch from lrs (lrs[i] is
// epoch i+1's).
func replayLR(lrs []float64) hook {
	return hook{name: "replay-lr", epoch: func(l *loop, e *model.Epoch) error {
		if e.Epoch < len(lrs) && lrs[e.Epoch] != l.st.LR {
			l.st.LR = lrs[e.Epoch]
			l.eng.SetLR(l.st.LR)
		}
		return nil
	}}
}
