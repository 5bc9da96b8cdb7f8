package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/train"
)

func newTrainCmd(a *app) *cobra.Command {
	d := train.DefaultOptions()
	var sf sweepFlags
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the LSTM RUL regressor (or a ridge baseline) and write model.safetensors",
		Long: `Trains the design's LSTMRULPredictor — stacked LSTM (hidden 128, 2 layers,
dropout 0.2 between layers) → last hidden state → Linear(128, 64) → ReLU →
Dropout → Linear(64, 1) — on the train split of windows.parquet with Adam and
MSE (Huber optional), validating on the val split every epoch. Early stopping
(--patience) keeps the best epoch's weights; --lr-patience reduces the
learning rate on a plateau. --refit then trains a fresh model (same seed) on
the train and val windows together for the best epoch's count, with the
same learning rate per epoch, and saves that one instead. Targets are divided by the horizon while training
(--target-scale) and the checkpoint is rescaled to predict hours.

Engines: fused (default) is our float32 LSTM with backpropagation through time,
the batch sharded across --workers goroutines (same seed, data, engine and
workers → bit-identical weights); its matrix products run on OpenBLAS in
builds with it (make build when libopenblas-dev is installed) or on pure-Go
kernels (--blas). gorgonia is the same model as a gorgonia graph with symbolic
gradients and gorgonia's Adam: the independent reference for the fused
engine's gradients and the place to try a new architecture; it runs on one
goroutine, several times slower, and cannot carry Adam's state across --resume.

The checkpoint is safetensors with PyTorch state_dict names: a PyTorch user
loads it with model.load_state_dict(safetensors.torch.load_file(path)) into the
design's class. Adam's state and the loop state go to model.optim.safetensors
next to it, for --resume. Ctrl-C finishes the current batch, writes both and
exits 130; --resume continues exactly where it stopped.

--model ridge fits ridge regression on stats.parquet (standardised features)
instead: the baseline that shows whether the LSTM earns its cost.

--sweep SPACE.yaml searches hyper-parameters instead of training one model:
grid or seeded random trials over train config keys, each trained with the
loop above on the windows loaded once, --sweep-workers at a time, weak trials
pruned by ASHA on the val split. It chooses on the val split only and never
reads the test split. Results: sweep.parquet, best.yaml (the best trial's
train config, for --config) and a table on stdout, in --sweep-dir; Ctrl-C
keeps the finished trials in its journal and the same command resumes.`,
		Example: `  modax-ml train
  modax-ml train --epochs 30 --batch-size 64 --patience 5 --output json
  modax-ml train --loss huber --huber-delta 10 --clip-norm 1 --lr-patience 3
  modax-ml train --resume model.safetensors --epochs 150
  modax-ml train --patience 15 --refit      # pick the epochs on val, then train on train+val
  modax-ml train --interval-levels 0.8,0.9  # calibrate 80 % and 90 % prediction intervals on val
  modax-ml train --model ridge --stats stats.parquet -o ridge.safetensors
  modax-ml train --sweep examples/sweep.yaml --sweep-dir sweep   # search on val; writes sweep/best.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Train
			o.Windows = a.path(o.Windows)
			o.Stats = a.path(o.Stats)
			o.Out = a.path(o.Out)
			o.Resume = a.path(o.Resume)
			if sf.space != "" {
				return runSweep(cmd, a, o, sf)
			}
			for _, name := range []string{"sweep-dir", "sweep-workers", "force-new"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("%w: --%s applies to --sweep", exitcode.ErrUsage, name)
				}
			}
			res, err := train.Run(cmd.Context(), a.env(), o)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error { return printTrain(w, res) })
		},
	}
	f := cmd.Flags()
	bindString(f, "windows", "train.windows", d.Windows, "windows input (modax.windows/v1), for --model lstm")
	bindString(f, "stats", "train.stats", d.Stats, "statistics input (modax.stats/v1), for --model ridge")
	bindStringP(f, "out", "o", "train.out", d.Out, "checkpoint written (its optimizer state goes next to it as *.optim.safetensors)")
	bindString(f, "resume", "train.resume", d.Resume, "continue training from this checkpoint and its optimizer state")
	bindString(f, "model", "train.model", d.Model, "lstm or ridge")
	bindString(f, "engine", "train.engine", d.Engine, "training engine: "+strings.Join(train.Engines(), " or "))
	bindString(f, "blas", "train.blas", d.BLAS, "fused engine matrix products: auto or one of "+strings.Join(nn.Backends(), ", ")+" (auto: "+nn.Backends()[0]+")")
	bindInt(f, "workers", "train.workers", d.Workers, "goroutines a batch is split across (0: GOMAXPROCS); results depend on it")
	bindInt(f, "hidden-size", "train.hidden_size", d.Hidden, "LSTM hidden units")
	bindInt(f, "num-layers", "train.num_layers", d.Layers, "stacked LSTM layers")
	bindInt(f, "fc-size", "train.fc_size", d.FC, "width of the fully connected layer")
	bindFloat(f, "dropout", "train.dropout", d.Dropout, "dropout between LSTM layers and after fc1")
	bindInt(f, "epochs", "train.epochs", d.Epochs, "epochs (a resumed run counts the earlier ones)")
	bindInt(f, "batch-size", "train.batch_size", d.BatchSize, "windows per batch")
	bindFloat(f, "lr", "train.lr", d.LR, "Adam learning rate")
	bindFloat(f, "weight-decay", "train.weight_decay", d.WeightDecay, "L2 weight decay (torch.optim.Adam's)")
	bindFloat(f, "clip-norm", "train.clip_norm", d.ClipNorm, "clip the gradient's global L2 norm to this (0: off)")
	bindString(f, "loss", "train.loss", d.Loss, "mse or huber")
	bindFloat(f, "huber-delta", "train.huber_delta", d.HuberDelta, "Huber delta in hours")
	bindString(f, "target-scale", "train.target_scale", d.TargetScale, "horizon (train on RUL/horizon) or none")
	bindInt(f, "patience", "train.patience", d.Patience, "stop after this many epochs without val improvement (0: never)")
	bindFloat(f, "min-delta", "train.min_delta", d.MinDelta, "smallest val-loss decrease that counts as an improvement")
	bindInt(f, "lr-patience", "train.lr_patience", d.LRPatience, "reduce the learning rate after this many epochs without improvement (0: off)")
	bindFloat(f, "lr-factor", "train.lr_factor", d.LRFactor, "learning-rate reduction factor")
	bindFloat(f, "min-lr", "train.min_lr", d.MinLR, "lower bound of the learning rate")
	bindFloat(f, "ema-decay", "train.ema_decay", d.EMADecay, "validate and save a moving average of the weights with this decay per step (0: off; e.g. 0.99)")
	bindString(f, "val-split", "train.val_split", d.ValSplit, `split validated every epoch ("none": no validation)`)
	bindBool(f, "refit", "train.refit", d.Refit, "after early stopping picks the best epoch E, train a fresh model on the train and val windows for E epochs and save it")
	bindString(f, "interval-levels", "train.interval_levels", d.IntervalLevels, `coverage levels of the prediction intervals calibrated on the val split, e.g. 0.8,0.9 ("none": no intervals)`)
	bindInt64(f, "seed", "train.seed", d.Seed, "seed of initialisation, shuffling and dropout")
	bindString(f, "model-version", "train.model_version", d.ModelVersion, "model version recorded in the checkpoint (default <model>-<run id>)")
	bindFloat(f, "ridge-alpha", "train.ridge_alpha", d.RidgeAlpha, "L2 penalty of --model ridge")
	f.StringVar(&sf.space, "sweep", "", "search the hyper-parameters of this space file (SPACE.yaml) on the val split instead of training one model")
	f.StringVar(&sf.dir, "sweep-dir", "sweep", "sweep directory: journal.jsonl (resume), sweep.parquet and best.yaml")
	f.IntVar(&sf.workers, "sweep-workers", 0, "trials trained side by side (0: cores / train.workers; results do not depend on it)")
	f.BoolVar(&sf.forceNew, "force-new", false, "start the sweep over when --sweep-dir holds the journal of a different sweep")
	return cmd
}

func printTrain(w io.Writer, r *train.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s model %s, %d parameters\n", r.Model, r.ModelType, r.ModelVersion, r.Parameters)
	fmt.Fprintf(&b, "  data: %s, %d train / %d val windows, %d features", r.Input, r.TrainWindows, r.ValWindows, len(r.Features))
	if r.ModelType == train.ModelLSTM {
		fmt.Fprintf(&b, " × %d steps", r.Window)
	}
	b.WriteString("\n")
	if r.Engine != "" {
		fmt.Fprintf(&b, "  engine: %s (%s), %d workers, %.0f samples/s\n", r.Engine, r.BLAS, r.Workers, r.SamplesPerS)
		stop := ""
		if r.StoppedEarly {
			stop = ", stopped early"
		}
		fmt.Fprintf(&b, "  epochs: %d%s, final train loss %.4g\n", r.Epochs, stop, r.FinalTrainLoss)
	}
	if r.BestValRMSE != nil {
		fmt.Fprintf(&b, "  best: epoch %d, val RMSE %.3f h (val loss %.4g)\n", r.BestEpoch, *r.BestValRMSE, *r.BestValLoss)
	} else if n := len(r.History); n > 0 {
		fmt.Fprintf(&b, "  no validation split; train RMSE %.3f h\n", r.History[n-1].TrainRMSE)
	}
	if rf := r.Refit; rf != nil {
		fmt.Fprintf(&b, "  refit: %d epochs on %d train+val windows, final train loss %.4g (saved)\n", rf.Epochs, rf.TrainWindows, rf.FinalTrainLoss)
	}
	if c := r.Calibration; c != nil {
		fmt.Fprintf(&b, "  intervals: levels %v calibrated on %d val windows in %d predicted-RUL buckets (%.3f s)\n", c.Levels, c.N, len(c.Buckets), r.CalibrationSeconds)
	}
	if r.Optimizer != "" {
		fmt.Fprintf(&b, "  optimizer state: %s\n", r.Optimizer)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
