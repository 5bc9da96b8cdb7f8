// Package monitor is continuous training (the design's ContinuousTraining):
// it judges the deployed model in production and decides whether to retrain.
//
// One Run reads, from PostgreSQL, the deployed model's recent predictions
// (rul_predictions) and the failures since (failure_events), and scores the
// predictions whose outcome is now known against the true, horizon-capped
// RUL: MAE, RMSE, the PHM08 score and the late-prediction rate. It measures
// the drift of the recent readings (sensor_data) against the reference
// distributions of the data the model was trained on (the validation report
// deploy published with the served version, else its training run's) with the population stability index and the
// Kolmogorov–Smirnov statistic. It decides ok, or retrain when the realized
// MAE exceeds --max-mae, or degrades by more than --max-degradation against
// the model's test MAE, or a sensor drifts beyond --max-psi. The report is
// written as JSON and recorded as a run (runs/monitor-<time>/run.json). With
// Retrain set the retraining itself is a callback (the command runs
// `pipeline run` in-process), so this package stays a library of its own.
package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
	"github.com/modax/modax-ml/internal/dataset"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/pg"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
)

// ReportSchema versions the monitor report.
const ReportSchema = "modax.monitor/v1"

// ReportFile is the report's name in the monitor's run directory.
const ReportFile = "monitor.json"

// Decisions.
const (
	DecisionOK      = "ok"
	DecisionRetrain = "retrain"
)

// Options configure monitor (the `monitor` config section).
type Options struct {
	// ModelsDir is the model directory deploy publishes to; its
	// model_metadata.json names the deployed model.
	ModelsDir string `yaml:"models_dir"`
	// Reference is the validation report whose reference distributions the
	// recent readings are compared with. Empty: the one deploy published
	// with the served version (validation.json next to its
	// model_metadata.json, checked against the sha256 recorded there), else
	// the training run's (runs/<training_run_id>/validation.json).
	Reference string `yaml:"reference"`
	// Lookback is how far back predictions and readings are judged.
	Lookback duration.Duration `yaml:"lookback"`
	// At is the time the check is made as of (RFC 3339; empty: now), for
	// replaying history.
	At string `yaml:"at"`
	// MaxMAE: a realized MAE above it (hours) means retrain (0: off).
	MaxMAE float64 `yaml:"max_mae"`
	// MaxDegradation: a realized MAE above (1 + MaxDegradation) × the
	// model's test MAE means retrain (0: off).
	MaxDegradation float64 `yaml:"max_degradation"`
	// MaxPSI: a sensor whose PSI is above it has drifted: retrain (0: off).
	MaxPSI float64 `yaml:"max_psi"`
	// MinOutcomes is the number of predictions with a known outcome needed
	// before performance is judged.
	MinOutcomes int `yaml:"min_outcomes"`
	// MinCoverage: an interval level whose realized coverage (share of
	// outcomes inside the predicted interval) is below it means retrain,
	// once MinOutcomes outcomes at that level are known (0: the level − 0.10;
	// negative: off).
	MinCoverage float64 `yaml:"min_coverage"`
	// SampleSize bounds the values per sensor kept for the drift statistics.
	SampleSize int `yaml:"sample_size"`
	// Out is an extra copy of the report (the run directory always has one).
	Out string `yaml:"out"`
	// Retrain runs Retrainer when the decision is retrain.
	Retrain bool `yaml:"retrain"`
	// ToDB upserts the result into db.monitor_table (monitor_results), one
	// row per check, for a dashboard.
	ToDB bool `yaml:"to_db"`

	// Set by the command layer: the database (db section), where run
	// records go (tracking section), and how to retrain.
	DB        pg.Config       `yaml:"-" json:"-"`
	Tracking  tracking.Config `yaml:"-" json:"-"`
	RunsDir   string          `yaml:"-" json:"-"`
	Retrainer Retrainer       `yaml:"-" json:"-"`
}

// DefaultOptions returns the defaults: judge the last 7 days; retrain when
// the realized MAE is 50 % worse than the test MAE or a sensor's PSI exceeds
// 0.25 (the usual "significant shift" threshold), once 30 outcomes are known.
func DefaultOptions() Options {
	return Options{ModelsDir: "models", Lookback: duration.Duration(7 * 24 * time.Hour), MaxDegradation: 0.5, MaxPSI: 0.25,
		MinOutcomes: 30, SampleSize: 10000}
}

// Retrainer retrains (runs the pipeline) and says what came of it.
type Retrainer func(ctx context.Context) (*Retrained, error)

// Retrained is the outcome of a retraining run.
type Retrained struct {
	RunID    string `json:"run_id"`
	Dir      string `json:"dir"`
	Status   string `json:"status"`
	Decision string `json:"deploy_decision"` // deployed, rejected, skipped
	Version  string `json:"version,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Report is the monitor report (monitor.json, and --output json).
type Report struct {
	Schema      string      `json:"schema"`
	RunID       string      `json:"run_id"`
	CreatedAt   time.Time   `json:"created_at"`
	Tenant      string      `json:"tenant"`
	Model       Model       `json:"model"`
	From        time.Time   `json:"from"`
	To          time.Time   `json:"to"`
	Predictions Counts      `json:"predictions"`
	Performance Performance `json:"performance"`
	Drift       Drift       `json:"drift"`
	Thresholds  Thresholds  `json:"thresholds"`
	Decision    string      `json:"decision"`
	Reasons     []string    `json:"reasons"`
	Notes       []string    `json:"notes,omitempty"`
	Retrain     *Retrained  `json:"retrain,omitempty"`
	// Path is where the report was written.
	Path string `json:"path"`
}

// Model is the deployed model as its metadata describes it.
type Model struct {
	Version       string   `json:"version"`
	HorizonHours  float64  `json:"horizon_hours"`
	TrainingRunID string   `json:"training_run_id,omitempty"`
	Features      []string `json:"features"`
	TestN         int      `json:"test_n"`
	TestMAE       *float64 `json:"test_mae"`
	TestRMSE      *float64 `json:"test_rmse"`
	TestScore     *float64 `json:"test_score"`

	// dir is the served version's directory (where model_metadata.json
	// resolves to); validationSHA the sha256 of its validation report as
	// the metadata records it ("" when it has none).
	dir, validationSHA string
}

// Counts are the predictions in the window.
type Counts struct {
	Total int `json:"total"`
	// WithOutcome have a known true RUL: a failure followed, or the horizon
	// passed without one.
	WithOutcome int `json:"with_outcome"`
	Pending     int `json:"pending"`
}

// Performance is the realized performance on the predictions with a known
// outcome. Values are null when there is none.
type Performance struct {
	N    int      `json:"n"`
	MAE  *float64 `json:"mae"`
	RMSE *float64 `json:"rmse"`
	// Score is the PHM08 score (sum); ScoreMean per prediction, comparable
	// across sample sizes.
	Score     *float64 `json:"score"`
	ScoreMean *float64 `json:"score_mean"`
	// LateRate is the share of predictions that put the failure after it
	// happened (predicted RUL > true RUL): the costly error. EarlyRate the
	// share with predicted < true.
	LateRate  *float64 `json:"late_rate"`
	EarlyRate *float64 `json:"early_rate"`
	// Degradation is MAE / the model's test MAE.
	Degradation *float64 `json:"degradation"`
	// Intervals is the realized coverage of the predicted intervals, per
	// level (empty: no prediction had an interval).
	Intervals []IntervalCoverage `json:"intervals"`
}

// IntervalCoverage is the realized coverage of one interval level.
type IntervalCoverage struct {
	Level float64 `json:"level"`
	// N outcomes had an interval at this level; Coverage is the share whose
	// realized RUL fell inside it, MeanWidth its mean width (hours).
	N         int     `json:"n"`
	Coverage  float64 `json:"coverage"`
	MeanWidth float64 `json:"mean_width"`
	// MinCoverage is the coverage below which this level means retrain
	// (null: not judged).
	MinCoverage *float64 `json:"min_coverage"`
}

// Drift is the drift of the recent readings against the reference.
type Drift struct {
	Reference string        `json:"reference"`
	Readings  int64         `json:"readings"`
	MaxPSI    *float64      `json:"max_psi"`
	Sensors   []SensorDrift `json:"sensors"`
}

// SensorDrift is one sensor's drift.
type SensorDrift struct {
	Sensor  string  `json:"sensor"`
	PSI     float64 `json:"psi"`
	KS      float64 `json:"ks"`
	Count   int     `json:"count"`
	Drifted bool    `json:"drifted"`
}

// Thresholds are the decision's limits.
type Thresholds struct {
	MaxMAE         float64 `json:"max_mae"`
	MaxDegradation float64 `json:"max_degradation"`
	MaxPSI         float64 `json:"max_psi"`
	MinOutcomes    int     `json:"min_outcomes"`
	MinCoverage    float64 `json:"min_coverage"`
}

func (o Options) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: monitor: %s", exitcode.ErrUsage, fmt.Sprintf(format, a...))
	}
	switch {
	case o.ModelsDir == "":
		return bad("--models-dir is empty")
	case o.Lookback <= 0:
		return bad("--lookback %s: want a positive duration", o.Lookback)
	case o.MaxMAE < 0 || o.MaxDegradation < 0 || o.MaxPSI < 0:
		return bad("--max-mae, --max-degradation and --max-psi must be ≥ 0")
	case o.MinCoverage >= 1:
		return bad("--min-coverage %g: want a share below 1 (0: the interval level − 0.10; negative: off)", o.MinCoverage)
	case o.MinOutcomes < 1:
		return bad("--min-outcomes %d: want at least 1", o.MinOutcomes)
	case o.Retrain && o.Retrainer == nil:
		return bad("--retrain without a way to retrain")
	}
	if o.At != "" {
		if _, err := time.Parse(time.RFC3339Nano, o.At); err != nil {
			return bad("--at %q: want an RFC 3339 time", o.At)
		}
	}
	return nil
}

// Run judges the deployed model once. It returns the report and, when a
// retraining ran and its model missed the deploy gate, an error wrapping
// exitcode.ErrGate (exit 5); a failed retraining is an error (exit 1).
func Run(ctx context.Context, env *runenv.Env, opts Options) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	clock := env.Now().UTC()
	now := clock
	if opts.At != "" {
		now, _ = time.Parse(time.RFC3339Nano, opts.At)
		now = now.UTC()
	}
	m, err := readModel(opts.ModelsDir)
	if err != nil {
		return nil, err
	}
	ref, err := findReference(opts, m)
	if err != nil {
		return nil, err
	}
	tenant := opts.DB.Tenant
	if tenant == "" {
		tenant = "default"
	}
	rep := &Report{
		Schema: ReportSchema, RunID: monitorRunID(clock), CreatedAt: clock, Tenant: tenant, Model: m,
		From: now.Add(-opts.Lookback.D()), To: now, Reasons: []string{},
		Thresholds: Thresholds{MaxMAE: opts.MaxMAE, MaxDegradation: opts.MaxDegradation, MaxPSI: opts.MaxPSI, MinOutcomes: opts.MinOutcomes,
			MinCoverage: opts.MinCoverage},
	}
	db, err := pg.Connect(ctx, opts.DB)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer db.Close()
	preds, err := readPredictions(ctx, db, opts.DB, tenant, m.Version, rep.From, rep.To)
	if err != nil {
		return nil, err
	}
	first := rep.From
	if len(preds) > 0 {
		first = preds[0].at
		for _, p := range preds {
			first = minTime(first, p.at)
		}
	}
	fails, err := readFailures(ctx, db, opts.DB, tenant, first)
	if err != nil {
		return nil, err
	}
	outcomes, pending := resolve(preds, fails, m.HorizonHours, now)
	rep.Predictions = Counts{Total: len(preds), WithOutcome: len(outcomes), Pending: pending}
	rep.Performance = score(outcomes, m.TestMAE)
	rep.Performance.Intervals = coverage(outcomes)

	rep.Drift.Reference = ref
	sketches, n, err := readReadings(ctx, db, opts.DB, tenant, driftSensors(ref, m), rep.From, rep.To, opts.SampleSize)
	if err != nil {
		return nil, err
	}
	rep.Drift.Readings = n
	if err := compareDrift(&rep.Drift, ref, sketches, opts.MaxPSI); err != nil {
		return nil, err
	}
	decide(rep, opts)
	env.Log.Info("monitor: "+rep.Decision, "model", m.Version, "outcomes", len(outcomes), "mae", deref(rep.Performance.MAE),
		"max_psi", deref(rep.Drift.MaxPSI), "reasons", strings.Join(rep.Reasons, "; "))

	rec, err := startRecord(ctx, env, opts, rep)
	if err != nil {
		return rep, err
	}
	var retrainErr error
	if rep.Decision == DecisionRetrain && opts.Retrain {
		env.Log.Info("monitor: retraining", "reasons", strings.Join(rep.Reasons, "; "))
		rep.Retrain, retrainErr = opts.Retrainer(ctx)
		if rep.Retrain == nil {
			rep.Retrain = &Retrained{}
		}
		if retrainErr != nil {
			rep.Retrain.Error = retrainErr.Error()
		}
	}
	if err := finishRecord(ctx, rec, opts, rep, retrainErr); err != nil {
		return rep, err
	}
	if opts.ToDB {
		if err := writeResult(ctx, db, opts.DB, rep); err != nil {
			return rep, err
		}
	}
	if retrainErr != nil {
		if errors.Is(retrainErr, exitcode.ErrGate) {
			return rep, fmt.Errorf("monitor: retrained, but the new model missed the deploy gate: %w", retrainErr)
		}
		return rep, fmt.Errorf("monitor: retrain: %w", retrainErr)
	}
	return rep, nil
}

// decide sets the decision and its reasons.
func decide(rep *Report, o Options) {
	p := rep.Performance
	switch {
	case p.N < o.MinOutcomes:
		rep.Notes = append(rep.Notes, fmt.Sprintf("performance not judged: %d predictions with a known outcome, fewer than --min-outcomes %d", p.N, o.MinOutcomes))
	default:
		if o.MaxMAE > 0 && *p.MAE > o.MaxMAE {
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("realized MAE %.3g h > --max-mae %.3g h (%d predictions)", *p.MAE, o.MaxMAE, p.N))
		}
		if o.MaxDegradation > 0 && p.Degradation != nil && *p.Degradation > 1+o.MaxDegradation {
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("realized MAE %.3g h is %.2f× the model's test MAE %.3g h (> 1 + --max-degradation %.3g)",
				*p.MAE, *p.Degradation, *rep.Model.TestMAE, o.MaxDegradation))
		}
		if o.MaxDegradation > 0 && p.Degradation == nil {
			rep.Notes = append(rep.Notes, "degradation not judged: the deployed model's metadata has no test MAE")
		}
	}
	for i := range rep.Performance.Intervals {
		c := &rep.Performance.Intervals[i]
		limit := o.MinCoverage
		if limit == 0 {
			limit = c.Level - 0.10
		}
		switch {
		case o.MinCoverage < 0:
		case c.N < o.MinOutcomes:
			rep.Notes = append(rep.Notes, fmt.Sprintf("%g %% interval coverage not judged: %d outcomes with an interval, fewer than --min-outcomes %d", 100*c.Level, c.N, o.MinOutcomes))
		default:
			c.MinCoverage = ptr(limit)
			if c.Coverage < limit {
				rep.Reasons = append(rep.Reasons, fmt.Sprintf("%g %% interval covered %.1f %% of %d outcomes < --min-coverage %.1f %%", 100*c.Level, 100*c.Coverage, c.N, 100*limit))
			}
		}
	}
	if rep.Drift.Readings == 0 {
		rep.Notes = append(rep.Notes, "drift not judged: no readings in the window")
	}
	for _, s := range rep.Drift.Sensors {
		if s.Drifted {
			rep.Reasons = append(rep.Reasons, fmt.Sprintf("drift: %s PSI %.3g > --max-psi %.3g (KS %.3g)", s.Sensor, s.PSI, o.MaxPSI, s.KS))
		}
	}
	rep.Decision = DecisionOK
	if len(rep.Reasons) > 0 {
		rep.Decision = DecisionRetrain
	}
}

// startRecord starts the monitor's run record (runs/monitor-<time>/), so a
// retraining it starts happens inside it.
func startRecord(ctx context.Context, env *runenv.Env, o Options, rep *Report) (*tracking.Recorder, error) {
	runsDir := o.RunsDir
	if runsDir == "" {
		runsDir = tracking.DefaultConfig().RunsDir
	}
	dir := filepath.Join(runsDir, rep.RunID)
	renv := *env
	renv.RunID = rep.RunID
	rec, err := tracking.StartRun(ctx, &renv, tracking.Options{Dir: dir, Name: rep.RunID, Command: "modax-ml monitor", Tracking: o.Tracking})
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	rep.Path = filepath.Join(dir, ReportFile)
	return rec, nil
}

// finishRecord writes the report (run directory and Out) and completes the
// run record: thresholds as params, realized metrics as final metrics, the
// decision as a tag, the report as an artifact.
func finishRecord(ctx context.Context, rec *tracking.Recorder, o Options, rep *Report, retrainErr error) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	// The run directory's copy and --out are one write set: both or neither.
	set := atomicfile.NewSet()
	defer set.Abort()
	for _, p := range []string{rep.Path, o.Out} {
		if p == "" {
			continue
		}
		if err := set.WriteFile(p, b); err != nil {
			return fmt.Errorf("monitor: %w", err)
		}
	}
	if err := set.Commit(); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	params := map[string]string{}
	for k, v := range map[string]float64{"monitor.max_mae": o.MaxMAE, "monitor.max_degradation": o.MaxDegradation, "monitor.max_psi": o.MaxPSI,
		"monitor.min_outcomes": float64(o.MinOutcomes), "monitor.lookback_hours": o.Lookback.D().Hours()} {
		params[k] = tracking.Params(map[string]any{k: v})[k]
	}
	params["monitor.model_version"] = rep.Model.Version
	final := map[string]float64{"predictions": float64(rep.Predictions.Total), "outcomes": float64(rep.Performance.N)}
	for k, v := range map[string]*float64{"realized_mae": rep.Performance.MAE, "realized_rmse": rep.Performance.RMSE,
		"realized_score_mean": rep.Performance.ScoreMean, "late_rate": rep.Performance.LateRate, "degradation": rep.Performance.Degradation,
		"max_psi": rep.Drift.MaxPSI} {
		if v != nil {
			final[k] = *v
		}
	}
	for _, c := range rep.Performance.Intervals {
		final[fmt.Sprintf("coverage_%g", c.Level)] = c.Coverage
	}
	tags := map[string]string{"modax.kind": "monitor", "modax.monitor.decision": rep.Decision}
	if rep.Retrain != nil && rep.Retrain.RunID != "" {
		tags["modax.monitor.retrain_run"] = rep.Retrain.RunID
	}
	errs := []error{rec.LogParams(ctx, params), rec.SetFinalMetrics(ctx, final), rec.SetTags(ctx, tags), rec.LogArtifact(ctx, ReportFile, rep.Path)}
	endErr := retrainErr
	if errors.Is(endErr, exitcode.ErrGate) {
		endErr = nil // the monitor did its job; the retrain run records the rejection
	}
	errs = append(errs, rec.EndRun(ctx, endErr))
	return errors.Join(errs...)
}

// readModel reads the deployed model's metadata (deploy's model_metadata.json,
// a link into the served version's directory: it is resolved once, so that
// the metadata and the reference statistics come from the same version even
// if a deploy switches meanwhile).
func readModel(modelsDir string) (Model, error) {
	path := filepath.Join(modelsDir, "model_metadata.json")
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		return Model{}, fmt.Errorf("monitor: no deployed model: %s does not exist (deploy one first)", path)
	}
	if err != nil {
		return Model{}, fmt.Errorf("monitor: %w", err)
	}
	b, err := os.ReadFile(resolved)
	if err != nil {
		return Model{}, fmt.Errorf("monitor: %w", err)
	}
	var md struct {
		ModelVersion  string   `json:"model_version"`
		Features      []string `json:"features"`
		HorizonHours  float64  `json:"horizon_hours"`
		TrainingRunID string   `json:"training_run_id"`
		TestMetrics   struct {
			N     int      `json:"n"`
			MAE   *float64 `json:"mae"`
			RMSE  *float64 `json:"rmse"`
			Score *float64 `json:"score"`
		} `json:"test_metrics"`
		Validation *struct {
			File   string `json:"file"`
			SHA256 string `json:"sha256"`
		} `json:"validation"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return Model{}, fmt.Errorf("monitor: %s: %w", path, err)
	}
	if md.ModelVersion == "" || !(md.HorizonHours > 0) {
		return Model{}, fmt.Errorf("monitor: %s: no model_version or horizon_hours (not a deploy metadata file?)", path)
	}
	m := Model{Version: md.ModelVersion, HorizonHours: md.HorizonHours, TrainingRunID: md.TrainingRunID, Features: md.Features,
		TestN: md.TestMetrics.N, TestMAE: md.TestMetrics.MAE, TestRMSE: md.TestMetrics.RMSE, TestScore: md.TestMetrics.Score,
		dir: filepath.Dir(resolved)}
	if v := md.Validation; v != nil {
		if v.File != validationFile || v.SHA256 == "" {
			return Model{}, fmt.Errorf("monitor: %s: validation names %q (sha256 %q), want %s with its sha256", path, v.File, v.SHA256, validationFile)
		}
		m.validationSHA = v.SHA256
	}
	return m, nil
}

// validationFile is the validation report's name in a version directory.
const validationFile = "validation.json"

// findReference resolves the validation report with the reference
// distributions.
func findReference(o Options, m Model) (string, error) {
	if o.Reference != "" {
		return o.Reference, nil
	}
	served := filepath.Join(m.dir, validationFile)
	if m.validationSHA != "" {
		// Published with the served version: it must be there, unchanged.
		sum, err := dataset.FileSHA256(served)
		if err != nil {
			return "", fmt.Errorf("monitor: the served model %s: %w", m.Version, err)
		}
		if sum != m.validationSHA {
			return "", fmt.Errorf("monitor: %s has sha256 %.12s…, model_metadata.json of %s records %.12s… (corrupt; redeploy or pass --reference)",
				served, sum, m.Version, m.validationSHA)
		}
		return served, nil
	}
	cands := []string{served}
	if m.TrainingRunID != "" {
		runsDir := o.RunsDir
		if runsDir == "" {
			runsDir = tracking.DefaultConfig().RunsDir
		}
		cands = append(cands, filepath.Join(runsDir, m.TrainingRunID, "validation.json"))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: monitor: no reference statistics for model %s: looked for %s (name one with --reference)",
		exitcode.ErrUsage, m.Version, strings.Join(cands, ", "))
}

// monitorRunID is "monitor-<UTC time>-<4 hex digits>".
func monitorRunID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return "monitor-" + now.Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func ptr(v float64) *float64 { return &v }

// driftSensors are the sensors judged: the model's features, else all.
func driftSensors(_ string, m Model) []string {
	return slices.Clone(m.Features)
}
