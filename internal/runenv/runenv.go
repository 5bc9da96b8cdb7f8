// Package runenv is what every stage's Run receives besides its options: the
// logger, the progress factory, the run identity and the clock.
package runenv

import (
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/progress"
	"github.com/modax/modax-ml/internal/version"
)

// Bounds of the flags every stage shares. They are far above any machine or
// run this tool is for, and keep a mistyped value from starting a hundred
// million goroutines (each with its own buffers) or allocating a batch of
// terabytes before the first window is read.
const (
	// MaxWorkers bounds every --workers flag (0 means one per core).
	MaxWorkers = 1024
	// MaxBatch bounds every --batch-size flag, in windows.
	MaxBatch = 1 << 16
)

// Env is the environment of a stage run. The zero value is not usable; use New
// or Test.
type Env struct {
	Log         *slog.Logger
	Progress    progress.Factory
	RunID       string
	ToolVersion string
	Now         func() time.Time
	// Workers bounds the goroutines a stage fans out to (default GOMAXPROCS).
	Workers int
	// Resume is the command that continues an interrupted stage from the
	// checkpoint it wrote, named in the stage's error ("modax-ml pipeline
	// run --resume RUN_ID" inside a pipeline). Empty: the stage's own
	// --resume flag.
	Resume string
}

// New returns an Env with the given logger and progress factory.
func New(log *slog.Logger, prog progress.Factory, runID string) *Env {
	if prog == nil {
		prog = progress.None
	}
	return &Env{Log: log, Progress: prog, RunID: runID, ToolVersion: version.Get().String(), Now: time.Now, Workers: runtime.GOMAXPROCS(0)}
}

// Test returns an Env for tests: logs discarded, no progress, a fixed run id.
func Test() *Env {
	return New(slog.New(slog.NewTextHandler(io.Discard, nil)), progress.None, "test-run")
}

// FileMeta returns the metadata every file written by a stage carries: schema
// is set by the writer; run id, stage, creation time, tool version and the
// sha256 of each input location.
func (e *Env) FileMeta(stage string, inputs ...string) (dataset.Meta, error) {
	m := dataset.Meta{
		dataset.MetaStage:       stage,
		dataset.MetaCreatedAt:   e.Now().UTC().Format(time.RFC3339Nano),
		dataset.MetaToolVersion: e.ToolVersion,
	}
	if e.RunID != "" {
		m[dataset.MetaRunID] = e.RunID
	}
	in, err := dataset.Inputs(inputs...)
	if err != nil {
		return nil, err
	}
	m.MustSet(dataset.MetaInputs, in)
	return m, nil
}
