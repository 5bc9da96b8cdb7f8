package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/modax/modax-ml/internal/fixture"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/internal/tracking/mlflowtest"
)

// writeCandidate writes a deploy candidate (checkpoint vSEED, its ONNX
// export and metrics.json) into dir.
func writeCandidate(t *testing.T, dir string, seed uint64, mae float64) {
	t.Helper()
	ck := fixture.Checkpoint(model.Arch{Type: model.TypeLSTM, InputSize: 3, Hidden: 8, Layers: 1, FC: 4}, 10, seed)
	ck.Info.ModelVersion = fmt.Sprintf("v%d", seed)
	if _, err := fixture.WriteAll(context.Background(), dir, ck, 6, fixture.Metrics{N: 6, MAE: mae, RMSE: mae * 1.3, Score: 10 * mae}); err != nil {
		t.Fatal(err)
	}
}

// servedMeta reads the served model_metadata.json.
func servedMeta(t *testing.T, dir string) (version, deployRun string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "models", "model_metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Version   string `json:"model_version"`
		DeployRun string `json:"deploy_run_id"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	return md.Version, md.DeployRun
}

// A standalone deploy with tracking configured registers the served model in
// MLflow (the test server enforces the REST API) and moves the champion
// alias; a rollback moves it back; an outage after the local switch exits 4,
// keeps the release, and tracking sync finishes the registration.
func TestDeployRegistersInMLflow(t *testing.T) {
	srv := mlflowtest.New(mlflowtest.WithBearerToken("tok"))
	defer srv.Close()
	dir := t.TempDir()
	writeCandidate(t, dir, 1, 7)
	writeCandidate(t, filepath.Join(dir, "cand2"), 2, 6)
	t.Setenv("MLFLOW_TRACKING_URI", srv.URL)
	t.Setenv("MLFLOW_TRACKING_TOKEN", "tok")
	t.Setenv("MODAX_TRACKING_MAX_RETRIES", "0")
	cand2 := []string{"--model", "cand2/model.safetensors", "--onnx", "cand2/model.onnx", "--metrics", "cand2/metrics.json"}

	// alias checks the registered versions and what champion points at: a
	// version registered from uploaded artifacts of a run holding the local
	// version's files.
	alias := func(versions int, local string) {
		t.Helper()
		m := srv.Model("rul_predictor")
		if m == nil || len(m.Versions) != versions {
			t.Fatalf("registered model %+v, want %d versions", m, versions)
		}
		v := m.Versions[versions-1]
		if m.Aliases["champion"] != v.Version || v.Tags["modax.model_version"] != local {
			t.Fatalf("champion -> %q, last version %+v, want local %s", m.Aliases["champion"], v, local)
		}
		run := srv.Run(v.RunID)
		if run == nil || v.Source != run.ArtifactURI+"/model" || run.Status != "FINISHED" {
			t.Fatalf("version %s: source %s, run %+v", v.Version, v.Source, run)
		}
		prefix := strings.TrimPrefix(v.Source, "mlflow-artifacts:/")
		// MLmodel and its environment files make the registered source an
		// MLflow model (models:/rul_predictor@champion).
		for _, f := range []string{"model.onnx", "model.safetensors", "metrics.json", "model_metadata.json", "MLmodel", "conda.yaml", "python_env.yaml", "requirements.txt"} {
			got, ok := srv.Artifact(prefix + "/" + f)
			want, err := os.ReadFile(filepath.Join(dir, "models", "versions", local, f))
			if !ok || err != nil || string(got) != string(want) {
				t.Fatalf("artifact %s/%s: uploaded %v, differs from the version's file", prefix, f, ok)
			}
		}
	}

	code, out, errOut := runCLI(t, "-C", dir, "deploy")
	if code != 0 || !strings.Contains(out, "deployed v1") || !strings.Contains(out, "registered in MLflow") {
		t.Fatalf("deploy (%d):\n%s\n%s", code, out, errOut)
	}
	alias(1, "v1")
	// The run record is local too, and the metadata names it.
	_, runID := servedMeta(t, dir)
	rec, err := tracking.Load(filepath.Join(dir, "runs", runID))
	if err != nil || !strings.HasPrefix(runID, "deploy-") || rec.Deploy == nil || rec.Deploy.Version != "v1" || rec.MLflow.ModelVersion != "1" {
		t.Fatalf("run record %s: %v %+v", runID, err, rec)
	}
	if float64(rec.FinalMetrics["test_mae"]) != 7 || srv.Run(rec.MLflow.RunID).Params["deploy.action"] != "deploy" {
		t.Errorf("run %s: final metrics %v", runID, rec.FinalMetrics)
	}

	code, out, errOut = runCLI(t, append([]string{"-C", dir, "deploy"}, cand2...)...)
	if code != 0 || !strings.Contains(out, "deployed v2 (previous: v1)") {
		t.Fatalf("deploy v2 (%d):\n%s\n%s", code, out, errOut)
	}
	alias(2, "v2")
	if code, out, errOut = runCLI(t, "-C", dir, "deploy", "rollback"); code != 0 {
		t.Fatalf("rollback (%d):\n%s\n%s", code, out, errOut)
	}
	alias(3, "v1")
	// Deploying the served version changes nothing: no new registration.
	if code, out, errOut = runCLI(t, "-C", dir, "deploy"); code != 0 || strings.Contains(out, "registered") {
		t.Fatalf("redeploy of the served v1 (%d):\n%s\n%s", code, out, errOut)
	}
	alias(3, "v1")

	// MLflow down after the local switch: exit 4, v2 is served anyway.
	srv.SetDown(true)
	code, out, errOut = runCLI(t, append([]string{"-C", dir, "deploy"}, cand2...)...)
	if code != 4 || !strings.Contains(errOut, "tracking sync") || !strings.Contains(out, "deployed v2") {
		t.Fatalf("deploy with MLflow down: exit %d, want 4\n%s\n%s", code, out, errOut)
	}
	if served, _ := servedMeta(t, dir); served != "v2" {
		t.Fatalf("served %s after the registry failed, want v2 (the local release stands)", served)
	}
	m := regexp.MustCompile(`tracking sync (\S+/runs/deploy-[0-9T]+-[0-9a-f]+)`).FindStringSubmatch(errOut)
	if m == nil {
		t.Fatalf("no run directory to sync named in:\n%s", errOut)
	}
	srv.SetDown(false)
	alias(3, "v1")
	if code, out, errOut = runCLI(t, "-C", dir, "tracking", "sync", m[1]); code != 0 || !strings.Contains(out, "registered model version 4") {
		t.Fatalf("tracking sync (%d):\n%s\n%s", code, out, errOut)
	}
	alias(4, "v2")
}
