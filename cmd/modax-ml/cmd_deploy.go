package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/deploy"
	"github.com/modax/modax-ml/internal/runenv"
)

func newDeployCmd(a *app) *cobra.Command {
	d := deploy.DefaultOptions()
	opts := func() deploy.Options {
		o := a.cfg.Deploy
		o.Model, o.ONNX, o.Metrics, o.ModelsDir = a.path(o.Model), a.path(o.ONNX), a.path(o.Metrics), a.path(o.ModelsDir)
		if o.CurrentMetrics != "" {
			o.CurrentMetrics = a.path(o.CurrentMetrics)
		}
		if o.Validation != "" {
			o.Validation = a.path(o.Validation)
		} else if p := a.path(deploy.DefaultValidation); fileExists(p) {
			o.Validation = p
		}
		return o
	}
	// withRegistry adds the MLflow registry when tracking is configured.
	withRegistry := func(env *runenv.Env, action string) (deploy.Options, error) {
		o := opts()
		reg, err := newRegistry(a, env, action)
		if reg != nil {
			o.Registry = reg
		}
		return o, err
	}
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Gate the evaluated model and publish it atomically to the model directory",
		Long: fmt.Sprintf(`Deploy checks the candidate (checkpoint, its ONNX export and its metrics.json must belong
together: sha256), applies the gate on the test split — --max-mae (default %g h), --max-rmse,
--max-score, --must-beat-current (lower --beat-metric than the deployed model on the same test
set) — and publishes models/versions/<version>/{model.onnx, model.safetensors, metrics.json,
model_metadata.json}, with validation.json (--validation, default validation.json when it exists:
the training data's reference statistics monitor measures drift against). Then it switches models/rul_predictor.onnx and models/model_metadata.json
to the new version in one atomic step (they are links through models/current). A model that
misses the gate exits 5 and changes nothing. Deploys serialise on models/.lock; a crash at any
point leaves the old or the new model served, and the next deploy cleans up.

With an MLflow server configured (tracking.uri or MLFLOW_TRACKING_URI), a deploy or rollback
that switched the served model is recorded as a run (runs/deploy-<time>/run.json, the version's
files as its "model" artifact), registered as a version of tracking.registered_model
(rul_predictor), and tracking.alias (champion) is pointed at it. If MLflow fails, the local
release stands, the command exits 4, and "modax-ml tracking sync RUN_DIR" finishes it later.`, deploy.DefaultMaxMAE),
		Example: `  modax-ml deploy
  modax-ml deploy --max-mae 12 --max-rmse 16 --keep 5
  modax-ml deploy --must-beat-current --current-metrics champion-on-new-windows.json
  modax-ml deploy list
  modax-ml deploy rollback            # to the previously served version
  modax-ml deploy rollback --to 20260101-abcdef`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := a.env()
			o, err := withRegistry(env, "deploy")
			if err != nil {
				return err
			}
			res, err := deploy.Run(cmd.Context(), env, o)
			// A missed gate and a registry failure after the switch still
			// print what happened locally.
			if err != nil && (res == nil || !deploy.IsGate(err) && !res.Deployed) {
				return err
			}
			if perr := a.emit(res, func(w io.Writer) error { return printDeploy(w, res) }); perr != nil {
				return errors.Join(err, perr)
			}
			return err
		},
	}
	f := cmd.PersistentFlags()
	bindString(f, "models-dir", "deploy.models_dir", d.ModelsDir, "model directory")
	bindDuration(f, "lock-timeout", "deploy.lock_timeout", d.LockTimeout, "how long to wait for a concurrent deploy")
	l := cmd.Flags()
	bindString(l, "model", "deploy.model", d.Model, "checkpoint of the candidate")
	bindString(l, "onnx", "deploy.onnx", d.ONNX, "ONNX export of the candidate")
	bindString(l, "metrics", "deploy.metrics", d.Metrics, "metrics.json of the candidate")
	bindString(l, "validation", "deploy.validation", d.Validation, "validation report of the training data, published with the model as monitor's drift reference (default: "+deploy.DefaultValidation+" when it exists)")
	bindString(l, "version", "deploy.version", d.Version, "release name (default: the checkpoint's model_version)")
	bindString(l, "split", "deploy.split", d.Split, "metrics split the gate reads")
	bindFloat(l, "max-mae", "deploy.max_mae", d.MaxMAE, "gate: highest MAE in hours (0: off)")
	bindFloat(l, "max-rmse", "deploy.max_rmse", d.MaxRMSE, "gate: highest RMSE in hours (0: off)")
	bindFloat(l, "max-score", "deploy.max_score", d.MaxScore, "gate: highest NASA score (0: off)")
	bindBool(l, "must-beat-current", "deploy.must_beat_current", d.MustBeatCurrent, "gate: beat the deployed model on the same test set")
	bindString(l, "beat-metric", "deploy.beat_metric", d.BeatMetric, "metric of --must-beat-current: mae, rmse or score")
	bindString(l, "current-metrics", "deploy.current_metrics", d.CurrentMetrics, "the deployed model's metrics on the candidate's test set (default: those stored with it)")
	bindBool(l, "allow-interface-change", "deploy.allow_interface_change", d.AllowInterfaceChange, "deploy even if features/window/input differ from the deployed model's")
	bindInt(l, "keep", "deploy.keep", d.Keep, "prune all but this many most recently served versions, never current or previous (0: keep all)")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List the versions in the model directory, current and previous marked",
		Example: "  modax-ml deploy list\n  modax-ml deploy list --models-dir /srv/models --output json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := deploy.List(cmd.Context(), opts())
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error { return printList(w, res) })
		},
	}
	var to string
	rollback := &cobra.Command{
		Use:     "rollback",
		Short:   "Serve an earlier version again (atomically): the previous one, or --to VERSION",
		Example: "  modax-ml deploy rollback\n  modax-ml deploy rollback --to v12",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := a.env()
			o, err := withRegistry(env, "rollback")
			if err != nil {
				return err
			}
			res, err := deploy.Rollback(cmd.Context(), env, o, to)
			if err != nil && (res == nil || !res.Deployed) {
				return err
			}
			perr := a.emit(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "rolled back: %s now serves %s (was %s)\n", res.Served, res.Version, res.Previous)
				return err
			})
			return errors.Join(err, perr)
		},
	}
	// --to names a version for this one action; it is not a config key.
	rollback.Flags().StringVar(&to, "to", "", "version to serve (default: the previously served one)")
	cmd.AddCommand(list, rollback)
	return cmd
}

func printDeploy(w io.Writer, r *deploy.Result) error {
	var b strings.Builder
	for _, g := range r.Gate {
		mark := "pass"
		if !g.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "gate %s: %s\n", mark, g)
	}
	if len(r.Gate) == 0 {
		b.WriteString("gate: no limits set\n")
	}
	if !r.Deployed {
		fmt.Fprintf(&b, "not deployed: %s\n", r.Version)
	} else {
		fmt.Fprintf(&b, "deployed %s (previous: %s): %s → %s\n", r.Version, orDash(r.Previous), r.Served, r.Dir)
		if r.Reused {
			b.WriteString("the version directory existed already (same checkpoint): switched back to it\n")
		}
		if r.Validation != "" {
			fmt.Fprintf(&b, "drift reference for monitor: %s\n", r.Validation)
		}
		if len(r.Pruned) > 0 {
			fmt.Fprintf(&b, "pruned: %s\n", strings.Join(r.Pruned, ", "))
		}
		if r.Registry == "promoted" {
			b.WriteString("registered in MLflow (alias moved to this version)\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func printList(w io.Writer, r *deploy.ListResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tVERSION\tTYPE\tDEPLOYED\tLAST SERVED\tTEST MAE\tTEST RMSE\tSCORE\tONNX SHA256")
	for _, v := range r.Versions {
		mark := ""
		switch {
		case v.Current:
			mark = "*"
		case v.Previous:
			mark = "prev"
		}
		last := "never"
		if !v.LastServed.IsZero() {
			last = v.LastServed.Format("2006-01-02 15:04")
		}
		sha := v.ONNXSHA256
		if len(sha) > 12 {
			sha = sha[:12]
		}
		if v.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t\t\t%s\t\t\t\t%s\n", mark, v.Version, last, v.Error)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", mark, v.Version, v.ModelType, v.DeployedAt.Format("2006-01-02 15:04"), last,
			num(v.TestMAE), num(v.TestRMSE), num(v.TestScore), sha)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Current == "" {
		_, err := fmt.Fprintf(w, "no model is served from %s\n", r.Dir)
		return err
	}
	return nil
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

func num(p *float64) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%.4g", *p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
