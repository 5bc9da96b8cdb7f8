package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
)

// tinyConfig is a fleet and model small enough for the whole real pipeline
// to run in a few seconds.
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

func realOpts(t *testing.T, c config.Config) Options {
	t.Helper()
	return Options{Config: c, RepoDir: c.Dir, Getenv: func(string) string { return "" }}
}

func TestRealPipeline(t *testing.T) {
	dir := t.TempDir()
	c := tinyConfig(dir)
	c.RunID = "first"
	res, err := Run(context.Background(), runenv.Test(), realOpts(t, c))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	for _, s := range res.Stages {
		t.Logf("%-9s %-8s %6.2fs %s", s.Name, s.Status, s.Seconds, s.Reason)
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "rul_predictor.onnx")); err != nil {
		t.Error(err)
	}
	if res.Deploy == nil || res.Deploy.Decision != tracking.DeployDeployed {
		t.Errorf("deploy %+v", res.Deploy)
	}
}
