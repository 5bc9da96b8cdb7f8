// Package sweep is `train --sweep`: a hyper-parameter search over a declared
// space (grid or seeded random; choices, ranges and log ranges of train
// config keys) that trains every trial with the train stage's own loop on
// windows loaded once, side by side, prunes the weak ones by ASHA on a
// validation metric, and writes the results (sweep.parquet) and the best
// config (best.yaml, ready for --config). It chooses on the val split only:
// the test split is never read into memory, predicted or scored. A journal
// makes it resumable after Ctrl-C, and a space and seed give the same
// trials and results whatever the number of trials run at once.
package sweep

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/train"
)

// Trial statuses.
const (
	StatusCompleted = "completed"
	StatusPruned    = "pruned"
	StatusFailed    = "failed"
)

// Output file names in the sweep directory.
const (
	ParquetName = "sweep.parquet"
	BestName    = "best.yaml"
)

// Options configure a sweep.
type Options struct {
	// Space is the space file (SPACE.yaml).
	Space string
	// Dir is the sweep directory: journal, sweep.parquet and best.yaml.
	Dir string
	// Workers is the number of trials trained side by side (0: the
	// environment's workers divided by each trial's engine workers).
	Workers int
	// ForceNew starts over when Dir holds the journal of another sweep.
	ForceNew bool
	// Base is the train config every trial starts from; its workers
	// (default 1 in a sweep) are each trial's engine goroutines.
	Base train.Options
	// OnTrial, when set, is called after each trial is journaled (from the
	// trial's goroutine).
	OnTrial func(TrialResult)
}

// TrialResult is one trial's outcome (a journal line and a results row).
type TrialResult struct {
	Trial int `json:"trial"`
	// Params maps each swept config key to the trial's value.
	Params map[string]any `json:"params"`
	Status string         `json:"status"`
	// Epochs is the number of epochs trained.
	Epochs       int      `json:"epochs"`
	BestEpoch    int      `json:"best_epoch,omitempty"`
	BestValRMSE  *float64 `json:"best_val_rmse"`
	BestValLoss  *float64 `json:"best_val_loss"`
	PrunedAt     int      `json:"pruned_at_epoch,omitempty"`
	StoppedEarly bool     `json:"stopped_early,omitempty"`
	Error        string   `json:"error,omitempty"`
	Seconds      float64  `json:"seconds"`
	// Curve is the sweep's metric after each epoch (what ASHA compares).
	Curve []float64 `json:"metric_by_epoch"`
}

// Result is what a sweep did.
type Result struct {
	ID      string `json:"sweep_id"`
	Space   string `json:"space"`
	Method  string `json:"method"`
	Metric  string `json:"metric"`
	Dir     string `json:"dir"`
	Windows string `json:"windows"`
	// TrainWindows and ValWindows are what every trial trained and
	// validated on; TestSplitRead is always false: the test split is skipped
	// while reading the windows and never predicted.
	TrainWindows  int  `json:"train_windows"`
	ValWindows    int  `json:"val_windows"`
	TestSplitRead bool `json:"test_split_read"`
	Workers       int  `json:"sweep_workers"`
	TrialWorkers  int  `json:"trial_workers"`
	// Rungs are ASHA's epochs (none without pruning).
	Rungs []int `json:"rungs,omitempty"`
	// Trials are sorted by the metric (best first, failed last).
	Trials    []TrialResult `json:"trials"`
	Best      *TrialResult  `json:"best"`
	Completed int           `json:"completed"`
	Pruned    int           `json:"pruned"`
	Failed    int           `json:"failed"`
	// Resumed counts the trials taken from the journal of an earlier run.
	Resumed    int     `json:"resumed"`
	Parquet    string  `json:"sweep_parquet"`
	BestConfig string  `json:"best_config"`
	Journal    string  `json:"journal"`
	Seconds    float64 `json:"seconds"`
}

func usage(format string, args ...any) error {
	return fmt.Errorf("%w: sweep: %s", exitcode.ErrUsage, fmt.Sprintf(format, args...))
}

// Run runs the sweep as opts say. On cancellation it returns an error
// wrapping the context's after the running trials stop; the finished ones
// are in the journal, and running it again resumes.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := time.Now()
	base := opts.Base
	switch {
	case base.Model != train.ModelLSTM:
		return nil, usage("train.model is %q: a sweep trains the lstm", base.Model)
	case base.ValSplit != dataset.SplitVal:
		return nil, usage("train.val_split is %q: a sweep chooses on the %q split only", base.ValSplit, dataset.SplitVal)
	case opts.Dir == "":
		return nil, usage("--sweep-dir is empty")
	case opts.Workers < 0 || opts.Workers > runenv.MaxWorkers:
		return nil, usage("--sweep-workers %d: want 0 to %d", opts.Workers, runenv.MaxWorkers)
	}
	if base.Workers == 0 {
		base.Workers = 1
	}
	raw, err := os.ReadFile(opts.Space)
	if err != nil {
		return nil, fmt.Errorf("%w: sweep: %w", exitcode.ErrUsage, err)
	}
	space, err := ParseSpace(opts.Space, raw, base)
	if err != nil {
		return nil, err
	}
	trials := space.Enumerate()
	trialOpts := make([]train.Options, len(trials))
	for i, t := range trials {
		o, err := Apply(base, space, t.Values)
		if err == nil {
			err = o.Validate()
		}
		if err != nil {
			return nil, usage("%s: trial %d (%s): %v", opts.Space, t.ID, describe(space, t.Values), strings.TrimPrefix(err.Error(), exitcode.ErrUsage.Error()+": "))
		}
		trialOpts[i] = o
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--windows", base.Windows), atomicfile.P("--sweep", opts.Space)},
		[]atomicfile.Path{atomicfile.P("--sweep-dir", opts.Dir+"/"+ParquetName), atomicfile.P("--sweep-dir", opts.Dir+"/"+BestName)}); err != nil {
		return nil, err
	}
	ins, err := dataset.Inputs(base.Windows)
	if err != nil {
		return nil, fmt.Errorf("%w: sweep: %w", exitcode.ErrValidation, err)
	}
	h, err := newHeader(space, base, ins[0].SHA256)
	if err != nil {
		return nil, err
	}
	jr, done, err := openJournal(opts.Dir, h, opts.ForceNew)
	if err != nil {
		return nil, err
	}
	defer jr.close()
	for id, tr := range done {
		if id < 0 || id >= len(trials) {
			return nil, fmt.Errorf("%w: sweep: %s: trial %d is not in the space's %d trials", exitcode.ErrValidation, jr.path, id, len(trials))
		}
		if want := paramMap(space, trials[id].Values); !sameParams(want, tr.Params) {
			return nil, fmt.Errorf("%w: sweep: %s: trial %d has params %v, the space gives %v", exitcode.ErrValidation, jr.path, id, tr.Params, want)
		}
	}
	w, err := train.LoadWindows(ctx, base.Windows)
	if err != nil {
		return nil, err
	}
	if w.ValWindows() == 0 {
		return nil, fmt.Errorf("%w: sweep: %s has no windows in the %q split to choose on", exitcode.ErrValidation, base.Windows, dataset.SplitVal)
	}
	workers := opts.Workers
	if workers == 0 {
		workers = max(1, env.Workers/base.Workers)
	}
	workers = min(workers, max(1, len(trials)-len(done)))
	res := &Result{ID: h.ID, Space: opts.Space, Method: space.Method, Metric: space.Metric, Dir: opts.Dir, Windows: base.Windows,
		TrainWindows: w.TrainWindows(), ValWindows: w.ValWindows(), Workers: workers, TrialWorkers: base.Workers,
		Rungs: space.Prune.Rungs(), Resumed: len(done), Journal: jr.path,
		Parquet: opts.Dir + "/" + ParquetName, BestConfig: opts.Dir + "/" + BestName}
	var asha *ashaState
	if space.Prune != nil {
		asha = newASHA(space.Prune)
		for id, tr := range done {
			asha.replay(id, tr.Curve)
		}
	}
	env.Log.Info("sweep: the test split is not read: trials train on the train split and are compared on the val split only",
		"sweep_id", h.ID, "trials", len(trials), "from_journal", len(done), "side_by_side", workers, "engine_workers", base.Workers,
		"metric", space.Metric, "rungs", fmt.Sprint(res.Rungs), "train_windows", w.TrainWindows(), "val_windows", w.ValWindows())

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	results := make([]TrialResult, len(trials))
	have := make([]bool, len(trials))
	for id, tr := range done {
		results[id], have[id] = tr, true
	}
	bar := env.Progress("sweep", "trials", int64(len(trials)))
	bar.Add(int64(len(done)))
	defer bar.Finish()
	next := make(chan int)
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	for range workers {
		wg.Go(func() {
			for id := range next {
				tr, ok := runTrial(runCtx, env, space, asha, trials[id], trialOpts[id], w)
				if asha != nil {
					asha.finish(id)
				}
				if !ok {
					continue
				}
				mu.Lock()
				err := jr.append(tr)
				if err == nil {
					results[id], have[id] = tr, true
				}
				mu.Unlock()
				if err != nil {
					cancel(err)
					continue
				}
				logTrial(env, space, tr)
				mu.Lock()
				bar.Add(1) // bars are drawn from one goroutine at a time
				bar.Describe(fmt.Sprintf("trial %d %s", tr.Trial, tr.Status))
				mu.Unlock()
				if opts.OnTrial != nil {
					opts.OnTrial(tr)
				}
			}
		})
	}
feed:
	for id := range trials {
		if have[id] {
			continue
		}
		select {
		case next <- id:
		case <-runCtx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(runCtx); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	n := 0
	for _, ok := range have {
		if ok {
			n++
		}
	}
	if n < len(trials) {
		cause := ctx.Err()
		if cause == nil {
			cause = context.Canceled
		}
		return nil, fmt.Errorf("sweep: interrupted with %d of %d trials done (in %s); run the same command again to resume: %w", n, len(trials), jr.path, cause)
	}
	res.Trials = sortTrials(results, space.Metric)
	for i := range res.Trials {
		switch res.Trials[i].Status {
		case StatusCompleted:
			res.Completed++
		case StatusPruned:
			res.Pruned++
		case StatusFailed:
			res.Failed++
		}
	}
	for i := range res.Trials {
		if t := &res.Trials[i]; t.Status == StatusCompleted {
			res.Best = t
			break
		}
	}
	if res.Best == nil {
		return nil, fmt.Errorf("%w: sweep: no trial completed (%d pruned, %d failed: %s)", exitcode.ErrValidation, res.Pruned, res.Failed, firstError(res.Trials))
	}
	if err := writeOutputs(env, res, space, base, trialOpts[res.Best.Trial]); err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// runTrial trains one trial; ok is false when it was cancelled (it is then
// unfinished and not journaled).
func runTrial(ctx context.Context, env *runenv.Env, s *Space, asha *ashaState, t Trial, o train.Options, w *train.Windows) (TrialResult, bool) {
	tr := TrialResult{Trial: t.ID, Params: paramMap(s, t.Values), Status: StatusCompleted}
	env.Log.Debug("sweep: trial started", "trial", t.ID, "params", describe(s, t.Values))
	var waitErr error
	onEpoch := func(e model.Epoch) bool {
		v := e.ValRMSE
		if s.Metric == MetricValLoss {
			v = e.ValLoss
		}
		tr.Curve = append(tr.Curve, v)
		env.Log.Debug("sweep: epoch", "trial", t.ID, "epoch", e.Epoch, s.Metric, v)
		if asha == nil {
			return false
		}
		keep, err := asha.report(ctx, t.ID, tr.Curve)
		if err != nil {
			waitErr = err
			return true
		}
		if !keep {
			tr.Status, tr.PrunedAt = StatusPruned, e.Epoch
		}
		return !keep
	}
	fr, err := train.Fit(ctx, env, o, w, onEpoch)
	if waitErr != nil || ctx.Err() != nil {
		return tr, false
	}
	if err != nil {
		tr.Status, tr.Error, tr.Curve = StatusFailed, err.Error(), nil
		return tr, true
	}
	if !fr.Stopped && tr.Status == StatusPruned {
		tr.Status, tr.PrunedAt = StatusCompleted, 0 // early stopping ended it on the same epoch
	}
	tr.Epochs, tr.Seconds, tr.StoppedEarly = len(fr.History), fr.Seconds, fr.StoppedEarly
	if fr.BestEpoch > 0 {
		rmse, loss := fr.BestValRMSE, fr.BestValLoss
		tr.BestEpoch, tr.BestValRMSE, tr.BestValLoss = fr.BestEpoch, &rmse, &loss
	}
	for _, v := range tr.Curve {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			tr.Status, tr.Error = StatusFailed, fmt.Sprintf("the val %s became %v", s.Metric, v)
			tr.Curve, tr.BestValRMSE, tr.BestValLoss, tr.BestEpoch = nil, nil, nil, 0
			break
		}
	}
	return tr, true
}

func logTrial(env *runenv.Env, s *Space, tr TrialResult) {
	args := []any{"trial", tr.Trial, "status", tr.Status, "epochs", tr.Epochs}
	if v := tr.metric(s.Metric); !math.IsNaN(v) {
		args = append(args, "best_"+s.Metric, round(v, 4), "best_epoch", tr.BestEpoch)
	}
	args = append(args, "params", describeMap(tr.Params), "seconds", round(tr.Seconds, 2))
	switch tr.Status {
	case StatusPruned:
		env.Log.Info(fmt.Sprintf("sweep: trial %d pruned at epoch %d", tr.Trial, tr.PrunedAt), args...)
	case StatusFailed:
		env.Log.Warn(fmt.Sprintf("sweep: trial %d failed", tr.Trial), append(args, "error", tr.Error)...)
	default:
		env.Log.Info(fmt.Sprintf("sweep: trial %d completed", tr.Trial), args...)
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// metric is the trial's best value of the sweep's metric (NaN: none).
func (t *TrialResult) metric(name string) float64 {
	p := t.BestValRMSE
	if name == MetricValLoss {
		p = t.BestValLoss
	}
	if p == nil {
		return math.NaN()
	}
	return *p
}

// sortTrials orders trials by the metric (best first; failed trials, which
// have none, last) and then by id.
func sortTrials(ts []TrialResult, metric string) []TrialResult {
	out := slices.Clone(ts)
	slices.SortStableFunc(out, func(a, b TrialResult) int {
		va, vb := a.metric(metric), b.metric(metric)
		if na, nb := math.IsNaN(va), math.IsNaN(vb); na != nb {
			if na {
				return 1
			}
			return -1
		}
		if c := cmp.Compare(va, vb); c != 0 {
			return c
		}
		return cmp.Compare(a.Trial, b.Trial)
	})
	return out
}

func firstError(ts []TrialResult) string {
	for _, t := range ts {
		if t.Error != "" {
			return fmt.Sprintf("trial %d: %s", t.Trial, t.Error)
		}
	}
	return "every trial was pruned"
}

// paramMap is a trial's values keyed by config key, as JSON would read
// them back (numbers float64).
func paramMap(s *Space, vals []any) map[string]any {
	m := map[string]any{}
	for i, p := range s.Params {
		m[p.Key] = p.Column(vals[i])
	}
	b, _ := json.Marshal(m)
	out := map[string]any{}
	_ = json.Unmarshal(b, &out)
	return out
}

func sameParams(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func describe(s *Space, vals []any) string {
	parts := make([]string, len(s.Params))
	for i, p := range s.Params {
		parts[i] = fmt.Sprintf("%s=%v", p.Key, vals[i])
	}
	return strings.Join(parts, " ")
}

func describeMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}

// newHeader names the sweep: its id hashes the space, the train config the
// trials start from (without file names) and the windows file's content.
func newHeader(s *Space, base train.Options, windowsSHA string) (header, error) {
	b := base
	b.Windows, b.Stats, b.Out, b.Resume, b.ModelVersion, b.IntervalLevels, b.Refit = "", "", "", "", "", "", false
	j, err := json.Marshal(b)
	if err != nil {
		return header{}, err
	}
	var y map[string]any
	yb, err := yaml.Marshal(b)
	if err != nil {
		return header{}, err
	}
	if err := yaml.Unmarshal(yb, &y); err != nil {
		return header{}, err
	}
	jb, err := json.Marshal(y)
	if err != nil {
		return header{}, err
	}
	baseMap := map[string]any{}
	if err := json.Unmarshal(jb, &baseMap); err != nil {
		return header{}, err
	}
	for _, k := range []string{"windows", "stats", "out", "resume", "model_version", "interval_levels", "refit"} {
		delete(baseMap, k)
	}
	sp := s.canonical()
	sum := sha256.New()
	sum.Write(sp)
	sum.Write(j)
	sum.Write([]byte(windowsSHA))
	return header{Type: "sweep", ID: hex.EncodeToString(sum.Sum(nil))[:12], Space: sp, Base: baseMap, Windows: windowsSHA}, nil
}

// writeOutputs writes sweep.parquet and best.yaml as one write set.
func writeOutputs(env *runenv.Env, res *Result, s *Space, base, best train.Options) error {
	params := make([]dataset.SweepParam, len(s.Params))
	for i, p := range s.Params {
		params[i] = dataset.SweepParam{Name: p.Key, Type: p.Type()}
	}
	rows := make([]dataset.SweepTrial, len(res.Trials))
	for i, t := range res.Trials {
		r := dataset.SweepTrial{Trial: t.Trial, Status: t.Status, Epochs: t.Epochs, BestEpoch: t.BestEpoch,
			BestValRMSE: math.NaN(), BestValLoss: math.NaN(), PrunedAt: t.PrunedAt, Seconds: t.Seconds, Error: t.Error}
		if t.BestValRMSE != nil {
			r.BestValRMSE = *t.BestValRMSE
		}
		if t.BestValLoss != nil {
			r.BestValLoss = *t.BestValLoss
		}
		for _, p := range s.Params {
			r.Params = append(r.Params, p.Column(jsonToGo(t.Params[p.Key], p.Type())))
		}
		rows[i] = r
	}
	meta, err := env.FileMeta(train.Stage, base.Windows)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	meta[dataset.MetaSweepID] = res.ID
	meta["modax.sweep_metric"] = s.Metric
	set := atomicfile.NewSet()
	defer set.Abort()
	if err := dataset.WriteSweep(res.Parquet, params, rows, meta, dataset.InSet(set)); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	y, err := bestYAML(res, s, best)
	if err != nil {
		return err
	}
	if err := set.WriteFile(res.BestConfig, y); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if err := set.Commit(); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}

// jsonToGo turns a JSON-decoded parameter value back into its column's Go
// type (numbers arrive as float64).
func jsonToGo(v any, typ string) any {
	if f, ok := v.(float64); ok && typ == "int64" {
		return int64(f)
	}
	return v
}

// bestYAML is the best trial's train config as a config file: every train
// key but the file names and the model version (the command line's), so
// that `modax-ml --config best.yaml train` trains that trial's model again.
func bestYAML(res *Result, s *Space, o train.Options) ([]byte, error) {
	b, err := yaml.Marshal(o)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for _, k := range []string{"windows", "stats", "out", "resume", "model_version"} {
		delete(m, k)
	}
	var buf bytes.Buffer
	t := res.Best
	keys := make([]string, len(s.Params))
	for i, p := range s.Params {
		keys[i] = p.Key
	}
	fmt.Fprintf(&buf, "# modax-ml train --sweep %s: sweep %s, trial %d, the best of %d trials (%d completed, %d pruned, %d failed)\n",
		res.Space, res.ID, t.Trial, len(res.Trials), res.Completed, res.Pruned, res.Failed)
	fmt.Fprintf(&buf, "# by %s on the val split: %.4g at epoch %d (val RMSE %.4g h).\n", s.Metric, t.metric(s.Metric), t.BestEpoch, t.metric(MetricValRMSE))
	fmt.Fprintf(&buf, "# Chosen on validation only: the sweep never read the test split.\n")
	fmt.Fprintf(&buf, "# Swept: %s. Train it with: modax-ml --config %s train\n", strings.Join(keys, ", "), res.BestConfig)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"train": m}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
