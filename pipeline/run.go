package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/cache"
	"github.com/modax/modax-ml/internal/config"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/lock"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
)

// Files of a run directory besides the stages' outputs.
const (
	ConfigFile = "config.yaml"  // the effective, frozen configuration
	LogFile    = "pipeline.log" // the run's log (JSON lines)
	lockFile   = ".lock"
)

// Options configure a pipeline run.
type Options struct {
	// Config is the effective configuration. On --resume the run's frozen
	// config.yaml is used instead (with this one's secrets and directories).
	Config config.Config
	// From and Until bound the stages that run (names from Order; empty:
	// the first and the last). Stages before From are not run: their
	// outputs must be in the run directory or the cache.
	From, Until string
	// Force names stages that run even when their outputs are fresh
	// ("all" for every stage).
	Force []string
	// Resume continues the run with this id (or unique prefix, or run
	// directory) from its first unfinished stage, in its run directory.
	Resume string
	// Set are "key=value" overrides applied on top of Config (or, on
	// resume, of the run's frozen config, which is then rewritten).
	Set []string
	// Command is the command line recorded in run.json.
	Command string
	// RepoDir is where the git commit is looked up (default ".").
	RepoDir string
	// Getenv reads the MLflow variables (default os.Getenv).
	Getenv func(string) string

	// stages builds the stage list (default Stages); tests replace it.
	stages func(config.Config, Dirs) ([]*Stage, error)
}

// Dirs are the directories a stage list is built for.
type Dirs struct {
	// Work is the working directory (--dir): files named outside the run
	// directory (a CSV source, the models directory) are relative to it.
	Work string
	// Run is the run directory: every stage output goes there.
	Run string
}

// Out places an output file name in the run directory (an absolute path is
// kept, and the stage's outputs are then not cached).
func (d Dirs) Out(name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(d.Run, name)
}

// In resolves a file outside the run directory against the working directory.
func (d Dirs) In(name string) string {
	if name == "" || filepath.IsAbs(name) || strings.Contains(name, "://") || d.Work == "" || d.Work == "." {
		return name
	}
	return filepath.Join(d.Work, name)
}

// Result describes a pipeline run (printed by `pipeline run --output json`).
type Result struct {
	RunID   string          `json:"run_id"`
	Dir     string          `json:"dir"`
	Status  tracking.Status `json:"status"`
	Error   string          `json:"error,omitempty"`
	Resumed bool            `json:"resumed,omitempty"`
	Stages  []StageResult   `json:"stages"`
	// Metrics are the run's final metrics (test and val MAE, RMSE, score).
	Metrics map[string]tracking.Float `json:"metrics,omitempty"`
	Deploy  *tracking.Deploy          `json:"deploy,omitempty"`
	// Report is the evaluation report in the run directory.
	Report  string  `json:"report,omitempty"`
	Log     string  `json:"log"`
	Seconds float64 `json:"seconds"`
}

// StageResult is one stage of a Result.
type StageResult struct {
	Name string `json:"name"`
	// Status is ran, skipped, failed, killed, or "not run" (outside
	// --from/--until, or after a failure).
	Status  string   `json:"status"`
	Reason  string   `json:"reason,omitempty"`
	Seconds float64  `json:"seconds"`
	Outputs []string `json:"outputs,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// runner is the state of one pipeline run (or plan).
type runner struct {
	opts    Options
	cfg     config.Config
	env     *runenv.Env
	log     *slog.Logger
	work    string
	runsDir string
	dir     string
	runID   string
	resume  bool
	from    int
	until   int
	force   []string
	store   *cache.Store
	tool    string
	rec     *tracking.Recorder
	stages  []*Stage
	// hashes are the sha256 of the files made or restored in this run
	// ("" for a file a dry run does not know yet).
	hashes map[string]string
	now    func() time.Time
}

// NewRunID returns a run id: the UTC time and 4 random hex digits
// ("20250301T120000-3f9a").
func NewRunID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// prepare resolves the run: directories, run id, config (frozen one on
// resume), stage range, stages. It changes nothing on disk.
func prepare(env *runenv.Env, opts Options) (*runner, error) {
	r := &runner{opts: opts, env: env, log: env.Log, hashes: map[string]string{}, now: env.Now, tool: ToolVersion()}
	if r.now == nil {
		r.now = time.Now
	}
	var err error
	if r.from, err = stageIndex("--from", orDefault(opts.From, Order[0])); err != nil {
		return nil, err
	}
	if r.until, err = stageIndex("--until", orDefault(opts.Until, Order[len(Order)-1])); err != nil {
		return nil, err
	}
	if r.from > r.until {
		return nil, fmt.Errorf("%w: --from %s comes after --until %s", exitcode.ErrUsage, Order[r.from], Order[r.until])
	}
	for _, f := range opts.Force {
		if f == "all" {
			continue
		}
		if _, err := stageIndex("--force", f); err != nil {
			return nil, err
		}
	}
	r.force = opts.Force

	// A new run's config is the given one with --set on top; a resumed
	// run's is its frozen config.yaml with --set on top.
	base := opts.Config
	if opts.Resume == "" {
		if base, err = config.Set(base, opts.Set...); err != nil {
			return nil, fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
		}
	}
	r.work = orDefault(base.Dir, ".")
	r.runsDir = Dirs{Work: r.work}.In(orDefault(base.Tracking.RunsDir, tracking.DefaultConfig().RunsDir))
	if opts.Resume != "" {
		dir, err := tracking.Find(r.runsDir, opts.Resume)
		if err != nil {
			return nil, fmt.Errorf("%w: --resume: %w", exitcode.ErrUsage, err)
		}
		rec, err := tracking.Load(dir)
		if err != nil {
			return nil, fmt.Errorf("--resume: %w", err)
		}
		cfg, err := LoadFrozen(filepath.Join(dir, ConfigFile), base)
		if err != nil {
			return nil, fmt.Errorf("--resume: %w", err)
		}
		if cfg, err = config.Set(cfg, opts.Set...); err != nil {
			return nil, fmt.Errorf("%w: %w", exitcode.ErrUsage, err)
		}
		r.cfg, r.dir, r.runID, r.resume = cfg, dir, rec.RunID, true
	} else {
		r.cfg, r.runID = base, base.RunID
		if r.runID == "" {
			r.runID = NewRunID(r.now())
		}
		if !validRunID(r.runID) {
			return nil, fmt.Errorf("%w: run id %q: want letters, digits, '.', '_', '-'", exitcode.ErrUsage, r.runID)
		}
		r.dir = filepath.Join(r.runsDir, r.runID)
	}
	if r.cfg.Pipeline.Cache {
		r.store = cache.Open(Dirs{Work: r.work}.In(orDefault(r.cfg.Pipeline.CacheDir, DefaultCacheDir)))
	}
	build := opts.stages
	if build == nil {
		build = Stages
	}
	if r.stages, err = build(r.cfg, Dirs{Work: r.work, Run: r.dir}); err != nil {
		return nil, err
	}
	return r, nil
}

// DefaultCacheDir is where cached stage outputs live, relative to the
// working directory.
const DefaultCacheDir = ".modax/cache"

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func validRunID(id string) bool {
	if id == "" || id == "." || id == ".." || len(id) > 128 {
		return false
	}
	for _, c := range id {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		digit := c >= '0' && c <= '9'
		if !letter && !digit && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// LoadFrozen reads a run's config.yaml. Secrets were redacted when it was
// written, so the database DSN and the tracking URI come from current; so do
// the working directory and the output settings of this invocation.
func LoadFrozen(path string, current config.Config) (config.Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return config.Config{}, fmt.Errorf("read frozen config: %w", err)
	}
	cfg := config.Default()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return config.Config{}, fmt.Errorf("read frozen config %s: %w", path, err)
	}
	cfg.DB.DSN = current.DB.DSN
	cfg.Tracking.URI = current.Tracking.URI
	cfg.Dir, cfg.Log, cfg.Output, cfg.Quiet = current.Dir, current.Log, current.Output, current.Quiet
	return cfg, nil
}

// Run runs the pipeline: every stage from From to Until through the
// middleware, in runs/<run-id>/, recorded in run.json. The error is the
// first stage's error, decorated ("pipeline: train: ..."); a model that
// missed the deploy gate returns an error wrapping exitcode.ErrGate with a
// finished run. The Result is returned in every case the run started.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	r, err := prepare(env, opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	lk, err := lock.Acquire(ctx, filepath.Join(r.dir, lockFile), lock.Options{What: "modax-ml pipeline run " + r.runID})
	if err != nil {
		if errors.Is(err, lock.ErrHeld) {
			return nil, fmt.Errorf("pipeline: another process is writing run %s: %w", r.runID, err)
		}
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	defer func() { _ = lk.Unlock() }()

	if r.resume {
		rec, err := tracking.Load(r.dir)
		if err != nil {
			return nil, fmt.Errorf("pipeline: --resume: %w", err)
		}
		if rec.Status == tracking.StatusFinished && opts.From == "" && len(opts.Force) == 0 {
			return nil, fmt.Errorf("%w: --resume %s: the run finished; nothing to resume (add --from STAGE or --force to run stages again)", exitcode.ErrUsage, r.runID)
		}
		removeTemps(r.dir)
	} else if _, err := os.Stat(filepath.Join(r.dir, tracking.RecordFile)); err == nil {
		return nil, fmt.Errorf("%w: run %s exists in %s (use --resume %s)", exitcode.ErrUsage, r.runID, r.dir, r.runID)
	}

	logf, err := os.OpenFile(filepath.Join(r.dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	defer logf.Close()
	stageEnv := *env
	stageEnv.RunID = r.runID
	// An interrupted stage's hint names the pipeline's resume, not the
	// stage command's --resume flag (which `pipeline run` would take for a
	// run id).
	stageEnv.Resume = "modax-ml pipeline run --resume " + r.runID
	stageEnv.Log = slog.New(slog.NewMultiHandler(env.Log.Handler(), slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	r.env, r.log = &stageEnv, stageEnv.Log

	if !r.resume || len(opts.Set) > 0 {
		// The effective config; on a resume with --set the new one (the
		// stages whose options changed run again: their keys changed).
		y, err := r.cfg.Redacted().YAML()
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(filepath.Join(r.dir, ConfigFile), y); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	name := orDefault(r.cfg.Pipeline.Name, r.runID)
	r.rec, err = tracking.StartRun(ctx, r.env, tracking.Options{
		Dir: r.dir, Name: name, Seed: r.cfg.Seed, Command: orDefault(opts.Command, "modax-ml pipeline run"),
		RepoDir: opts.RepoDir, Tracking: r.cfg.Tracking, Getenv: opts.Getenv, Resume: r.resume,
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	start := time.Now()
	runErr := r.prepareRecord(ctx)
	if runErr == nil {
		r.log.Info("pipeline run", "run_id", r.runID, "dir", r.dir, "resume", r.resume, "from", Order[r.from], "until", Order[r.until])
		runErr = r.loop(ctx)
	}
	if ctx.Err() != nil && runErr != nil && !errors.Is(runErr, context.Canceled) {
		runErr = fmt.Errorf("%w (%w)", runErr, context.Canceled)
	}
	if err := r.closeDeploy(ctx, runErr); err != nil && runErr == nil {
		runErr = err
	}
	if errors.Is(runErr, context.Canceled) {
		removeTemps(r.dir)
	}
	if err := r.rec.EndRun(ctx, runErr); err != nil && runErr == nil {
		runErr = err
	}
	res := r.result(time.Since(start))
	switch {
	case runErr == nil:
		r.log.Info("pipeline finished", "run_id", r.runID, "seconds", round(res.Seconds))
	case errors.Is(runErr, exitcode.ErrGate):
		r.log.Warn("pipeline finished; the model missed the deploy gate", "run_id", r.runID)
	}
	return res, runErr
}

// prepareRecord records the params and the run's tags.
func (r *runner) prepareRecord(ctx context.Context) error {
	flat, err := config.Flatten(r.cfg.Redacted())
	if err != nil {
		return err
	}
	if err := r.rec.LogParams(ctx, tracking.Params(flat)); err != nil {
		return err
	}
	tags := map[string]string{"modax.pipeline.from": Order[r.from], "modax.pipeline.until": Order[r.until]}
	if len(r.force) > 0 {
		tags["modax.pipeline.force"] = strings.Join(r.force, ",")
	}
	if r.resume {
		tags["modax.pipeline.resumed"] = "true"
	}
	if err := r.rec.SetTags(ctx, tags); err != nil {
		return err
	}
	return r.rec.LogArtifact(ctx, ConfigFile, filepath.Join(r.dir, ConfigFile))
}

// loop runs the stages through the middleware, stopping at the first error.
func (r *runner) loop(ctx context.Context) error {
	h := r.stack()
	for i, s := range r.stages {
		if i > r.until {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := h(ctx, &job{stage: s, idx: i}); err != nil {
			return err
		}
	}
	return nil
}

// closeDeploy records a deploy decision when the deploy stage did not make one.
func (r *runner) closeDeploy(ctx context.Context, runErr error) error {
	if r.rec.Record().Deploy != nil {
		return nil
	}
	reason := "the pipeline stopped before deploy"
	switch {
	case r.until < len(Order)-1:
		reason = "--until " + Order[r.until]
	case runErr != nil:
		reason = "the pipeline failed before deploy"
	}
	return r.rec.SetDeploy(ctx, tracking.Deploy{Decision: tracking.DeploySkipped, Reason: reason})
}

// result summarises the run from its record.
func (r *runner) result(d time.Duration) *Result {
	rec := r.rec.Record()
	res := &Result{RunID: r.runID, Dir: r.dir, Status: rec.Status, Error: rec.Error, Resumed: r.resume,
		Metrics: rec.FinalMetrics, Deploy: rec.Deploy, Log: filepath.Join(r.dir, LogFile), Seconds: d.Seconds()}
	for _, s := range r.stages {
		sr := StageResult{Name: s.Name, Status: ActionNotRun}
		if st := rec.Stage(s.Name); st != nil {
			sr.Status, sr.Reason, sr.Seconds, sr.Error = string(st.Status), st.Reason, st.DurationSeconds, st.Error
			for _, o := range st.Outputs {
				sr.Outputs = append(sr.Outputs, o.Path)
			}
		}
		res.Stages = append(res.Stages, sr)
	}
	for _, want := range []string{"report/report.html", "report/report.md"} {
		for _, a := range rec.Artifacts {
			if a.Name == want && res.Report == "" {
				res.Report = filepath.Join(r.dir, a.Path)
			}
		}
	}
	return res
}

// removeTemps removes the temporary files of interrupted atomic writes
// (".<name>.tmp-*") in the run directory.
func removeTemps(dir string) {
	_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if n := de.Name(); strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-") {
			os.RemoveAll(p)
			if de.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
}
