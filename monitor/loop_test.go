package monitor_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modax/modax-ml/collect"
	"github.com/modax/modax-ml/features"
	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/testutil"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/label"
	"github.com/modax/modax-ml/monitor"
	"github.com/modax/modax-ml/pipeline"
	"github.com/modax/modax-ml/predict"
)

// TestContinuousTrainingLoop is the README's walk-through as a test, on the
// synthetic fleet and a real PostgreSQL: 40 days of history in the database;
// pipeline run (collect from postgres) deploys a model; 14 new days arrive
// from a drifted fleet (the temperature sensors recalibrated by +15 °C); the
// deployed model's predictions on them are written to rul_predictions
// (predict --to-db); monitor finds the drift and the worse predictions,
// retrains in-process, and the new model is deployed.
func TestContinuousTrainingLoop(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbc := pg.DefaultConfig()
	dbc.DSN = testutil.NewDatabase(t)
	db, err := pg.Connect(ctx, dbc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := pg.Migrate(ctx, db, dbc, pg.TimescaleOff, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	env := runenv.New(slog.New(slog.NewTextHandler(io.Discard, nil)), nil, "")
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	day40 := start.Add(40 * 24 * time.Hour)
	now := start.Add(54 * 24 * time.Hour)

	fleet := collect.DefaultSyntheticOptions()
	fleet.Devices, fleet.Interval = 10, duration.Duration(30*time.Minute)
	// load collects the synthetic fleet into dir/name and loads it into the
	// database.
	load := func(name string, o collect.Options) {
		t.Helper()
		o.Out, o.FailuresOut = filepath.Join(dir, name, "readings.parquet"), filepath.Join(dir, name, "failures.parquet")
		if _, err := collect.Run(ctx, env, o); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.LoadReadings(ctx, db, dbc, o.Out, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := pg.LoadFailures(ctx, db, dbc, o.FailuresOut); err != nil {
			t.Fatal(err)
		}
	}
	history := collect.DefaultOptions()
	history.Synthetic = fleet
	history.Synthetic.Days = 40
	load("history", history)

	// The production pipeline: collect from the database, a small model.
	cfg := config.Default()
	cfg.Dir = dir
	cfg.DB = dbc
	cfg.Collect.Source = collect.SourcePostgres
	cfg.Features.Window, cfg.Features.Stride = 24, 4
	cfg.Train.Hidden, cfg.Train.Layers, cfg.Train.FC, cfg.Train.Epochs, cfg.Train.BatchSize, cfg.Train.LR = 16, 1, 16, 8, 64, 3e-3
	cfg.Deploy.MaxMAE = 40
	retrain := func(ctx context.Context) (*monitor.Retrained, error) {
		res, err := pipeline.Run(ctx, env, pipeline.Options{Config: cfg, RepoDir: dir})
		if res == nil {
			return nil, err
		}
		return &monitor.Retrained{RunID: res.RunID, Dir: res.Dir, Status: string(res.Status), Decision: res.Deploy.Decision, Version: res.Deploy.Version}, err
	}
	first, err := retrain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Decision != tracking.DeployDeployed {
		t.Fatalf("first deploy: %+v", first)
	}

	// 14 new days from a drifted fleet.
	fresh := collect.DefaultOptions()
	fresh.Synthetic = fleet
	fresh.Synthetic.Days = 54
	fresh.Synthetic.Drift = collect.SyntheticDrift{From: day40.Format(time.RFC3339), Offset: map[string]float64{"temperature_mean": 15}}
	fresh.From = day40.Format(time.RFC3339)
	load("fresh", fresh)

	// The serving side: the deployed model predicts on the new days
	// (label + features make its windows), written to rul_predictions.
	lo := label.DefaultOptions()
	lo.Readings, lo.Failures, lo.Out = filepath.Join(dir, "fresh", "readings.parquet"), filepath.Join(dir, "fresh", "failures.parquet"), filepath.Join(dir, "fresh", "labeled.parquet")
	if _, err := label.Run(ctx, env, lo); err != nil {
		t.Fatal(err)
	}
	fo := features.DefaultOptions()
	fo.Labeled, fo.Out, fo.Stats = lo.Out, filepath.Join(dir, "fresh", "windows.parquet"), ""
	fo.Window, fo.Stride = 24, 4
	if _, err := features.Run(ctx, env, fo); err != nil {
		t.Fatal(err)
	}
	po := predict.DefaultOptions()
	po.Model, po.Windows, po.Out = filepath.Join(dir, "models", "current", "model.safetensors"), fo.Out, filepath.Join(dir, "fresh", "predictions.parquet")
	if _, err := predict.Run(ctx, env, po); err != nil {
		t.Fatal(err)
	}
	preds, _, err := dataset.ReadPredictions(ctx, po.Out)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := monitor.WritePredictions(ctx, db, dbc, preds); err != nil || n == 0 {
		t.Fatalf("write predictions: %d, %v", n, err)
	}

	// monitor: drift and degradation found, retrain, the new model deployed.
	mo := monitor.DefaultOptions()
	mo.DB, mo.ModelsDir, mo.RunsDir = dbc, filepath.Join(dir, "models"), filepath.Join(dir, "runs")
	mo.Lookback = duration.Duration(14 * 24 * time.Hour)
	mo.MinOutcomes = 20
	mo.Retrain, mo.Retrainer = true, retrain
	menv := *env
	menv.Now = func() time.Time { return now }
	rep, err := monitor.Run(ctx, &menv, mo)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("monitor: %d predictions, %d outcomes, MAE %.2f (test %.2f), max PSI %.2f, reasons %v",
		rep.Predictions.Total, rep.Performance.N, deref(rep.Performance.MAE), deref(rep.Model.TestMAE), deref(rep.Drift.MaxPSI), rep.Reasons)
	if rep.Model.Version != first.Version || rep.Decision != monitor.DecisionRetrain || rep.Performance.N < 20 {
		t.Fatalf("monitor: model %s, decision %s, %d outcomes", rep.Model.Version, rep.Decision, rep.Performance.N)
	}
	if !strings.Contains(strings.Join(rep.Reasons, "\n"), "drift: temperature_mean PSI") {
		t.Errorf("the temperature drift was not found: %v", rep.Reasons)
	}
	// The reference is the training data's, published by the pipeline's
	// deploy with the served version.
	want, _ := filepath.EvalSymlinks(filepath.Join(dir, "models", "versions", first.Version, "validation.json"))
	if want == "" || rep.Drift.Reference != want {
		t.Errorf("reference %s, want the served version's %s", rep.Drift.Reference, want)
	}
	if rep.Retrain == nil || rep.Retrain.Decision != tracking.DeployDeployed || rep.Retrain.Version == first.Version {
		t.Fatalf("retrain: %+v", rep.Retrain)
	}
	b, err := os.ReadFile(filepath.Join(dir, "models", "model_metadata.json"))
	if err != nil || !strings.Contains(string(b), rep.Retrain.Version) {
		t.Errorf("the retrained model %s is not the deployed one: %v", rep.Retrain.Version, err)
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
