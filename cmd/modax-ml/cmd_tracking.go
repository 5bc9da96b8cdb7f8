package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/tracking"
)

func newTrackingCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tracking",
		Short: "Mirror run records to an MLflow tracking server",
	}
	var allowRunning bool
	sync := &cobra.Command{
		Use:   "sync RUN_DIR",
		Short: "Replay a run to the MLflow server (sends only what is missing; safe to repeat)",
		Long: `Replay the run recorded in RUN_DIR/run.json to the MLflow tracking server named
by tracking.uri (--tracking-uri) or MLFLOW_TRACKING_URI: the experiment and run
are created when missing, then the params, tags, metric series, final metrics,
artifacts, registered model version (for a deployed model) and the final status
are sent. run.json remembers the MLflow run id and what was sent, so a second
sync sends nothing and a sync after a partial failure sends only the rest.
RUN_DIR may also be a run id under the runs directory.

Credentials come from MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD
(basic auth) or MLFLOW_TRACKING_TOKEN (bearer token). Exit status 4 when the
server cannot be reached or refuses part of the run.`,
		Example: `  MLFLOW_TRACKING_URI=http://mlflow:5000 modax-ml tracking sync runs/20250301T120000-3f9a
  modax-ml tracking sync --tracking-uri https://mlflow.example.com --experiment rul 20250301T1200`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := a.path(args[0])
			if _, err := os.Stat(filepath.Join(dir, tracking.RecordFile)); errors.Is(err, os.ErrNotExist) {
				if found, ferr := tracking.Find(a.path(a.cfg.Tracking.RunsDir), args[0]); ferr == nil {
					dir = found
				}
			}
			res, err := tracking.Sync(c.Context(), a.log, dir, tracking.SyncOptions{Tracking: a.cfg.Tracking, AllowRunning: allowRunning})
			if res != nil && err != nil {
				// Report what got through before the error.
				a.log.Info("tracking sync: partial", "sent", fmt.Sprintf("%+v", res.Sent), "pending", strings.Join(res.Pending, ", "))
			}
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error {
				s := res.Sent
				if s == (tracking.SyncCounts{}) {
					_, err := fmt.Fprintf(w, "run %s is up to date in MLflow (run %s, experiment %q at %s)\n", res.RunID, res.MLflowRunID, res.Experiment, res.TrackingURI)
					return err
				}
				fmt.Fprintf(w, "run %s synced to MLflow run %s (experiment %q at %s)\n", res.RunID, res.MLflowRunID, res.Experiment, res.TrackingURI)
				fmt.Fprintf(w, "sent: %d params, %d tags, %d metric values, %d artifacts", s.Params, s.Tags, s.Metrics, s.Artifacts)
				if s.Runs > 0 {
					fmt.Fprint(w, ", created the run")
				}
				if s.ModelVersion > 0 {
					fmt.Fprintf(w, ", registered model version %s", res.ModelVersion)
				}
				_, err := fmt.Fprintln(w)
				return err
			})
		},
	}
	def := tracking.DefaultConfig()
	f := sync.Flags()
	bindString(f, "tracking-uri", "tracking.uri", def.URI, "MLflow tracking server URL (default $MLFLOW_TRACKING_URI)")
	bindString(f, "experiment", "tracking.experiment", def.Experiment, "MLflow experiment name (default $MLFLOW_EXPERIMENT_NAME, else modax-ml)")
	bindString(f, "runs-dir", "tracking.runs_dir", def.RunsDir, "directory holding one directory per run (to find RUN_DIR by run id)")
	f.BoolVar(&allowRunning, "allow-running", false, "sync a run still marked running (after its process was killed)")
	cmd.AddCommand(sync)
	return cmd
}
