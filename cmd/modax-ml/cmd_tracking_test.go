package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/internal/tracking/mlflowtest"
)

// recordRun writes a finished run under dir/runs/<id> through the Recorder,
// with tracking pointed at uri (an unreachable server records it locally).
func recordRun(t *testing.T, dir, id, uri string) string {
	t.Helper()
	ctx := context.Background()
	env := runenv.Test()
	env.RunID = id
	runDir := filepath.Join(dir, "runs", id)
	cfg := tracking.DefaultConfig()
	cfg.URI, cfg.MaxRetries, cfg.Timeout = uri, 0, duration.Duration(2*time.Second)
	r, err := tracking.StartRun(ctx, env, tracking.Options{Dir: runDir, Seed: 42, Command: "modax-ml pipeline run", RepoDir: dir, Tracking: cfg,
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(r.LogParams(ctx, map[string]string{"train.epochs": "2", "train.lr": "0.001"}))
	must(r.StageStarted(ctx, "train", "no cached outputs", nil))
	for epoch := int64(1); epoch <= 2; epoch++ {
		must(r.LogStep(ctx, epoch, time.Time{}, map[string]float64{"train_loss": 1 / float64(epoch)}))
	}
	model := filepath.Join(runDir, "model.onnx")
	if err := os.WriteFile(model, []byte("onnx"), 0o644); err != nil {
		t.Fatal(err)
	}
	must(r.StageFinished(ctx, "train", []tracking.File{{Path: model}}, nil))
	must(r.SetFinalMetrics(ctx, map[string]float64{"test_mae": 7.5}))
	must(r.LogArtifact(ctx, "model/rul_predictor.onnx", model))
	must(r.SetDeploy(ctx, tracking.Deploy{Decision: tracking.DeployDeployed, Version: "v1", Artifact: "model"}))
	must(r.EndRun(ctx, nil))
	return runDir
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTrackingSyncCommand(t *testing.T) {
	srv := mlflowtest.New(mlflowtest.WithBasicAuth("ann", "pw"))
	defer srv.Close()
	dir := t.TempDir()
	// Recorded while the server was unreachable (a closed port).
	runDir := recordRun(t, dir, "20250301T120000-abcd", "http://127.0.0.1:1")

	code, out, _ := runCLI(t, "-C", dir, "runs", "list")
	if code != 0 || !strings.Contains(out, "20250301T120000-abcd") || !strings.Contains(out, "pending") || !strings.Contains(out, "1 ran") {
		t.Fatalf("runs list (%d):\n%s", code, out)
	}
	code, out, _ = runCLI(t, "-C", dir, "runs", "show", "20250301")
	if code != 0 || !strings.Contains(out, "not mirrored: run") || !strings.Contains(out, "tracking sync") || !strings.Contains(out, "train_loss") {
		t.Fatalf("runs show (%d):\n%s", code, out)
	}
	t.Logf("runs show:\n%s", out)

	t.Setenv("MLFLOW_TRACKING_USERNAME", "ann")
	t.Setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
	code, _, errOut := runCLI(t, "-C", dir, "--log-format", "text", "tracking", "sync", "runs/20250301T120000-abcd", "--tracking-uri", srv.URL)
	if code != 4 || !strings.Contains(errOut, "401") {
		t.Fatalf("sync with a wrong password: exit %d, want 4\n%s", code, errOut)
	}
	t.Setenv("MLFLOW_TRACKING_PASSWORD", "pw")
	t.Setenv("MLFLOW_TRACKING_URI", srv.URL)
	code, out, errOut = runCLI(t, "-C", dir, "tracking", "sync", "20250301T120000-abcd", "--experiment", "rul")
	if code != 0 || !strings.Contains(out, "synced to MLflow run") || !strings.Contains(out, "registered model version 1") {
		t.Fatalf("sync (%d):\n%s\n%s", code, out, errOut)
	}
	exp := srv.ExperimentByName("rul")
	runs := srv.Runs()
	if exp == nil || len(runs) != 1 || runs[0].ExperimentID != exp.ID || len(runs[0].Metrics["train_loss"]) != 2 || runs[0].Status != "FINISHED" {
		t.Fatalf("server state: %+v %+v", exp, runs)
	}
	// Again: up to date, no request.
	srv.ResetRequests()
	code, out, _ = runCLI(t, "-C", dir, "--output", "json", "tracking", "sync", runDir[len(dir)+1:], "--experiment", "rul")
	var res tracking.SyncResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Sent != (tracking.SyncCounts{}) || len(srv.Requests()) != 0 {
		t.Fatalf("second sync (%d): %s, %d requests", code, out, len(srv.Requests()))
	}
	code, out, _ = runCLI(t, "-C", dir, "runs", "list", "--output", "json")
	var sums []tracking.Summary
	if code != 0 || json.Unmarshal([]byte(out), &sums) != nil || len(sums) != 1 || sums[0].Tracking != "synced" || sums[0].MLflowRunID != runs[0].ID {
		t.Fatalf("runs list json (%d): %s", code, out)
	}
}
