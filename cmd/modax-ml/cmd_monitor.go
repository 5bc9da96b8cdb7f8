package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/examples"
	"github.com/modax/modax-ml/internal/duration"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/monitor"
	"github.com/modax/modax-ml/pipeline"
)

// minWatch is the shortest --watch interval: a shorter one only busy-loops
// the database.
const minWatch = time.Minute

func newMonitorCmd(a *app) *cobra.Command {
	d := monitor.DefaultOptions()
	var watch duration.Duration
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Judge the deployed model in production; retrain when it degrades or the data drifts",
		Long: `monitor reads, from PostgreSQL, the deployed model's recent predictions
(db.prediction_table, default rul_predictions, written by the serving side or by
"modax-ml predict --to-db") and the failures since (failure_events), and scores
the predictions whose outcome is now known — a failure followed, or the horizon
passed without one — against the true RUL capped at the model's horizon: MAE,
RMSE, PHM08 score, late-prediction rate. It compares the recent readings
(sensor_data) with the reference distributions of the model's training data
(the validation report of its training run) by PSI and KS per sensor.

It decides "retrain" when the realized MAE is above --max-mae, or above
(1 + --max-degradation) × the model's test MAE, or an interval level's
realized coverage is below --min-coverage, or a sensor's PSI is above
--max-psi; else "ok". The report goes to runs/monitor-<time>/monitor.json
(recorded as a run, so "runs list" shows it and MLflow gets it when tracking is
configured) and, as a summary, to stdout. With --retrain it then runs
"pipeline run" in-process with the same config (no config: the built-in
default), which deploys the new model if it passes the gate.

One check by default (for cron); --watch 24h checks every 24 hours until
interrupted.

Exit status: 0 ok (or retrained and deployed, or "retrain" without --retrain),
5 retrained but the new model missed the deploy gate, 1 error.`,
		Example: `  modax-ml monitor --config prod.yaml
  modax-ml monitor --config prod.yaml --max-mae 20 --max-psi 0.2 --retrain
  modax-ml monitor --config prod.yaml --retrain --watch 24h
  modax-ml monitor --lookback 14d --output json`,
		Annotations: map[string]string{defaultConfigAnnotation: string(examples.DefaultYAML)},
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Monitor
			o.DB, o.Tracking = a.cfg.DB, a.cfg.Tracking
			o.ModelsDir, o.Reference, o.Out = a.path(o.ModelsDir), a.path(o.Reference), a.path(o.Out)
			o.RunsDir = a.path(a.cfg.Tracking.RunsDir)
			o.Retrainer = func(ctx context.Context) (*monitor.Retrained, error) {
				res, err := pipeline.Run(ctx, a.env(), pipeline.Options{Config: a.cfg, Command: commandLine(), RepoDir: a.cfg.Dir})
				if res == nil {
					return nil, err
				}
				r := &monitor.Retrained{RunID: res.RunID, Dir: res.Dir, Status: string(res.Status)}
				if res.Deploy != nil {
					r.Decision, r.Version = res.Deploy.Decision, res.Deploy.Version
				}
				return r, err
			}
			if watch < 0 || (watch > 0 && watch.D() < minWatch) {
				return fmt.Errorf("%w: --watch %s: want at least %s (each check reads the outcomes and the deployed model), or leave it unset for one check", exitcode.ErrUsage, watch, minWatch)
			}
			once := func(ctx context.Context) error {
				rep, err := monitor.Run(ctx, a.env(), o)
				if rep != nil {
					if perr := a.emit(rep, func(w io.Writer) error { return printMonitor(w, rep) }); perr != nil && err == nil {
						err = perr
					}
				}
				return err
			}
			if watch <= 0 {
				return once(cmd.Context())
			}
			ctx := cmd.Context()
			for {
				err := once(ctx)
				switch {
				case ctx.Err() != nil:
					return ctx.Err()
				case errors.Is(err, exitcode.ErrUsage):
					return err
				case err != nil:
					a.log.Error("monitor: this check failed; checking again in "+watch.String(), "error", err.Error())
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(watch.D()):
				}
			}
		},
	}
	f := cmd.Flags()
	f.Var(&watch, "watch", "check every this long until interrupted (e.g. 24h; default: once)")
	bindString(f, "models-dir", "monitor.models_dir", d.ModelsDir, "model directory of the deployed model")
	bindString(f, "reference", "monitor.reference", "", "validation report with the reference statistics (default: the deployed model's training run's)")
	bindDuration(f, "lookback", "monitor.lookback", d.Lookback, "judge predictions and readings of this last period")
	bindString(f, "at", "monitor.at", "", "judge as of this time (RFC 3339; default now), to replay history")
	bindFloat(f, "max-mae", "monitor.max_mae", d.MaxMAE, "retrain when the realized MAE is above this (hours; 0: off)")
	bindFloat(f, "max-degradation", "monitor.max_degradation", d.MaxDegradation, "retrain when the realized MAE is above (1 + this) × the test MAE (0: off)")
	bindFloat(f, "max-psi", "monitor.max_psi", d.MaxPSI, "retrain when a sensor's PSI is above this (0: off)")
	bindInt(f, "min-outcomes", "monitor.min_outcomes", d.MinOutcomes, "predictions with a known outcome needed to judge performance")
	bindFloat(f, "min-coverage", "monitor.min_coverage", d.MinCoverage, "retrain when an interval level's realized coverage is below this share (0: the level − 0.10; negative: off)")
	bindString(f, "out", "monitor.out", "", "also write the report here")
	bindBool(f, "to-db", "monitor.to_db", false, "also upsert the result into db.monitor_table (monitor_results, created by db migrate), for a dashboard")
	bindBool(f, "retrain", "monitor.retrain", false, "run the pipeline when the decision is retrain")
	bindString(f, "tenant", "db.tenant", "default", "tenant id")
	return cmd
}

func printMonitor(w io.Writer, r *monitor.Report) error {
	fmt.Fprintf(w, "monitor %s: model %s, %s .. %s\n", r.RunID, r.Model.Version, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	fmt.Fprintf(w, "predictions: %d (%d with a known outcome, %d pending)\n", r.Predictions.Total, r.Predictions.WithOutcome, r.Predictions.Pending)
	p := r.Performance
	if p.MAE != nil {
		test := "-"
		if r.Model.TestMAE != nil {
			test = fmt.Sprintf("%.3g h", *r.Model.TestMAE)
		}
		deg := ""
		if p.Degradation != nil {
			deg = fmt.Sprintf(", %.2f×", *p.Degradation)
		}
		fmt.Fprintf(w, "performance: MAE %.3g h (test %s%s), RMSE %.3g h, score %.3g per prediction, late %.0f%%, early %.0f%%\n",
			*p.MAE, test, deg, *p.RMSE, *p.ScoreMean, 100**p.LateRate, 100**p.EarlyRate)
	}
	for _, c := range p.Intervals {
		fmt.Fprintf(w, "intervals: %g %% level covered %.1f %% of %d outcomes, mean width %.3g h\n", 100*c.Level, 100*c.Coverage, c.N, c.MeanWidth)
	}
	fmt.Fprintf(w, "drift against %s (%d readings):\n", r.Drift.Reference, r.Drift.Readings)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  SENSOR\tPSI\tKS\tVALUES\tDRIFTED")
	for _, s := range r.Drift.Sensors {
		drifted := "no"
		if s.Drifted {
			drifted = "yes"
		}
		fmt.Fprintf(tw, "  %s\t%.3f\t%.3f\t%d\t%s\n", s.Sensor, s.PSI, s.KS, s.Count, drifted)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "decision: %s\n", r.Decision)
	for _, why := range r.Reasons {
		fmt.Fprintf(w, "  - %s\n", why)
	}
	if rt := r.Retrain; rt != nil {
		fmt.Fprintf(w, "retrain: run %s %s, deploy %s %s\n", rt.RunID, rt.Status, rt.Decision, rt.Version)
	}
	_, err := fmt.Fprintf(w, "report: %s\n", r.Path)
	return err
}
