package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/modax/modax-ml/internal/exitcode"
	"github.com/modax/modax-ml/train"
	"github.com/modax/modax-ml/train/sweep"
)

// sweepFlags are the flags of `train --sweep` (not config keys).
type sweepFlags struct {
	space, dir string
	workers    int
	forceNew   bool
}

// runSweep is `train --sweep`: base is the train config (paths resolved).
func runSweep(cmd *cobra.Command, a *app, base train.Options, sf sweepFlags) error {
	if cmd.Flags().Changed("resume") || base.Resume != "" {
		return fmt.Errorf("%w: --resume does not apply to --sweep (a sweep resumes from its journal in --sweep-dir)", exitcode.ErrUsage)
	}
	res, err := sweep.Run(cmd.Context(), a.env(), sweep.Options{
		Space: a.path(sf.space), Dir: a.path(sf.dir), Workers: sf.workers, ForceNew: sf.forceNew, Base: base,
	})
	if err != nil {
		return err
	}
	return a.emit(res, func(w io.Writer) error { return printSweep(w, res) })
}

func printSweep(w io.Writer, r *sweep.Result) error {
	var b strings.Builder
	fmt.Fprintf(&b, "sweep %s: %d trials (%s) on %s, chosen by %s on the val split\n", r.ID, len(r.Trials), r.Method, r.Windows, r.Metric)
	fmt.Fprintf(&b, "  data: %d train / %d val windows; the test split was never read\n", r.TrainWindows, r.ValWindows)
	prune := "no pruning"
	if len(r.Rungs) > 0 {
		prune = fmt.Sprintf("ASHA rungs at epochs %s", joinInts(r.Rungs))
	}
	fmt.Fprintf(&b, "  %d completed, %d pruned, %d failed (%d from the journal); %d trials side by side, %d engine workers each; %s\n",
		r.Completed, r.Pruned, r.Failed, r.Resumed, r.Workers, r.TrialWorkers, prune)
	var keys []string
	if len(r.Trials) > 0 {
		for k := range r.Trials[0].Params {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "  trial\t")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t", k)
	}
	fmt.Fprint(tw, "status\tepochs\tbest epoch\tval RMSE h\n")
	for _, t := range r.Trials {
		fmt.Fprintf(tw, "  %d\t", t.Trial)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t", formatParam(t.Params[k]))
		}
		status := t.Status
		switch t.Status {
		case sweep.StatusPruned:
			status = fmt.Sprintf("pruned at epoch %d", t.PrunedAt)
		case sweep.StatusCompleted:
			if t.StoppedEarly {
				status = "completed (early stop)"
			}
		}
		rmse, best := "-", "-"
		if t.BestValRMSE != nil {
			rmse, best = fmt.Sprintf("%.3f", *t.BestValRMSE), fmt.Sprint(t.BestEpoch)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", status, t.Epochs, best, rmse)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if t := r.Best; t != nil && t.BestValRMSE != nil {
		fmt.Fprintf(&b, "best: trial %d, val RMSE %.3f h at epoch %d, chosen on validation only → %s\n", t.Trial, *t.BestValRMSE, t.BestEpoch, r.BestConfig)
	}
	fmt.Fprintf(&b, "results: %s (journal %s)\n", r.Parquet, r.Journal)
	_, err := io.WriteString(w, b.String())
	return err
}

func formatParam(v any) string {
	if f, ok := v.(float64); ok {
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			return fmt.Sprintf("%.0f", f)
		}
		return fmt.Sprintf("%.4g", f)
	}
	return fmt.Sprint(v)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
