package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/internal/tracking/mlflowtest"
	"github.com/modax/modax-ml/validate"
)

// These tests run the real stages through the pipeline on a fleet and a
// model small enough for a whole run to take about a second.

// tinyConfig is the test fleet: 6 devices, 30 days at 20-minute samples,
// windows of 20 every 5 readings, an LSTM of 8 units trained for 2 epochs.
func tinyConfig(dir string) config.Config {
	c := config.Default()
	c.Dir = dir
	s := &c.Collect.Synthetic
	s.Devices, s.Days, s.Interval = 6, 30, duration.Duration(20*time.Minute)
	c.Features.Window, c.Features.Stride = 20, 5
	c.Train.Hidden, c.Train.Layers, c.Train.FC = 8, 1, 8
	c.Train.Epochs, c.Train.BatchSize, c.Train.Workers = 2, 32, 1
	c.Deploy.MaxMAE = 1000
	return c
}

func realOpts(c config.Config) Options {
	return Options{Config: c, RepoDir: c.Dir, Getenv: func(string) string { return "" }}
}

// statuses lists the stages' statuses in order.
func statuses(res *Result) string {
	var parts []string
	for _, s := range res.Stages {
		parts = append(parts, s.Status)
	}
	return strings.Join(parts, ",")
}

func stageStatus(res *Result) map[string]string {
	m := map[string]string{}
	for _, s := range res.Stages {
		m[s.Name] = s.Status
	}
	return m
}

func TestRealRun(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "first"
	res, err := Run(context.Background(), runenv.Test(), realOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != tracking.StatusFinished || statuses(res) != "ran,ran,ran,ran,ran,ran,ran,ran" {
		t.Fatalf("status %s, stages %s", res.Status, statuses(res))
	}
	run := filepath.Join(dir, "runs", "first")
	for _, f := range []string{"readings.parquet", "failures.parquet", "validation.json", "labeled.parquet", "windows.parquet",
		"stats.parquet", "model.safetensors", "predictions.parquet", "metrics.json", "report.md", "report.html", "model.onnx",
		ConfigFile, LogFile, tracking.RecordFile} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("run directory: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "rul_predictor.onnx")); err != nil {
		t.Errorf("deployed model: %v", err)
	}
	if res.Report != filepath.Join(run, "report.html") {
		t.Errorf("report %q", res.Report)
	}

	// run.json: params, per-epoch series from the checkpoint, final metrics
	// from metrics.json, the deploy decision, artifacts, stage outputs.
	rec, err := tracking.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Params["train.epochs"] != "2" || rec.Params["features.window"] != "20" || rec.Tags["modax.pipeline.from"] != "collect" {
		t.Errorf("params/tags: %v %v", rec.Params["train.epochs"], rec.Tags)
	}
	ck, err := model.Load(filepath.Join(run, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	var valRMSE []float64
	for _, m := range rec.Metrics {
		if m.Name == "val_rmse" {
			valRMSE = append(valRMSE, float64(m.Value))
		}
	}
	if len(valRMSE) != len(ck.Info.History) || len(valRMSE) != 2 || valRMSE[1] != ck.Info.History[1].ValRMSE {
		t.Errorf("val_rmse series %v, checkpoint history %+v", valRMSE, ck.Info.History)
	}
	m, err := ReadMetrics(filepath.Join(run, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := float64(rec.FinalMetrics["test_mae"]); m.Splits["test"].MAE == nil || got != *m.Splits["test"].MAE {
		t.Errorf("final test_mae %v, metrics.json %v", got, m.Splits["test"].MAE)
	}
	if _, ok := rec.FinalMetrics["baseline_test_mae"]; !ok {
		t.Error("no baseline in the final metrics")
	}
	if rec.Deploy == nil || rec.Deploy.Decision != tracking.DeployDeployed || rec.Deploy.Version == "" {
		t.Errorf("deploy %+v", rec.Deploy)
	}
	arts := map[string]bool{}
	for _, a := range rec.Artifacts {
		arts[a.Name] = true
	}
	for _, want := range []string{"validation.json", "model/model.safetensors", "model/model.onnx", "model/MLmodel", "model/conda.yaml", "model/python_env.yaml", "model/requirements.txt", "metrics.json", "report/report.md", "plots/pred_vs_true.png", "plots/fig-pred-vs-true.svg"} {
		if !arts[want] {
			t.Errorf("artifact %s missing (have %v)", want, arts)
		}
	}
	if st := rec.Stage(Features); st == nil || len(st.Inputs) != 1 || st.Inputs[0].Path != "labeled.parquet" || len(st.Outputs) != 2 || st.Outputs[0].SHA256 == "" {
		t.Errorf("features stage record %+v", st)
	}
	// The frozen config reads back as the run's config.
	frozen, err := LoadFrozen(filepath.Join(run, ConfigFile), c)
	if err != nil || frozen.Train.Hidden != 8 || frozen.Collect.Synthetic.Devices != 6 {
		t.Errorf("frozen config: %v, %+v", err, frozen.Train)
	}
	// The log of the run is in the run directory.
	if b, err := os.ReadFile(filepath.Join(run, LogFile)); err != nil || !strings.Contains(string(b), `"msg":"stage train ran"`) {
		t.Errorf("run log: %v\n%s", err, b)
	}
}

func TestRealCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "a"
	if _, err := Run(ctx, runenv.Test(), realOpts(c)); err != nil {
		t.Fatal(err)
	}
	// Same config: every stage but deploy is a cache hit, and the files are
	// the cached ones (hard links: the same inode as run a's).
	c.RunID = "b"
	res, err := Run(ctx, runenv.Test(), realOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "skipped,skipped,skipped,skipped,skipped,skipped,skipped,ran" {
		t.Fatalf("second run: %s", got)
	}
	// A restored stage says so and takes the restore's time.
	rec, err := tracking.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Stages[:7] {
		st := rec.Stage(s.Name)
		if !strings.HasPrefix(s.Reason, "restored from cache: inputs, options and tool version unchanged (key ") || s.Seconds <= 0 ||
			st == nil || st.DurationSeconds != s.Seconds {
			t.Errorf("%s: %q in %g s (run.json %+v)", s.Name, s.Reason, s.Seconds, st)
		}
	}
	for _, f := range []string{"windows.parquet", "model.safetensors", "model.onnx"} {
		a, _ := os.Stat(filepath.Join(dir, "runs", "a", f))
		b, _ := os.Stat(filepath.Join(dir, "runs", "b", f))
		if a == nil || b == nil || !os.SameFile(a, b) {
			t.Errorf("%s of run b is not the cached file of run a", f)
		}
	}
	// A new model option: data preparation is a hit, training and what
	// follows a miss that names the option.
	c.RunID = "c"
	c.Train.Epochs = 3
	res, err = Run(ctx, runenv.Test(), realOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "skipped,skipped,skipped,skipped,ran,ran,ran,ran" {
		t.Fatalf("new epochs: %s", got)
	}
	if r := res.Stages[4].Reason; !strings.Contains(r, "options changed (epochs)") {
		t.Errorf("train reason %q", r)
	}
	if r := res.Stages[5].Reason; !strings.Contains(r, "inputs changed (model.safetensors)") {
		t.Errorf("evaluate reason %q", r)
	}
	// A new feature option: features and everything after runs.
	c.RunID = "d"
	c.Features.Stride = 4
	res, err = Run(ctx, runenv.Test(), realOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "skipped,skipped,skipped,ran,ran,ran,ran,ran" {
		t.Fatalf("new stride: %s", got)
	}
	if r := res.Stages[3].Reason; !strings.Contains(r, "options changed (stride)") {
		t.Errorf("features reason %q", r)
	}
	// features.workers does not change the windows: still a hit.
	c.RunID = "e"
	c.Features.Workers = 1
	res, err = Run(ctx, runenv.Test(), realOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	if stageStatus(res)[Features] != "skipped" {
		t.Errorf("features.workers changed the key: %s", res.Stages[3].Reason)
	}
}

func TestRealResumeAfterCancel(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "killed"
	c.Pipeline.Cache = false // resume from the run directory alone
	c.Train.Epochs = 100000  // long enough to be cancelled mid-training
	c.Train.Patience = 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := realOpts(c)
	o.stages = func(c config.Config, d Dirs) ([]*Stage, error) {
		ss, err := Stages(c, d)
		if err != nil {
			return nil, err
		}
		run := ss[4].Run
		ss[4].Run = func(ctx context.Context, env *runenv.Env) (any, error) {
			time.AfterFunc(300*time.Millisecond, cancel) // Ctrl-C during training
			return run(ctx, env)
		}
		return ss, nil
	}
	res, err := Run(ctx, runenv.Test(), o)
	if exitcode.Code(err) != exitcode.Interrupted {
		t.Fatalf("cancelled run: exit %d, %v", exitcode.Code(err), err)
	}
	if res.Status != tracking.StatusKilled || statuses(res) != "ran,ran,ran,ran,killed,not run,not run,not run" {
		t.Fatalf("cancelled run: %s, %s", res.Status, statuses(res))
	}
	run := filepath.Join(dir, "runs", "killed")
	tmps, _ := filepath.Glob(filepath.Join(run, ".*tmp*"))
	if len(tmps) > 0 {
		t.Errorf("partial files left: %v", tmps)
	}
	if _, err := os.Stat(filepath.Join(run, stampDir, Train+".json")); err == nil {
		t.Error("the killed stage is stamped as done")
	}
	rec, _ := tracking.Load(run)
	if rec.Status != tracking.StatusKilled || rec.Deploy == nil || rec.Deploy.Decision != tracking.DeploySkipped {
		t.Errorf("run.json after kill: %s, %+v", rec.Status, rec.Deploy)
	}

	// --resume plans the same run directory from train on.
	r := realOpts(tinyConfig(dir))
	r.Resume = "killed"
	plan, err := Plan(context.Background(), runenv.Test(), r)
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, s := range plan.Stages {
		acts = append(acts, s.Action)
	}
	if got := strings.Join(acts, ","); got != "fresh,fresh,fresh,fresh,run,run,run,run" {
		t.Errorf("resume plan %s", got)
	}
	// A resume uses the run's frozen config; --set changes it (here: train
	// briefly), and config.yaml records the change.
	r.Set = []string{"train.epochs=2"}
	res, err = Run(context.Background(), runenv.Test(), r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != tracking.StatusFinished || statuses(res) != "skipped,skipped,skipped,skipped,ran,ran,ran,ran" || res.Dir != run {
		t.Fatalf("resumed run: %s, %s in %s", res.Status, statuses(res), res.Dir)
	}
	rec, _ = tracking.Load(run)
	if rec.RunID != "killed" || rec.Tags["modax.pipeline.resumed"] != "true" || rec.Deploy.Decision != tracking.DeployDeployed {
		t.Errorf("resumed run.json: %s %v %+v", rec.RunID, rec.Tags, rec.Deploy)
	}
	n := 0
	for _, m := range rec.Metrics {
		if m.Name == "train_loss" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("train_loss series of the resumed run has %d points, want 2", n)
	}
	// Resuming the finished run to redo deploy: train is fresh, and its
	// series is not logged twice.
	r.Force, r.Set = []string{Deploy}, nil
	if res, err := Run(context.Background(), runenv.Test(), r); err != nil || statuses(res) != "skipped,skipped,skipped,skipped,skipped,skipped,skipped,ran" {
		t.Fatalf("resume --force=deploy: %v, %s", err, statuses(res))
	}
	rec, _ = tracking.Load(run)
	n = 0
	for _, m := range rec.Metrics {
		if m.Name == "train_loss" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("after a second resume the train_loss series has %d points, want 2", n)
	}
	if frozen, err := LoadFrozen(filepath.Join(run, ConfigFile), c); err != nil || frozen.Train.Epochs != 2 {
		t.Errorf("config.yaml after a resume with --set: %v, epochs %d", err, frozen.Train.Epochs)
	}
}

// cancelTrainAfter is a progress factory whose "train" bar cancels the run
// at its nth Add (one per batch).
func cancelTrainAfter(n int64, cancel context.CancelFunc) progress.Factory {
	var calls atomic.Int64
	return func(label, _ string, _ int64) progress.Bar {
		if label != Train {
			return progress.None("", "", 0)
		}
		return cancelBar{func() {
			if calls.Add(1) == n {
				cancel()
			}
		}}
	}
}

type cancelBar struct{ add func() }

func (b cancelBar) Add(int64)       { b.add() }
func (b cancelBar) SetTotal(int64)  {}
func (b cancelBar) Describe(string) {}
func (b cancelBar) Finish()         {}

// killTrain runs the pipeline as run id and cancels it (Ctrl-C) in train's
// second epoch.
func killTrain(t *testing.T, c config.Config, id string) {
	t.Helper()
	c.RunID = id
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := runenv.Test()
	env.Progress = cancelTrainAfter(60, cancel)
	res, err := Run(ctx, env, realOpts(c))
	if exitcode.Code(err) != exitcode.Interrupted || statuses(res) != "ran,ran,ran,ran,killed,not run,not run,not run" {
		t.Fatalf("killed run %s: %v, %s", id, err, statuses(res))
	}
	if !strings.Contains(err.Error(), "interrupted in epoch 2") {
		t.Fatalf("killed run %s: %v, want an interruption in epoch 2", id, err)
	}
	// The hint names what continues a pipeline run, never train's
	// --resume CHECKPOINT (which `pipeline run --resume` takes for a run id).
	if want := "(continue with modax-ml pipeline run --resume " + id + ")"; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "--resume "+c.Dir) {
		t.Fatalf("killed run %s: %v, want the hint %q", id, err, want)
	}
}

// TestRealResumeContinuesTraining: a resume of a run killed during train
// continues training from the checkpoint train wrote when interrupted (its
// options and inputs unchanged), and ends with the weights of an
// uninterrupted run; with changed options it starts over, and says why.
func TestRealResumeContinuesTraining(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.Pipeline.Cache = false
	c.Train.Epochs, c.Train.Patience = 4, 0
	c.RunID = "full"
	if _, err := Run(context.Background(), runenv.Test(), realOpts(c)); err != nil {
		t.Fatal(err)
	}

	killTrain(t, c, "cut")
	r := realOpts(tinyConfig(dir))
	r.Resume = "cut"
	plan, err := Plan(context.Background(), runenv.Test(), r)
	if err != nil {
		t.Fatal(err)
	}
	if p := plan.Stages[4]; p.Action != ActionRun || !strings.Contains(p.Reason, "continues the interrupted run from its checkpoint") {
		t.Errorf("resume plan for train: %s, %q", p.Action, p.Reason)
	}
	res, err := Run(context.Background(), runenv.Test(), r)
	if err != nil || statuses(res) != "skipped,skipped,skipped,skipped,ran,ran,ran,ran" {
		t.Fatalf("resumed run: %v, %s", err, statuses(res))
	}
	rec, err := tracking.Load(res.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := rec.Stage(Train); st == nil || !strings.Contains(st.Reason, "continues the interrupted run from its checkpoint (model.safetensors, model.optim.safetensors)") {
		t.Errorf("run.json train stage: %+v", st)
	}
	full, err := model.Load(filepath.Join(dir, "runs", "full", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	cut, err := model.Load(filepath.Join(res.Dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	// It did continue (a run from scratch would end with the same weights).
	var ti struct {
		ResumedFrom string `json:"resumed_from"`
	}
	if err := json.Unmarshal(cut.Info.Train, &ti); err != nil || ti.ResumedFrom != filepath.Join(res.Dir, "model.safetensors") || len(cut.Info.History) != 4 {
		t.Errorf("continued run: resumed from %q (%v), %d epochs of history, want 4", ti.ResumedFrom, err, len(cut.Info.History))
	}
	for i, ta := range full.Params.Tensors {
		if !slices.Equal(ta.Data, cut.Params.Tensors[i].Data) {
			t.Fatalf("tensor %s of the killed and continued run differs from the uninterrupted run's", ta.Name)
		}
	}
	n := 0
	for _, m := range rec.Metrics {
		if m.Name == "train_loss" {
			n++
		}
	}
	if n != 4 {
		t.Errorf("train_loss series of the continued run has %d points, want 4", n)
	}
	if _, err := os.Stat(filepath.Join(res.Dir, stampDir, Train+".interrupted.json")); err == nil {
		t.Error("the spent checkpoint record is left behind")
	}

	// Other options: the checkpoint is not used, and the reason says so.
	killTrain(t, c, "cut2")
	r.Resume, r.Set = "cut2", []string{"train.lr=0.002"}
	res, err = Run(context.Background(), runenv.Test(), r)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ = tracking.Load(res.Dir)
	if st := rec.Stage(Train); st == nil || !strings.Contains(st.Reason, "checkpoint of the interrupted run is not used: its options or inputs differ") {
		t.Errorf("run.json train stage after --set: %+v", st)
	}
}

func TestRealGateMiss(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "gate"
	c.Deploy.MaxMAE = 0.001
	res, err := Run(context.Background(), runenv.Test(), realOpts(c))
	if exitcode.Code(err) != exitcode.Gate {
		t.Fatalf("gate miss: exit %d, %v", exitcode.Code(err), err)
	}
	if !strings.HasPrefix(err.Error(), "pipeline: deploy: ") {
		t.Errorf("error %q", err)
	}
	if res.Status != tracking.StatusFinished || res.Deploy == nil || res.Deploy.Decision != tracking.DeployRejected {
		t.Fatalf("gate miss: status %s, deploy %+v", res.Status, res.Deploy)
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "rul_predictor.onnx")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected model was published: %v", err)
	}
}

func TestRealValidationFailure(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "bad-data"
	c.Collect.Synthetic.MissingRate = 0.2
	c.Validate.FailOn = "warning"
	res, err := Run(context.Background(), runenv.Test(), realOpts(c))
	if exitcode.Code(err) != exitcode.Validation {
		t.Fatalf("validation failure: exit %d, %v", exitcode.Code(err), err)
	}
	if res.Status != tracking.StatusFailed || statuses(res) != "ran,failed,not run,not run,not run,not run,not run,not run" {
		t.Errorf("validation failure: %s %s", res.Status, statuses(res))
	}
	rec, _ := tracking.Load(filepath.Join(dir, "runs", "bad-data"))
	found := false
	for _, a := range rec.Artifacts {
		found = found || a.Name == "validation.json"
	}
	if !found {
		t.Error("the validation report of a failed gate is not attached to the run")
	}
}

// TestRealConcurrentRuns runs two pipelines at once in one working
// directory: they share the cache and the models directory, and both deploy
// (one after the other, on deploy's lock).
func TestRealConcurrentRuns(t *testing.T) {
	dir := t.TempDir()
	errs := make(chan error, 2)
	for _, id := range []string{"one", "two"} {
		c := tinyConfig(dir)
		c.RunID = id
		go func() {
			res, err := Run(context.Background(), runenv.Test(), realOpts(c))
			if err == nil && (res.Deploy == nil || res.Deploy.Decision != tracking.DeployDeployed) {
				err = errors.New(id + ": not deployed")
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	hist, err := os.ReadFile(filepath.Join(dir, "models", "history.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(hist), `"action": "deploy"`); n != 2 {
		t.Errorf("models/history.json records %d deploys, want 2:\n%s", n, hist)
	}
}

func TestRealFromUntilPlan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "prep"
	o := realOpts(c)
	o.Until = Features
	res, err := Run(ctx, runenv.Test(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "ran,ran,ran,ran,not run,not run,not run,not run" {
		t.Errorf("--until features: %s", got)
	}
	if res.Deploy == nil || res.Deploy.Decision != tracking.DeploySkipped || res.Deploy.Reason != "--until features" {
		t.Errorf("deploy decision %+v", res.Deploy)
	}

	// The plan of a full new run: data preparation cached, the rest runs;
	// the keys after train are unknown; nothing is written.
	c.RunID = "planned"
	p, err := Plan(ctx, runenv.Test(), realOpts(c))
	if err != nil {
		t.Fatal(err)
	}
	var acts []string
	for _, s := range p.Stages {
		acts = append(acts, s.Action)
	}
	if got := strings.Join(acts, ","); got != "cached,cached,cached,cached,run,run,run,run" {
		t.Errorf("plan %s", got)
	}
	if p.Stages[4].Key == "" || p.Stages[5].Key != "" || !strings.Contains(p.Stages[5].Reason, "made by an earlier stage that runs") {
		t.Errorf("plan keys and reasons: %+v", p.Stages[4:6])
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", "planned")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the plan created the run directory")
	}

	// --from train: the stages before it come from the cache.
	c.RunID = "from-train"
	o = realOpts(c)
	o.From = Train
	res, err = Run(ctx, runenv.Test(), o)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "skipped,skipped,skipped,skipped,ran,ran,ran,ran" || !strings.HasPrefix(res.Stages[0].Reason, "before --from train; restored from cache: ") {
		t.Errorf("--from train: %s, %q", got, res.Stages[0].Reason)
	}
	// ... and without them the error names the missing stage.
	o = realOpts(tinyConfig(t.TempDir()))
	o.From = Train
	if _, err := Run(ctx, runenv.Test(), o); err == nil || !strings.Contains(err.Error(), "collect is before it") {
		t.Errorf("--from with nothing cached: %v", err)
	}
	for _, bad := range []Options{{From: Train, Until: Label}, {From: "trian"}, {Force: []string{"everything"}}} {
		bad.Config = tinyConfig(dir)
		if _, err := Run(ctx, runenv.Test(), bad); !errors.Is(err, exitcode.ErrUsage) {
			t.Errorf("%+v: %v, want a usage error", bad, err)
		}
	}
}

// TestStagesWiring checks how the config becomes the stage list: outputs in
// the run directory, each stage reading its predecessor's outputs (renamed
// ones too), outside files against the working directory.
func TestStagesWiring(t *testing.T) {
	c := config.Default()
	c.Collect.Source, c.Collect.Failures = "csv:data/readings.csv", "csv:data/failures.csv"
	c.Collect.Out = "r.parquet"
	c.Validate.Reference = "ref/validation.json"
	c.Features.Window = 30
	c.Deploy.ModelsDir = "models"
	ss, err := Stages(c, Dirs{Work: "w", Run: "w/runs/x"})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*Stage{}
	for _, s := range ss {
		byName[s.Name] = s
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	check("collect inputs", byName[Collect].Inputs, []string{"w/data/readings.csv", "w/data/failures.csv"})
	check("collect outputs", byName[Collect].Outputs, []string{"w/runs/x/r.parquet", "w/runs/x/failures.parquet"})
	check("validate inputs", byName[Validate].Inputs, []string{"w/runs/x/r.parquet", "w/runs/x/failures.parquet", "w/ref/validation.json"})
	check("label inputs", byName[Label].Inputs, []string{"w/runs/x/r.parquet", "w/runs/x/failures.parquet"})
	check("train inputs", byName[Train].Inputs, []string{"w/runs/x/windows.parquet"})
	check("train outputs", byName[Train].Outputs, []string{"w/runs/x/model.safetensors", "w/runs/x/model.optim.safetensors"})
	check("deploy inputs", byName[Deploy].Inputs, []string{"w/runs/x/model.safetensors", "w/runs/x/model.onnx", "w/runs/x/metrics.json", "w/runs/x/validation.json"})
	if v := byName[Validate].Options.(validate.Options); v.Window != 30 {
		t.Errorf("validate checks window %d, features uses 30", v.Window)
	}
	if byName[Deploy].NoCache == "" || !strings.Contains(byName[Deploy].NoCache, "w/models") {
		t.Errorf("deploy NoCache %q", byName[Deploy].NoCache)
	}
	// Keys do not depend on the run directory, and hide the DSN.
	c.DB.DSN = "postgres://u:secret@h/db"
	a, _ := Stages(c, Dirs{Work: "w", Run: "w/runs/x"})
	b, _ := Stages(c, Dirs{Work: "w", Run: "w/runs/y"})
	for i := range a {
		ka, _ := KeyOptions(a[i].Options, "w/runs/x")
		kb, _ := KeyOptions(b[i].Options, "w/runs/y")
		if string(ka) != string(kb) {
			t.Errorf("%s: key options depend on the run directory:\n%s\n%s", a[i].Name, ka, kb)
		}
		if strings.Contains(string(ka), "secret") {
			t.Errorf("%s: key options hold the DSN: %s", a[i].Name, ka)
		}
	}
}

// TestRealMLflowMirror runs the pipeline with tracking.uri set to the MLflow
// test server (internal/tracking/mlflowtest, which enforces MLflow's REST
// API): the run, its per-epoch metrics, artifacts and the deployed model's
// registered version with the champion alias arrive there.
func TestRealMLflowMirror(t *testing.T) {
	srv := mlflowtest.New(mlflowtest.WithBearerToken("tok"))
	defer srv.Close()
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "mirrored"
	c.Tracking.URI = srv.URL
	o := realOpts(c)
	o.Getenv = func(k string) string {
		if k == tracking.EnvTrackingToken {
			return "tok"
		}
		return ""
	}
	if _, err := Run(context.Background(), runenv.Test(), o); err != nil {
		t.Fatal(err)
	}
	rec, err := tracking.Load(filepath.Join(dir, "runs", "mirrored"))
	if err != nil {
		t.Fatal(err)
	}
	if u := rec.Unsynced(); len(u) > 0 || rec.MLflow == nil {
		t.Fatalf("not mirrored: %v", u)
	}
	r := srv.Run(rec.MLflow.RunID)
	if r == nil || r.Status != "FINISHED" || r.Params["train.epochs"] != "2" || len(r.Metrics["val_rmse"]) != 2 || r.Tags["mlflow.runName"] != "mirrored" {
		t.Fatalf("MLflow run %+v", r)
	}
	if _, ok := r.Metrics["test_mae"]; !ok {
		t.Error("final metrics not mirrored")
	}
	paths := strings.Join(srv.ArtifactPaths(), " ")
	for _, want := range []string{"model/model.onnx", "model/MLmodel", "model/python_env.yaml", "model/model.safetensors", "report/report.html", "validation.json", "config.yaml"} {
		if !strings.Contains(paths, want) {
			t.Errorf("artifact %s not uploaded (have %s)", want, paths)
		}
	}
	m := srv.Model(c.Tracking.RegisteredModel)
	if m == nil || len(m.Versions) != 1 || m.Aliases[c.Tracking.Alias] != m.Versions[0].Version || m.Versions[0].RunID != rec.MLflow.RunID {
		t.Errorf("registered model %+v", m)
	}
}
