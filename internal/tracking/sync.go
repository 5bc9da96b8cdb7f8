package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/modax/modax-ml/internal/exitcode"
)

// SyncOptions configure Sync.
type SyncOptions struct {
	Tracking Config
	// Getenv reads MLFLOW_* variables (default os.Getenv).
	Getenv func(string) string
	// AllowRunning syncs a record still marked running (normally refused: the
	// run may still be writing it).
	AllowRunning bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// SyncResult is what a sync did.
type SyncResult struct {
	RunID        string     `json:"run_id"`
	Dir          string     `json:"dir"`
	TrackingURI  string     `json:"tracking_uri"`
	Experiment   string     `json:"experiment"`
	ExperimentID string     `json:"experiment_id,omitempty"`
	MLflowRunID  string     `json:"mlflow_run_id,omitempty"`
	ModelVersion string     `json:"model_version,omitempty"`
	Sent         SyncCounts `json:"sent"`
	// Pending lists what is still not mirrored (empty after a full sync).
	Pending []string `json:"pending,omitempty"`
}

// Sync replays the run recorded in dir to the MLflow server: it creates the
// experiment and run when missing and sends only what run.json says was not
// sent before, so running it again sends nothing. The record remembers the
// MLflow run id; a record synced to another server starts afresh there.
// Tracking failures wrap exitcode.ErrTracking; the result is returned with
// what was done even then.
func Sync(ctx context.Context, log *slog.Logger, dir string, opts SyncOptions) (*SyncResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	cfg, err := opts.Tracking.Resolve(opts.Getenv)
	if err != nil {
		var se *SchemeError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: tracking sync: %w", exitcode.ErrUsage, err)
		}
		return nil, fmt.Errorf("tracking sync: %w", err)
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("%w: tracking sync: no MLflow server: set tracking.uri (--tracking-uri) or %s", exitcode.ErrUsage, EnvTrackingURI)
	}
	rec, err := Load(dir)
	if err != nil {
		return nil, fmt.Errorf("tracking sync: %w", err)
	}
	if rec.Status == StatusRunning && !opts.AllowRunning {
		return nil, fmt.Errorf("%w: tracking sync: run %s is still marked running (its process may still write %s); use --allow-running if it was killed", exitcode.ErrUsage, rec.RunID, RecordFile)
	}
	m := &mirror{c: NewClient(cfg, log), cfg: cfg, log: log, dir: dir, now: func() time.Time { return now().UTC() },
		save: func() error { return rec.Save(dir) }}
	err = m.sync(ctx, rec)
	st := rec.MLflow
	res := &SyncResult{RunID: rec.RunID, Dir: dir, TrackingURI: st.TrackingURI, Experiment: cfg.Experiment,
		ExperimentID: st.ExperimentID, MLflowRunID: st.RunID, ModelVersion: st.ModelVersion, Sent: m.sent, Pending: rec.Unsynced()}
	if err != nil {
		var se *saveError
		if errors.As(err, &se) || errors.Is(err, context.Canceled) {
			return res, fmt.Errorf("tracking sync: %w", err)
		}
		return res, fmt.Errorf("%w: tracking sync %s: %w", exitcode.ErrTracking, dir, err)
	}
	return res, nil
}
