package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/evaluate"
	"github.com/modax/modax-ml/export"
	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/label"
	"github.com/modax/modax-ml/train"
	"github.com/modax/modax-ml/validate"
)

// Stages builds the pipeline from the configuration: each stage's section
// of cfg is its Options, with its outputs placed in the run directory and
// its inputs wired to the outputs of the stages before it (so renaming
// collect.out renames what validate and label read). Files named outside the
// pipeline (a CSV or C-MAPSS source, a reference report, the models
// directory) are resolved against the working directory. Settings that one
// stage copies from another come from config.Resolve, as for the stage run
// on its own (validate checks the window of features and the labelling
// rules of label).
func Stages(cfg config.Config, d Dirs) ([]*Stage, error) {
	cfg = cfg.Resolve()
	// Outputs first: every input below is one of them.
	co := cfg.Collect
	co.DB = cfg.DB
	co.Out, co.FailuresOut = d.Out(co.Out), d.Out(co.FailuresOut)
	if kind, p, ok := strings.Cut(co.Source, ":"); ok && p != "" {
		co.Source = kind + ":" + d.In(p)
	}
	if co.Failures != "" {
		p, _ := strings.CutPrefix(co.Failures, collect.SourceCSV+":")
		co.Failures = d.In(p)
	}
	co.RUL = d.In(co.RUL)
	lo := cfg.Label
	lo.Readings, lo.Failures, lo.Out = co.Out, co.FailuresOut, d.Out(lo.Out)
	fo := cfg.Features
	fo.Labeled, fo.Out, fo.Stats, fo.TestSource = lo.Out, d.Out(fo.Out), d.Out(fo.Stats), d.In(fo.TestSource)
	if fo.StatsBucket > 0 {
		fo.BucketOut = d.Out(fo.BucketOut)
	}
	vo := cfg.Validate
	vo.Readings, vo.Failures, vo.Out, vo.Reference = co.Out, co.FailuresOut, d.Out(vo.Out), d.In(vo.Reference)
	to := cfg.Train
	to.Windows, to.Stats, to.Out, to.Resume = fo.Out, fo.Stats, d.Out(to.Out), d.In(to.Resume)
	eo := cfg.Evaluate
	eo.Model, eo.Windows = to.Out, fo.Out
	eo.Predictions, eo.Metrics, eo.Report, eo.HTML = d.Out(eo.Predictions), d.Out(eo.Metrics), d.Out(eo.Report), d.Out(eo.HTML)
	eo.PlotsDir, eo.Compare = d.Out(eo.PlotsDir), d.In(eo.Compare)
	xo := cfg.Export
	xo.Model, xo.Windows, xo.Stats, xo.Metrics, xo.Out = to.Out, fo.Out, fo.Stats, eo.Metrics, d.Out(xo.Out)
	do := cfg.Deploy
	do.Model, do.ONNX, do.Metrics, do.Validation = to.Out, xo.Out, eo.Metrics, vo.Out
	do.ModelsDir, do.CurrentMetrics = d.In(do.ModelsDir), d.In(do.CurrentMetrics)

	if to.Model == train.ModelRidge && fo.Stats == "" {
		return nil, errors.New("pipeline: train.model ridge needs features.stats (the stats file it fits on)")
	}
	return []*Stage{
		collectStage(co),
		validateStage(vo),
		labelStage(lo),
		featuresStage(fo),
		trainStage(to),
		evaluateStage(eo),
		exportStage(xo, to.Model),
		deployStage(do),
	}, nil
}

// nonEmpty returns the non-empty names.
func nonEmpty(names ...string) []string {
	return slices.DeleteFunc(names, func(s string) bool { return s == "" })
}

func collectStage(o collect.Options) *Stage {
	// The source, failures and RUL files are inputs: resolve and hash them.
	var inputs []string
	kind, path, _ := strings.Cut(o.Source, ":")
	if path != "" {
		inputs = append(inputs, path)
	}
	if o.Failures != "" {
		inputs = append(inputs, o.Failures)
	}
	if o.RUL != "" {
		inputs = append(inputs, o.RUL)
	}
	// Only the tenant of the database section matters for file sources; the
	// DSN (a secret) is never hashed into keys or written to the cache.
	key := collectKey{Options: o, DB: pg.Config{Tenant: o.DB.Tenant}}
	s := &Stage{Name: Collect, Options: key, Inputs: inputs, Outputs: []string{o.Out, o.FailuresOut}}
	if kind == collect.SourcePostgres {
		key.DB = pg.Config{Tenant: o.DB.Tenant, SensorTable: o.DB.SensorTable, FailureTable: o.DB.FailureTable, Sensors: o.DB.Sensors}
		s.Options = key
		s.NoCache = "source postgres: the database changes without the options changing, so it is always collected"
	}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return collect.Run(ctx, env, o) }
	return s
}

// collectKey is what collect's cache key hashes: its section and the part
// of the db section it reads.
type collectKey struct {
	collect.Options `yaml:",inline"`
	DB              pg.Config `yaml:"db"`
}

func validateStage(o validate.Options) *Stage {
	s := &Stage{Name: Validate, Options: o, Inputs: nonEmpty(o.Readings, o.Failures, o.Reference), Outputs: []string{o.Out}}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return validate.Run(ctx, env, o) }
	s.Record = func(ctx context.Context, rec *tracking.Recorder, _ any, _ error) error {
		// The report explains a failed gate too: attach it whenever it exists.
		return logArtifacts(ctx, rec, artifact{"validation.json", o.Out})
	}
	return s
}

func labelStage(o label.Options) *Stage {
	s := &Stage{Name: Label, Options: o, Inputs: nonEmpty(o.Readings, o.Failures), Outputs: []string{o.Out}}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return label.Run(ctx, env, o) }
	return s
}

func featuresStage(o features.Options) *Stage {
	key := o
	key.Workers = 0 // output does not depend on it
	outs := []string{o.Out}
	if o.Stats != "" {
		outs = append(outs, o.Stats)
	}
	if o.StatsBucket > 0 {
		outs = append(outs, o.BucketOut)
	}
	s := &Stage{Name: Features, Options: key, Inputs: nonEmpty(o.Labeled, o.TestSource), Outputs: outs}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return features.Run(ctx, env, o) }
	return s
}

func trainStage(o train.Options) *Stage {
	in := o.Windows
	outs := []string{o.Out}
	if o.Model == train.ModelRidge {
		in = o.Stats
	} else {
		outs = append(outs, train.SidecarPath(o.Out))
	}
	s := &Stage{Name: Train, Options: o, Inputs: nonEmpty(in, o.Resume), Outputs: outs}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return train.Run(ctx, env, o) }
	if o.Model != train.ModelRidge && o.Engine == train.EngineFused {
		// Interrupted, train writes its checkpoint and optimizer state;
		// continuing from them ends bit-identical to an uninterrupted run
		// (fused engine, same worker count; gorgonia cannot carry Adam's
		// moments, so it always starts over).
		s.Checkpoint = []string{o.Out, train.SidecarPath(o.Out)}
		c := o
		c.Resume = o.Out
		s.Continue = func(ctx context.Context, env *runenv.Env) (any, error) { return train.Run(ctx, env, c) }
		s.ContinueTerms = func(env *runenv.Env) string {
			w := o.Workers
			if w == 0 {
				w = env.Workers
			}
			return fmt.Sprintf("%d workers", w)
		}
	}
	s.Record = func(ctx context.Context, rec *tracking.Recorder, _ any, err error) error {
		if err != nil {
			return nil
		}
		if err := logHistory(ctx, rec, o.Out); err != nil {
			return err
		}
		return logArtifacts(ctx, rec, artifact{"model/model.safetensors", o.Out})
	}
	return s
}

func evaluateStage(o evaluate.Options) *Stage {
	key := o
	key.Workers, key.BatchSize = 0, 0 // the forward pass's parallelism does not change predictions
	outs := nonEmpty(o.Predictions, o.Metrics, o.Report, o.HTML)
	if !o.NoPlots {
		outs = append(outs, o.PlotsDir)
	}
	s := &Stage{Name: Evaluate, Options: key, Inputs: nonEmpty(o.Model, o.Windows, o.Compare), Outputs: outs}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return evaluate.Run(ctx, env, o) }
	s.Record = func(ctx context.Context, rec *tracking.Recorder, _ any, err error) error {
		if err != nil {
			return nil
		}
		m, err := ReadMetrics(o.Metrics)
		if err != nil {
			return err
		}
		final := m.Final()
		// The train-mean baseline puts the model's numbers in perspective.
		if b, err := ComputeBaseline(ctx, o.Windows); err == nil {
			maps.Copy(final, b.Final())
		}
		if err := rec.SetFinalMetrics(ctx, final); err != nil {
			return err
		}
		arts := []artifact{{"metrics.json", o.Metrics}, {"report/report.md", o.Report}, {"report/report.html", o.HTML}}
		if !o.NoPlots {
			pngs, _ := filepath.Glob(filepath.Join(o.PlotsDir, "*.png"))
			svgs, _ := filepath.Glob(filepath.Join(o.PlotsDir, "*.svg"))
			for _, p := range append(pngs, svgs...) {
				arts = append(arts, artifact{"plots/" + filepath.Base(p), p})
			}
		}
		return logArtifacts(ctx, rec, arts...)
	}
	return s
}

func exportStage(o export.Options, modelType string) *Stage {
	in := o.Windows
	if modelType == train.ModelRidge {
		in = o.Stats
	}
	s := &Stage{Name: Export, Options: o, Inputs: nonEmpty(o.Model, in, o.Metrics), Outputs: []string{o.Out}}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return export.Run(ctx, env, o) }
	s.Record = func(ctx context.Context, rec *tracking.Recorder, _ any, err error) error {
		if err != nil {
			return nil
		}
		return logArtifacts(ctx, rec, artifact{"model/model.onnx", o.Out})
	}
	return s
}

func deployStage(o deploy.Options) *Stage {
	s := &Stage{Name: Deploy, Options: o, Inputs: nonEmpty(o.Model, o.ONNX, o.Metrics, o.Validation, o.CurrentMetrics),
		NoCache: "deploy publishes to " + o.ModelsDir + ", outside the run directory"}
	s.Run = func(ctx context.Context, env *runenv.Env) (any, error) { return deploy.Run(ctx, env, o) }
	s.Record = func(ctx context.Context, rec *tracking.Recorder, res any, err error) error {
		r, _ := res.(*deploy.Result)
		d := tracking.Deploy{Decision: tracking.DeploySkipped, Artifact: "model"}
		switch {
		case err == nil && r != nil && r.Deployed:
			d.Decision, d.Version, d.Path = tracking.DeployDeployed, r.Version, r.Served
			d.Reason = "passed the gate"
			if r.Previous != "" {
				d.Reason += "; replaced " + r.Previous
			}
			// The MLmodel file and its environment files make the "model"
			// artifact (model.onnx beside them) an MLflow model.
			var arts []artifact
			for _, name := range deploy.MLflowFiles() {
				arts = append(arts, artifact{"model/" + name, filepath.Join(r.Dir, name)})
			}
			if err := logArtifacts(ctx, rec, arts...); err != nil {
				return err
			}
		case deploy.IsGate(err):
			d.Decision, d.Reason = tracking.DeployRejected, err.Error()
			if r != nil {
				d.Version = r.Version
			}
		case err != nil:
			d.Reason = "deploy failed: " + err.Error()
		case r != nil:
			d.Version, d.Reason = r.Version, "not deployed"
		}
		if r != nil && len(r.Gate) > 0 {
			d.Metrics = map[string]tracking.Float{}
			for _, c := range r.Gate {
				d.Metrics[c.Split+"_"+c.Metric] = tracking.Float(c.Value)
			}
		}
		return rec.SetDeploy(ctx, d)
	}
	return s
}

// artifact is a file to attach to the run under a name.
type artifact struct{ name, path string }

// logArtifacts attaches the files that exist.
func logArtifacts(ctx context.Context, rec *tracking.Recorder, arts ...artifact) error {
	for _, a := range arts {
		if a.path == "" {
			continue
		}
		if _, err := os.Stat(a.path); err != nil {
			continue
		}
		if err := rec.LogArtifact(ctx, a.name, a.path); err != nil {
			return err
		}
	}
	return nil
}

// logHistory logs the checkpoint's training history as per-epoch metric
// series (train_loss, val_loss, train_rmse, val_rmse, lr, samples_per_s),
// timed from the end of training backwards by the epochs' durations.
//
// A run's series are logged once: a resumed run whose train stage is done
// (or retrained with --force) keeps the series already recorded, since
// metric histories are append-only (here and in MLflow).
func logHistory(ctx context.Context, rec *tracking.Recorder, ckpt string) error {
	for _, m := range rec.Record().Metrics {
		if m.Name == "train_loss" {
			return nil
		}
	}
	ck, err := model.Load(ckpt)
	if err != nil {
		return err
	}
	h := ck.Info.History
	end := time.Now()
	if t, err := time.Parse(time.RFC3339Nano, ck.Info.CreatedAt); err == nil {
		end = t
	}
	var after float64
	at := make([]time.Time, len(h))
	for i := len(h) - 1; i >= 0; i-- {
		at[i] = end.Add(-time.Duration(after * float64(time.Second)))
		after += h[i].Seconds
	}
	for i, e := range h {
		vals := map[string]float64{"train_loss": e.TrainLoss, "train_rmse": e.TrainRMSE, "lr": e.LR, "samples_per_s": e.SamplesPerS}
		if e.ValLoss != 0 || e.ValRMSE != 0 {
			vals["val_loss"], vals["val_rmse"] = e.ValLoss, e.ValRMSE
		}
		if err := rec.LogStep(ctx, int64(e.Epoch), at[i], vals); err != nil {
			return err
		}
	}
	return nil
}

// Metrics is the contract part of metrics.json (CONTRACTS.md): per split n,
// mae, rmse, score (null when undefined), and the model's sha256.
type Metrics struct {
	Model struct {
		Path         string `json:"path"`
		SHA256       string `json:"sha256"`
		ModelVersion string `json:"model_version"`
	} `json:"model"`
	Splits map[string]SplitMetrics `json:"splits"`
}

// SplitMetrics are one split's contract metrics.
type SplitMetrics struct {
	N     int      `json:"n"`
	MAE   *float64 `json:"mae"`
	RMSE  *float64 `json:"rmse"`
	Score *float64 `json:"score"`
	R2    *float64 `json:"r2"`
}

// ReadMetrics reads the contract part of a metrics.json.
func ReadMetrics(path string) (*Metrics, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	var m Metrics
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read metrics %s: %w", path, err)
	}
	if m.Splits == nil {
		return nil, fmt.Errorf("read metrics %s: no \"splits\"", path)
	}
	return &m, nil
}

// FinalPrefix is the prefix of a split's final metrics in the run record:
// "test_" for the test split, "best_val_" for the val split (the evaluated
// model is the best epoch's; the plain val_loss, val_rmse names are the
// per-epoch training curves, and MLflow keeps metrics in one namespace).
func FinalPrefix(split string) string {
	if split == "val" {
		return "best_val_"
	}
	return split + "_"
}

// Final returns the run's final metrics: n, mae, rmse, score and r2 (where
// defined) of the test and val splits, named with FinalPrefix.
func (m *Metrics) Final() map[string]float64 {
	out := map[string]float64{}
	for _, split := range []string{"test", "val"} {
		s, ok := m.Splits[split]
		if !ok {
			continue
		}
		p := FinalPrefix(split)
		out[p+"n"] = float64(s.N)
		for name, v := range map[string]*float64{"mae": s.MAE, "rmse": s.RMSE, "score": s.Score, "r2": s.R2} {
			if v != nil {
				out[p+name] = *v
			}
		}
	}
	return out
}
