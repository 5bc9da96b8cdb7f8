package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/cache"
)

// job is one stage going through the middleware.
type job struct {
	stage *Stage
	idx   int
	dec   decision
	// result is what the stage's Run returned (ActionRun only).
	result  any
	seconds float64
	// skipping is how long deciding and restoring took (a stage that did
	// not run: its duration in the run record).
	skipping time.Duration
}

// handler handles a job; middleware wraps handlers.
type handler func(ctx context.Context, j *job) error

type middleware func(handler) handler

// chain wraps h in mws, the first outermost.
func chain(h handler, mws ...middleware) handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}

// stack is what every stage runs through, outermost first: decorate errors,
// skip if fresh, log and time, track in the run record, then execute.
func (r *runner) stack() handler {
	return chain(r.execute, decorate, r.skipIfFresh, r.logAndTime, r.track)
}

// decorate prefixes a stage's error with "pipeline: <stage>: " (once: a
// stage's own "<stage>: " prefix is not repeated).
func decorate(next handler) handler {
	return func(ctx context.Context, j *job) error {
		err := next(ctx, j)
		if err == nil {
			return nil
		}
		if strings.HasPrefix(err.Error(), j.stage.Name+": ") {
			return fmt.Errorf("pipeline: %w", err)
		}
		return fmt.Errorf("pipeline: %s: %w", j.stage.Name, err)
	}
}

// skipIfFresh decides whether the stage runs (decide); when its outputs are
// cached it links them into the run directory. After a stage ran, it stores
// its outputs in the cache; after it ran or was restored, it stamps the run
// directory so a resumed run knows the stage is done.
func (r *runner) skipIfFresh(next handler) handler {
	return func(ctx context.Context, j *job) error {
		start := time.Now()
		d, err := r.decide(j.stage, j.idx)
		if err != nil {
			return err
		}
		j.dec = d
		if d.action == ActionCached {
			err := r.store.Restore(ctx, d.entry, r.dir)
			if err == nil {
				j.dec.reason = strings.Replace(j.dec.reason, reasonCached, reasonRestored, 1)
			} else {
				if ctx.Err() != nil {
					return err
				}
				r.log.Warn("cache entry unusable; running the stage", "stage", j.stage.Name, "key", d.key, "error", err.Error())
				j.dec.action, j.dec.entry, j.dec.outputs = ActionRun, nil, nil
				j.dec.reason = "cache entry unusable: " + err.Error()
			}
		}
		j.skipping = time.Since(start)
		if j.dec.action == ActionRun {
			if err := os.Remove(r.stampPath(j.stage.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		started := time.Now()
		if err := next(ctx, j); err != nil {
			if j.dec.action == ActionRun {
				r.markInterrupted(j, started, err)
			}
			return err
		}
		// Done: a checkpoint left by an earlier interruption is spent.
		_ = os.Remove(r.interruptedPath(j.stage.Name))
		for _, f := range j.dec.outputs {
			r.hashes[filepath.Join(r.dir, filepath.FromSlash(f.Path))] = f.SHA256
		}
		if j.dec.action == ActionRun && j.stage.NoCache == "" && r.store != nil && len(j.dec.outputs) > 0 {
			e := cache.Entry{Key: j.dec.key, Stage: j.stage.Name, CreatedAt: r.now(), RunID: r.runID, Tool: r.tool,
				Options: j.dec.opts, Inputs: j.dec.inputs, Outputs: j.dec.outputs}
			if _, err := r.store.Put(ctx, e, r.dir); err != nil {
				// The run's own files are complete; only reuse is lost.
				r.log.Warn("cannot store the stage's outputs in the cache", "stage", j.stage.Name, "error", err.Error())
			}
		}
		b, err := json.MarshalIndent(stamp{Key: j.dec.key, Outputs: j.dec.outputs}, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteFile(r.stampPath(j.stage.Name), append(b, '\n'))
	}
}

// logAndTime logs why the stage runs or is skipped, and how long it took.
func (r *runner) logAndTime(next handler) handler {
	return func(ctx context.Context, j *job) error {
		name := j.stage.Name
		if j.dec.action == ActionRun {
			r.log.Info("stage "+name+" runs: "+j.dec.reason, "stage", name, "reason", j.dec.reason)
		}
		start := time.Now()
		err := next(ctx, j)
		j.seconds = time.Since(start).Seconds()
		switch {
		case err != nil:
			level := slog.LevelError
			if errors.Is(err, context.Canceled) {
				level = slog.LevelWarn
			}
			r.log.Log(ctx, level, "stage "+name+" failed", "stage", name, "seconds", round(j.seconds), "error", err.Error())
		case j.dec.action == ActionRun:
			r.log.Info("stage "+name+" ran", "stage", name, "seconds", round(j.seconds))
		default:
			r.log.Info("stage "+name+" skipped: "+j.dec.reason, "stage", name, "action", j.dec.action, "seconds", round(j.skipping.Seconds()))
		}
		return err
	}
}

func round(s float64) float64 { return float64(int64(s*1000+0.5)) / 1000 }

// track records the stage in run.json: started (with why) and finished with
// its outputs, or skipped with the outputs it restored; then the stage's own
// contribution to the record (Stage.Record).
func (r *runner) track(next handler) handler {
	return func(ctx context.Context, j *job) error {
		s := j.stage
		in := r.inputFiles(j.dec.inputs)
		if j.dec.action != ActionRun {
			if err := next(ctx, j); err != nil {
				return err
			}
			if err := r.rec.StageSkipped(ctx, s.Name, j.dec.reason, j.skipping, in, r.trackingFiles(j.dec.outputs)); err != nil {
				return err
			}
			return r.record(ctx, j, nil)
		}
		if err := r.rec.StageStarted(ctx, s.Name, j.dec.reason, in); err != nil {
			return err
		}
		err := next(ctx, j)
		if ferr := r.rec.StageFinished(ctx, s.Name, r.trackingFiles(j.dec.outputs), err); ferr != nil && err == nil {
			err = ferr
		}
		if rerr := r.record(ctx, j, err); rerr != nil && err == nil {
			err = rerr
		}
		return err
	}
}

// record runs the stage's Record hook.
func (r *runner) record(ctx context.Context, j *job, stageErr error) error {
	if j.stage.Record == nil {
		return nil
	}
	if err := j.stage.Record(ctx, r.rec, j.result, stageErr); err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// execute runs the stage (when it was decided to) and hashes its outputs.
func (r *runner) execute(ctx context.Context, j *job) error {
	if j.dec.action != ActionRun {
		return nil
	}
	run := j.stage.Run
	if j.dec.cont {
		run = j.stage.Continue
	}
	res, err := run(ctx, r.env)
	j.result = res
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (%w)", err, context.Canceled)
		}
		return err
	}
	outs, err := r.expandOutputs(j.stage)
	if err != nil {
		return err
	}
	j.dec.outputs = outs
	return nil
}
