package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/internal/runenv"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/pipeline"
)

// mlflowRegistry is deploy's Registry when tracking names an MLflow server
// (tracking.uri or MLFLOW_TRACKING_URI). Each deploy or rollback is recorded
// as a run of its own, runs/<run id>/run.json, mirrored to MLflow like a
// pipeline run: the served version's files are its "model" artifact, and
// internal/tracking — the same code that registers a pipeline run's model —
// registers them as a new version of tracking.registered_model and points
// tracking.alias (champion) at it. What the server did not take stays in
// run.json, and `modax-ml tracking sync` replays it.
type mlflowRegistry struct {
	env      *runenv.Env // env.RunID names the run
	tracking tracking.Config
	runsDir  string
	repoDir  string
	command  string
}

// newRegistry returns the registry for a deploy command, or nil when no
// MLflow server is configured. env.RunID is set to a fresh
// "<action>-<time>-<hex>" id unless --run-id named one, so that
// model_metadata.json's deploy_run_id names the run record.
func newRegistry(a *app, env *runenv.Env, action string) (deploy.Registry, error) {
	res, err := a.cfg.Tracking.Resolve(nil)
	var se *tracking.SchemeError
	if errors.As(err, &se) && se.Source == tracking.EnvTrackingURI {
		a.log.Warn("tracking: ignoring "+tracking.EnvTrackingURI+"; the model is not registered", "error", err.Error())
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	if !res.Enabled() || res.RegisteredModel == "" {
		return nil, nil
	}
	if env.RunID == "" {
		env.RunID = action + "-" + pipeline.NewRunID(env.Now())
	}
	return &mlflowRegistry{env: env, tracking: a.cfg.Tracking, runsDir: a.path(a.cfg.Tracking.RunsDir), repoDir: a.cfg.Dir,
		command: commandLine()}, nil
}

// Promote records the release as a run and lets the tracking mirror register
// it. It fails when anything was not mirrored (the local release stands).
func (r *mlflowRegistry) Promote(ctx context.Context, rel deploy.Release) error {
	dir := filepath.Join(r.runsDir, r.env.RunID)
	rec, err := tracking.StartRun(ctx, r.env, tracking.Options{Dir: dir, Name: rel.Action + " " + rel.Version, Command: r.command,
		RepoDir: r.repoDir, Tracking: r.tracking})
	if err != nil {
		return err
	}
	params := map[string]string{"deploy.action": rel.Action, "deploy.version": rel.Version}
	if rel.Previous != "" {
		params["deploy.previous"] = rel.Previous
	}
	final := map[string]float64{}
	if md := rel.Metadata; md != nil {
		params["deploy.model_type"] = md.ModelType
		if md.TrainingRunID != "" {
			params["deploy.training_run_id"] = md.TrainingRunID
		}
		var m pipeline.Metrics
		if err := json.Unmarshal(md.Metrics, &m.Splits); err == nil {
			final = m.Final()
		}
	}
	errs := []error{rec.LogParams(ctx, params), rec.SetFinalMetrics(ctx, final)}
	ents, err := os.ReadDir(rel.Dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			errs = append(errs, rec.LogArtifact(ctx, "model/"+e.Name(), filepath.Join(rel.Dir, e.Name())))
		}
	}
	reason := "deployed by modax-ml deploy"
	if rel.Action == "rollback" {
		reason = "served again by modax-ml deploy rollback"
	}
	if rel.Previous != "" {
		reason += "; replaced " + rel.Previous
	}
	errs = append(errs, rec.SetDeploy(ctx, tracking.Deploy{Decision: tracking.DeployDeployed, Reason: reason, Version: rel.Version,
		Path: rel.Served, Artifact: "model"}))
	errs = append(errs, rec.EndRun(ctx, nil))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("run record %s: %w", dir, err)
	}
	if pending := rec.Record().Unsynced(); rec.MirrorDown() || len(pending) > 0 {
		return fmt.Errorf("recorded in %s but not mirrored to MLflow (pending: %s); replay with: modax-ml tracking sync %s",
			dir, strings.Join(pending, ", "), dir)
	}
	st := rec.Record().MLflow
	r.env.Log.Info("registered in MLflow", "registered_model", r.tracking.RegisteredModel, "model_version", st.ModelVersion,
		"alias", r.tracking.Alias, "mlflow_run_id", st.RunID, "run", dir)
	return nil
}
