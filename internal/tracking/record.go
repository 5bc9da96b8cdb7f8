package tracking

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/modax/modax-ml/internal/atomicfile"
)

// RecordFile is the name of the run record in a run directory.
const RecordFile = "run.json"

// RecordSchema names the version of the run.json format.
const RecordSchema = "modax.run/v1"

// Status of a run. The values are MLflow's RunStatus names in lower case.
type Status string

// Run statuses.
const (
	StatusRunning  Status = "running"
	StatusFinished Status = "finished"
	StatusFailed   Status = "failed"
	StatusKilled   Status = "killed"
)

// StageStatus is what happened to a stage.
type StageStatus string

// Stage statuses: running while it runs, then ran, skipped (outputs were
// fresh), failed or killed (cancelled).
const (
	StageRunning StageStatus = "running"
	StageRan     StageStatus = "ran"
	StageSkipped StageStatus = "skipped"
	StageFailed  StageStatus = "failed"
	StageKilled  StageStatus = "killed"
)

// Deploy decisions.
const (
	DeployDeployed = "deployed"
	DeployRejected = "rejected" // the model missed the gate
	DeploySkipped  = "skipped"  // the deploy stage did not run
)

// Record is the content of run.json. It is the source of truth for a run;
// the MLflow mirror is derived from it.
type Record struct {
	Schema      string     `json:"schema"`
	RunID       string     `json:"run_id"`
	Name        string     `json:"name,omitempty"`
	Status      Status     `json:"status"`
	Error       string     `json:"error,omitempty"`
	StartTime   time.Time  `json:"start_time"`
	EndTime     *time.Time `json:"end_time,omitempty"`
	ToolVersion string     `json:"tool_version"`
	Command     string     `json:"command,omitempty"`
	User        string     `json:"user,omitempty"`
	// Git describes the repository the run was started in; absent outside one.
	Git  *Git  `json:"git,omitempty"`
	Seed int64 `json:"seed"`
	// Params are the flattened effective configuration ("train.epochs": "20").
	Params map[string]string `json:"params,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
	Stages []Stage           `json:"stages,omitempty"`
	// Metrics is the series of per-step (per-epoch) values, in logging order.
	Metrics      []Metric         `json:"metrics,omitempty"`
	FinalMetrics map[string]Float `json:"final_metrics,omitempty"`
	Deploy       *Deploy          `json:"deploy,omitempty"`
	Artifacts    []Artifact       `json:"artifacts,omitempty"`
	// MLflow is the state of the mirror; absent when tracking is off.
	MLflow *MLflowState `json:"mlflow,omitempty"`
	// MLflowPrevious keeps the state on other servers the run was synced to
	// before, so syncing back to one of them continues there.
	MLflowPrevious []*MLflowState `json:"mlflow_previous,omitempty"`

	// Dir is the directory the record was loaded from (not stored).
	Dir string `json:"-"`
}

// Git is the state of the source repository.
type Git struct {
	Commit string `json:"commit"`
	Branch string `json:"branch,omitempty"`
	// Dirty is nil when it could not be determined (no git binary).
	Dirty *bool `json:"dirty,omitempty"`
}

// Stage is one stage of the run.
type Stage struct {
	Name   string      `json:"name"`
	Status StageStatus `json:"status"`
	// Reason says why the stage ran or was skipped ("inputs changed",
	// "restored from cache: inputs, options and tool version unchanged").
	Reason    string    `json:"reason,omitempty"`
	StartTime time.Time `json:"start_time"`
	// DurationSeconds is the wall time of the stage (0 while running).
	DurationSeconds float64 `json:"duration_s"`
	Inputs          []File  `json:"inputs,omitempty"`
	Outputs         []File  `json:"outputs,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// Duration returns the stage's wall time.
func (s Stage) Duration() time.Duration {
	return time.Duration(s.DurationSeconds * float64(time.Second))
}

// File is a file a stage read or wrote, with its content hash.
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Metric is one value of a metric series.
type Metric struct {
	Name      string    `json:"name"`
	Step      int64     `json:"step"`
	Value     Float     `json:"value"`
	Timestamp time.Time `json:"timestamp"`
}

// Deploy is the deployment decision of the run.
type Deploy struct {
	// Decision is DeployDeployed, DeployRejected or DeploySkipped.
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	// Version is the local model version (deploy's version history).
	Version string `json:"version,omitempty"`
	// Path is where the deployed model was published (models/rul_predictor.onnx).
	Path string `json:"path,omitempty"`
	// Artifact is the artifact directory of the model in the run
	// (Artifact.Name prefix, e.g. "model"); the registered model version
	// points at it.
	Artifact string `json:"artifact,omitempty"`
	// Metrics are the values the gate compared.
	Metrics map[string]Float `json:"metrics,omitempty"`
}

// Artifact is a file attached to the run.
type Artifact struct {
	// Name is the artifact path ("report.md", "model/rul_predictor.onnx").
	Name string `json:"name"`
	// Path is the local file, relative to the run directory when inside it.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// MLflowState is what has been mirrored to the MLflow server. Counters and
// hashes let Sync send only what is missing, so replaying is idempotent.
type MLflowState struct {
	TrackingURI  string `json:"tracking_uri"`
	ExperimentID string `json:"experiment_id,omitempty"`
	RunID        string `json:"run_id,omitempty"`
	ArtifactURI  string `json:"artifact_uri,omitempty"`
	// ParamsSHA256 and TagsSHA256 hash the params and tags last sent.
	ParamsSHA256 string `json:"params_sha256,omitempty"`
	TagsSHA256   string `json:"tags_sha256,omitempty"`
	// MetricsSent counts the leading entries of Record.Metrics sent.
	MetricsSent int `json:"metrics_sent"`
	// FinalSent holds the final metric values sent.
	FinalSent map[string]Float `json:"final_sent,omitempty"`
	// ArtifactsSent maps artifact names to the sha256 uploaded.
	ArtifactsSent map[string]string `json:"artifacts_sent,omitempty"`
	// ModelVersion is the registered model version created for the deploy.
	ModelVersion string `json:"model_version,omitempty"`
	AliasSet     bool   `json:"alias_set,omitempty"`
	// StatusSent is the run status last sent with runs/update.
	StatusSent Status `json:"status_sent,omitempty"`
	// LastError is the error of the last failed mirror attempt ("" when the
	// last attempt succeeded).
	LastError string     `json:"last_error,omitempty"`
	LastSync  *time.Time `json:"last_sync,omitempty"`
}

// Float is a float64 written with full precision
// (strconv.FormatFloat(v, 'g', -1, 64)); NaN and ±Inf are written as the
// strings "NaN", "Infinity" and "-Infinity" (protobuf's JSON mapping, which
// MLflow reads).
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	return appendFloat(nil, float64(f)), nil
}

func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *Float) UnmarshalJSON(b []byte) error {
	s := string(b)
	switch s {
	case `"NaN"`:
		*f = Float(math.NaN())
		return nil
	case `"Infinity"`:
		*f = Float(math.Inf(1))
		return nil
	case `"-Infinity"`:
		*f = Float(math.Inf(-1))
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("invalid number %s", s)
	}
	*f = Float(v)
	return nil
}

// Floats converts a map of float64 to Float values.
func Floats(m map[string]float64) map[string]Float {
	if m == nil {
		return nil
	}
	out := make(map[string]Float, len(m))
	for k, v := range m {
		out[k] = Float(v)
	}
	return out
}

// Load reads the run record of a run directory.
func Load(dir string) (*Record, error) {
	path := filepath.Join(dir, RecordFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read run record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read run record %s: %w", path, err)
	}
	if r.Schema != RecordSchema {
		return nil, fmt.Errorf("read run record %s: schema %q, want %q", path, r.Schema, RecordSchema)
	}
	if r.RunID == "" {
		return nil, fmt.Errorf("read run record %s: no run_id", path)
	}
	r.Dir = dir
	return &r, nil
}

// Save writes the record to dir/run.json atomically.
func (r *Record) Save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write run record: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, RecordFile), append(b, '\n'))
}

// Duration is the run's wall time: up to EndTime, or up to now while running.
func (r *Record) Duration(now time.Time) time.Duration {
	end := now
	if r.EndTime != nil {
		end = *r.EndTime
	}
	return end.Sub(r.StartTime)
}

// Stage returns the named stage, or nil.
func (r *Record) Stage(name string) *Stage {
	for i := range r.Stages {
		if r.Stages[i].Name == name {
			return &r.Stages[i]
		}
	}
	return nil
}

// StageCounts counts the stages by status.
func (r *Record) StageCounts() map[StageStatus]int {
	m := map[StageStatus]int{}
	for _, s := range r.Stages {
		m[s.Status]++
	}
	return m
}

// Unsynced lists what has not been mirrored to MLflow ("run", "params",
// "metrics 1200/2500", ...); empty when everything is, or tracking is off.
func (r *Record) Unsynced() []string {
	m := r.MLflow
	if m == nil {
		return nil
	}
	var out []string
	if m.RunID == "" {
		out = append(out, "run")
	}
	if len(r.Params) > 0 && m.ParamsSHA256 != hashMap(r.Params) {
		out = append(out, "params")
	}
	if len(r.Tags) > 0 && m.TagsSHA256 != hashMap(r.Tags) {
		out = append(out, "tags")
	}
	if m.MetricsSent < len(r.Metrics) {
		out = append(out, fmt.Sprintf("metrics %d/%d", m.MetricsSent, len(r.Metrics)))
	}
	final := 0
	for k, v := range r.FinalMetrics {
		if sent, ok := m.FinalSent[k]; !ok || !sameFloat(sent, v) {
			final++
		}
	}
	if final > 0 {
		out = append(out, fmt.Sprintf("final metrics %d", final))
	}
	arts := 0
	for _, a := range r.Artifacts {
		if m.ArtifactsSent[a.Name] != a.SHA256 {
			arts++
		}
	}
	if arts > 0 {
		out = append(out, fmt.Sprintf("artifacts %d", arts))
	}
	if r.Deploy != nil && r.Deploy.Decision == DeployDeployed && (m.ModelVersion == "" || !m.AliasSet) {
		out = append(out, "model version")
	}
	if m.RunID != "" && m.StatusSent != r.Status {
		out = append(out, "status")
	}
	return out
}

// TrackingState summarises the mirror: "off", "synced" or "pending".
func (r *Record) TrackingState() string {
	switch {
	case r.MLflow == nil:
		return "off"
	case len(r.Unsynced()) == 0:
		return "synced"
	default:
		return "pending"
	}
}

func sameFloat(a, b Float) bool {
	return a == b || (math.IsNaN(float64(a)) && math.IsNaN(float64(b)))
}

// List reads the run records under runsDir (runsDir/*/run.json), newest first.
// Directories without run.json are ignored; unreadable records are returned
// as errors next to the good ones.
func List(runsDir string) ([]*Record, []error) {
	entries, err := os.ReadDir(runsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("list runs: %w", err)}
	}
	var recs []*Record
	var errs []error
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(runsDir, e.Name())
		if _, err := os.Stat(filepath.Join(dir, RecordFile)); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		r, err := Load(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		recs = append(recs, r)
	}
	slices.SortStableFunc(recs, func(a, b *Record) int {
		if c := b.StartTime.Compare(a.StartTime); c != 0 {
			return c
		}
		return strings.Compare(a.RunID, b.RunID)
	})
	return recs, errs
}

// Find resolves a run by id under runsDir: an exact directory name, else a
// unique prefix of one. A path to a run directory (holding run.json) works too.
func Find(runsDir, id string) (string, error) {
	if id == "" {
		return "", errors.New("empty run id")
	}
	exact := filepath.Join(runsDir, id)
	if _, err := os.Stat(filepath.Join(exact, RecordFile)); err == nil {
		return exact, nil
	}
	if _, err := os.Stat(filepath.Join(id, RecordFile)); err == nil {
		return id, nil
	}
	entries, err := os.ReadDir(runsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("find run %s: %w", id, err)
	}
	var matches []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), id) {
			if _, err := os.Stat(filepath.Join(runsDir, e.Name(), RecordFile)); err == nil {
				matches = append(matches, e.Name())
			}
		}
	}
	switch len(matches) {
	case 1:
		return filepath.Join(runsDir, matches[0]), nil
	case 0:
		return "", fmt.Errorf("run %q not found in %s", id, runsDir)
	}
	return "", fmt.Errorf("run id %q is ambiguous in %s: %s", id, runsDir, strings.Join(matches, ", "))
}
