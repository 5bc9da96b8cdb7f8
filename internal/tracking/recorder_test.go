package tracking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking/mlflowtest"
)

// fakeClock advances one second per reading.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// testEnv returns an Env with a fake clock whose logs go to buf.
func testEnv(runID string, buf *bytes.Buffer) *runenv.Env {
	env := runenv.Test()
	env.RunID = runID
	env.ToolVersion = "v0.1.0-test"
	env.Now = (&fakeClock{t: t0}).Now
	if buf != nil {
		env.Log = slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return env
}

// noBackoff makes every client created during the test retry without sleeping.
func noBackoff(t *testing.T) {
	t.Helper()
	clientHook = func(c *Client) { c.sleep = func(ctx context.Context, _ time.Duration) error { return ctx.Err() } }
	t.Cleanup(func() { clientHook = nil })
}

func trackingTo(uri string) Config {
	c := DefaultConfig()
	c.URI = uri
	c.MaxRetries = 2
	c.Timeout = duration.Duration(5 * time.Second)
	return c
}

func noEnv(string) string { return "" }

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// story runs a small pipeline through the recorder: params, two stages (one
// skipped), three epochs of metrics, final metrics, artifacts, a deploy.
func story(t *testing.T, ctx context.Context, r *Recorder, afterEpoch func(int)) {
	t.Helper()
	dir := r.Dir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.LogParams(ctx, Params(map[string]any{"train.epochs": 3, "train.lr": 0.001, "features.window": 30, "db.dsn": "postgres://me:xxxxx@db/modax", "pg.sensors": []any{"a", "b"}})))
	must(r.SetTags(ctx, map[string]string{"purpose": "test"}))
	readings := writeFile(t, filepath.Join(dir, "readings.parquet"), "readings")
	must(r.StageSkipped(ctx, "collect", "restored from cache: inputs, options and tool version unchanged", 250*time.Millisecond, nil, []File{{Path: readings}}))
	must(r.StageStarted(ctx, "train", "inputs changed", []File{{Path: readings}}))
	for epoch := 1; epoch <= 3; epoch++ {
		must(r.LogStep(ctx, int64(epoch), time.Time{}, map[string]float64{"train_loss": 1 / float64(epoch), "val_mae": 10 / float64(epoch)}))
		if afterEpoch != nil {
			afterEpoch(epoch)
		}
	}
	model := writeFile(t, filepath.Join(dir, "model.onnx"), "onnx bytes")
	must(r.StageFinished(ctx, "train", []File{{Path: model}}, nil))
	must(r.SetFinalMetrics(ctx, map[string]float64{"test_mae": 7.25, "test_rmse": 9.5}))
	must(r.LogArtifact(ctx, "report.md", writeFile(t, filepath.Join(dir, "report.md"), "# report")))
	must(r.LogArtifact(ctx, "model/rul_predictor.onnx", model))
	must(r.SetDeploy(ctx, Deploy{Decision: DeployDeployed, Version: "v3", Path: "models/rul_predictor.onnx", Artifact: "model", Metrics: Floats(map[string]float64{"test_mae": 7.25})}))
}

func TestRecorderLocalOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "r1")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r1", nil), Options{Dir: dir, Seed: 7, Command: "modax-ml pipeline run", RepoDir: t.TempDir(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	// Readable back at once, status running.
	if rec, err := Load(dir); err != nil || rec.Status != StatusRunning {
		t.Fatalf("after StartRun: %v, %v", rec, err)
	}
	story(t, ctx, r, nil)
	if err := r.EndRun(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusFinished || rec.EndTime == nil || rec.Seed != 7 || rec.ToolVersion != "v0.1.0-test" || rec.Git != nil || rec.MLflow != nil {
		t.Errorf("record: %+v", rec)
	}
	if !rec.StartTime.Equal(t0.Add(time.Second)) {
		t.Errorf("start time %s", rec.StartTime)
	}
	if len(rec.Stages) != 2 || rec.Stages[0].Status != StageSkipped || rec.Stages[1].Status != StageRan {
		t.Fatalf("stages: %+v", rec.Stages)
	}
	if c := rec.Stage("collect"); c.DurationSeconds != 0.25 || c.StartTime.Add(250*time.Millisecond).After(rec.Stages[1].StartTime) {
		t.Errorf("skipped stage: %.3f s from %s (restore time is its duration)", c.DurationSeconds, c.StartTime)
	}
	train := rec.Stage("train")
	if train.Duration() <= 0 || len(train.Inputs) != 1 || train.Inputs[0].SHA256 == "" || train.Outputs[0].Size != int64(len("onnx bytes")) {
		t.Errorf("train stage: %+v", train)
	}
	if len(rec.Metrics) != 6 || rec.Metrics[0].Name != "train_loss" || rec.Metrics[5].Step != 3 || rec.Metrics[3].Value != 5 {
		t.Errorf("metrics: %+v", rec.Metrics)
	}
	if rec.Params["train.lr"] != "0.001" || rec.Params["pg.sensors"] != `["a","b"]` || rec.Params["train.epochs"] != "3" {
		t.Errorf("params: %v", rec.Params)
	}
	if rec.Artifacts[1].Path != "model.onnx" || rec.Deploy.Decision != DeployDeployed || rec.FinalMetrics["test_mae"] != 7.25 {
		t.Errorf("artifacts %+v deploy %+v", rec.Artifacts, rec.Deploy)
	}
	if rec.TrackingState() != "off" || len(rec.Unsynced()) != 0 {
		t.Errorf("tracking state %s %v", rec.TrackingState(), rec.Unsynced())
	}
	// A second StartRun on the same dir is refused unless resuming.
	if _, err := StartRun(ctx, testEnv("r1", nil), Options{Dir: dir, Getenv: noEnv}); err == nil {
		t.Error("StartRun over an existing record succeeded")
	}
}

func TestRecorderMirrorsToMLflow(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New(mlflowtest.WithBearerToken("t0k"))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "r2")
	ctx := context.Background()
	env := map[string]string{EnvTrackingToken: "t0k", "USER": "ann"}
	r, err := StartRun(ctx, testEnv("r2", nil), Options{Dir: dir, Name: "nightly", Seed: 1, Command: "modax-ml pipeline run",
		Tracking: trackingTo(srv.URL), Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	story(t, ctx, r, nil)
	if err := r.EndRun(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if u := rec.Unsynced(); len(u) != 0 || rec.TrackingState() != "synced" || rec.MLflow.LastError != "" {
		t.Fatalf("not fully mirrored: %v (%s)", u, rec.MLflow.LastError)
	}
	exp := srv.ExperimentByName(DefaultExperiment)
	if exp == nil || rec.MLflow.ExperimentID != exp.ID {
		t.Fatalf("experiment %+v, record %+v", exp, rec.MLflow)
	}
	run := srv.Run(rec.MLflow.RunID)
	if run == nil {
		t.Fatal("no MLflow run")
	}
	if run.Status != "FINISHED" || run.EndTime != rec.EndTime.UnixMilli() || run.StartTime != rec.StartTime.UnixMilli() || run.Name != "nightly" {
		t.Errorf("run info: %+v", run)
	}
	for k, want := range map[string]string{"mlflow.runName": "nightly", "mlflow.source.name": "modax-ml pipeline run", "mlflow.source.type": "LOCAL", "modax.run_id": "r2", "purpose": "test"} {
		if run.Tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, run.Tags[k], want)
		}
	}
	if run.Tags["mlflow.user"] == "" {
		t.Error("no mlflow.user tag")
	}
	if rec.Git != nil && run.Tags["mlflow.source.git.commit"] != rec.Git.Commit {
		t.Errorf("git commit tag %q, record %+v", run.Tags["mlflow.source.git.commit"], rec.Git)
	}
	if run.Params["train.lr"] != "0.001" || len(run.Params) != 5 {
		t.Errorf("params: %v", run.Params)
	}
	loss := run.Metrics["train_loss"]
	if len(loss) != 3 || loss[2].Step != 3 || loss[2].Value != 1.0/3 || loss[0].Timestamp != rec.Metrics[0].Timestamp.UnixMilli() {
		t.Errorf("train_loss history: %+v", loss)
	}
	if got := run.Metrics["test_mae"]; len(got) != 1 || got[0].Value != 7.25 {
		t.Errorf("test_mae: %+v", got)
	}
	prefix := exp.ID + "/" + run.ID + "/artifacts/"
	if b, ok := srv.Artifact(prefix + "model/rul_predictor.onnx"); !ok || string(b) != "onnx bytes" {
		t.Errorf("model artifact: %q %v (have %v)", b, ok, srv.ArtifactPaths())
	}
	if _, ok := srv.Artifact(prefix + "report.md"); !ok {
		t.Errorf("report artifact missing: %v", srv.ArtifactPaths())
	}
	m := srv.Model("rul_predictor")
	if m == nil || len(m.Versions) != 1 || m.Aliases["champion"] != "1" || m.Versions[0].RunID != run.ID ||
		m.Versions[0].Source != run.ArtifactURI+"/model" || m.Versions[0].Tags["modax.model_version"] != "v3" {
		t.Errorf("registered model: %+v", m)
	}
	if rec.MLflow.ModelVersion != "1" || !rec.MLflow.AliasSet {
		t.Errorf("mirror state: %+v", rec.MLflow)
	}
	// Nothing left: a sync sends no request at all.
	srv.ResetRequests()
	res, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(srv.URL), Getenv: func(k string) string { return env[k] }})
	if err != nil || len(srv.Requests()) != 0 || res.Sent != (SyncCounts{}) {
		t.Errorf("idempotent sync: %v, %d requests, sent %+v", err, len(srv.Requests()), res.Sent)
	}
}

// A permanent outage: the run finishes locally with one warning, without
// retrying on every call; tracking sync replays it once the server is back.
func TestOutageThenSync(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	srv.SetDown(true)
	var logs bytes.Buffer
	dir := filepath.Join(t.TempDir(), "r3")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r3", &logs), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatalf("StartRun failed during an outage: %v", err)
	}
	story(t, ctx, r, nil)
	if err := r.EndRun(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if !r.MirrorDown() {
		t.Error("mirror not marked down")
	}
	if n := strings.Count(logs.String(), "MLflow mirror failed"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "modax-ml tracking sync "+dir) {
		t.Errorf("warning does not say how to replay:\n%s", logs.String())
	}
	// Only the first call tried (1 + MaxRetries attempts); later calls did not.
	if d := srv.Dropped(); d != 3 {
		t.Errorf("%d connection attempts during the outage, want 3", d)
	}
	rec, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != StatusFinished || rec.TrackingState() != "pending" || rec.MLflow.LastError == "" || rec.Unsynced()[0] != "run" {
		t.Fatalf("record after outage: status %s, tracking %s, unsynced %v, error %q", rec.Status, rec.TrackingState(), rec.Unsynced(), rec.MLflow.LastError)
	}

	// Still down: sync fails with a tracking error (exit 4) and changes nothing.
	if _, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(srv.URL), Getenv: noEnv}); !errors.Is(err, exitcode.ErrTracking) {
		t.Fatalf("sync while down: %v, want ErrTracking", err)
	}
	srv.SetDown(false)
	res, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := SyncCounts{Runs: 1, Params: 5, Tags: 1, Metrics: 8, Artifacts: 2, ModelVersion: 1, StatusUpdate: 1}
	if res.Sent != want || len(res.Pending) != 0 {
		t.Errorf("sync sent %+v pending %v, want %+v", res.Sent, res.Pending, want)
	}
	run := srv.Run(res.MLflowRunID)
	if run == nil || run.Status != "FINISHED" || len(run.Metrics["val_mae"]) != 3 || srv.Model("rul_predictor").Aliases["champion"] != "1" {
		t.Fatalf("replayed run: %+v", run)
	}
	// Idempotent: again, nothing is sent; the run is not duplicated.
	srv.ResetRequests()
	res, err = Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil || len(srv.Requests()) != 0 || len(srv.Runs()) != 1 || res.MLflowRunID != run.ID {
		t.Errorf("second sync: %v, %d requests, %d runs", err, len(srv.Requests()), len(srv.Runs()))
	}
}

// The server goes away after the first epoch: the first epoch is mirrored
// live; sync later sends exactly the rest (no duplicated points).
func TestOutageMidRun(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "r4")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r4", nil), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	story(t, ctx, r, func(epoch int) {
		if epoch == 1 {
			srv.SetDown(true)
		}
	})
	if err := r.EndRun(ctx, errors.New("evaluate: boom")); err != nil {
		t.Fatal(err)
	}
	rec := r.Record()
	if rec.Status != StatusFailed || rec.Error != "evaluate: boom" || rec.MLflow.MetricsSent != 2 {
		t.Fatalf("record: status %s error %q metrics sent %d", rec.Status, rec.Error, rec.MLflow.MetricsSent)
	}
	srv.SetDown(false)
	if _, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(srv.URL), Getenv: noEnv}); err != nil {
		t.Fatal(err)
	}
	run := srv.Run(rec.MLflow.RunID)
	for _, k := range []string{"train_loss", "val_mae"} {
		if pts := run.Metrics[k]; len(pts) != 3 || pts[0].Step != 1 || pts[2].Step != 3 {
			t.Errorf("%s: %+v, want steps 1..3 once each", k, pts)
		}
	}
	if run.Status != "FAILED" || len(srv.Runs()) != 1 {
		t.Errorf("status %s, %d runs", run.Status, len(srv.Runs()))
	}
}

func TestEndRunStatuses(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	for _, tc := range []struct {
		name       string
		err        error
		status     Status
		stage      StageStatus
		mlflowStat string
	}{
		{"gate", fmt.Errorf("deploy: %w", exitcode.ErrGate), StatusFinished, StageFailed, "FINISHED"},
		{"killed", fmt.Errorf("train: %w", context.Canceled), StatusKilled, StageKilled, "KILLED"},
		{"failed", errors.New("disk full"), StatusFailed, StageFailed, "FAILED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "r")
			ctx, cancel := context.WithCancel(context.Background())
			r, err := StartRun(ctx, testEnv("r-"+tc.name, nil), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.StageStarted(ctx, "train", "", nil); err != nil {
				t.Fatal(err)
			}
			cancel() // EndRun must still reach the server with a cancelled context
			if err := r.EndRun(ctx, tc.err); err != nil {
				t.Fatal(err)
			}
			rec, _ := Load(dir)
			if rec.Status != tc.status || rec.Stages[0].Status != tc.stage {
				t.Errorf("status %s stage %s, want %s %s", rec.Status, rec.Stages[0].Status, tc.status, tc.stage)
			}
			if got := srv.Run(rec.MLflow.RunID).Status; got != tc.mlflowStat {
				t.Errorf("MLflow status %s, want %s", got, tc.mlflowStat)
			}
		})
	}
}

func TestResumeReusesMLflowRun(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "r5")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r5", nil), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.StageStarted(ctx, "train", "", nil)
	_ = r.EndRun(ctx, context.Canceled)
	r2, err := StartRun(ctx, testEnv("r5", nil), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	runID := r2.Record().MLflow.RunID
	if got := srv.Run(runID).Status; got != "RUNNING" {
		t.Errorf("resumed MLflow status %s, want RUNNING", got)
	}
	_ = r2.StageStarted(ctx, "train", "resumed", nil)
	_ = r2.StageFinished(ctx, "train", nil, nil)
	_ = r2.EndRun(ctx, nil)
	rec := r2.Record()
	if len(srv.Runs()) != 1 || srv.Run(runID).Status != "FINISHED" || len(rec.Stages) != 1 || rec.Stages[0].Status != StageRan {
		t.Errorf("after resume: %d runs, stages %+v", len(srv.Runs()), rec.Stages)
	}
	if _, err := StartRun(ctx, testEnv("other", nil), Options{Dir: dir, Getenv: noEnv, Resume: true}); err == nil {
		t.Error("resumed a record of another run id")
	}
}

func TestSyncToAnotherServerAndDeletedRun(t *testing.T) {
	noBackoff(t)
	a, b := mlflowtest.New(), mlflowtest.New()
	defer a.Close()
	defer b.Close()
	dir := filepath.Join(t.TempDir(), "r6")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r6", nil), Options{Dir: dir, Tracking: trackingTo(a.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	story(t, ctx, r, nil)
	_ = r.EndRun(ctx, nil)
	// Another server: everything again there.
	res, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(b.URL), Getenv: noEnv})
	if err != nil || res.Sent.Runs != 1 || res.Sent.Metrics != 8 || len(b.Runs()) != 1 {
		t.Fatalf("sync to b: %v %+v", err, res)
	}
	// The run vanished from b: the next sync notices and recreates it.
	b.DeleteRun(res.MLflowRunID)
	rec, _ := Load(dir)
	rec.Tags["late"] = "tag" // something to send
	if err := rec.Save(dir); err != nil {
		t.Fatal(err)
	}
	res2, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(b.URL), Getenv: noEnv})
	if err != nil || res2.MLflowRunID == res.MLflowRunID || b.Run(res2.MLflowRunID).Tags["late"] != "tag" {
		t.Fatalf("sync after the run vanished: %v %+v", err, res2)
	}
	// A second registered version exists now on b; a's state is untouched.
	if len(b.Model("rul_predictor").Versions) != 2 || len(a.Runs()) != 1 {
		t.Errorf("b versions %d, a runs %d", len(b.Model("rul_predictor").Versions), len(a.Runs()))
	}
	// Back to a: its state was kept, so only the new tag goes there.
	a.ResetRequests()
	res3, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo(a.URL), Getenv: noEnv})
	if err != nil || res3.Sent != (SyncCounts{Tags: 2}) || len(a.Runs()) != 1 || a.Runs()[0].Tags["late"] != "tag" {
		t.Errorf("sync back to a: %v, sent %+v, %d runs", err, res3.Sent, len(a.Runs()))
	}
	rec, _ = Load(dir)
	if rec.MLflow.TrackingURI != a.URL || len(rec.MLflowPrevious) != 1 || rec.MLflowPrevious[0].RunID != res2.MLflowRunID {
		t.Errorf("states: current %+v previous %+v", rec.MLflow, rec.MLflowPrevious)
	}
}

func TestSyncRefusals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r7")
	ctx := context.Background()
	if _, err := StartRun(ctx, testEnv("r7", nil), Options{Dir: dir, Getenv: noEnv}); err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(ctx, nil, dir, SyncOptions{Tracking: DefaultConfig(), Getenv: noEnv}); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("sync without a server: %v, want a usage error", err)
	}
	if _, err := Sync(ctx, nil, dir, SyncOptions{Tracking: trackingTo("http://127.0.0.1:9"), Getenv: noEnv}); !errors.Is(err, exitcode.ErrUsage) || !strings.Contains(err.Error(), "still marked running") {
		t.Errorf("sync of a running record: %v", err)
	}
}

func TestEnvFileStoreFallsBackToLocal(t *testing.T) {
	var logs bytes.Buffer
	dir := filepath.Join(t.TempDir(), "r8")
	env := map[string]string{EnvTrackingURI: "file:///tmp/mlruns"}
	r, err := StartRun(context.Background(), testEnv("r8", &logs), Options{Dir: dir, Tracking: DefaultConfig(), Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if r.Record().MLflow != nil || !strings.Contains(logs.String(), "ignoring MLFLOW_TRACKING_URI") {
		t.Errorf("mlflow %+v, logs %s", r.Record().MLflow, logs.String())
	}
	cfg := DefaultConfig()
	cfg.URI = "file:///tmp/mlruns"
	if _, err := StartRun(context.Background(), testEnv("r9", nil), Options{Dir: filepath.Join(t.TempDir(), "r9"), Tracking: cfg, Getenv: noEnv}); !errors.Is(err, exitcode.ErrUsage) {
		t.Errorf("file URI in config: %v, want a usage error", err)
	}
}

func TestDeletedExperimentIsReported(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	srv.AddDeletedExperiment(DefaultExperiment)
	var logs bytes.Buffer
	dir := filepath.Join(t.TempDir(), "r10")
	r, err := StartRun(context.Background(), testEnv("r10", &logs), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if rec := r.Record(); !strings.Contains(rec.MLflow.LastError, "is deleted") || !r.MirrorDown() {
		t.Errorf("last error %q", rec.MLflow.LastError)
	}
}

// A server refusing one step (an artifact store it cannot proxy) does not
// stop the others: params, metrics and the status still arrive.
func TestRefusedStepDoesNotStopOthers(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "r11")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r11", nil), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	// Pretend the server handed out an S3 artifact URI (no proxy).
	r.mu.Lock()
	r.rec.MLflow.ArtifactURI = "s3://bucket/1/x/artifacts"
	r.mu.Unlock()
	story(t, ctx, r, nil)
	_ = r.EndRun(ctx, nil)
	rec := r.Record()
	run := srv.Run(rec.MLflow.RunID)
	if run.Status != "FINISHED" || len(run.Metrics["val_mae"]) != 3 || !strings.Contains(rec.MLflow.LastError, "artifact") {
		t.Errorf("status %s, %d val_mae, error %q", run.Status, len(run.Metrics["val_mae"]), rec.MLflow.LastError)
	}
	if u := rec.Unsynced(); len(u) != 2 || u[0] != "artifacts 2" || u[1] != "model version" {
		t.Errorf("unsynced %v", u)
	}
}

func TestFloatJSON(t *testing.T) {
	a, b := 0.1, 0.2
	for _, v := range []float64{a + b, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 1e21, 5e-324} {
		js, err := Float(v).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Float
		if err := back.UnmarshalJSON(js); err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		if math.Float64bits(float64(back)) != math.Float64bits(v) && !(math.IsNaN(v) && math.IsNaN(float64(back))) {
			t.Errorf("%v -> %s -> %v", v, js, back)
		}
	}
	if js, _ := Float(a + b).MarshalJSON(); string(js) != "0.30000000000000004" {
		t.Errorf("0.1+0.2 = %s", js)
	}
}

func TestRecorderConcurrentUse(t *testing.T) {
	noBackoff(t)
	srv := mlflowtest.New()
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "r12")
	ctx := context.Background()
	r, err := StartRun(ctx, testEnv("r12", nil), Options{Dir: dir, Tracking: trackingTo(srv.URL), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				if err := r.LogStep(ctx, int64(g*10+i), time.Time{}, map[string]float64{fmt.Sprintf("m%d", g): float64(i)}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	_ = r.EndRun(ctx, nil)
	rec, err := Load(dir)
	if err != nil || len(rec.Metrics) != 40 || rec.MLflow.MetricsSent != 40 {
		t.Fatalf("record: %v, %d metrics, %d sent", err, len(rec.Metrics), rec.MLflow.MetricsSent)
	}
	run := srv.Run(rec.MLflow.RunID)
	for g := range 4 {
		if pts := run.Metrics[fmt.Sprintf("m%d", g)]; len(pts) != 10 {
			t.Errorf("m%d: %d points on the server", g, len(pts))
		}
	}
}
