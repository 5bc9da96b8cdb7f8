package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/evaluate"
)

func newEvaluateCmd(a *app) *cobra.Command {
	d := evaluate.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "evaluate",
		Short: "Metrics, a report and plots for a model's predictions",
		Long: `evaluate reads predictions (predictions.parquet) and writes metrics.json,
report.md, a self-contained report.html (plots inline) and PNG plots.

Metrics per split and per device: MAE, RMSE, R² (null for a constant truth),
bias, the PHM08 score, early rate (predicted < true) and late rate
(predicted > true), the critical-window accuracy, and the health-class report
(precision, recall, F1, support per class, accuracy, macro and weighted
averages, confusion matrix), on the capped RUL and, where known, the raw RUL.
--compare prints a side-by-side diff against another metrics.json.

When the predictions file is missing, or was made from an earlier version of
the same model or windows file, evaluate first runs the model over the windows
(all splits) and writes it (--predict auto; always or never to force).`,
		Example: `  modax-ml evaluate
  modax-ml evaluate --predict always --last-window-only
  modax-ml evaluate --predictions runs/x/predictions.parquet --model runs/x/model.safetensors
  modax-ml evaluate --compare models/current/metrics.json --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := a.cfg.Evaluate
			o.Predictions = a.path(o.Predictions)
			o.Model = a.path(o.Model)
			o.Windows = a.path(o.Windows)
			o.Metrics = a.path(o.Metrics)
			o.Report = a.path(o.Report)
			o.HTML = a.path(o.HTML)
			o.PlotsDir = a.path(o.PlotsDir)
			o.Compare = a.path(o.Compare)
			res, err := evaluate.Run(cmd.Context(), a.env(), o)
			if err != nil {
				return err
			}
			return a.emit(res, func(w io.Writer) error { return writeEvaluateText(w, res) })
		},
	}
	f := cmd.Flags()
	bindString(f, "predictions", "evaluate.predictions", d.Predictions, "predictions file to evaluate")
	bindString(f, "model", "evaluate.model", d.Model, "checkpoint that made the predictions (training curves; evaluate predicts with it when needed)")
	bindString(f, "windows", "evaluate.windows", d.Windows, "windows file evaluate predicts from when it predicts")
	bindString(f, "predict", "evaluate.predict", d.Predict, "predict first: auto (predictions missing or made by an earlier version of --model/--windows), always, never")
	bindBool(f, "last-window-only", "evaluate.last_window_only", d.LastWindowOnly, "when predicting: one prediction per device life (the C-MAPSS protocol)")
	bindInt(f, "batch-size", "evaluate.batch_size", d.BatchSize, "when predicting: windows per forward pass")
	bindInt(f, "workers", "evaluate.workers", d.Workers, "when predicting: goroutines of the forward pass (0: one per core)")
	bindStringP(f, "metrics", "o", "evaluate.metrics", d.Metrics, "metrics file to write")
	bindString(f, "report", "evaluate.report", d.Report, "Markdown report to write (empty: none)")
	bindString(f, "html", "evaluate.html", d.HTML, "self-contained HTML report to write (empty: none)")
	bindString(f, "plots-dir", "evaluate.plots_dir", d.PlotsDir, "folder for the PNG plots")
	bindBool(f, "no-plots", "evaluate.no_plots", d.NoPlots, "write no plots")
	bindString(f, "plot-split", "evaluate.plot_split", d.PlotSplit, "split the plots and device tables show (default: test, else val, else train)")
	bindString(f, "compare", "evaluate.compare", d.Compare, "another metrics.json to diff against (side by side)")
	bindFloat(f, "critical-tolerance", "evaluate.critical_tolerance_hours", d.CriticalToleranceHours, "critical-window accuracy: |pred - true| must be below this many hours")
	bindFloat(f, "critical-hours", "evaluate.critical_hours", d.CriticalHours, "critical threshold in hours (0: the predictions file's)")
	bindInt(f, "importance-repeats", "evaluate.importance_repeats", d.ImportanceRepeats, "permutation importance: permutations per input feature (0: none; needs --model and --windows)")
	bindInt64(f, "importance-seed", "evaluate.importance_seed", d.ImportanceSeed, "permutation importance: seed of the permutations")
	bindInt(f, "importance-windows", "evaluate.importance_windows", d.ImportanceWindows, "permutation importance: at most this many windows of the plot split, evenly spread (0: all)")
	bindFloat(f, "warning-hours", "evaluate.warning_hours", d.WarningHours, "warning threshold in hours (0: the predictions file's)")
	return cmd
}

func writeEvaluateText(w io.Writer, res *evaluate.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "split\tn\tdevices\tMAE\tRMSE\tR²\tscore\tearly\tlate\tcritical acc\tclass acc\tmacro F1\t")
	for _, s := range res.SplitNames() {
		m := res.Splits[s]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s, m.N, m.Devices,
			f3(m.MAE), f3(m.RMSE), f3(m.R2), m.Score, pct(m.EarlyRate), pct(m.LateRate),
			pct(m.CriticalAccuracy), pct(m.Classification.Accuracy), f3(m.Classification.MacroAvg.F1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeBucketText(w, res); err != nil {
		return err
	}
	if err := writeAlertText(w, res); err != nil {
		return err
	}
	if err := writeIntervalText(w, res); err != nil {
		return err
	}
	if err := writeImportanceText(w, res); err != nil {
		return err
	}
	files := []string{res.Metrics}
	for _, p := range []string{res.Report, res.HTML} {
		if p != "" {
			files = append(files, p)
		}
	}
	fmt.Fprintf(w, "wrote %s", strings.Join(files, ", "))
	if len(res.Plots) > 0 {
		fmt.Fprintf(w, " and %d plots", len(res.Plots))
	}
	fmt.Fprintln(w)
	for _, warn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
	if res.Compare != nil {
		fmt.Fprintln(w)
		return res.Compare.WriteText(w)
	}
	return nil
}

// writeBucketText prints the MAE and count per true-RUL bucket of every
// split (the buckets are the same for every split of one run).
func writeBucketText(w io.Writer, res *evaluate.Result) error {
	names := res.SplitNames()
	if len(names) == 0 || len(res.Splits[names[0]].RULBuckets) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "MAE/n by true RUL (h)")
	for _, b := range res.Splits[names[0]].RULBuckets {
		fmt.Fprintf(tw, "\t%s", b.Label)
	}
	fmt.Fprintln(tw)
	for _, s := range names {
		fmt.Fprint(tw, s)
		for _, b := range res.Splits[s].RULBuckets {
			fmt.Fprintf(tw, "\t%s/%d", f3(b.MAE), b.N)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// writeAlertText prints the critical alerts' lead time and false alarms
// per split (splits with failing lives or false alarms only).
func writeAlertText(w io.Writer, res *evaluate.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rows := 0
	for _, s := range res.SplitNames() {
		a := res.Splits[s].Alerts
		if a == nil || a.FailingLives == 0 && a.FalseAlarms == 0 {
			continue
		}
		if rows == 0 {
			fmt.Fprintln(tw, "critical alerts\tfailing lives\tnever alerted\tlead time mean/median\tfalse alarms/device-day")
		}
		rows++
		fmt.Fprintf(tw, "%s\t%d\t%d (%s)\t%s / %s h\t%s (%d in %s days)\n", s, a.FailingLives, a.NeverAlerted, pct(a.NeverAlertedShare),
			f3(a.LeadTimeMean), f3(a.LeadTimeMedian), f3(a.FalseAlarmsPerDeviceDay), a.FalseAlarms, f3(a.DeviceDays))
	}
	return tw.Flush()
}

// writeIntervalText prints the measured interval coverage per split and
// level, with the per-bucket coverage, when there are intervals.
func writeIntervalText(w io.Writer, res *evaluate.Result) error {
	var rows []string
	for _, s := range res.SplitNames() {
		for _, iv := range res.Splits[s].Intervals {
			var bs []string
			for _, b := range iv.Buckets {
				hi := fmt.Sprintf("%.0f", b.Hi)
				bs = append(bs, fmt.Sprintf("[%.0f,%s) %s/%d", b.Lo, hi, pct(b.Coverage), b.N))
			}
			width := "—"
			if iv.MeanWidth.Valid() {
				width = fmt.Sprintf("%.1f h", float64(iv.MeanWidth))
			}
			rows = append(rows, fmt.Sprintf("%s\t%g%%\t%d\t%s\t%s\t%s", s, 100*iv.Level, iv.N, pct(iv.Coverage), width, strings.Join(bs, "  ")))
		}
	}
	if len(rows) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "intervals\tlevel\tn\tcoverage\tmean width\tper bucket of predicted RUL (h): coverage/n")
	for _, r := range rows {
		fmt.Fprintln(tw, r)
	}
	return tw.Flush()
}

// writeImportanceText prints the permutation importance, largest first.
func writeImportanceText(w io.Writer, res *evaluate.Result) error {
	imp := res.Doc.FeatureImportance
	if imp == nil {
		return nil
	}
	fmt.Fprintf(w, "permutation importance (%s, %d windows, %d repeats; baseline RMSE %s h):\n", imp.Split, imp.Windows, imp.Repeats, f3(imp.BaselineRMSE))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  feature\tRMSE increase (h)\t± std")
	for _, f := range imp.Features {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Feature, f3(f.Mean), f3(f.Std))
	}
	return tw.Flush()
}

func f3(f evaluate.Float) string {
	if !f.Valid() {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(f))
}

func pct(f evaluate.Float) string {
	if !f.Valid() {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(f))
}
