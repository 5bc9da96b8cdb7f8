package pipeline

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
)

// The stages, in pipeline order.
const (
	Collect  = "collect"
	Validate = "validate"
	Label    = "label"
	Features = "features"
	Train    = "train"
	Evaluate = "evaluate"
	Export   = "export"
	Deploy   = "deploy"
)

// Order is the order the stages run in.
var Order = []string{Collect, Validate, Label, Features, Train, Evaluate, Export, Deploy}

// Stage is one step of the pipeline: a stage package's Run adapted to the
// run directory. The pipeline wraps every Stage in the same middleware
// (skip-if-fresh, log-and-time, track, decorate errors); a Stage only says
// what it reads, what it writes and how to run.
type Stage struct {
	Name string
	// Options are the stage's resolved options. They are hashed into the
	// cache key (paths inside the run directory as $RUN/<name>), so they must
	// hold everything that determines the outputs and nothing that does not
	// (worker counts of deterministic stages are cleared by the adapters).
	Options any
	// Inputs are the files the stage reads: run-directory files made by
	// earlier stages, or files outside it (a CSV source, a reference report).
	Inputs []string
	// Outputs are the files and directories the stage writes in the run
	// directory.
	Outputs []string
	// NoCache, when set, says why the stage's outputs are never reused
	// (deploy publishes outside the run directory; a database source
	// changes without its options changing).
	NoCache string
	// Run runs the stage. Its result is what the stage's Run returned.
	Run func(ctx context.Context, env *runenv.Env) (any, error)
	// Checkpoint are the files an interrupted Run leaves to continue from
	// (train: the checkpoint and its optimizer state, written on Ctrl-C),
	// and Continue runs the stage from them. A resumed pipeline continues
	// the killed stage so when its key (options, inputs, tool version) and
	// ContinueTerms are what they were and the files are unchanged.
	// Continuing must give the outputs a run from scratch gives: they are
	// cached under the same key.
	Checkpoint []string
	Continue   func(ctx context.Context, env *runenv.Env) (any, error)
	// ContinueTerms describes what else the equality of a continued and an
	// uninterrupted run depends on in this process (train: the worker
	// count); nil: nothing.
	ContinueTerms func(env *runenv.Env) string
	// Record adds what the stage contributes to the run record (training
	// history, final metrics, artifacts, the deploy decision) once it ran,
	// was restored, or failed (res is nil unless it ran; err is its error).
	Record func(ctx context.Context, rec *tracking.Recorder, res any, err error) error
}

// stageIndex returns the position of name in Order, or a usage error naming flag.
func stageIndex(flag, name string) (int, error) {
	if i := slices.Index(Order, name); i >= 0 {
		return i, nil
	}
	return 0, fmt.Errorf("%w: %s %q: want one of %s", exitcode.ErrUsage, flag, name, strings.Join(Order, ", "))
}
