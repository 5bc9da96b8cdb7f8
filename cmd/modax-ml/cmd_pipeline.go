package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/examples"
	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/tracking"
	"github.com/modax/modax-ml/pipeline"
)

// pipelineFlags are the flags of `pipeline run` that are not config keys.
type pipelineFlags struct {
	from, until, resume string
	force               []string
	sets                []string
	dryRun, noCache     bool
}

func newPipelineCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Run every stage in one process: collect → … → deploy",
	}
	var pf pipelineFlags
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the pipeline into runs/<run-id>/ (cached stages are reused)",
		Long: `pipeline run runs collect → validate → label → features → train → evaluate →
export → deploy in-process, from one config, writing every stage's outputs,
the frozen effective config (config.yaml), the run record (run.json) and the
log (pipeline.log) into runs/<run-id>/, and ends with a summary table.

With no config (no --config, no MODAX_CONFIG) it runs the built-in default,
examples/default.yaml: a synthetic fleet and a small model, a couple of
minutes on 2 cores, ending with a deployed models/rul_predictor.onnx.
--set key=value overrides any config key on top of flag > env > file > default.

Caching: a stage whose options, inputs (sha256) and tool version are unchanged
is not run again: its outputs are linked in from the content-addressed cache
(pipeline.cache_dir, .modax/cache/<key>/), so features computed once are reused
by every later run with the same inputs and options. Each stage says why it
ran or was skipped. --force[=STAGE,...] runs stages anyway; --no-cache turns
reuse off. "modax-ml cache ls|gc" inspects and prunes the cache.

--from STAGE starts at STAGE: the stages before it are not run, their outputs
come from the run directory (with --resume) or the cache. --until STAGE stops
after it. --resume RUN_ID continues a failed or killed run in its own
directory with its frozen config (--set changes it, and config.yaml records
the change), from its first unfinished stage. --dry-run prints the plan (what
would run, and why) without running anything.

A lock in the run directory keeps two processes from writing one run; the
deploy stage's lock keeps two deploys from publishing at once. A model that
misses the deploy gate is exit 5 (the run is recorded as finished, decision
rejected); failed data validation is exit 3; Ctrl-C stops the current stage,
removes its partial files, marks the run killed and exits 130.`,
		Example: `  modax-ml pipeline run                                   # built-in default: synthetic fleet, small model
  modax-ml pipeline run --config examples/cmapss-fd001.yaml
  modax-ml pipeline run --set train.epochs=40 --set features.stride=5
  modax-ml pipeline run --dry-run --output json          # the plan, for CI
  modax-ml pipeline run --until features                 # data preparation only
  modax-ml pipeline run --from train --force=train       # retrain on cached features
  modax-ml pipeline run --resume 20250301T120000-3f9a    # continue a failed or killed run`,
		Annotations: map[string]string{defaultConfigAnnotation: string(examples.DefaultYAML)},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("%w: unexpected argument %q (name stages with --force=STAGE, --from STAGE, --until STAGE)", exitcode.ErrUsage, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			sets := pf.sets
			if pf.noCache {
				sets = append(sets, "pipeline.cache=false")
			}
			opts := pipeline.Options{
				Config: a.cfg, Set: sets, From: pf.from, Until: pf.until, Force: pf.force, Resume: pf.resume,
				Command: commandLine(), RepoDir: a.cfg.Dir,
			}
			env := a.env()
			if pf.dryRun {
				plan, err := pipeline.Plan(cmd.Context(), env, opts)
				if err != nil {
					return err
				}
				return a.emit(plan, plan.WriteText)
			}
			res, err := pipeline.Run(cmd.Context(), env, opts)
			if res != nil {
				if perr := a.emit(res, func(w io.Writer) error { return printPipeline(w, res) }); perr != nil && err == nil {
					err = perr
				}
			}
			return err
		},
	}
	f := run.Flags()
	f.StringVar(&pf.from, "from", "", "first stage to run ("+strings.Join(pipeline.Order, ", ")+"); earlier outputs come from the run directory or the cache")
	f.StringVar(&pf.until, "until", "", "last stage to run")
	f.StringSliceVar(&pf.force, "force", nil, "run these stages even when fresh (--force alone: all)")
	f.Lookup("force").NoOptDefVal = "all"
	f.StringVar(&pf.resume, "resume", "", "continue this run (id, unique prefix or run directory) from its first unfinished stage")
	f.StringArrayVar(&pf.sets, "set", nil, "override a config key: --set train.epochs=5 (repeatable)")
	f.BoolVar(&pf.dryRun, "dry-run", false, "print the plan without running anything")
	f.BoolVar(&pf.noCache, "no-cache", false, "run every stage; neither reuse nor store cached outputs")
	bindString(f, "name", "pipeline.name", "", "run name (MLflow's run name; default the run id)")
	bindString(f, "run-id", "run_id", "", "run id (default: UTC time and 4 random hex digits)")
	bindString(f, "runs-dir", "tracking.runs_dir", tracking.DefaultConfig().RunsDir, "directory holding one directory per run")
	bindString(f, "cache-dir", "pipeline.cache_dir", pipeline.DefaultCacheDir, "content-addressed cache of stage outputs")
	cmd.AddCommand(run)
	return cmd
}

// commandLine is the command recorded in run.json.
func commandLine() string {
	return "modax-ml " + strings.Join(os.Args[1:], " ")
}

// printPipeline prints the run's summary: stages, metrics, deploy decision,
// where the report is.
func printPipeline(w io.Writer, r *pipeline.Result) error {
	fmt.Fprintf(w, "run %s %s in %s (%s)\n", r.RunID, r.Status, fmtDuration(r.Seconds), r.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTATUS\tTIME\tWHY")
	for _, s := range r.Stages {
		why := s.Reason
		if s.Error != "" {
			why = s.Error
		}
		t := "-"
		if s.Status != pipeline.ActionNotRun {
			t = fmtDuration(s.Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Status, t, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Metrics) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		var splits []string
		for _, s := range []string{"test", "val"} {
			if _, ok := r.Metrics[pipeline.FinalPrefix(s)+"n"]; ok {
				splits = append(splits, s)
			}
		}
		fmt.Fprint(tw, "metric\t")
		for _, s := range splits {
			fmt.Fprintf(tw, "%s\t", s)
		}
		fmt.Fprintln(tw)
		for _, m := range []struct{ key, name string }{{"mae", "MAE (h)"}, {"rmse", "RMSE (h)"}, {"score", "NASA score"}, {"r2", "R²"},
			{"n", "windows"}, {"baseline_mae", "train-mean baseline MAE (h)"}, {"baseline_rmse", "train-mean baseline RMSE (h)"}} {
			fmt.Fprintf(tw, "%s\t", m.name)
			for _, s := range splits {
				key := pipeline.FinalPrefix(s) + m.key
				if b, ok := strings.CutPrefix(m.key, "baseline_"); ok {
					key = "baseline_" + s + "_" + b
				}
				v, ok := r.Metrics[key]
				switch {
				case !ok || math.IsNaN(float64(v)):
					fmt.Fprint(tw, "-\t")
				case m.key == "n":
					fmt.Fprintf(tw, "%d\t", int64(v))
				default:
					fmt.Fprintf(tw, "%.4g\t", float64(v))
				}
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if d := r.Deploy; d != nil {
		switch d.Decision {
		case tracking.DeployDeployed:
			fmt.Fprintf(w, "deploy: deployed %s -> %s (%s)\n", d.Version, d.Path, d.Reason)
		default:
			fmt.Fprintf(w, "deploy: %s (%s)\n", d.Decision, d.Reason)
		}
	}
	if r.Report != "" {
		fmt.Fprintf(w, "report: %s\n", r.Report)
	}
	fmt.Fprintf(w, "record: %s\n", filepath.Join(r.Dir, tracking.RecordFile))
	_, err := fmt.Fprintf(w, "log:    %s\n", r.Log)
	return err
}
