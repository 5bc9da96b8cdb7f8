package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/internal/runtable"
	"github.com/modax/modax-ml/internal/tracking"
)

func newRunsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and show the local run records (runs/<run-id>/run.json)",
	}
	def := tracking.DefaultConfig().RunsDir

	var lo listOptions
	list := &cobra.Command{
		Use:   "list",
		Short: "List the runs, newest first; choose columns, filter and sort",
		Long: `List the runs under the runs directory, newest first.

--columns picks the columns after the run id: ` + strings.Join(runtable.Builtins[1:], ", ") + `,
param.KEY (a param: the flattened effective config, e.g. param.train.epochs) and metric.NAME (a final
metric, e.g. metric.test_rmse). --sort orders by columns (comma list; a leading "-" sorts
descending; runs without the value go last). --filter 'COLUMN OP VALUE' keeps the runs that match,
OP one of < <= > >= = != (numbers compare as numbers, duration also takes 90s or 1m30s); several
--filter flags must all match, and a run without the param or metric only matches !=. A column no
run has is a usage error (exit 2).`,
		Example: `  modax-ml runs list
  modax-ml runs list --columns status,param.train.epochs,metric.test_rmse --sort metric.test_rmse
  modax-ml runs list --filter 'metric.test_rmse<12' --filter status=finished --sort -started
  modax-ml runs list --runs-dir /srv/modax/runs --output json`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runsList(a, lo)
		},
	}
	list.Flags().StringSliceVar(&lo.columns, "columns", nil, "columns after the run id (comma list; default "+strings.Join(runtable.DefaultColumns, ",")+")")
	list.Flags().StringVar(&lo.sort, "sort", "", "sort by these columns (comma list, \"-\" prefix: descending; default newest first)")
	list.Flags().StringArrayVar(&lo.filters, "filter", nil, "keep runs where COLUMN OP VALUE holds (repeatable, all must hold), e.g. 'metric.test_rmse<12'")
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

	var allParams bool
	compare := &cobra.Command{
		Use:   "compare RUN_ID RUN_ID...",
		Short: "Compare runs side by side: differing params, final metrics with deltas",
		Long: `Compare two or more runs (ids as for runs show: a unique prefix or a run directory):
the params whose values differ (all of them with --all-params, differing ones marked "*"), every
final metric with its delta against the first run, and the training curve's length and best epoch.
The ui's compare page shows the same comparison.`,
		Example: `  modax-ml runs compare 20250301T120000-a1 20250302T080000-b2
  modax-ml runs compare first second --all-params
  modax-ml runs compare first second --output json`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			root := a.path(a.cfg.Tracking.RunsDir)
			var recs []*tracking.Record
			for _, id := range args {
				dir, err := tracking.Find(root, id)
				if err != nil {
					return fmt.Errorf("%w: runs compare: %w", exitcode.ErrUsage, err)
				}
				rec, err := tracking.Load(dir)
				if err != nil {
					return fmt.Errorf("runs compare: %w", err)
				}
				recs = append(recs, rec)
			}
			c := runtable.Compare(recs, time.Now())
			return a.emit(c, func(w io.Writer) error { return printCompare(w, c, allParams) })
		},
	}
	bindString(compare.Flags(), "runs-dir", "tracking.runs_dir", def, "directory holding one directory per run")
	compare.Flags().BoolVar(&allParams, "all-params", false, "list every param, not only those that differ")

	cmd.AddCommand(list, show, compare)
	return cmd
}

type listOptions struct {
	columns, filters []string
	sort             string
}

// listRow is one run of `runs list --output json`: the summary, plus the
// chosen columns when --columns is given.
type listRow struct {
	tracking.Summary
	Columns map[string]any `json:"columns,omitempty"`
}

func runsList(a *app, o listOptions) error {
	dir := a.path(a.cfg.Tracking.RunsDir)
	recs, errs := tracking.List(dir)
	for _, err := range errs {
		a.log.Warn("skipping an unreadable run record", "error", err.Error())
	}
	names := o.columns
	if len(names) == 0 {
		names = runtable.DefaultColumns
	}
	cols, err := runtable.ParseColumns(names, recs)
	if err != nil {
		return fmt.Errorf("%w: runs list --columns: %w", exitcode.ErrUsage, err)
	}
	q, err := runtable.ParseQuery(o.filters, o.sort, recs)
	if err != nil {
		return fmt.Errorf("%w: runs list: %w", exitcode.ErrUsage, err)
	}
	now := time.Now()
	recs = q.Apply(recs, now)
	rows := make([]listRow, 0, len(recs))
	for _, r := range recs {
		row := listRow{Summary: tracking.Summarize(r, now)}
		if len(o.columns) > 0 {
			row.Columns = map[string]any{}
			for _, c := range cols {
				v := c.Get(r, now)
				switch {
				case v.Missing:
					row.Columns[c.Name] = nil
				case v.IsNum && c.Param == "":
					row.Columns[c.Name] = tracking.Float(v.Num)
				default:
					row.Columns[c.Name] = v.Text
				}
			}
		}
		rows = append(rows, row)
	}
	return a.emit(rows, func(w io.Writer) error {
		if len(rows) == 0 {
			if len(q.Filters) > 0 {
				_, err := fmt.Fprintf(w, "no runs in %s match the filters\n", dir)
				return err
			}
			_, err := fmt.Fprintf(w, "no runs in %s\n", dir)
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		head := []string{"RUN ID"}
		for _, c := range cols {
			head = append(head, c.Header())
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		for _, r := range recs {
			cells := []string{r.RunID}
			for _, c := range cols {
				cells = append(cells, c.Get(r, now).Text)
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return tw.Flush()
	})
}

// printCompare renders a comparison for people: runs as columns.
func printCompare(w io.Writer, c *runtable.Comparison, allParams bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(label string, cells []string) {
		fmt.Fprintln(tw, label+"\t"+strings.Join(cells, "\t"))
	}
	cells := func(f func(h runtable.RunHead) string) []string {
		var out []string
		for _, h := range c.Runs {
			out = append(out, f(h))
		}
		return out
	}
	row("RUN", cells(func(h runtable.RunHead) string { return h.RunID }))
	row("status", cells(func(h runtable.RunHead) string { return string(h.Status) }))
	row("started", cells(func(h runtable.RunHead) string { return h.StartTime.UTC().Format(time.RFC3339) }))
	row("duration", cells(func(h runtable.RunHead) string { return fmtDuration(h.DurationSeconds) }))
	row("best epoch", cells(func(h runtable.RunHead) string {
		if h.CurveMetric == "" {
			return "-"
		}
		return fmt.Sprintf("%d of %d (%s)", h.BestEpoch, h.Epochs, h.CurveMetric)
	}))
	if err := tw.Flush(); err != nil {
		return err
	}
	n := c.DifferingParams()
	fmt.Fprintf(w, "\n%d of %d params differ", n, len(c.Params))
	if !allParams && len(c.Params) > n {
		fmt.Fprint(w, " (--all-params lists all)")
	}
	fmt.Fprintln(w)
	if n > 0 || allParams {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		row("PARAM", cells(func(h runtable.RunHead) string { return h.RunID }))
		for _, p := range c.Params {
			if !p.Differs && !allParams {
				continue
			}
			label := "  " + p.Key
			if p.Differs {
				label = "* " + p.Key
			}
			var vs []string
			for _, v := range p.Values {
				if v == nil {
					vs = append(vs, "-")
				} else {
					vs = append(vs, *v)
				}
			}
			row(label, vs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(c.Metrics) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{}
	for i, h := range c.Runs {
		if i == 0 {
			head = append(head, h.RunID)
		} else {
			head = append(head, h.RunID+" (Δ)")
		}
	}
	row("METRIC", head)
	for _, m := range c.Metrics {
		var vs []string
		for i, v := range m.Values {
			switch {
			case v == nil:
				vs = append(vs, "-")
			case m.Deltas[i] != nil:
				vs = append(vs, fmt.Sprintf("%s (%s)", fmtFloat(*v), fmtDelta(float64(*m.Deltas[i]))))
			default:
				vs = append(vs, fmtFloat(*v))
			}
		}
		row(m.Key, vs)
	}
	return tw.Flush()
}

func fmtDelta(d float64) string {
	if d > 0 {
		return "+" + runtable.FormatFloat(d)
	}
	return runtable.FormatFloat(d)
}

func fmtDuration(sec float64) string { return runtable.FormatDuration(sec) }

func fmtFloat(f tracking.Float) string { return runtable.FormatFloat(float64(f)) }

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
