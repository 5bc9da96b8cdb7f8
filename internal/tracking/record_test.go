package tracking

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func saveRecord(t *testing.T, runsDir, id string, start time.Time) {
	t.Helper()
	r := &Record{Schema: RecordSchema, RunID: id, Status: StatusFinished, StartTime: start}
	if err := r.Save(filepath.Join(runsDir, id)); err != nil {
		t.Fatal(err)
	}
}

func TestListAndFind(t *testing.T) {
	runs := t.TempDir()
	saveRecord(t, runs, "20250301-aaa", t0)
	saveRecord(t, runs, "20250302-bbb", t0.Add(24*time.Hour))
	saveRecord(t, runs, "20250302-bbc", t0.Add(25*time.Hour))
	if err := os.MkdirAll(filepath.Join(runs, "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(runs, "broken", RecordFile), "{not json")
	writeFile(t, filepath.Join(runs, "other", RecordFile), `{"schema":"other/v9","run_id":"x"}`)

	recs, errs := List(runs)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.RunID)
	}
	if strings.Join(ids, " ") != "20250302-bbc 20250302-bbb 20250301-aaa" {
		t.Errorf("List order: %v", ids)
	}
	if len(errs) != 2 || !strings.Contains(fmt.Sprint(errs), "broken") || !strings.Contains(fmt.Sprint(errs), `schema "other/v9"`) {
		t.Errorf("List errors: %v", errs)
	}
	if recs, errs := List(filepath.Join(runs, "missing")); recs != nil || errs != nil {
		t.Errorf("missing runs dir: %v %v", recs, errs)
	}

	for id, want := range map[string]string{
		"20250301-aaa":                      filepath.Join(runs, "20250301-aaa"),
		"20250301":                          filepath.Join(runs, "20250301-aaa"), // unique prefix
		filepath.Join(runs, "20250302-bbb"): filepath.Join(runs, "20250302-bbb"),
	} {
		if got, err := Find(runs, id); err != nil || got != want {
			t.Errorf("Find(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := Find(runs, "20250302-bb"); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := Find(runs, "zzz"); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown id: %v", err)
	}
}

func TestRecordIsReadableJSON(t *testing.T) {
	dir := t.TempDir()
	r, err := StartRun(context.Background(), testEnv("r-json", nil), Options{Dir: dir, RepoDir: t.TempDir(), Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	_ = r.LogStep(context.Background(), 1, t0, map[string]float64{"loss": 0.5})
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"schema": "modax.run/v1"`, `"run_id": "r-json"`, `"status": "running"`, `"name": "loss"`, `"value": 0.5`, `"timestamp": "2025-03-01T12:00:00Z"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("run.json lacks %s:\n%s", want, b)
		}
	}
	// Atomic writes leave no temporary files behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("run dir holds %d entries, want only run.json", len(entries))
	}
}

// BenchmarkLogStep measures one per-epoch LogStep (run.json rewritten
// atomically, with fsync) as the record grows.
func BenchmarkLogStep(b *testing.B) {
	for _, points := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("existing=%d", points), func(b *testing.B) {
			dir := b.TempDir()
			r, err := StartRun(context.Background(), testEnv("bench", nil), Options{Dir: dir, RepoDir: dir, Getenv: noEnv})
			if err != nil {
				b.Fatal(err)
			}
			for i := range points / 2 {
				_ = r.LogStep(context.Background(), int64(i), t0, map[string]float64{"loss": 1, "val_mae": 2})
			}
			b.ReportAllocs()
			step := int64(points)
			for b.Loop() {
				step++
				if err := r.LogStep(context.Background(), step, t0, map[string]float64{"loss": 1, "val_mae": 2}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
