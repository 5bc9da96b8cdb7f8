package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/tracking"
)

func newRunsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and show the local run records (runs/<run-id>/run.json)",
	}
	def := tracking.DefaultConfig().RunsDir

	list := &cobra.Command{
		Use:   "list",
		Short: "List the runs, newest first",
		Example: `  modax-ml runs list
  modax-ml runs list --runs-dir /srv/modax/runs --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			dir := a.path(a.cfg.Tracking.RunsDir)
			recs, errs := tracking.List(dir)
			for _, err := range errs {
				a.log.Warn("skipping an unreadable run record", "error", err.Error())
			}
			now := time.Now()
			sums := make([]tracking.Summary, 0, len(recs))
			for _, r := range recs {
				sums = append(sums, tracking.Summarize(r, now))
			}
			return a.emit(sums, func(w io.Writer) error {
				if len(sums) == 0 {
					_, err := fmt.Fprintf(w, "no runs in %s\n", dir)
					return err
				}
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "RUN ID\tSTATUS\tSTARTED\tDURATION\tSTAGES\tDEPLOY\tMLFLOW")
				for _, s := range sums {
					deploy := s.Deploy
					if deploy == "" {
						deploy = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.RunID, s.Status, s.StartTime.UTC().Format(time.RFC3339),
						fmtDuration(s.DurationSeconds), fmtStages(s.Stages), deploy, s.Tracking)
				}
				return tw.Flush()
			})
		},
	}
	bindString(list.Flags(), "runs-dir", "tracking.runs_dir", def, "directory holding one directory per run")

	var withParams bool
	show := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show one run: stages, metrics, deploy decision, artifacts, MLflow state",
		Long: `Show one run from its run.json. RUN_ID is a run directory name under the runs
directory (a unique prefix is enough) or the path of a run directory.`,
		Example: `  modax-ml runs show 20250301T120000-3f9a
  modax-ml runs show 2025 --params
  modax-ml runs show runs/20250301T120000-3f9a --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			dir, err := tracking.Find(a.path(a.cfg.Tracking.RunsDir), args[0])
			if err != nil {
				return fmt.Errorf("%w: runs show: %w", exitcode.ErrUsage, err)
			}
			rec, err := tracking.Load(dir)
			if err != nil {
				return fmt.Errorf("runs show: %w", err)
			}
			return a.emit(rec, func(w io.Writer) error { return printRun(w, rec, dir, withParams) })
		},
	}
	bindString(show.Flags(), "runs-dir", "tracking.runs_dir", def, "directory holding one directory per run")
	show.Flags().BoolVar(&withParams, "params", false, "also list the params (the flattened effective config)")

	cmd.AddCommand(list, show)
	return cmd
}

func fmtDuration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d >= time.Minute:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func fmtStages(counts map[string]int) string {
	var parts []string
	for _, st := range []tracking.StageStatus{tracking.StageRan, tracking.StageSkipped, tracking.StageFailed, tracking.StageKilled, tracking.StageRunning} {
		if n := counts[string(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func fmtFloat(f tracking.Float) string {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("%.6g", v)
}

func fmtSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// printRun renders a run record for people.
func printRun(w io.Writer, r *tracking.Record, dir string, withParams bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	name := r.RunID
	if r.Name != "" && r.Name != r.RunID {
		name += " (" + r.Name + ")"
	}
	fmt.Fprintf(tw, "run\t%s\n", name)
	fmt.Fprintf(tw, "dir\t%s\n", dir)
	status := string(r.Status)
	if r.Error != "" {
		status += ": " + r.Error
	}
	fmt.Fprintf(tw, "status\t%s\n", status)
	fmt.Fprintf(tw, "started\t%s\n", r.StartTime.UTC().Format(time.RFC3339))
	if r.EndTime != nil {
		fmt.Fprintf(tw, "ended\t%s (%s)\n", r.EndTime.UTC().Format(time.RFC3339), fmtDuration(r.Duration(time.Now()).Seconds()))
	}
	if r.Command != "" {
		fmt.Fprintf(tw, "command\t%s\n", r.Command)
	}
	fmt.Fprintf(tw, "tool\t%s\n", r.ToolVersion)
	if g := r.Git; g != nil {
		var extra []string
		if g.Branch != "" {
			extra = append(extra, g.Branch)
		}
		if g.Dirty != nil && *g.Dirty {
			extra = append(extra, "dirty")
		}
		s := g.Commit
		if len(extra) > 0 {
			s += " (" + strings.Join(extra, ", ") + ")"
		}
		fmt.Fprintf(tw, "git\t%s\n", s)
	}
	if r.User != "" {
		fmt.Fprintf(tw, "user\t%s\n", r.User)
	}
	fmt.Fprintf(tw, "seed\t%d\n", r.Seed)
	if d := r.Deploy; d != nil {
		s := d.Decision
		if d.Version != "" {
			s += " " + d.Version
		}
		if d.Path != "" {
			s += " -> " + d.Path
		}
		if d.Reason != "" {
			s += " (" + d.Reason + ")"
		}
		fmt.Fprintf(tw, "deploy\t%s\n", s)
	}
	if m := r.MLflow; m == nil {
		fmt.Fprintf(tw, "mlflow\toff (local record only)\n")
	} else {
		state := r.TrackingState()
		if m.RunID != "" {
			fmt.Fprintf(tw, "mlflow\t%s: run %s, experiment %s at %s\n", state, m.RunID, m.ExperimentID, m.TrackingURI)
		} else {
			fmt.Fprintf(tw, "mlflow\t%s: not created at %s\n", state, m.TrackingURI)
		}
		if m.ModelVersion != "" {
			fmt.Fprintf(tw, "\tregistered model version %s\n", m.ModelVersion)
		}
		if u := r.Unsynced(); len(u) > 0 {
			fmt.Fprintf(tw, "\tnot mirrored: %s (modax-ml tracking sync %s)\n", strings.Join(u, ", "), dir)
		}
		if m.LastError != "" {
			fmt.Fprintf(tw, "\tlast error: %s\n", m.LastError)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(r.Stages) > 0 {
		if err := section(w, "STAGE\tSTATUS\tDURATION\tOUTPUTS\tREASON", func(tw io.Writer) {
			for _, s := range r.Stages {
				reason := s.Reason
				if s.Error != "" {
					reason = s.Error
				}
				var outs []string
				for _, f := range s.Outputs {
					outs = append(outs, f.Path+"@"+short(f.SHA256))
				}
				o := strings.Join(outs, " ")
				if o == "" {
					o = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Status, fmtDuration(s.DurationSeconds), o, reason)
			}
		}); err != nil {
			return err
		}
	}
	if len(r.FinalMetrics) > 0 {
		if err := section(w, "FINAL METRIC\tVALUE", func(tw io.Writer) {
			for _, k := range slices.Sorted(maps.Keys(r.FinalMetrics)) {
				fmt.Fprintf(tw, "%s\t%s\n", k, fmtFloat(r.FinalMetrics[k]))
			}
		}); err != nil {
			return err
		}
	}
	if series := r.Series(); len(series) > 0 {
		if err := section(w, "METRIC\tPOINTS\tSTEPS\tFIRST\tLAST\tMIN\tMAX", func(tw io.Writer) {
			for _, s := range series {
				fmt.Fprintf(tw, "%s\t%d\t%d-%d\t%s\t%s\t%s\t%s\n", s.Name, s.Points, s.FirstStep, s.LastStep, fmtFloat(s.First), fmtFloat(s.Last), fmtFloat(s.Min), fmtFloat(s.Max))
			}
		}); err != nil {
			return err
		}
	}
	if len(r.Artifacts) > 0 {
		if err := section(w, "ARTIFACT\tSIZE\tSHA256\tFILE", func(tw io.Writer) {
			for _, ar := range r.Artifacts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ar.Name, fmtSize(ar.Size), short(ar.SHA256), ar.Path)
			}
		}); err != nil {
			return err
		}
	}
	if len(r.Params) > 0 {
		if !withParams {
			_, err := fmt.Fprintf(w, "\n%d params (--params lists them)\n", len(r.Params))
			return err
		}
		return section(w, "PARAM\tVALUE", func(tw io.Writer) {
			for _, k := range slices.Sorted(maps.Keys(r.Params)) {
				fmt.Fprintf(tw, "%s\t%s\n", k, r.Params[k])
			}
		})
	}
	return nil
}

// section writes a blank line, then a table: the tab-separated header and
// the rows fill writes.
func section(w io.Writer, header string, fill func(tw io.Writer)) error {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	fill(tw)
	return tw.Flush()
}
