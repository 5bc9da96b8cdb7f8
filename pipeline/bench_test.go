package pipeline

import (
	"context"
	"fmt"
	"testing"

	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/runenv"
)

// BenchmarkCachedRun is the pipeline's own cost: a run of the eight toy
// stages where seven are cache hits (decide, restore, stamp, run.json
// updates with fsync) and deploy runs.
func BenchmarkCachedRun(b *testing.B) {
	dir := b.TempDir()
	cfg := config.Default()
	cfg.Dir = dir
	o := Options{Config: cfg, stages: toyStages, RepoDir: dir, Getenv: func(string) string { return "" }}
	ctx := context.Background()
	if _, err := Run(ctx, runenv.Test(), o); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		o.Config.RunID = fmt.Sprint("bench-", i)
		i++
		if _, err := Run(ctx, runenv.Test(), o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKey hashes the real stages' options into their cache keys.
func BenchmarkKey(b *testing.B) {
	stages, err := Stages(config.Default(), Dirs{Work: ".", Run: "runs/x"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range stages {
			opts, err := KeyOptions(s.Options, "runs/x")
			if err != nil {
				b.Fatal(err)
			}
			_ = Key(s.Name, opts, nil, "dev")
		}
	}
}
