// Package train is the train stage: it fits the design's LSTM RUL regressor
// (LSTMRULPredictor) on the windows file's train split with the fused Go
// engine (default) or the gorgonia autodiff engine, validates every epoch on
// the val split, and writes model.safetensors (PyTorch state_dict names). It
// also fits a ridge-regression baseline on stats.parquet (--model ridge).
package train

import (
	"fmt"
	"math"
	"slices"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/runenv"
)

// Stage is the stage name recorded in the checkpoint's lineage.
const Stage = "train"

// Model and engine names.
const (
	ModelLSTM  = model.TypeLSTM
	ModelRidge = model.TypeRidge

	EngineFused    = "fused"
	EngineGorgonia = "gorgonia"
)

// Target scales.
const (
	// ScaleHorizon trains on rul_hours / horizon (targets in [0, 1]) and folds
	// the horizon into fc2 when saving, so checkpoints predict hours.
	ScaleHorizon = "horizon"
	// ScaleNone trains on hours directly.
	ScaleNone = "none"
)

// Options configure the train stage (config section "train").
type Options struct {
	// Windows is the input of --model lstm (modax.windows/v1).
	Windows string `yaml:"windows"`
	// Stats is the input of --model ridge (modax.stats/v1).
	Stats string `yaml:"stats"`
	// Out is the checkpoint written (model.safetensors); the optimizer state
	// goes next to it (model.optim.safetensors).
	Out string `yaml:"out"`
	// Resume continues training from this checkpoint (and its optimizer
	// sidecar when present).
	Resume string `yaml:"resume"`

	Model   string `yaml:"model"`  // lstm or ridge
	Engine  string `yaml:"engine"` // fused or gorgonia
	BLAS    string `yaml:"blas"`   // fused engine matrix products: auto, go or openblas
	Workers int    `yaml:"workers"`

	Hidden  int     `yaml:"hidden_size"`
	Layers  int     `yaml:"num_layers"`
	FC      int     `yaml:"fc_size"`
	Dropout float64 `yaml:"dropout"`

	Epochs      int     `yaml:"epochs"`
	BatchSize   int     `yaml:"batch_size"`
	LR          float64 `yaml:"lr"`
	WeightDecay float64 `yaml:"weight_decay"`
	ClipNorm    float64 `yaml:"clip_norm"`
	// Loss is mse or huber; HuberDelta is Huber's delta in hours.
	Loss       string  `yaml:"loss"`
	HuberDelta float64 `yaml:"huber_delta"`
	// TargetScale is horizon (train on RUL / horizon) or none.
	TargetScale string `yaml:"target_scale"`

	// Patience stops training after this many epochs without a val-loss
	// improvement larger than MinDelta (0: never); the best epoch's weights
	// are kept either way.
	Patience int     `yaml:"patience"`
	MinDelta float64 `yaml:"min_delta"`
	// LRPatience > 0 multiplies the learning rate by LRFactor after that many
	// epochs without improvement (torch ReduceLROnPlateau), down to MinLR.
	LRPatience int     `yaml:"lr_patience"`
	LRFactor   float64 `yaml:"lr_factor"`
	MinLR      float64 `yaml:"min_lr"`

	// ValSplit is the split validated on every epoch (none: no validation).
	ValSplit string `yaml:"val_split"`
	// EMADecay > 0 keeps an exponential moving average of the weights,
	// updated after every optimizer step with decay min(EMADecay,
	// (1+t)/(10+t)) at step t; validation, early stopping and the saved
	// checkpoint use the averaged weights (Polyak averaging).
	EMADecay float64 `yaml:"ema_decay"`

	// Refit, after early stopping has picked the best epoch E on the val
	// split, trains a fresh model (same seed, so the same initial weights)
	// on the train and val windows together for E epochs with the selection
	// run's learning rate of each epoch, and saves that model instead.
	Refit bool `yaml:"refit"`

	// IntervalLevels are the coverage levels of the prediction intervals
	// calibrated on the val split after training, comma-separated
	// ("0.8,0.9"; "none": no intervals).
	IntervalLevels string `yaml:"interval_levels"`

	Seed int64 `yaml:"seed"`
	// ModelVersion names the model (default: "<model>-<run id>" or a timestamp).
	ModelVersion string `yaml:"model_version"`
	// RidgeAlpha is the L2 penalty of --model ridge.
	RidgeAlpha float64 `yaml:"ridge_alpha"`
}

// DefaultOptions are the design's: LSTM 128×2, FC 64, dropout 0.2, Adam lr
// 1e-3, MSE, batch 32, 100 epochs, early stopping after 10 epochs without
// improvement.
func DefaultOptions() Options {
	return Options{
		Windows: "windows.parquet", Stats: "stats.parquet", Out: "model.safetensors",
		Model: ModelLSTM, Engine: EngineFused, BLAS: "auto",
		Hidden: 128, Layers: 2, FC: 64, Dropout: 0.2,
		Epochs: 100, BatchSize: 32, LR: 1e-3, Loss: "mse", HuberDelta: 5, TargetScale: ScaleHorizon,
		Patience: 10, LRFactor: 0.5, MinLR: 1e-6,
		ValSplit: "val", Seed: 42, RidgeAlpha: 1, IntervalLevels: DefaultIntervalLevels,
	}
}

// Engines lists the engine names this binary has.
func Engines() []string {
	names := make([]string, 0, len(engines))
	for n := range engines {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: train: %s", exitcode.ErrUsage, fmt.Sprintf(format, args...))
}

func (o *Options) validate() error {
	switch o.Model {
	case ModelLSTM, ModelRidge:
	default:
		return usage("--model %q: want lstm or ridge", o.Model)
	}
	if o.Out == "" {
		return usage("--out is empty")
	}
	if _, err := o.intervalLevels(); err != nil {
		return err
	}
	for _, f := range []struct {
		flag string
		v    float64
	}{{"--lr", o.LR}, {"--weight-decay", o.WeightDecay}, {"--clip-norm", o.ClipNorm}, {"--min-delta", o.MinDelta},
		{"--min-lr", o.MinLR}, {"--lr-factor", o.LRFactor}, {"--ema-decay", o.EMADecay}, {"--huber-delta", o.HuberDelta}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return usage("%s %g: want a finite number", f.flag, f.v)
		}
	}
	switch o.ValSplit {
	case "", "none", dataset.SplitTrain, dataset.SplitVal, dataset.SplitTest:
	default:
		return usage("--val-split %q: want %s, %s, %s or none", o.ValSplit, dataset.SplitVal, dataset.SplitTest, dataset.SplitTrain)
	}
	if o.Model == ModelRidge {
		if o.Refit {
			return usage("--refit applies to --model lstm (ridge has no epochs to pick)")
		}
		if o.Stats == "" {
			return usage("--model ridge needs --stats")
		}
		if o.RidgeAlpha < 0 {
			return usage("--ridge-alpha %g < 0", o.RidgeAlpha)
		}
		return nil
	}
	if _, ok := engines[o.Engine]; !ok {
		return usage("--engine %q: want one of %v", o.Engine, Engines())
	}
	if o.Engine == EngineFused && o.BLAS != "" && o.BLAS != "auto" && !slices.Contains(nn.Backends(), o.BLAS) {
		return usage("--blas %q: this binary has %v (OpenBLAS needs a build with -tags openblas)", o.BLAS, nn.Backends())
	}
	switch {
	case o.Windows == "":
		return usage("--windows is empty")
	case o.Epochs < 1:
		return usage("--epochs %d < 1", o.Epochs)
	case o.BatchSize < 1:
		return usage("--batch-size %d < 1", o.BatchSize)
	case !(o.LR > 0):
		return usage("--lr %g must be > 0", o.LR)
	case o.WeightDecay < 0 || o.ClipNorm < 0 || o.Patience < 0 || o.LRPatience < 0 || o.MinDelta < 0 || o.MinLR < 0:
		return usage("--weight-decay, --clip-norm, --patience, --lr-patience, --min-delta and --min-lr must be ≥ 0")
	case o.LRPatience > 0 && !(o.LRFactor > 0 && o.LRFactor < 1):
		return usage("--lr-factor %g not in (0, 1)", o.LRFactor)
	case o.Workers < 0 || o.Workers > runenv.MaxWorkers:
		return usage("--workers %d (config train.workers): want 0 (GOMAXPROCS) to %d", o.Workers, runenv.MaxWorkers)
	case o.EMADecay < 0 || o.EMADecay >= 1:
		return usage("--ema-decay %g not in [0, 1)", o.EMADecay)
	}
	if o.Refit && (o.ValSplit == "" || o.ValSplit == "none") {
		return usage("--refit needs a --val-split to pick the number of epochs on")
	}
	switch o.Loss {
	case "mse":
	case "huber":
		if !(o.HuberDelta > 0) {
			return usage("--huber-delta %g must be > 0", o.HuberDelta)
		}
	default:
		return usage("--loss %q: want mse or huber", o.Loss)
	}
	switch o.TargetScale {
	case ScaleHorizon, ScaleNone:
	default:
		return usage("--target-scale %q: want horizon or none", o.TargetScale)
	}
	for _, b := range []struct {
		flag, key string
		v, max    int
	}{{"--hidden-size", "train.hidden_size", o.Hidden, model.MaxHidden}, {"--num-layers", "train.num_layers", o.Layers, model.MaxLayers},
		{"--fc-size", "train.fc_size", o.FC, model.MaxFC}, {"--batch-size", "train.batch_size", o.BatchSize, MaxBatchSize}} {
		if b.v < 1 || b.v > b.max {
			return usage("%s %d (config %s): want 1 to %d", b.flag, b.v, b.key, b.max)
		}
	}
	arch := o.arch(1)
	if err := arch.Validate(); err != nil {
		return usage("%v", err)
	}
	if err := model.CheckMemory("the model's parameters, gradients and Adam state", trainParamBytes(arch)); err != nil {
		return usage("--hidden-size %d --num-layers %d --fc-size %d: %v", o.Hidden, o.Layers, o.FC, err)
	}
	return nil
}

// MaxBatchSize bounds --batch-size.
const MaxBatchSize = runenv.MaxBatch

// trainParamBytes estimates the bytes training holds per parameter: the
// weights, their gradients, Adam's two moments and the best epoch's copy.
func trainParamBytes(a model.Arch) int64 { return 5 * 4 * a.ParamCount() }

// trainActivationBytes estimates the activations the backward pass keeps for
// one batch of b windows of t steps: per step and layer the four gates, the
// cell and hidden states and tanh of the cell (8H float32), on each worker's
// share of the batch, plus the batch's gradients.
func trainActivationBytes(a model.Arch, b, t int) int64 {
	return 2 * 4 * 8 * int64(b) * int64(t) * int64(a.Layers) * int64(a.Hidden)
}

// arch is the LSTM architecture of the options for input size in.
func (o *Options) arch(in int) model.Arch {
	return model.Arch{Type: model.TypeLSTM, InputSize: in, Hidden: o.Hidden, Layers: o.Layers, FC: o.FC, Dropout: o.Dropout}
}
