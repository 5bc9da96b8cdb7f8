package tracking

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// mirror sends what a Record holds and its MLflowState says is missing.
type mirror struct {
	c   *Client
	cfg *Resolved
	log *slog.Logger
	dir string
	now func() time.Time
	// save persists the record after each accepted step, so a crash never
	// makes a later sync send something twice (or create a second run).
	save func() error
	// sent counts what this mirror sent (for results and tests).
	sent SyncCounts
}

// SyncCounts counts what a sync sent.
type SyncCounts struct {
	Runs         int `json:"runs_created"`
	Params       int `json:"params"`
	Tags         int `json:"tags"`
	Metrics      int `json:"metrics"`
	Artifacts    int `json:"artifacts"`
	ModelVersion int `json:"model_versions"`
	StatusUpdate int `json:"status_updates"`
}

// saveError is a failure to write run.json: a local error, not a tracking one.
type saveError struct{ err error }

func (e *saveError) Error() string { return e.err.Error() }
func (e *saveError) Unwrap() error { return e.err }

func (m *mirror) persist() error {
	if m.save == nil {
		return nil
	}
	if err := m.save(); err != nil {
		return &saveError{err}
	}
	return nil
}

// sync brings the MLflow run up to date with r. Steps that the server refuses
// (4xx) are reported and the later steps still run; an unreachable server
// stops the sync at once. r.MLflow is updated as steps succeed.
func (m *mirror) sync(ctx context.Context, r *Record) error {
	r.switchServer(RedactURI(m.cfg.Base.String()))
	st := r.MLflow
	base := st.TrackingURI
	before := m.sent
	err := m.steps(ctx, r)
	if st.RunID != "" && runMissing(err) {
		m.log.Warn("tracking: the MLflow run of this record no longer exists on the server; creating a new one", "mlflow_run_id", st.RunID)
		*st = MLflowState{TrackingURI: base}
		err = m.steps(ctx, r)
	}
	if err == nil && m.sent == before && st.LastError == "" && st.LastSync != nil {
		return nil // nothing was due: leave run.json alone
	}
	now := m.now().UTC()
	st.LastSync = &now
	st.LastError = ""
	if err != nil {
		st.LastError = err.Error()
	}
	if perr := m.persist(); perr != nil && err == nil {
		err = perr
	}
	return err
}

// switchServer makes r.MLflow the state for the server base: the current
// one, one synced before (kept in MLflowPrevious), or a new one.
func (r *Record) switchServer(base string) {
	if r.MLflow != nil && r.MLflow.TrackingURI == base {
		return
	}
	next := &MLflowState{TrackingURI: base}
	var keep []*MLflowState
	for _, p := range r.MLflowPrevious {
		if p.TrackingURI == base {
			next = p
		} else {
			keep = append(keep, p)
		}
	}
	if r.MLflow != nil && r.MLflow.RunID != "" {
		keep = append(keep, r.MLflow)
	}
	r.MLflow, r.MLflowPrevious = next, keep
}

// runMissing reports whether err says the MLflow run is gone (deleted on the
// server, or the server's store was reset).
func runMissing(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == CodeResourceDoesNotExist && strings.HasPrefix(ae.Path, "/api/2.0/mlflow/runs/")
}

func (m *mirror) steps(ctx context.Context, r *Record) error {
	st := r.MLflow
	if st.RunID == "" {
		if err := m.createRun(ctx, r); err != nil {
			return err
		}
	}
	var errs []error
	step := func(err error) bool {
		if err == nil {
			return true
		}
		errs = append(errs, err)
		var se *saveError
		return !stopsSync(err) && !errors.As(err, &se)
	}
	if !step(m.logData(ctx, r)) {
		return errors.Join(errs...)
	}
	if !step(m.uploadArtifacts(ctx, r)) {
		return errors.Join(errs...)
	}
	if !step(m.register(ctx, r)) {
		return errors.Join(errs...)
	}
	step(m.updateStatus(ctx, r))
	return errors.Join(errs...)
}

func (m *mirror) createRun(ctx context.Context, r *Record) error {
	st := r.MLflow
	expID, err := m.c.EnsureExperiment(ctx, m.cfg.Experiment)
	if err != nil {
		return err
	}
	info, err := m.c.CreateRun(ctx, expID, runName(r), r.StartTime, sortedKV(systemTags(r), MaxTagValueLength))
	if err != nil {
		return err
	}
	st.ExperimentID, st.RunID, st.ArtifactURI = expID, info.RunID, info.ArtifactURI
	st.StatusSent = StatusRunning
	m.sent.Runs++
	m.log.Info("tracking: MLflow run created", "experiment", m.cfg.Experiment, "experiment_id", expID, "mlflow_run_id", info.RunID)
	return m.persist()
}

func runName(r *Record) string {
	if r.Name != "" {
		return r.Name
	}
	return r.RunID
}

// systemTags are MLflow's own tags (mlflow.*) and modax's, sent when the run
// is created.
func systemTags(r *Record) map[string]string {
	source := r.Command
	if source == "" {
		source = "modax-ml"
	}
	t := map[string]string{
		"mlflow.runName":     runName(r),
		"mlflow.source.name": source,
		"mlflow.source.type": "LOCAL",
		"modax.run_id":       r.RunID,
		"modax.tool_version": r.ToolVersion,
		"modax.seed":         fmt.Sprint(r.Seed),
	}
	if r.User != "" {
		t["mlflow.user"] = r.User
	}
	if r.Git != nil {
		t["mlflow.source.git.commit"] = r.Git.Commit
		if r.Git.Branch != "" {
			t["mlflow.source.git.branch"] = r.Git.Branch
		}
		if r.Git.Dirty != nil {
			t["modax.git.dirty"] = fmt.Sprint(*r.Git.Dirty)
		}
	}
	return t
}

// sortedKV returns m as key-sorted pairs with MLflow-clean keys and values
// cut to maxValue characters.
func sortedKV(m map[string]string, maxValue int) []KV {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]KV, 0, len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		ck := CleanKey(k)
		if seen[ck] {
			continue // two keys cleaned to one: MLflow refuses duplicates in a request
		}
		seen[ck] = true
		out = append(out, KV{Key: ck, Value: truncate(m[k], maxValue)})
	}
	return out
}

// hashMap hashes a string map independently of its order.
func hashMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(m[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// logData sends the params and tags (when changed since last sent: both are
// idempotent in MLflow), the metric points not sent yet, and the final
// metrics whose value changed. Each group goes in its own requests, so one
// the server refuses (a param whose value changed on resume) does not hold
// back the others.
func (m *mirror) logData(ctx context.Context, r *Record) error {
	var errs []error
	for _, f := range []func(context.Context, *Record) error{m.logParamsTags, m.logSeries, m.logFinal} {
		err := f(ctx, r)
		if err == nil {
			continue
		}
		errs = append(errs, err)
		var se *saveError
		if stopsSync(err) || errors.As(err, &se) {
			break
		}
	}
	return errors.Join(errs...)
}

func (m *mirror) logParamsTags(ctx context.Context, r *Record) error {
	st := r.MLflow
	var params, tags []KV
	ph, th := hashMap(r.Params), hashMap(r.Tags)
	if len(r.Params) > 0 && st.ParamsSHA256 != ph {
		params = sortedKV(r.Params, MaxParamValueLength)
	}
	if len(r.Tags) > 0 && st.TagsSHA256 != th {
		tags = sortedKV(r.Tags, MaxTagValueLength)
	}
	if len(params)+len(tags) == 0 {
		return nil
	}
	err := m.c.LogBatch(ctx, st.RunID, nil, params, tags, func(c BatchCounts) {
		m.sent.Params += c.Params
		m.sent.Tags += c.Tags
	})
	if err != nil {
		return err
	}
	if params != nil {
		st.ParamsSHA256 = ph
	}
	if tags != nil {
		st.TagsSHA256 = th
	}
	return m.persist()
}

func (m *mirror) logSeries(ctx context.Context, r *Record) error {
	st := r.MLflow
	if st.MetricsSent > len(r.Metrics) {
		st.MetricsSent = len(r.Metrics)
	}
	pending := r.Metrics[st.MetricsSent:]
	if len(pending) == 0 {
		return nil
	}
	metrics := make([]WireMetric, 0, len(pending))
	for _, p := range pending {
		ts := p.Timestamp
		if ts.IsZero() { // a hand-made record without timestamps
			ts = r.StartTime
		}
		metrics = append(metrics, WireMetric{Key: CleanKey(p.Name), Value: p.Value, Timestamp: ts.UnixMilli(), Step: p.Step})
	}
	err := m.c.LogBatch(ctx, st.RunID, metrics, nil, nil, func(c BatchCounts) {
		// Metrics append in MLflow: remember each accepted request at once,
		// so a later failure never makes a sync send a point twice.
		st.MetricsSent += c.Metrics
		m.sent.Metrics += c.Metrics
		_ = m.persist() // the persist below reports a failure
	})
	if err != nil {
		return err
	}
	return m.persist()
}

func (m *mirror) logFinal(ctx context.Context, r *Record) error {
	st := r.MLflow
	var final []WireMetric
	values := map[string]Float{}
	ts := m.now() // as MLflow's log_metric stamps a value: when it is logged
	for _, k := range sortedKeys(r.FinalMetrics) {
		v := r.FinalMetrics[k]
		if sent, ok := st.FinalSent[k]; ok && sameFloat(sent, v) {
			continue
		}
		final = append(final, WireMetric{Key: CleanKey(k), Value: v, Timestamp: ts.UnixMilli(), Step: 0})
		values[k] = v
	}
	if len(final) == 0 {
		return nil
	}
	if err := m.c.LogBatch(ctx, st.RunID, final, nil, nil, nil); err != nil {
		return err
	}
	if st.FinalSent == nil {
		st.FinalSent = map[string]Float{}
	}
	for k, v := range values {
		st.FinalSent[k] = v
	}
	m.sent.Metrics += len(final)
	return m.persist()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// uploadArtifacts uploads the artifacts whose content was not uploaded yet.
func (m *mirror) uploadArtifacts(ctx context.Context, r *Record) error {
	st := r.MLflow
	var errs []error
	for _, a := range r.Artifacts {
		if st.ArtifactsSent[a.Name] == a.SHA256 {
			continue
		}
		file := a.Path
		if !filepath.IsAbs(file) {
			file = filepath.Join(m.dir, file)
		}
		if err := m.c.UploadArtifact(ctx, st.ArtifactURI, a.Name, file); err != nil {
			errs = append(errs, err)
			if stopsSync(err) || errors.Is(err, ErrArtifactStore) {
				break
			}
			continue
		}
		if st.ArtifactsSent == nil {
			st.ArtifactsSent = map[string]string{}
		}
		st.ArtifactsSent[a.Name] = a.SHA256
		m.sent.Artifacts++
		if err := m.persist(); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// register creates the registered model version of a deployed model and
// points the alias at it.
func (m *mirror) register(ctx context.Context, r *Record) error {
	d, st := r.Deploy, r.MLflow
	if d == nil || d.Decision != DeployDeployed || (st.ModelVersion != "" && st.AliasSet) {
		return nil
	}
	if m.cfg.RegisteredModel == "" {
		return nil
	}
	if st.ModelVersion == "" {
		if d.Artifact == "" {
			return errors.New("tracking: deploy names no model artifact to register")
		}
		uploaded := false
		for _, a := range r.Artifacts {
			if (a.Name == d.Artifact || strings.HasPrefix(a.Name, d.Artifact+"/")) && st.ArtifactsSent[a.Name] == a.SHA256 {
				uploaded = true
			}
		}
		if !uploaded {
			return fmt.Errorf("tracking: model artifact %q is not uploaded; not registering the model version", d.Artifact)
		}
		if err := m.c.CreateRegisteredModel(ctx, m.cfg.RegisteredModel, "Remaining-Useful-Life predictor deployed by modax-ml"); err != nil {
			return err
		}
		source := strings.TrimRight(st.ArtifactURI, "/") + "/" + d.Artifact
		tags := []KV{{Key: "modax.run_id", Value: r.RunID}}
		if d.Version != "" {
			tags = append(tags, KV{Key: "modax.model_version", Value: d.Version})
		}
		v, err := m.c.CreateModelVersion(ctx, m.cfg.RegisteredModel, source, st.RunID, tags)
		if err != nil {
			return err
		}
		st.ModelVersion = v
		m.sent.ModelVersion++
		if err := m.persist(); err != nil {
			return err
		}
	}
	if m.cfg.Alias != "" {
		if err := m.c.SetRegisteredModelAlias(ctx, m.cfg.RegisteredModel, m.cfg.Alias, st.ModelVersion); err != nil {
			return err
		}
	}
	st.AliasSet = true
	return m.persist()
}

// updateStatus sends the run's status (and end time and name) when changed.
func (m *mirror) updateStatus(ctx context.Context, r *Record) error {
	st := r.MLflow
	if st.StatusSent == r.Status {
		return nil
	}
	var end time.Time
	if r.EndTime != nil && r.Status != StatusRunning {
		end = *r.EndTime
	}
	if err := m.c.UpdateRun(ctx, st.RunID, r.Status, end, runName(r)); err != nil {
		return err
	}
	st.StatusSent = r.Status
	m.sent.StatusUpdate++
	return m.persist()
}
