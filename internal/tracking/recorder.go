package tracking

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/runenv"
)

// Options configure StartRun.
type Options struct {
	// Dir is the run directory; run.json is written there. Required.
	Dir string
	// Name is the human name of the run (MLflow's run name); default the run id.
	Name string
	Seed int64
	// Command is the command line that started the run ("modax-ml pipeline run");
	// it becomes MLflow's mlflow.source.name.
	Command string
	// RepoDir is where the git commit is looked up (default ".").
	RepoDir string
	// Tracking is the tracking section of the config.
	Tracking Config
	// Getenv reads MLFLOW_* variables (default os.Getenv).
	Getenv func(string) string
	// Resume continues the run recorded in Dir (after a failure or kill):
	// the record is read back, marked running, and its MLflow run reused.
	Resume bool
}

// Recorder records one run: it keeps run.json in the run directory up to date
// (written atomically after every change) and mirrors the run to MLflow when
// tracking is configured. Its methods are safe for concurrent use.
//
// Errors returned by a Recorder are local (run.json could not be written, a
// file could not be hashed). A tracking failure is never returned: the
// Recorder logs one warning, stops mirroring for the rest of the run, and
// run.json shows what was not mirrored (Record.Unsynced); `modax-ml tracking
// sync RUN_DIR` replays it later.
type Recorder struct {
	mu     sync.Mutex
	dir    string
	rec    *Record
	log    *slog.Logger
	now    func() time.Time
	mirror *mirror // nil when tracking is off
	down   bool    // the mirror failed: local only from now on
	// refused is the last error of a step the server refused (warned once).
	refused string
}

// StartRun creates the run directory and its run.json (status running) and,
// when tracking is configured, the MLflow run. The run id and tool version
// come from env. With opts.Resume the existing record is continued instead.
func StartRun(ctx context.Context, env *runenv.Env, opts Options) (*Recorder, error) {
	if opts.Dir == "" {
		return nil, errors.New("tracking: start run: no run directory")
	}
	if env.RunID == "" {
		return nil, errors.New("tracking: start run: no run id")
	}
	now := env.Now
	if now == nil {
		now = time.Now
	}
	r := &Recorder{dir: opts.Dir, log: env.Log, now: func() time.Time { return now().UTC() }}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := opts.Tracking.Resolve(opts.Getenv)
	var se *SchemeError
	if errors.As(err, &se) && se.Source == EnvTrackingURI {
		r.log.Warn("tracking: ignoring "+EnvTrackingURI+"; recording the run locally only", "error", err.Error())
		cfg, err = Config{Timeout: opts.Tracking.Timeout, MaxRetries: opts.Tracking.MaxRetries}.Resolve(func(string) string { return "" })
	}
	if err != nil {
		return nil, fmt.Errorf("tracking: %w", err)
	}

	if opts.Resume {
		rec, err := Load(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("tracking: resume: %w", err)
		}
		if rec.RunID != env.RunID {
			return nil, fmt.Errorf("tracking: resume: %s records run %s, not %s", opts.Dir, rec.RunID, env.RunID)
		}
		rec.Status, rec.EndTime, rec.Error = StatusRunning, nil, ""
		r.rec = rec
	} else {
		if _, err := os.Stat(filepath.Join(opts.Dir, RecordFile)); err == nil {
			return nil, fmt.Errorf("tracking: start run: %s already exists (resume the run instead)", filepath.Join(opts.Dir, RecordFile))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tracking: start run: %w", err)
		}
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("tracking: start run: %w", err)
		}
		r.rec = &Record{
			Schema:      RecordSchema,
			RunID:       env.RunID,
			Name:        opts.Name,
			Status:      StatusRunning,
			StartTime:   r.now(),
			ToolVersion: env.ToolVersion,
			Command:     opts.Command,
			User:        currentUser(opts.Getenv),
			Git:         GitInfo(ctx, opts.RepoDir),
			Seed:        opts.Seed,
		}
	}
	if cfg.Enabled() {
		if r.rec.MLflow == nil {
			r.rec.MLflow = &MLflowState{TrackingURI: RedactURI(cfg.Base.String())}
		}
		r.mirror = &mirror{c: NewClient(cfg, r.log), cfg: cfg, log: r.log, dir: opts.Dir, now: r.now, save: r.saveLocked}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.saveLocked(); err != nil {
		return nil, err
	}
	r.syncLocked(ctx)
	return r, nil
}

func currentUser(getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, k := range []string{"USER", "LOGNAME", "USERNAME"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// Dir returns the run directory.
func (r *Recorder) Dir() string { return r.dir }

// RunID returns the run id.
func (r *Recorder) RunID() string { return r.rec.RunID }

// Record returns a copy of the current record.
func (r *Recorder) Record() *Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.Marshal(r.rec)
	if err != nil {
		panic(err) // programming error: the record always marshals
	}
	var c Record
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &c
}

// MirrorDown reports whether mirroring failed during this run.
func (r *Recorder) MirrorDown() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down
}

func (r *Recorder) saveLocked() error {
	if err := r.rec.Save(r.dir); err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	return nil
}

// update applies f to the record under the lock, saves run.json and mirrors.
func (r *Recorder) update(ctx context.Context, f func(rec *Record) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := f(r.rec); err != nil {
		return err
	}
	if err := r.saveLocked(); err != nil {
		return err
	}
	r.syncLocked(ctx)
	return nil
}

// syncLocked mirrors the record unless tracking is off or already failed.
// A failure is logged once and turns mirroring off for the rest of the run.
func (r *Recorder) syncLocked(ctx context.Context) {
	if r.mirror == nil || r.down {
		return
	}
	err := r.mirror.sync(ctx, r.rec)
	if err == nil {
		return
	}
	var se *saveError
	if errors.As(err, &se) {
		r.log.Error("tracking: cannot write the run record", "dir", r.dir, "error", err.Error())
		return
	}
	if ctx.Err() != nil {
		return // cancelled: EndRun tries again with a fresh context
	}
	if !stopsSync(err) && r.rec.MLflow.RunID != "" {
		// The server refused something (recorded in run.json); it is
		// reachable and the run exists, so keep mirroring the rest. Warn
		// once per message.
		if msg := err.Error(); msg != r.refused {
			r.refused = msg
			r.log.Warn("tracking: the MLflow server refused part of the run; it stays in the local record", "error", msg)
		}
		return
	}
	r.down = true
	r.log.Warn("tracking: MLflow mirror failed; the run continues and is recorded locally. Replay it later with: modax-ml tracking sync "+r.dir,
		"tracking_uri", r.rec.MLflow.TrackingURI, "error", err.Error(), "not_mirrored", strings.Join(r.rec.Unsynced(), ", "))
}

// LogParams records params (the flattened effective configuration; see Params).
// Later values of a key replace earlier ones.
func (r *Recorder) LogParams(ctx context.Context, params map[string]string) error {
	return r.update(ctx, func(rec *Record) error {
		if rec.Params == nil {
			rec.Params = map[string]string{}
		}
		for k, v := range params {
			rec.Params[k] = v
		}
		return nil
	})
}

// SetTags records tags (free-form labels; mirrored as MLflow run tags).
func (r *Recorder) SetTags(ctx context.Context, tags map[string]string) error {
	return r.update(ctx, func(rec *Record) error {
		if rec.Tags == nil {
			rec.Tags = map[string]string{}
		}
		for k, v := range tags {
			rec.Tags[k] = v
		}
		return nil
	})
}

// StageStarted records that a stage starts, with why it runs and its inputs
// (files with an empty SHA256 are hashed). A stage that ran before in this
// run (resume, retry) is replaced.
func (r *Recorder) StageStarted(ctx context.Context, name, reason string, inputs []File) error {
	in, err := r.files(inputs)
	if err != nil {
		return fmt.Errorf("tracking: stage %s: %w", name, err)
	}
	return r.update(ctx, func(rec *Record) error {
		st := Stage{Name: name, Status: StageRunning, Reason: reason, StartTime: r.now(), Inputs: in}
		rec.setStage(st)
		return nil
	})
}

// StageSkipped records a stage that did not run, and why ("restored from
// cache: inputs, options and tool version unchanged"), with the outputs it
// would have made and how long skipping it took (took: checking and
// restoring its outputs), which becomes its duration.
func (r *Recorder) StageSkipped(ctx context.Context, name, reason string, took time.Duration, inputs, outputs []File) error {
	in, err := r.files(inputs)
	if err != nil {
		return fmt.Errorf("tracking: stage %s: %w", name, err)
	}
	out, err := r.files(outputs)
	if err != nil {
		return fmt.Errorf("tracking: stage %s: %w", name, err)
	}
	return r.update(ctx, func(rec *Record) error {
		now := r.now()
		rec.setStage(Stage{Name: name, Status: StageSkipped, Reason: reason, StartTime: now.Add(-took), DurationSeconds: took.Seconds(),
			Inputs: in, Outputs: out})
		return nil
	})
}

// StageFinished records the end of a started stage: ran with its outputs when
// stageErr is nil, killed when it was cancelled, failed otherwise.
func (r *Recorder) StageFinished(ctx context.Context, name string, outputs []File, stageErr error) error {
	var out []File
	if stageErr == nil {
		var err error
		if out, err = r.files(outputs); err != nil {
			return fmt.Errorf("tracking: stage %s: %w", name, err)
		}
	}
	return r.update(ctx, func(rec *Record) error {
		st := rec.Stage(name)
		if st == nil {
			return fmt.Errorf("tracking: stage %s finished but never started", name)
		}
		st.DurationSeconds = r.now().Sub(st.StartTime).Seconds()
		switch {
		case stageErr == nil:
			st.Status, st.Outputs, st.Error = StageRan, out, ""
		case errors.Is(stageErr, context.Canceled):
			st.Status, st.Error = StageKilled, stageErr.Error()
		default:
			st.Status, st.Error = StageFailed, stageErr.Error()
		}
		return nil
	})
}

func (rec *Record) setStage(st Stage) {
	if old := rec.Stage(st.Name); old != nil {
		*old = st
		return
	}
	rec.Stages = append(rec.Stages, st)
}

// LogMetrics appends points to the metric series. A zero Timestamp is set to
// now.
func (r *Recorder) LogMetrics(ctx context.Context, points ...Metric) error {
	if len(points) == 0 {
		return nil
	}
	return r.update(ctx, func(rec *Record) error {
		now := r.now()
		for _, p := range points {
			if p.Name == "" {
				return errors.New("tracking: metric without a name")
			}
			if p.Timestamp.IsZero() {
				p.Timestamp = now
			}
			p.Timestamp = p.Timestamp.UTC()
			rec.Metrics = append(rec.Metrics, p)
		}
		return nil
	})
}

// LogStep logs the values of one step (epoch), in name order, at time at
// (now when zero).
func (r *Recorder) LogStep(ctx context.Context, step int64, at time.Time, values map[string]float64) error {
	points := make([]Metric, 0, len(values))
	for _, k := range sortedKeys(values) {
		points = append(points, Metric{Name: k, Step: step, Value: Float(values[k]), Timestamp: at})
	}
	return r.LogMetrics(ctx, points...)
}

// SetFinalMetrics records the run's summary metrics (test MAE, RMSE, score);
// later values of a key replace earlier ones.
func (r *Recorder) SetFinalMetrics(ctx context.Context, values map[string]float64) error {
	return r.update(ctx, func(rec *Record) error {
		if rec.FinalMetrics == nil {
			rec.FinalMetrics = map[string]Float{}
		}
		for k, v := range values {
			rec.FinalMetrics[k] = Float(v)
		}
		return nil
	})
}

// LogArtifact attaches a file to the run under name (a relative artifact
// path such as "report.md" or "model/rul_predictor.onnx"); the file is hashed
// now and uploaded by the mirror. Logging a name again replaces it.
func (r *Recorder) LogArtifact(ctx context.Context, name, path string) error {
	if err := checkArtifactName(name); err != nil {
		return fmt.Errorf("tracking: %w", err)
	}
	fs, err := fillFiles([]File{{Path: path}})
	if err != nil {
		return fmt.Errorf("tracking: artifact %s: %w", name, err)
	}
	a := Artifact{Name: name, Path: runRelative(r.dir, path), SHA256: fs[0].SHA256, Size: fs[0].Size}
	return r.update(ctx, func(rec *Record) error {
		for i := range rec.Artifacts {
			if rec.Artifacts[i].Name == name {
				rec.Artifacts[i] = a
				return nil
			}
		}
		rec.Artifacts = append(rec.Artifacts, a)
		return nil
	})
}

// runRelative returns path relative to the run directory when it is inside
// it (so a moved run directory keeps working), else absolute.
func runRelative(dir, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return abs
	}
	if rel, err := filepath.Rel(absDir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return rel
	}
	return abs
}

// SetDeploy records the deployment decision. For a deployed model whose
// artifact (d.Artifact) was logged, the mirror registers a model version
// under tracking.registered_model and points tracking.alias at it.
func (r *Recorder) SetDeploy(ctx context.Context, d Deploy) error {
	switch d.Decision {
	case DeployDeployed, DeployRejected, DeploySkipped:
	default:
		return fmt.Errorf("tracking: deploy decision %q: want %s, %s or %s", d.Decision, DeployDeployed, DeployRejected, DeploySkipped)
	}
	return r.update(ctx, func(rec *Record) error {
		rec.Deploy = &d
		return nil
	})
}

// EndRun closes the run: finished when runErr is nil or only the deploy gate
// was missed (exitcode.ErrGate: the decision is in Deploy), killed when it
// was cancelled, failed otherwise. Stages still running are closed the same
// way. The mirror is given a fresh 30 s context, so a cancelled run is still
// marked killed on the server.
func (r *Recorder) EndRun(ctx context.Context, runErr error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return r.update(ctx, func(rec *Record) error {
		now := r.now()
		status := StatusFinished
		switch {
		case runErr == nil || errors.Is(runErr, exitcode.ErrGate):
		case errors.Is(runErr, context.Canceled):
			status = StatusKilled
		default:
			status = StatusFailed
		}
		rec.Status, rec.EndTime = status, &now
		rec.Error = ""
		if status != StatusFinished {
			rec.Error = runErr.Error()
		}
		for i := range rec.Stages {
			st := &rec.Stages[i]
			if st.Status != StageRunning {
				continue
			}
			st.DurationSeconds = now.Sub(st.StartTime).Seconds()
			st.Status = StageFailed
			if status == StatusKilled {
				st.Status = StageKilled
			}
			if runErr != nil {
				st.Error = runErr.Error()
			}
		}
		return nil
	})
}

// files hashes files as fillFiles does and writes their paths relative to
// the run directory when they are inside it (so a moved run dir stays valid).
func (r *Recorder) files(files []File) ([]File, error) {
	out, err := fillFiles(files)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if !strings.Contains(out[i].Path, "://") {
			out[i].Path = runRelative(r.dir, out[i].Path)
		}
	}
	return out, nil
}

// fillFiles hashes the files whose SHA256 is empty and sets their sizes.
func fillFiles(files []File) ([]File, error) {
	if len(files) == 0 {
		return nil, nil
	}
	out := make([]File, len(files))
	for i, f := range files {
		if f.SHA256 == "" {
			sum, err := dataset.FileSHA256(f.Path)
			if err != nil {
				return nil, err
			}
			f.SHA256 = sum
		}
		if f.Size == 0 {
			if p, err := location.Local(f.Path); err == nil {
				if fi, err := os.Stat(p); err == nil {
					f.Size = fi.Size()
				}
			}
		}
		out[i] = f
	}
	return out, nil
}

// HashFiles returns the files at paths with their sha256 and size.
func HashFiles(paths ...string) ([]File, error) {
	files := make([]File, len(paths))
	for i, p := range paths {
		files[i] = File{Path: p}
	}
	return fillFiles(files)
}

// Params turns a flattened configuration (config.Flatten of the redacted
// config) into MLflow params: numbers with full precision, lists as JSON.
func Params(flat map[string]any) map[string]string {
	out := make(map[string]string, len(flat))
	for k, v := range flat {
		out[k] = paramString(v)
	}
	return out
}

func paramString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case fmt.Stringer:
		return x.String()
	}
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
