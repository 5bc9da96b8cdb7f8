// Package deploy is the deploy stage: a gate on the evaluation metrics, then
// an atomic publish of the exported model into a model directory with a
// version history, rollback and pruning. The layout and its crash-safety
// argument are described in store.go.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/advancedclimatesystems/gonnx/onnx"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/drift"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/location"
	"github.com/modax/modax-ml/internal/metricsfile"
	"github.com/modax/modax-ml/internal/model"
	"github.com/modax/modax-ml/internal/onnxmodel"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/version"
)

// DefaultMaxMAE is the default gate on the test MAE, in hours. The design
// names a deployment_threshold on MAE without giving its value; 15 h is 15 %
// of the default 100 h horizon, above the 10 h critical threshold a useful
// model must resolve only by a little, and well above what the design's LSTM
// reaches on C-MAPSS FD001 (RMSE ≈ 13–16 on a 125 h cap).
const DefaultMaxMAE = 15.0

// DefaultValidation is the validation report a deploy publishes with the
// model when Validation is not set and the file exists (the command's
// default; DESIGN.md §3 file name).
const DefaultValidation = "validation.json"

// Options configure deploy, deploy list and deploy rollback. They are the
// `deploy` section of the config.
type Options struct {
	// Model, ONNX and Metrics are the candidate: checkpoint, its export and
	// its evaluation.
	Model   string `yaml:"model"`
	ONNX    string `yaml:"onnx"`
	Metrics string `yaml:"metrics"`
	// Validation is the validation report of the training data (validate's
	// validation.json), published with the version: its reference
	// statistics are what monitor measures input drift against. Empty:
	// none (the command defaults it to validation.json when that exists).
	Validation string `yaml:"validation"`
	// ModelsDir is the model directory (DESIGN.md: models/).
	ModelsDir string `yaml:"models_dir"`
	// Version names the release; default: the checkpoint's model_version.
	Version string `yaml:"version"`
	// Split is the metrics split the gate reads.
	Split string `yaml:"split"`
	// MaxMAE, MaxRMSE and MaxScore gate on the split's metrics (0: off).
	MaxMAE   float64 `yaml:"max_mae"`
	MaxRMSE  float64 `yaml:"max_rmse"`
	MaxScore float64 `yaml:"max_score"`
	// MustBeatCurrent requires the candidate's BeatMetric to be lower than
	// the deployed model's on the same test set.
	MustBeatCurrent bool   `yaml:"must_beat_current"`
	BeatMetric      string `yaml:"beat_metric"`
	// CurrentMetrics are the deployed model's metrics on the candidate's test
	// set; default: the metrics stored with the deployed version (which must
	// then be on the same test set).
	CurrentMetrics string `yaml:"current_metrics"`
	// AllowInterfaceChange deploys a model whose input (features, window,
	// scaler embedding, model type) differs from the deployed one's.
	AllowInterfaceChange bool `yaml:"allow_interface_change"`
	// Keep prunes all but the Keep most recently served versions after a
	// deploy, never the current or the previous one (0: keep all).
	Keep int `yaml:"keep"`
	// LockTimeout bounds the wait for a concurrent deploy.
	LockTimeout duration.Duration `yaml:"lock_timeout"`

	// Registry, when set, registers each release (MLflow: model version and
	// the champion alias). Set by the command layer, not by config.
	Registry Registry `yaml:"-" json:"-"`
}

// DefaultOptions returns the defaults (DESIGN.md §3 file names).
func DefaultOptions() Options {
	return Options{Model: "model.safetensors", ONNX: "model.onnx", Metrics: "metrics.json", ModelsDir: "models",
		Split: dataset.SplitTest, MaxMAE: DefaultMaxMAE, BeatMetric: "mae", LockTimeout: duration.Duration(10 * time.Minute)}
}

// Registry is the seam for a model registry. Promote is called, under the
// models lock, after a deploy or rollback switched the served model (not for
// a deploy of the version already served: nothing changed); an error does
// not undo the local release (models/ is the source of truth) but makes the
// command exit 4.
type Registry interface {
	Promote(ctx context.Context, r Release) error
}

// Release describes a served version for a Registry.
type Release struct {
	Action   string    // deploy or rollback
	Version  string    // the served version
	Previous string    // the version served before
	Dir      string    // models/versions/<version>
	Served   string    // models/rul_predictor.onnx
	Metadata *Metadata // its model_metadata.json
}

// GateCheck is one condition of the deployment gate.
type GateCheck struct {
	Metric  string  `json:"metric"`
	Split   string  `json:"split"`
	Value   float64 `json:"value"`
	Limit   float64 `json:"limit"`
	Against string  `json:"against,omitempty"` // "--max-mae" or "deployed <version>"
	Passed  bool    `json:"passed"`
	Detail  string  `json:"detail,omitempty"`
}

func (c GateCheck) String() string {
	if c.Detail != "" {
		return c.Detail
	}
	op := "≤"
	if !c.Passed {
		op = ">"
	}
	if strings.HasPrefix(c.Against, "deployed") {
		if c.Passed {
			return fmt.Sprintf("%s %s %.4g < %.4g of the %s", c.Split, strings.ToUpper(c.Metric), c.Value, c.Limit, c.Against)
		}
		return fmt.Sprintf("%s %s %.4g is not below %.4g of the %s", c.Split, strings.ToUpper(c.Metric), c.Value, c.Limit, c.Against)
	}
	return fmt.Sprintf("%s %s %.4g %s %s %.4g", c.Split, strings.ToUpper(c.Metric), c.Value, op, c.Against, c.Limit)
}

// GateError is a model that did not pass the gate (exit code 5).
type GateError struct{ Failed []GateCheck }

func (e *GateError) Error() string {
	msgs := make([]string, len(e.Failed))
	for i, c := range e.Failed {
		msgs[i] = c.String()
	}
	return "deploy: " + strings.Join(msgs, "; ") + ": nothing deployed"
}

func (e *GateError) Unwrap() error { return exitcode.ErrGate }

// Result describes a deploy.
type Result struct {
	Deployed bool        `json:"deployed"`
	Version  string      `json:"version"`
	Previous string      `json:"previous,omitempty"`
	Reused   bool        `json:"reused,omitempty"` // the version directory existed already
	Gate     []GateCheck `json:"gate"`
	Served   string      `json:"served,omitempty"` // models/rul_predictor.onnx
	Dir      string      `json:"dir,omitempty"`    // models/versions/<version>
	Pruned   []string    `json:"pruned,omitempty"`
	// Validation is the served version's validation report (monitor's drift
	// reference), when it has one.
	Validation string  `json:"validation,omitempty"`
	Seconds    float64 `json:"seconds"`
	Registry   string  `json:"registry,omitempty"` // "promoted", or the error
}

// candidate is what a deploy reads before touching anything.
type candidate struct {
	ck       *model.Checkpoint
	ckBytes  []byte
	ckSHA    string
	onnx     []byte
	mp       *onnx.ModelProto
	metrics  *metricsfile.File
	version  string
	metadata *Metadata
	// validation is the validation report's bytes (nil: none), reference
	// its decoded reference statistics.
	validation []byte
	reference  *drift.Reference
}

// Run gates and deploys the candidate model.
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Result, error) {
	start := env.Now()
	if err := checkOptions(opts); err != nil {
		return nil, err
	}
	// What deploy writes: the model directory and its history (the version
	// directory and the links are new names inside it).
	for _, in := range []atomicfile.Path{atomicfile.P("--model", opts.Model), atomicfile.P("--onnx", opts.ONNX),
		atomicfile.P("--metrics", opts.Metrics), atomicfile.P("--validation", opts.Validation), atomicfile.P("--current-metrics", opts.CurrentMetrics),
		atomicfile.P("--models-dir", opts.ModelsDir)} {
		if location.IsRemote(in.Path) {
			return nil, fmt.Errorf("%w: deploy %s %s: deploy reads and publishes local files only (a bucket models directory is not supported yet); copy the files here first",
				exitcode.ErrUsage, in.Flag, location.Redact(in.Path))
		}
	}
	if err := atomicfile.CheckOutputs([]atomicfile.Path{atomicfile.P("--model", opts.Model), atomicfile.P("--onnx", opts.ONNX),
		atomicfile.P("--metrics", opts.Metrics), atomicfile.P("--validation", opts.Validation), atomicfile.P("--current-metrics", opts.CurrentMetrics)},
		[]atomicfile.Path{atomicfile.P("--models-dir", opts.ModelsDir), atomicfile.P("--models-dir (history)", filepath.Join(opts.ModelsDir, historyFile))}); err != nil {
		return nil, err
	}
	c, err := readCandidate(opts)
	if err != nil {
		return nil, err
	}
	res := &Result{Version: c.version}
	if c.reference != nil {
		if missing := missingReference(c); len(missing) > 0 {
			env.Log.Warn("the validation report has no reference statistics for some of the model's features: monitor cannot measure their drift",
				"validation", opts.Validation, "features", strings.Join(missing, ","))
		}
	}
	// Absolute limits need nothing from the model directory: a model that
	// misses them never touches it.
	res.Gate = absoluteGate(opts, c.metrics)
	if err := gateError(env, c, res.Gate); err != nil {
		return res, err
	}

	s, err := openStore(ctx, opts.ModelsDir, opts.LockTimeout.D())
	if err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	defer s.close()
	step("locked")
	cur, err := s.current()
	if err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}
	res.Previous = cur
	if cur != "" && cur != c.version && !opts.AllowInterfaceChange {
		if err := sameInterface(s, cur, c); err != nil {
			return res, fmt.Errorf("deploy: %w", err)
		}
	}
	if opts.MustBeatCurrent {
		g, err := beatGate(s, opts, cur, c)
		if err != nil {
			return res, fmt.Errorf("deploy: %w", err)
		}
		if g != nil {
			res.Gate = append(res.Gate, *g)
		}
		if err := gateError(env, c, res.Gate); err != nil {
			return res, err
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if err := s.recover(env.Log); err != nil {
		return res, fmt.Errorf("deploy: %w", err)
	}

	// Publish (or reuse) the version directory.
	vdir := s.versionDir(c.version)
	if _, err := os.Stat(vdir); err == nil {
		if err := sameVersion(s, c); err != nil {
			return res, fmt.Errorf("deploy: %w", err)
		}
		res.Reused = true
	} else {
		c.metadata.DeployedAt = env.Now().UTC()
		c.metadata.PreviousVersion = cur
		c.metadata.DeployRunID = env.RunID
		c.metadata.ToolVersion = env.ToolVersion
		meta, err := json.MarshalIndent(c.metadata, "", "  ")
		if err != nil {
			return res, err
		}
		files := map[string][]byte{fileONNX: c.onnx, fileCheckpoint: c.ckBytes, fileMetrics: c.metrics.Raw, fileMetadata: append(meta, '\n')}
		if c.validation != nil {
			files[fileValidation] = c.validation
		}
		if err := addMLflowFiles(files, c, env.Now()); err != nil {
			return res, fmt.Errorf("deploy: %w", err)
		}
		if err := s.publish(c.version, files); err != nil {
			return res, fmt.Errorf("deploy: %w (nothing deployed; %s still serves %s)", err, opts.ModelsDir, orNone(cur))
		}
	}

	// The switch: from here on the new model is served.
	if cur != c.version {
		if err := s.switchTo(c.version); err != nil {
			return res, fmt.Errorf("deploy: %w (%s still serves %s)", err, opts.ModelsDir, orNone(cur))
		}
	}
	step("switched")
	res.Deployed, res.Served, res.Dir = true, s.path(servedONNX), vdir
	if _, err := os.Stat(filepath.Join(vdir, fileValidation)); err == nil {
		res.Validation = filepath.Join(vdir, fileValidation)
	}
	h, err := s.history()
	if err != nil {
		return res, fmt.Errorf("deploy: %s is served, but: %w", c.version, err)
	}
	if cur == c.version {
		// Already served: nothing switched, nothing to record.
		res.Previous = h.previous()
		env.Log.Info("already served", "version", c.version)
	} else {
		h.Events = append(h.Events, Event{Time: env.Now().UTC(), Action: "deploy", Version: c.version, Previous: cur,
			RunID: env.RunID, ToolVersion: env.ToolVersion})
		if err := s.writeHistory(h); err != nil {
			return res, fmt.Errorf("deploy: %s is served, but the history was not updated (the next deploy records it): %w", c.version, err)
		}
	}
	step("recorded")
	res.Pruned, err = s.prune(opts.Keep, h, c.version)
	if err != nil {
		return res, fmt.Errorf("deploy: %s is served, but: %w", c.version, err)
	}
	res.Seconds = env.Now().Sub(start).Seconds()
	env.Log.Info("deployed", "version", c.version, "previous", res.Previous, "served", res.Served, "pruned", len(res.Pruned))
	if cur == c.version {
		return res, nil
	}
	if err := promote(ctx, s, opts, "deploy", c.version, cur, res); err != nil {
		return res, err
	}
	return res, nil
}

// gateError returns a GateError for the failed checks, if any.
func gateError(env *runenv.Env, c *candidate, checks []GateCheck) error {
	var failed []GateCheck
	for _, g := range checks {
		if !g.Passed {
			failed = append(failed, g)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	env.Log.Warn("deployment gate not passed", "version", c.version, "failed", len(failed))
	return &GateError{Failed: failed}
}

func orNone(v string) string {
	if v == "" {
		return "no model"
	}
	return v
}

func checkOptions(o Options) error {
	for name, v := range map[string]float64{"--max-mae": o.MaxMAE, "--max-rmse": o.MaxRMSE, "--max-score": o.MaxScore} {
		if !(v >= 0) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %s %g: want a limit ≥ 0 (0 turns it off)", exitcode.ErrUsage, name, v)
		}
	}
	if !contains(metricsfile.Metrics, o.BeatMetric) {
		return fmt.Errorf("%w: --beat-metric %q: want one of %s", exitcode.ErrUsage, o.BeatMetric, strings.Join(metricsfile.Metrics, ", "))
	}
	if o.Keep < 0 {
		return fmt.Errorf("%w: --keep %d: want ≥ 0 (0 keeps every version)", exitcode.ErrUsage, o.Keep)
	}
	if o.Version != "" {
		if err := checkVersion(o.Version); err != nil {
			return fmt.Errorf("%w: --version: %w", exitcode.ErrUsage, err)
		}
	}
	if o.ModelsDir == "" || o.Model == "" || o.ONNX == "" || o.Metrics == "" {
		return fmt.Errorf("%w: --model, --onnx, --metrics and --models-dir are required", exitcode.ErrUsage)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readCandidate loads and cross-checks checkpoint, ONNX file and metrics.
func readCandidate(opts Options) (*candidate, error) {
	c := &candidate{}
	var err error
	if c.ck, err = model.Load(opts.Model); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if c.ckBytes, err = os.ReadFile(opts.Model); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	c.ckSHA = onnxmodel.SHA256(c.ckBytes)
	if c.onnx, err = os.ReadFile(opts.ONNX); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if c.mp, err = onnxmodel.Parse(c.onnx); err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", opts.ONNX, err)
	}
	if _, err := onnxmodel.Verify(c.mp, c.ck, c.ckSHA, 16); err != nil {
		return nil, fmt.Errorf("deploy: %s: %w (re-run export)", opts.ONNX, err)
	}
	if c.metrics, err = metricsfile.Read(opts.Metrics); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if err := c.metrics.CheckModel(c.ckSHA); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if _, ok := c.metrics.Splits[opts.Split]; !ok {
		return nil, fmt.Errorf("deploy: metrics %s have no %q split to gate on", opts.Metrics, opts.Split)
	}
	if opts.Validation != "" {
		if c.validation, err = os.ReadFile(opts.Validation); err != nil {
			return nil, fmt.Errorf("deploy: validation report: %w", err)
		}
		if c.reference, err = drift.DecodeReference(opts.Validation, c.validation); err != nil {
			return nil, fmt.Errorf("deploy: --validation: %w", err)
		}
	}
	c.version = opts.Version
	if c.version == "" {
		c.version = c.ck.Info.ModelVersion
	}
	if c.version == "" {
		c.version = "model-" + c.ckSHA[:12]
	}
	if err := checkVersion(c.version); err != nil {
		return nil, fmt.Errorf("deploy: checkpoint's model_version is not usable as a directory name (pass --version): %w", err)
	}
	if c.metadata, err = newMetadata(c, opts); err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	return c, nil
}

// missingReference lists the model's features the validation report has no
// reference distribution for.
func missingReference(c *candidate) []string {
	var out []string
	for _, f := range c.metadata.Features {
		if _, ok := c.reference.Sensors[f]; !ok {
			out = append(out, f)
		}
	}
	return out
}

// absoluteGate evaluates the --max-* limits.
func absoluteGate(opts Options, m *metricsfile.File) []GateCheck {
	var out []GateCheck
	for _, l := range []struct {
		metric, flag string
		limit        float64
	}{{"mae", "--max-mae", opts.MaxMAE}, {"rmse", "--max-rmse", opts.MaxRMSE}, {"score", "--max-score", opts.MaxScore}} {
		if l.limit == 0 {
			continue
		}
		g := GateCheck{Metric: l.metric, Split: opts.Split, Limit: l.limit, Against: l.flag}
		v, ok := m.Value(opts.Split, l.metric)
		if !ok {
			g.Detail = fmt.Sprintf("%s %s is undefined in %s (%s %g needs it)", opts.Split, strings.ToUpper(l.metric), m.Path, l.flag, l.limit)
		} else {
			g.Value, g.Passed = v, v <= l.limit
		}
		out = append(out, g)
	}
	return out
}

// beatGate compares the candidate with the deployed model on the same test
// set. It returns nil when nothing is deployed.
func beatGate(s *store, opts Options, cur string, c *candidate) (*GateCheck, error) {
	if cur == "" || cur == c.version {
		return nil, nil
	}
	path := opts.CurrentMetrics
	if path == "" {
		path = s.path(versionsDir, cur, fileMetrics)
	}
	cm, err := metricsfile.Read(path)
	if err != nil {
		return nil, fmt.Errorf("--must-beat-current: %w", err)
	}
	curSHA, err := dataset.FileSHA256(s.path(versionsDir, cur, fileCheckpoint))
	if err != nil {
		return nil, fmt.Errorf("--must-beat-current: %w", err)
	}
	if err := cm.CheckModel(curSHA); err != nil {
		return nil, fmt.Errorf("--must-beat-current: --current-metrics must be the deployed model's (%s): %w", cur, err)
	}
	if err := sameTestSet(c.metrics, cm, opts.Split); err != nil {
		return nil, fmt.Errorf("--must-beat-current: %w; evaluate the deployed model (%s) on the candidate's windows and pass its metrics with --current-metrics", err, s.path(versionsDir, cur, fileCheckpoint))
	}
	g := &GateCheck{Metric: opts.BeatMetric, Split: opts.Split, Against: "deployed " + cur}
	v, ok1 := c.metrics.Value(opts.Split, opts.BeatMetric)
	w, ok2 := cm.Value(opts.Split, opts.BeatMetric)
	if !ok1 || !ok2 {
		g.Detail = fmt.Sprintf("%s %s is undefined for the candidate or the deployed %s", opts.Split, strings.ToUpper(opts.BeatMetric), cur)
		return g, nil
	}
	g.Value, g.Limit, g.Passed = v, w, v < w
	return g, nil
}

// sameTestSet reports whether two metrics files were computed on the same
// windows (by the windows file's sha256 when both name it, else by the
// split's size).
func sameTestSet(a, b *metricsfile.File, split string) error {
	if a.Windows != nil && b.Windows != nil && a.Windows.SHA256 != "" && b.Windows.SHA256 != "" {
		if a.Windows.SHA256 != b.Windows.SHA256 {
			return fmt.Errorf("the deployed model's metrics (%s) were computed on other windows (sha256 %.12s…, the candidate's %.12s…)", b.Path, b.Windows.SHA256, a.Windows.SHA256)
		}
		return nil
	}
	if na, nb := a.Splits[split].N, b.Splits[split].N; na != nb {
		return fmt.Errorf("the deployed model's metrics (%s) have %d %s windows, the candidate's %d", b.Path, nb, split, na)
	}
	return nil
}

// sameInterface refuses a candidate whose input differs from the deployed
// model's, which would break the clients feeding rul_predictor.onnx.
func sameInterface(s *store, cur string, c *candidate) error {
	old, err := readMetadata(s.path(versionsDir, cur, fileMetadata))
	if err != nil {
		return err
	}
	n := c.metadata
	var diffs []string
	if strings.Join(old.Features, ",") != strings.Join(n.Features, ",") {
		diffs = append(diffs, fmt.Sprintf("features %v → %v", old.Features, n.Features))
	}
	if old.Window != n.Window && !n.ONNX.DynamicSeq {
		diffs = append(diffs, fmt.Sprintf("window %d → %d", old.Window, n.Window))
	}
	if old.ONNX.Input != n.ONNX.Input {
		diffs = append(diffs, fmt.Sprintf("input %q → %q", old.ONNX.Input, n.ONNX.Input))
	}
	if len(diffs) > 0 {
		return fmt.Errorf("the candidate's input differs from the deployed %s's (%s): clients of %s would break; pass --allow-interface-change if they are ready",
			cur, strings.Join(diffs, "; "), servedONNX)
	}
	return nil
}

// sameVersion accepts an existing version directory only if it holds the
// candidate's checkpoint (re-deploying a version is a switch back to it).
func sameVersion(s *store, c *candidate) error {
	if err := s.complete(c.version); err != nil {
		return err
	}
	sum, err := dataset.FileSHA256(s.path(versionsDir, c.version, fileCheckpoint))
	if err != nil {
		return err
	}
	if sum != c.ckSHA {
		return fmt.Errorf("version %s already exists with another model (checkpoint sha256 %.12s…, the candidate's %.12s…): pass --version", c.version, sum, c.ckSHA)
	}
	return nil
}

// promote calls the registry seam.
func promote(ctx context.Context, s *store, opts Options, action, v, prev string, res *Result) error {
	if opts.Registry == nil {
		return nil
	}
	md, err := readMetadata(s.path(versionsDir, v, fileMetadata))
	if err != nil {
		return err
	}
	rel := Release{Action: action, Version: v, Previous: prev, Dir: s.versionDir(v), Served: s.path(servedONNX), Metadata: md}
	if err := opts.Registry.Promote(ctx, rel); err != nil {
		res.Registry = err.Error()
		return fmt.Errorf("deploy: %s is served locally, but the model registry failed: %w: %w", v, exitcode.ErrTracking, err)
	}
	res.Registry = "promoted"
	return nil
}

// Rollback serves an earlier version again: to, or the previous one.
func Rollback(ctx context.Context, env *runenv.Env, opts Options, to string) (*Result, error) {
	start := env.Now()
	if to != "" {
		if err := checkVersion(to); err != nil {
			return nil, fmt.Errorf("%w: --to: %w", exitcode.ErrUsage, err)
		}
	}
	s, err := openStore(ctx, opts.ModelsDir, opts.LockTimeout.D())
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	defer s.close()
	if err := s.recover(env.Log); err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	cur, err := s.current()
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	h, err := s.history()
	if err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	if to == "" {
		to = h.previous()
		if to == "" {
			return nil, fmt.Errorf("rollback: no previous version to roll back to (history of %s is empty or has one deploy); name one with --to", opts.ModelsDir)
		}
	}
	res := &Result{Version: to, Previous: cur}
	if to == cur {
		return nil, fmt.Errorf("rollback: %s is already served", to)
	}
	if _, err := os.Stat(s.versionDir(to)); err != nil {
		vs, _ := s.versions()
		return nil, fmt.Errorf("rollback: no version %q in %s (have %s)", to, opts.ModelsDir, strings.Join(vs, ", "))
	}
	if err := checkServable(s, to); err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	if err := s.switchTo(to); err != nil {
		return nil, fmt.Errorf("rollback: %w (%s still serves %s)", err, opts.ModelsDir, orNone(cur))
	}
	step("switched")
	res.Deployed, res.Served, res.Dir = true, s.path(servedONNX), s.versionDir(to)
	h.Events = append(h.Events, Event{Time: env.Now().UTC(), Action: "rollback", Version: to, Previous: cur, RunID: env.RunID, ToolVersion: env.ToolVersion})
	if err := s.writeHistory(h); err != nil {
		return res, fmt.Errorf("rollback: %s is served, but the history was not updated (the next run records it): %w", to, err)
	}
	res.Seconds = env.Now().Sub(start).Seconds()
	env.Log.Info("rolled back", "version", to, "from", cur)
	if err := promote(ctx, s, opts, "rollback", to, cur, res); err != nil {
		return res, err
	}
	return res, nil
}

// checkServable verifies that a stored version is intact: all files, its
// ONNX file is the one its metadata names, and it still runs as its
// checkpoint does.
func checkServable(s *store, v string) error {
	if err := s.complete(v); err != nil {
		return err
	}
	md, err := readMetadata(s.path(versionsDir, v, fileMetadata))
	if err != nil {
		return err
	}
	b, err := os.ReadFile(s.path(versionsDir, v, fileONNX))
	if err != nil {
		return err
	}
	if got := onnxmodel.SHA256(b); got != md.ONNX.SHA256 {
		return fmt.Errorf("version %s: %s has sha256 %.12s…, its metadata says %.12s… (corrupt)", v, fileONNX, got, md.ONNX.SHA256)
	}
	if md.Validation != nil {
		got, err := dataset.FileSHA256(s.path(versionsDir, v, fileValidation))
		if err != nil {
			return fmt.Errorf("version %s: %w", v, err)
		}
		if got != md.Validation.SHA256 {
			return fmt.Errorf("version %s: %s has sha256 %.12s…, its metadata says %.12s… (corrupt)", v, fileValidation, got, md.Validation.SHA256)
		}
	}
	ck, err := model.Load(s.path(versionsDir, v, fileCheckpoint))
	if err != nil {
		return fmt.Errorf("version %s: %w", v, err)
	}
	if err := md.CheckWeights(s.path(versionsDir, v, fileCheckpoint), model.WeightsDigest(ck.Params.Tensors)); err != nil {
		return fmt.Errorf("version %s: %w", v, err)
	}
	mp, err := onnxmodel.Parse(b)
	if err != nil {
		return fmt.Errorf("version %s: %w", v, err)
	}
	if _, err := onnxmodel.Verify(mp, ck, md.Checkpoint.SHA256, 2); err != nil {
		return fmt.Errorf("version %s: %w", v, err)
	}
	return nil
}

// VersionInfo is one version of a model directory.
type VersionInfo struct {
	Version    string    `json:"version"`
	Current    bool      `json:"current"`
	Previous   bool      `json:"previous"`
	DeployedAt time.Time `json:"deployed_at"`
	LastServed time.Time `json:"last_served,omitzero"`
	ModelType  string    `json:"model_type"`
	TestMAE    *float64  `json:"test_mae"`
	TestRMSE   *float64  `json:"test_rmse"`
	TestScore  *float64  `json:"test_score"`
	ONNXSHA256 string    `json:"onnx_sha256"`
	Error      string    `json:"error,omitempty"` // a version whose metadata cannot be read
}

// ListResult is the state of a model directory.
type ListResult struct {
	Dir      string        `json:"dir"`
	Current  string        `json:"current"`
	Previous string        `json:"previous"`
	Versions []VersionInfo `json:"versions"` // most recently served first, never-served last
	History  []Event       `json:"history"`
}

// List describes the model directory without changing it (no lock, no
// recovery: a concurrent deploy is seen before or after its switch).
func List(_ context.Context, opts Options) (*ListResult, error) {
	s := &store{dir: opts.ModelsDir}
	if _, err := os.Stat(s.path(versionsDir)); err != nil {
		return nil, fmt.Errorf("deploy list: %s has no deployed models: %w", opts.ModelsDir, err)
	}
	cur, err := s.current()
	if err != nil {
		return nil, fmt.Errorf("deploy list: %w", err)
	}
	h, err := s.history()
	if err != nil {
		return nil, fmt.Errorf("deploy list: %w", err)
	}
	vs, err := s.versions()
	if err != nil {
		return nil, err
	}
	out := &ListResult{Dir: opts.ModelsDir, Current: cur, History: h.Events}
	if h.last().Version == cur {
		out.Previous = h.previous()
	}
	served := h.lastServed()
	for _, v := range vs {
		vi := VersionInfo{Version: v, Current: v == cur, Previous: v == out.Previous, LastServed: served[v]}
		md, err := readMetadata(s.path(versionsDir, v, fileMetadata))
		if err != nil {
			vi.Error = err.Error()
		} else {
			vi.DeployedAt, vi.ModelType, vi.ONNXSHA256 = md.DeployedAt, md.ModelType, md.ONNX.SHA256
			vi.TestMAE, vi.TestRMSE, vi.TestScore = md.TestMetrics.MAE, md.TestMetrics.RMSE, md.TestMetrics.Score
		}
		out.Versions = append(out.Versions, vi)
	}
	sortVersions(out.Versions)
	return out, nil
}

func sortVersions(vs []VersionInfo) {
	less := func(a, b VersionInfo) bool {
		if !a.LastServed.Equal(b.LastServed) {
			return a.LastServed.After(b.LastServed)
		}
		if !a.DeployedAt.Equal(b.DeployedAt) {
			return a.DeployedAt.After(b.DeployedAt)
		}
		return a.Version > b.Version
	}
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && less(vs[j], vs[j-1]); j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}

// IsGate reports whether err is a gate failure.
func IsGate(err error) bool { return errors.Is(err, exitcode.ErrGate) }

// gitCommit is the commit the binary was built from, "+dirty" when modified.
func gitCommit() string {
	info := version.Get()
	if info.Commit == "" {
		return ""
	}
	if info.Dirty {
		return info.Commit + "+dirty"
	}
	return info.Commit
}
