package config

import (
	"strings"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	c := Default()
	c.Dir = "/work"
	got, err := Set(c, "seed=7", "run_id=123", "tracking.timeout=90s", "pipeline.cache=false", "db.sensors=[a, b]", "log.level=debug")
	if err != nil {
		t.Fatal(err)
	}
	if got.Seed != 7 || got.RunID != "123" || got.Tracking.Timeout.D() != 90*time.Second || got.Pipeline.Cache ||
		strings.Join(got.DB.Sensors, ",") != "a,b" || got.Log.Level != "debug" {
		t.Errorf("Set: %+v", got)
	}
	if got.Dir != "/work" || got.Tracking.RunsDir != "runs" {
		t.Errorf("Set changed other keys: dir %q, runs dir %q", got.Dir, got.Tracking.RunsDir)
	}
	for _, bad := range []string{"seeed=1", "seed", "seed=abc", "tracking.timeout=soon", "=1"} {
		if _, err := Set(c, bad); err == nil {
			t.Errorf("Set(%q): no error", bad)
		}
	}
	if c.Seed != 42 {
		t.Error("Set changed its argument")
	}
}
