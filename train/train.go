package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/conformal"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/nn"
	"github.com/modax/modax-ml/internal/nn/autodiff"
	"github.com/modax/modax-ml/internal/runenv"
)

// Result is what a training run did (printed by --output json).
type Result struct {
	Model        string `json:"model"`
	Optimizer    string `json:"optimizer_state,omitempty"`
	ModelType    string `json:"model_type"`
	ModelVersion string `json:"model_version"`
	Engine       string `json:"engine,omitempty"`
	BLAS         string `json:"blas,omitempty"`
	Workers      int    `json:"workers,omitempty"`
	Parameters   int    `json:"parameters"`
	// Input is the windows (lstm) or stats (ridge) file.
	Input        string   `json:"input"`
	Features     []string `json:"features"`
	Window       int      `json:"window"`
	TrainWindows int      `json:"train_windows"`
	ValWindows   int      `json:"val_windows"`
	// Epochs counts the epochs run in total (a resumed run includes the
	// earlier ones); BestEpoch is the one whose weights were saved.
	Epochs    int `json:"epochs"`
	BestEpoch int `json:"best_epoch,omitempty"`
	// Val metrics of the saved weights: loss on the training scale, RMSE in
	// hours (null without a val split).
	BestValLoss    *float64 `json:"best_val_loss"`
	BestValRMSE    *float64 `json:"best_val_rmse"`
	FinalTrainLoss float64  `json:"final_train_loss"`
	// SamplesPerS is the training throughput over this run's epochs.
	SamplesPerS  float64 `json:"samples_per_s"`
	StoppedEarly bool    `json:"stopped_early"`
	// Refit is set when the saved weights come from --refit (then the val
	// metrics above are the selection run's: the refit model trained on the
	// val windows).
	Refit       *RefitResult  `json:"refit,omitempty"`
	ResumedFrom string        `json:"resumed_from,omitempty"`
	TargetScale float64       `json:"target_scale"`
	Seconds     float64       `json:"seconds"`
	History     []model.Epoch `json:"history"`
	// Calibration is the prediction intervals' calibration (nil without a
	// val split or with --interval-levels none); CalibrationSeconds what it
	// cost (val forward pass and quantiles).
	Calibration        *conformal.Calibration `json:"calibration,omitempty"`
	CalibrationSeconds float64                `json:"calibration_seconds,omitempty"`
}

// trainInfo is the checkpoint's modax.train metadata: how the model was
// trained.
type trainInfo struct {
	Model        string  `json:"model"`
	Engine       string  `json:"engine,omitempty"`
	BLAS         string  `json:"blas,omitempty"`
	Workers      int     `json:"workers,omitempty"`
	Epochs       int     `json:"epochs,omitempty"`
	BatchSize    int     `json:"batch_size,omitempty"`
	Adam         nn.Adam `json:"adam"`
	EMADecay     float64 `json:"ema_decay,omitempty"`
	Loss         string  `json:"loss,omitempty"`
	HuberDelta   float64 `json:"huber_delta_hours,omitempty"`
	TargetScale  float64 `json:"target_scale"`
	Patience     int     `json:"patience,omitempty"`
	MinDelta     float64 `json:"min_delta,omitempty"`
	LRPatience   int     `json:"lr_patience,omitempty"`
	LRFactor     float64 `json:"lr_factor,omitempty"`
	MinLR        float64 `json:"min_lr,omitempty"`
	ValSplit     string  `json:"val_split"`
	Seed         int64   `json:"seed"`
	TrainWindows int     `json:"train_windows"`
	ValWindows   int     `json:"val_windows"`
	EpochsRun    int     `json:"epochs_run,omitempty"`
	BestEpoch    int     `json:"best_epoch,omitempty"`
	StoppedEarly bool    `json:"stopped_early,omitempty"`
	Interrupted  bool    `json:"interrupted,omitempty"`
	ResumedFrom  string  `json:"resumed_from,omitempty"`
	Optimizer    string  `json:"optimizer_state,omitempty"`
	RidgeAlpha   float64 `json:"ridge_alpha,omitempty"`
	// Refit: the weights come from --refit (the history of the checkpoint
	// is the selection run's).
	Refit *RefitResult `json:"refit,omitempty"`
}

// engineConfig is what an engine factory gets besides the parameters.
type engineConfig struct {
	workers int
	blas    string
	adam    nn.Adam
	loss    nn.Loss
}

// engines are the training engines by --engine name.
var engines = map[string]func(p *model.Params, c engineConfig) (nn.Engine, error){
	EngineFused: func(p *model.Params, c engineConfig) (nn.Engine, error) {
		return nn.NewFused(p, nn.Config{Workers: c.workers, BLAS: c.blas, Adam: c.adam, Loss: c.loss})
	},
	// The gorgonia graph runs on one goroutine; --workers and --blas do not
	// apply.
	EngineGorgonia: func(p *model.Params, c engineConfig) (nn.Engine, error) {
		return autodiff.New(p, autodiff.Options{Adam: c.adam, Loss: c.loss})
	},
}

// Run trains a model as opts say and writes its checkpoint. On cancellation
// (Ctrl-C) it finishes the current batch, writes the checkpoint and its
// optimizer state, and returns an error wrapping the context's error.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--windows", opts.Windows), atomicfile.P("--stats", opts.Stats)},
		[]atomicfile.Path{atomicfile.P("--out", opts.Out), atomicfile.P("--out (optimizer state)", SidecarPath(opts.Out))}); err != nil {
		return nil, err
	}
	if opts.Model == ModelRidge {
		return runRidge(ctx, env, opts)
	}
	return runLSTM(ctx, env, opts)
}

func runLSTM(ctx context.Context, env *runenv.Env, o Options) (*Result, error) {
	start := time.Now()
	valSplit := o.ValSplit
	if valSplit == "" || valSplit == "none" {
		valSplit = "\x00none" // matches no split
	}
	d, err := loadWindows(ctx, o.Windows, valSplit)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if d.train.n == 0 {
		return nil, fmt.Errorf("%w: train: %s has no windows in the %q split", exitcode.ErrValidation, o.Windows, dataset.SplitTrain)
	}
	if d.train.n < o.BatchSize {
		return nil, fmt.Errorf("%w: train: %s has %d train windows, fewer than one batch of %d (lower --batch-size)", exitcode.ErrValidation, o.Windows, d.train.n, o.BatchSize)
	}
	if d.val.n == 0 {
		env.Log.Warn("no validation windows: no early stopping or plateau schedule, the last epoch's weights are saved", "file", o.Windows, "val_split", o.ValSplit)
	}
	scale := 1.0
	if o.TargetScale == ScaleHorizon {
		if d.meta.Horizon > 0 {
			scale = d.meta.Horizon
		} else {
			env.Log.Warn("the windows file has no horizon: training on hours", "file", o.Windows)
		}
	}
	arch := o.arch(d.f)
	if err := arch.Validate(); err != nil {
		return nil, fmt.Errorf("%w: train: %s: %w", exitcode.ErrValidation, o.Windows, err)
	}
	if err := model.CheckMemory(fmt.Sprintf("training on windows of %d steps × %d features", d.t, d.f),
		trainParamBytes(arch)+trainActivationBytes(arch, o.BatchSize, d.t)); err != nil {
		return nil, usage("--batch-size %d --hidden-size %d --num-layers %d: %v (lower them)", o.BatchSize, o.Hidden, o.Layers, err)
	}
	p, err := model.NewParams(arch)
	if err != nil {
		return nil, usage("%v", err)
	}
	p.Init(uint64(o.Seed))
	st := trainState{LR: o.LR, TargetScale: scale, TrainWindows: d.train.n}
	var (
		sc      *sidecar
		history []model.Epoch
	)
	if o.Resume != "" {
		r, err := resume(env, &o, d)
		if err != nil {
			return nil, err
		}
		arch, p, sc, history, scale = r.arch, r.params, r.sc, r.history, r.scale
		st = trainState{LR: o.LR, TargetScale: scale, TrainWindows: d.train.n, Epoch: len(history)}
		if sc != nil {
			st = sc.state
			if st.Stopped && (o.Patience == 0 || st.BadEpochs < o.Patience) {
				st.Stopped = false // the patience was raised: keep going
			}
		}
	}
	blasName := o.BLAS
	if blasName == "auto" {
		blasName = ""
	}
	newEngine := newEngineFor(env, &o, scale)
	eng, err := newEngine(p)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	defer eng.Close()
	if sc != nil {
		fresh := sc.m == nil
		if !fresh {
			if err := eng.SetOptimizerState(st.Step, sc.m, sc.v); err != nil {
				if !errors.Is(err, autodiff.ErrOptimizerState) {
					return nil, fmt.Errorf("train: resume: %w", err)
				}
				fresh = true
			}
		}
		if fresh {
			// gorgonia's AdamSolver neither exports nor imports its moments
			env.Log.Warn("resuming with a fresh Adam state: the checkpoint's engine or this one cannot carry Adam's moments", "engine", o.Engine)
		}
	}
	l := newLoop(ctx, env, &o, d, eng, arch, scale, st)
	l.history = history
	if sc != nil && st.HasBest {
		l.best = sc.best
	}
	if l.ema != nil && sc != nil {
		if sc.ema != nil {
			l.ema = sc.ema
		} else {
			env.Log.Warn("the optimizer state has no weight average: --ema-decay starts it from the resumed weights", "checkpoint", o.Resume)
		}
	}
	l.hooks = []hook{earlyStopping(), reduceLROnPlateau(), logEpoch("epoch"), progressBar()}
	l.bar = env.Progress("train", "samples", int64(o.Epochs)*int64(d.train.n))
	if done := int64(st.Epoch)*int64(d.train.n) + int64(min(st.NextBatch*o.BatchSize, d.train.n)); done > 0 {
		l.bar.Add(done)
	}
	firstEpoch := len(l.history)
	runErr := l.run()
	l.bar.Finish()
	var intr *errInterrupted
	if runErr != nil && !errors.As(runErr, &intr) {
		return nil, runErr
	}
	var (
		rf       *RefitResult
		rfParams *model.Params
		rfIntr   *errInterrupted
	)
	if o.Refit && intr == nil {
		if !l.st.HasBest {
			return nil, fmt.Errorf("%w: train: --refit: %s has no windows in the %q split to pick the epochs on", exitcode.ErrValidation, o.Windows, o.ValSplit)
		}
		rf, rfParams, err = refit(ctx, env, &o, d, l, newEngine)
		if err != nil && !errors.As(err, &rfIntr) {
			return nil, err
		}
	}
	res, err := saveLSTM(env, &o, d, l, intr != nil || rfIntr != nil, firstEpoch, blasName, rf, rfParams)
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	if rfIntr != nil {
		redo := "--resume " + o.Out + " --refit"
		if env.Resume != "" {
			redo = env.Resume
		}
		return res, fmt.Errorf("train: refit %w; wrote %s with the selection run's best weights (%s redoes the refit)", rfIntr, o.Out, redo)
	}
	if intr != nil {
		cont := "--resume " + o.Out
		if env.Resume != "" {
			cont = env.Resume
		}
		return res, fmt.Errorf("train: %w; wrote %s and %s (continue with %s)", intr, o.Out, res.Optimizer, cont)
	}
	return res, nil
}

type resumed struct {
	arch    model.Arch
	params  *model.Params // engine scale
	sc      *sidecar
	history []model.Epoch
	scale   float64
}

// resume loads the checkpoint and optimizer state to continue from and
// checks that they fit the windows.
func resume(env *runenv.Env, o *Options, d *data) (*resumed, error) {
	ck, err := model.Load(o.Resume)
	if err != nil {
		return nil, fmt.Errorf("train: resume: %w", err)
	}
	in := ck.Info
	if in.Arch.Type != model.TypeLSTM {
		return nil, fmt.Errorf("%w: train: resume %s: a %s model cannot continue as an lstm", exitcode.ErrValidation, o.Resume, in.Arch.Type)
	}
	if !slices.Equal(in.Features, d.meta.Features) {
		return nil, fmt.Errorf("%w: train: resume %s: the checkpoint's %d features %v differ from the %d features %v of %s",
			exitcode.ErrValidation, o.Resume, len(in.Features), in.Features, len(d.meta.Features), d.meta.Features, o.Windows)
	}
	if in.Window != d.t {
		return nil, fmt.Errorf("%w: train: resume %s: window %d, but %s has windows of %d steps", exitcode.ErrValidation, o.Resume, in.Window, o.Windows, d.t)
	}
	var ti trainInfo
	if len(in.Train) > 0 {
		if err := json.Unmarshal(in.Train, &ti); err != nil {
			return nil, fmt.Errorf("train: resume %s: %s: %w", o.Resume, model.MetaTrain, err)
		}
	}
	scale := ti.TargetScale
	if scale <= 0 {
		scale = 1
	}
	r := &resumed{arch: in.Arch, history: in.History, scale: scale}
	sidecarPath := SidecarPath(o.Resume)
	sc, err := readSidecar(sidecarPath, in.Arch)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		env.Log.Warn("no optimizer state next to the checkpoint: continuing from its weights with a fresh optimizer", "checkpoint", o.Resume, "missing", sidecarPath)
		r.params = scaleFC2(ck.Params, 1/scale)
	case err != nil:
		return nil, fmt.Errorf("train: resume: %w", err)
	default:
		if err := atomicfile.CheckSameSet(o.Resume, in.WriteSet, sidecarPath, sc.writeSet); err != nil {
			return nil, fmt.Errorf("train: resume: %w", err)
		}
		if sc.state.TargetScale != scale {
			return nil, fmt.Errorf("train: resume: %s was trained with target scale %g, its optimizer state says %g", o.Resume, scale, sc.state.TargetScale)
		}
		if sc.state.TrainWindows != d.train.n {
			env.Log.Warn("the train split changed since the checkpoint: restarting the interrupted epoch", "was", sc.state.TrainWindows, "now", d.train.n)
			sc.state.NextBatch, sc.state.PartialLoss, sc.state.PartialSamples, sc.state.PartialSeconds = 0, 0, 0, 0
			sc.state.TrainWindows = d.train.n
		}
		r.sc, r.params = sc, sc.w
	}
	if in.Arch != o.arch(d.f) {
		env.Log.Info("resuming with the checkpoint's architecture", "arch", fmt.Sprintf("%+v", in.Arch))
	}
	return r, nil
}

// saveLSTM writes the checkpoint (the refit's weights with --refit, else the
// best epoch's when there is a val split, else the last) with the target
// scale folded into fc2, and the optimizer state of the selection run, and
// returns the Result.
func saveLSTM(env *runenv.Env, o *Options, d *data, l *loop, interrupted bool, firstEpoch int, blasName string, rf *RefitResult, rfParams *model.Params) (*Result, error) {
	final := l.best
	if final == nil {
		final = l.evalParams()
	}
	if rfParams != nil {
		final = rfParams
	}
	step, m, v := l.eng.OptimizerState()
	l.st.Step = step
	blasDesc := ""
	if o.Engine == EngineFused {
		blasDesc = nn.BLAS()
		if blasName != "" {
			blasDesc = blasName
		}
	}
	version := modelVersion(env, o)
	ti := trainInfo{
		Model: ModelLSTM, Engine: o.Engine, BLAS: blasDesc, Workers: o.Workers, Epochs: o.Epochs, BatchSize: o.BatchSize,
		Adam:     nn.Adam{LR: o.LR, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: o.WeightDecay, ClipNorm: o.ClipNorm},
		EMADecay: o.EMADecay, Loss: o.Loss, TargetScale: l.scale, Patience: o.Patience, MinDelta: o.MinDelta, LRPatience: o.LRPatience,
		ValSplit: o.ValSplit, Seed: o.Seed, TrainWindows: d.train.n, ValWindows: d.val.n,
		EpochsRun: l.st.Epoch, BestEpoch: l.st.BestEpoch, StoppedEarly: l.st.Stopped, Interrupted: interrupted,
		ResumedFrom: o.Resume, Optimizer: SidecarPath(o.Out), Refit: rf,
	}
	if o.Loss == "huber" {
		ti.HuberDelta = o.HuberDelta
	}
	if o.LRPatience > 0 {
		ti.LRFactor, ti.MinLR = o.LRFactor, o.MinLR
	}
	info, err := baseInfo(env, l.arch, d.meta, version, o.Seed, ti, o.Windows, o.Resume)
	if err != nil {
		return nil, err
	}
	info.History = l.history
	ck := &model.Checkpoint{Params: scaleFC2(final, l.scale), Info: info}
	calParams, source := ck.Params, fmt.Sprintf("%s split, the saved weights", o.ValSplit)
	if rfParams != nil {
		calParams, source = scaleFC2(l.best, l.scale), fmt.Sprintf("%s split, the selection run's best weights (the --refit model trained on %s)", o.ValSplit, o.ValSplit)
	}
	cal, calSecs, err := calibrateLSTM(env, o, d, calParams, source)
	if err != nil {
		return nil, err
	}
	ck.Info.Calibration = cal
	sidePath := SidecarPath(o.Out)
	sc := &sidecar{state: l.st, m: m, v: v, w: l.eng.Params(), best: l.best, ema: l.ema}
	// The checkpoint and its optimizer state are one write set: both carry
	// its ID (resume refuses a mixed pair), and a failure while committing
	// leaves the previous pair as it was.
	set := atomicfile.NewSet()
	defer set.Abort()
	if err := writeSidecar(set, sidePath, l.arch, sc); err != nil {
		return nil, fmt.Errorf("train: write optimizer state: %w", err)
	}
	if err := model.SaveIn(set, o.Out, ck); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := set.Commit(); err != nil {
		return nil, fmt.Errorf("train: %w (the previous %s and %s are left as they were)", err, o.Out, sidePath)
	}
	res := &Result{
		Model: o.Out, Optimizer: sidePath, ModelType: ModelLSTM, ModelVersion: version, Engine: o.Engine, BLAS: blasDesc,
		Workers: o.Workers, Parameters: final.Count(), Input: o.Windows, Features: d.meta.Features, Window: d.t,
		TrainWindows: d.train.n, ValWindows: d.val.n, Epochs: l.st.Epoch, BestEpoch: l.st.BestEpoch,
		StoppedEarly: l.st.Stopped, Refit: rf, ResumedFrom: o.Resume, TargetScale: l.scale, History: l.history,
		Calibration: cal, CalibrationSeconds: calSecs,
	}
	if res.Workers == 0 {
		res.Workers = env.Workers
	}
	if o.Engine == EngineGorgonia {
		res.Workers = 1
	}
	if n := len(l.history); n > 0 {
		res.FinalTrainLoss = l.history[n-1].TrainLoss
	}
	if l.st.HasBest {
		bl := l.st.BestValLoss
		res.BestValLoss = &bl
		for _, e := range l.history {
			if e.Epoch == l.st.BestEpoch {
				br := e.ValRMSE
				res.BestValRMSE = &br
			}
		}
	}
	var samples, secs float64
	for _, e := range l.history[min(firstEpoch, len(l.history)):] {
		samples += e.SamplesPerS * e.Seconds
		secs += e.Seconds
	}
	if secs > 0 {
		res.SamplesPerS = samples / secs
	}
	return res, nil
}

// modelVersion is --model-version or "<model>-<run id or UTC time>".
func modelVersion(env *runenv.Env, o *Options) string {
	if o.ModelVersion != "" {
		return o.ModelVersion
	}
	if env.RunID != "" {
		return o.Model + "-" + env.RunID
	}
	return o.Model + "-" + env.Now().UTC().Format("20060102T150405Z")
}

// baseInfo fills the checkpoint metadata common to both model types.
func baseInfo(env *runenv.Env, arch model.Arch, wm dataset.WindowsMeta, version string, seed int64, ti trainInfo, inputs ...string) (model.Info, error) {
	tb, err := json.Marshal(ti)
	if err != nil {
		return model.Info{}, err
	}
	var locs []string
	for _, in := range inputs {
		if in != "" {
			locs = append(locs, in)
		}
	}
	ins, err := dataset.Inputs(locs...)
	if err != nil {
		return model.Info{}, fmt.Errorf("train: %w", err)
	}
	return model.Info{
		Arch: arch, Features: wm.Features, Window: wm.Window, Scaler: wm.Scaler, Horizon: wm.Horizon, Thresholds: wm.Thresholds,
		ModelVersion: version, RunID: env.RunID, CreatedAt: env.Now().UTC().Format(time.RFC3339), ToolVersion: env.ToolVersion,
		Seed: uint64(seed), Train: tb, Inputs: ins,
	}, nil
}
